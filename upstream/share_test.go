package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

func TestDedup(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	a := subscribe(t, h, countdown, SubscribeOptions{Dedup: true})
	same := countdown
	same.Variables = json.RawMessage(`{"from":3}`) // same bytes once compacted
	b := subscribe(t, h, same, SubscribeOptions{Dedup: true})
	ra, rb := newReader(t, a), newReader(t, b)
	f := fs.frame("subscribe", 1)
	f.fc.next(f.ID, `{"data":1}`)
	ea, eb := expectNext(t, ra, `{"data":1}`), expectNext(t, rb, `{"data":1}`)
	if ea != eb {
		t.Error("clients of one shared subscription got different *Event")
	}
	if n := fs.count("subscribe"); n != 1 {
		t.Fatalf("%d subscribe frames", n)
	}
	waitFor(t, "stats", func() bool {
		st, ts := h.Stats(), topicStats(h)
		return st.Subscriptions == 1 && ts.Clients == 2 && st.EventsIn == 1 && ts.EventsOut == 2
	})
	a.Close()
	f.fc.next(f.ID, `{"data":2}`)
	expectNext(t, rb, `{"data":2}`)
	if fs.count("complete") != 0 {
		t.Fatal("completed while a client remains")
	}
	b.Close()
	fs.frame("complete", 1)
	// A later identical subscribe starts afresh.
	c := subscribe(t, h, countdown, SubscribeOptions{Dedup: true})
	f2 := fs.frame("subscribe", 2)
	if f2.ID == f.ID {
		t.Error("operation id reused")
	}
	f2.fc.next(f2.ID, `{"data":3}`)
	expectNext(t, newReader(t, c), `{"data":3}`)
}

func TestNoDedup(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	a := subscribe(t, h, countdown, SubscribeOptions{Dedup: false})
	b := subscribe(t, h, countdown, SubscribeOptions{Dedup: false})
	fa, fb := fs.frame("subscribe", 1), fs.frame("subscribe", 2)
	if fa.ID == fb.ID || fs.numConns() != 1 {
		t.Fatalf("ids %q %q, conns %d", fa.ID, fb.ID, fs.numConns())
	}
	fb.fc.next(fb.ID, `{"data":"b"}`)
	expectNext(t, newReader(t, b), `{"data":"b"}`)
	newReader(t, a).none()
}

func TestDifferentHeadersDifferentConnections(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	r1, r2, r3 := countdown, countdown, countdown
	r1.Header = http.Header{"Authorization": {"Bearer a"}, "X-B": {"1"}}
	r2.Header = http.Header{"x-b": {"1"}, "authorization": {"Bearer a"}} // same, other spelling
	r3.Header = http.Header{"Authorization": {"Bearer b"}}
	subscribe(t, h, r1, SubscribeOptions{Dedup: true})
	subscribe(t, h, r2, SubscribeOptions{Dedup: true})
	subscribe(t, h, r3, SubscribeOptions{Dedup: true})
	fs.frame("subscribe", 2)
	if fs.numConns() != 2 || fs.count("subscribe") != 2 {
		t.Fatalf("conns %d subscribes %d", fs.numConns(), fs.count("subscribe"))
	}
	ip := countdown
	ip.Header = r1.Header
	ip.InitPayload = json.RawMessage(`{"authToken":"a"}`)
	subscribe(t, h, ip, SubscribeOptions{Dedup: true})
	if fs.numConns() != 3 {
		t.Fatalf("init payload does not split connections: %d", fs.numConns())
	}
}

func TestMaxOperationsPerConnection(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), MaxOperationsPerConnection: 2})
	for i := range 3 {
		req := countdown
		req.Variables = json.RawMessage(fmt.Sprintf(`{"from":%d}`, i))
		subscribe(t, h, req, SubscribeOptions{Dedup: true})
	}
	if fs.numConns() != 2 || h.Stats().Connections != 2 || h.Stats().Subscriptions != 3 {
		t.Fatalf("conns %d stats %+v", fs.numConns(), h.Stats())
	}
}

func TestMaxConnections(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), MaxConnections: 1})
	subscribe(t, h, countdown, SubscribeOptions{})
	other := countdown
	other.Header = http.Header{"Authorization": {"Bearer x"}}
	_, err := h.Subscribe(context.Background(), other, SubscribeOptions{})
	if !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("err = %v", err)
	}
}

// feed starts one shared subscription held open by a keeper client and
// returns a function sending the next numbered event, which returns the
// event's id.
func feed(t *testing.T, h *Hub, fs *fakeServer) (*reader, func(n int) string) {
	keeper := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true}))
	f := fs.frame("subscribe", 1)
	return keeper, func(n int) string {
		f.fc.next(f.ID, fmt.Sprintf(`{"data":%d}`, n))
		return expectNext(t, keeper, fmt.Sprintf(`{"data":%d}`, n)).ID
	}
}

// incOf and seqOf are the parts of a topic event id ("<inc>-<seq base36>").
func incOf(id string) string { return id[:strings.LastIndexByte(id, '-')] }

func seqOf(id string) uint64 {
	n, _ := strconv.ParseUint(id[strings.LastIndexByte(id, '-')+1:], 36, 64)
	return n
}

func TestResumeFromRing(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	_, send := feed(t, h, fs)
	id1 := send(1) // the client saw event 1
	send(2)
	send(3)
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: id1}))
	expectNext(t, r, `{"data":2}`)
	expectNext(t, r, `{"data":3}`)
	send(4)
	e := expectNext(t, r, `{"data":4}`)
	if e.ID != incOf(id1)+"-4" {
		t.Errorf("id %q", e.ID)
	}
	r.none()
	// Resuming from the newest event: nothing to replay, no gap.
	r2 := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: e.ID}))
	r2.none()
	send(5)
	expectNext(t, r2, `{"data":5}`)
}

func TestResumeGap(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	setTopics(h, topic.Config{}, 2)
	_, send := feed(t, h, fs)
	first := send(1)
	for i := 2; i <= 5; i++ {
		send(i)
	}
	for _, tc := range []struct{ id, want string }{
		{first, `"reason":"expired"`},
		{"zzzzzzz9-3", `"reason":"restarted"`},
		{"garbage", `"reason":"restarted"`},
	} {
		r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: tc.id}))
		g := r.next()
		if g.Kind != event.Gap || !contains(g.Data, tc.want) {
			t.Fatalf("%s: got %v %s", tc.id, g.Kind, g.Data)
		}
		r.none()
	}
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: first}))
	if g := r.next(); string(g.Data) != `{"missed":4,"lastEventId":"`+first[:len(first)-1]+`5","reason":"expired"}` {
		t.Errorf("gap %s", g.Data)
	}
	send(6)
	expectNext(t, r, `{"data":6}`)
}

func TestResumeNewSubscriptionIsRestarted(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: "abc-1"}))
	// The gap's id is where the client stands now, the new run before its
	// first event: a reconnect with it resumes from the first event.
	g := r.next()
	zero := g.ID
	if !strings.HasSuffix(zero, "-0") || incOf(zero) == "abc" {
		t.Fatalf("gap id %q", zero)
	}
	if g.Kind != event.Gap || string(g.Data) != `{"missed":0,"lastEventId":"`+zero+`","reason":"restarted"}` {
		t.Fatalf("got %v %q %s", g.Kind, g.ID, g.Data)
	}
}

func TestReplayLast(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	_, send := feed(t, h, fs)
	send(1)
	send(2)
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, ReplayLast: true}))
	expectNext(t, r, `{"data":2}`)
	send(3)
	expectNext(t, r, `{"data":3}`)
	plain := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true}))
	plain.none()
}

func TestSlowConsumerCut(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	_, send := feed(t, h, fs)
	slow := subscribe(t, h, countdown, SubscribeOptions{Dedup: true, Queue: event.Limits{MaxEvents: 2}})
	dropper := subscribe(t, h, countdown, SubscribeOptions{Dedup: true, Queue: event.Limits{MaxEvents: 2, Policy: event.DropOldest}})
	for i := 1; i <= 5; i++ {
		send(i)
	}
	waitFor(t, "stats", func() bool {
		st := topicStats(h)
		return st.Cut == 1 && st.Clients == 2 && st.Dropped == 3 && st.EventsOut == 12 // not the one that cut the slow client
	})
	got := slow.Queue().Take(nil)
	if len(got) != 3 || got[2].Kind != event.Error || !contains(got[2].Data, "SlowConsumer") {
		t.Fatalf("slow queue %d events", len(got))
	}
	slow.Close() // already detached: no double count
	if st := topicStats(h); st.Clients != 2 {
		t.Errorf("clients %d", st.Clients)
	}
	d := newReader(t, dropper)
	if g := d.next(); g.Kind != event.Gap {
		t.Fatalf("dropper got %v", g.Kind)
	}
	expectNext(t, d, `{"data":4}`)
	expectNext(t, d, `{"data":5}`)
}

// The last client cut off as a slow consumer holds the subscription for
// ResumeHold (it is expected back), then it is completed.
func TestCutLastClientCompletesUpstream(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	setTopics(h, topic.Config{ResumeHold: 100 * time.Millisecond}, 0)
	subscribe(t, h, countdown, SubscribeOptions{Queue: event.Limits{MaxEvents: 1}})
	f := fs.frame("subscribe", 1)
	f.fc.next(f.ID, `1`)
	f.fc.next(f.ID, `2`)
	if got := fs.frame("complete", 1); got.ID != f.ID {
		t.Fatalf("complete for %q", got.ID)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// A suspended last client (the gateway capped its stream) keeps the
// subscription for ResumeHold: a reconnect with Last-Event-ID resumes
// without loss, events published meanwhile included.
func TestSuspendHoldsForResume(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	setTopics(h, topic.Config{ResumeHold: time.Minute}, 0)
	a := subscribe(t, h, countdown, SubscribeOptions{Dedup: true})
	ra := newReader(t, a)
	f := fs.frame("subscribe", 1)
	f.fc.next(f.ID, `{"data":1}`)
	f.fc.next(f.ID, `{"data":2}`)
	expectNext(t, ra, `{"data":1}`)
	id2 := expectNext(t, ra, `{"data":2}`).ID
	a.Suspend()
	a.Close() // no effect after Suspend
	f.fc.next(f.ID, `{"data":3}`)
	waitFor(t, "event 3 in", func() bool { return h.Stats().EventsIn == 3 })
	if fs.count("complete") != 0 || h.Stats().Subscriptions != 1 {
		t.Fatal("completed while held")
	}
	b := subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: id2})
	rb := newReader(t, b)
	expectNext(t, rb, `{"data":3}`)
	f.fc.next(f.ID, `{"data":4}`)
	expectNext(t, rb, `{"data":4}`)
	rb.none()
	// A client that goes away for good completes it at once.
	b.Close()
	fs.frame("complete", 1)

	// Nobody comes back: completed after the hold.
	h2 := newTestHub(t, HubConfig{URL: fs.URL()})
	setTopics(h2, topic.Config{ResumeHold: 100 * time.Millisecond}, 0)
	c := subscribe(t, h2, countdown, SubscribeOptions{Dedup: true})
	fs.frame("subscribe", 2)
	c.Suspend()
	fs.frame("complete", 2)
	waitFor(t, "released", func() bool { return h2.Stats().Subscriptions == 0 })
}

// A client away when the subscription completed (capped or cut off) and
// back within ResumeHold gets what it missed, then done: not a gap and a
// new start.
func TestResumeAcrossCompletion(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), CompleteGrace: -1})
	setTopics(h, topic.Config{ResumeHold: time.Minute}, 0)
	a := subscribe(t, h, countdown, SubscribeOptions{Dedup: true})
	ra := newReader(t, a)
	f := fs.frame("subscribe", 1)
	f.fc.next(f.ID, `{"data":1}`)
	id1 := expectNext(t, ra, `{"data":1}`).ID
	a.Suspend()
	f.fc.next(f.ID, `{"data":2}`)
	f.fc.complete(f.ID)
	waitFor(t, "completed", func() bool { return h.Stats().Subscriptions == 0 })
	rb := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true, LastEventID: id1}))
	expectNext(t, rb, `{"data":2}`)
	if e := rb.next(); e.Kind != event.Done {
		t.Fatalf("got %v after the missed event", e.Kind)
	}
	if n := fs.count("subscribe"); n != 1 {
		t.Errorf("%d subscribe frames", n)
	}
	// Without a Last-Event-ID of it, a client starts afresh.
	newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true}))
	fs.frame("subscribe", 2)
}
