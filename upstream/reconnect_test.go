package upstream

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream/demo"
)

const wantReconnectGap = `{"missed":0,"reason":"reconnected"}`

// restartDemo closes d and starts a new demo on the same address once
// between() returned.
func restartDemo(t *testing.T, d *demo.Server, opts demo.Options, between func()) *demo.Server {
	t.Helper()
	addr := d.Addr()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = -1
	}
	d2, err := demo.StartAt(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close() })
	return d2
}

// reconnecting reports whether a connection of h lost its session.
func reconnecting(h *Hub) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.all {
		if c.session() == nil {
			return true
		}
	}
	return false
}

func post(t *testing.T, d *demo.Server, room, content string) {
	t.Helper()
	body, status, err := NewClient(d.URL(), nil, nil).Do(context.Background(), Request{
		Query:     `mutation($r: String!, $c: String!) { postMessage(room: $r, content: $c) { id } }`,
		Variables: []byte(`{"r":"` + room + `","c":"` + content + `"}`),
	})
	if err != nil || status != 200 {
		t.Fatalf("post: %d %v %s", status, err, body)
	}
}

func waitActive(t *testing.T, d *demo.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitActive(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// The real demo goes away (it completes every subscription, then closes)
// and comes back on the same address: the shared subscriptions and their
// client queues stay, each client is told once with a gap, event ids go
// on, and a client resuming from before the restart gets the gap too.
func TestReconnectDemoRestart(t *testing.T) {
	for _, proto := range []string{demo.ProtocolTransportWS, demo.ProtocolGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			opts := demo.Options{Protocols: []string{proto}}
			d := startDemo(t, opts)
			var hooked atomic.Int32
			h := newTestHub(t, HubConfig{URL: d.WebSocketURL(), OnReconnect: func() { hooked.Add(1) }})
			req := Request{Query: `subscription { messageCreated(room: "r") { content } }`}
			a := newReader(t, subscribe(t, h, req, SubscribeOptions{Dedup: true}))
			b := newReader(t, subscribe(t, h, req, SubscribeOptions{Dedup: true}))
			other := newReader(t, subscribe(t, h, Request{Query: `subscription { messageCreated(room: "o") { content } }`}, SubscribeOptions{}))
			waitActive(t, d, 2)
			post(t, d, "r", "before")
			e1 := expectNext(t, a, `{"data":{"messageCreated":{"content":"before"}}}`)
			expectNext(t, b, `{"data":{"messageCreated":{"content":"before"}}}`)

			d = restartDemo(t, d, opts, func() {
				a.none() // the upstream's shutdown completes are not passed on
				if st := h.Stats(); st.Subscriptions != 2 || topicStats(h).Clients != 3 || st.Connections != 1 {
					t.Errorf("stats while away %+v", st)
				}
			})
			waitActive(t, d, 2) // both subscriptions were sent again
			for _, r := range []*reader{a, b, other} {
				expectEnd(t, r, event.Gap, wantReconnectGap)
				r.none() // exactly once
			}
			post(t, d, "r", "after")
			e2 := expectNext(t, a, `{"data":{"messageCreated":{"content":"after"}}}`)
			expectNext(t, b, `{"data":{"messageCreated":{"content":"after"}}}`)
			if incOf(e1.ID) != incOf(e2.ID) || e2.ID != incOf(e1.ID)+"-"+strconv.FormatUint(seqOf(e1.ID)+1, 36) {
				t.Errorf("ids %s then %s: want the same incarnation, next seq", e1.ID, e2.ID)
			}
			post(t, d, "o", "other")
			expectNext(t, other, `{"data":{"messageCreated":{"content":"other"}}}`)

			// Resuming from before the restart replays across it, with the gap
			// where the connection broke.
			c := newReader(t, subscribe(t, h, req, SubscribeOptions{Dedup: true, LastEventID: e1.ID}))
			expectEnd(t, c, event.Gap, wantReconnectGap)
			if e := c.next(); e != e2 {
				t.Errorf("resume gave %v %s", e.Kind, e.Data)
			}
			c.none()
			st := h.Stats()
			if st.Reconnects != 1 || hooked.Load() != 1 || st.Connections != 1 || st.Subscriptions != 2 {
				t.Errorf("stats %+v, hook called %d times", st, hooked.Load())
			}
		})
	}
}

// The upstream never comes back: after ReconnectTimeout the streams end
// with UpstreamUnavailable, and everything is released.
func TestReconnectTimeout(t *testing.T) {
	d := startDemo(t, demo.Options{})
	h := newTestHub(t, HubConfig{URL: d.WebSocketURL(), ReconnectTimeout: 400 * time.Millisecond})
	r := newReader(t, subscribe(t, h, Request{Query: `subscription { messageCreated(room: "r") { id } }`}, SubscribeOptions{}))
	waitActive(t, d, 1)
	t0 := time.Now()
	_ = d.Close()
	expectEnd(t, r, event.Error, `{"errors":[{"message":"the upstream connection was lost and did not come back within 400ms","extensions":{"code":"UpstreamUnavailable"}}]}`)
	if el := time.Since(t0); el < 400*time.Millisecond {
		t.Errorf("ended after %v, before the timeout", el)
	}
	r.none()
	waitFor(t, "released", func() bool {
		st := h.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && topicStats(h).Clients == 0 && st.Reconnects == 0
	})
}

// An upstream that accepts the WebSocket but never acknowledges it again:
// each attempt is bounded by InitTimeout and the deadline still holds.
func TestReconnectNeverAcked(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), InitTimeout: 5 * time.Second, ReconnectTimeout: 300 * time.Millisecond})
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	f := fs.frame("subscribe", 1)
	fs.noAck.Store(true)
	_ = f.fc.ws.CloseNow()
	expectCode(t, r, "UpstreamUnavailable")
	if fs.numConns() < 2 {
		t.Errorf("no reconnect attempt: %d connections", fs.numConns())
	}
	waitFor(t, "released", func() bool { return h.Stats().Connections == 0 })
}

// A Subscribe that needs a connection being re-established waits for it.
func TestSubscribeWaitsForReconnect(t *testing.T) {
	opts := demo.Options{}
	d := startDemo(t, opts)
	h := newTestHub(t, HubConfig{URL: d.WebSocketURL()})
	req := Request{Query: `subscription { messageCreated(room: "r") { content } }`}
	a := newReader(t, subscribe(t, h, req, SubscribeOptions{Dedup: true}))
	waitActive(t, d, 1)
	type result struct {
		sub *topic.Client
		err error
	}
	got := make(chan result, 2)
	d = restartDemo(t, d, opts, func() {
		// Until the reader sees the close, the connection looks alive and a
		// Subscribe would go through on it.
		waitFor(t, "the hub noticed the upstream left", func() bool { return reconnecting(h) })
		expired, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := h.Subscribe(expired, req, SubscribeOptions{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Subscribe while away with a short context: %v", err)
		}
		go func() {
			sub, err := h.Subscribe(context.Background(), Request{Query: `subscription { messageCreated(room: "late") { content } }`}, SubscribeOptions{})
			got <- result{sub, err}
		}()
		waitFor(t, "the late subscription joined the connection", func() bool { return h.Stats().Subscriptions == 2 })
	})
	res := <-got
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.sub.Close()
	waitActive(t, d, 2)
	post(t, d, "late", "hi")
	late := newReader(t, res.sub)
	expectNext(t, late, `{"data":{"messageCreated":{"content":"hi"}}}`) // no gap: it missed nothing
	expectEnd(t, a, event.Gap, wantReconnectGap)
}

// When every client leaves while the upstream is away, the connection gives
// up at once instead of waiting for the timeout.
func TestReconnectAbandonedWhenClientsLeave(t *testing.T) {
	d := startDemo(t, demo.Options{})
	h := newTestHub(t, HubConfig{URL: d.WebSocketURL(), ReconnectTimeout: time.Minute})
	sub := subscribe(t, h, Request{Query: `subscription { messageCreated(room: "r") { id } }`}, SubscribeOptions{})
	waitActive(t, d, 1)
	_ = d.Close()
	waitFor(t, "reconnecting", func() bool { return reconnecting(h) })
	sub.Close()
	waitFor(t, "connection given up", func() bool {
		st := h.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && topicStats(h).Clients == 0
	})
}

// Closing the hub during a reconnect ends the streams with done and stops
// the reconnect loop.
func TestHubCloseWhileReconnecting(t *testing.T) {
	d := startDemo(t, demo.Options{})
	h, err := NewHub(HubConfig{URL: d.WebSocketURL()})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := h.Subscribe(context.Background(), Request{Query: `subscription { messageCreated(room: "r") { id } }`}, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitActive(t, d, 1)
	_ = d.Close()
	waitFor(t, "reconnecting", func() bool { return reconnecting(h) })
	_ = h.Close()
	expectEnd(t, newReader(t, sub), event.Done, "")
}

// A finite subscription's complete still ends its streams with done, and
// a connection_error (legacy, fatal) is not retried.
func TestCompleteHeldThenPassedOn(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), CompleteGrace: 50 * time.Millisecond})
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	f := fs.frame("subscribe", 1)
	f.fc.next(f.ID, `{"data":1}`)
	f.fc.complete(f.ID)
	expectNext(t, r, `{"data":1}`)
	expectEnd(t, r, event.Done, "")
	if fs.count("complete") != 0 {
		t.Error("complete sent back for a subscription the upstream completed")
	}
}

// A huge result ends only its own subscription (with a clear error, and a
// complete upstream), whichever member of the frame carries its id; the
// other subscriptions on the connection keep flowing. A frame past
// oversizeFactor×MaxFrameBytes drops the connection, which is
// re-established.
func TestOversizedFrameEndsOnlyItsSubscription(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), MaxFrameBytes: 1024})
	big := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	other := countdown
	other.Variables = []byte(`{"from":9}`)
	small := newReader(t, subscribe(t, h, other, SubscribeOptions{}))
	third := countdown
	third.Variables = []byte(`{"from":7}`)
	late := newReader(t, subscribe(t, h, third, SubscribeOptions{}))
	f1 := fs.frame("subscribe", 1)
	f2 := fs.frame("subscribe", 2)
	f3 := fs.frame("subscribe", 3)
	huge := strings.Repeat("x", 5000)
	f1.fc.next(f1.ID, `{"data":"`+huge+`"}`)
	f2.fc.next(f2.ID, `{"data":"fine"}`)
	expectCode(t, big, "UpstreamFrameTooLarge")
	expectNext(t, small, `{"data":"fine"}`)
	if got := fs.frame("complete", 1); got.ID != f1.ID {
		t.Errorf("complete for %q, want %q", got.ID, f1.ID)
	}
	// The id after the payload.
	f3.fc.send(`{"type":"next","payload":{"data":"` + huge + `"},"id":"` + f3.ID + `"}`)
	expectCode(t, late, "UpstreamFrameTooLarge")
	f2.fc.next(f2.ID, `{"data":"still"}`)
	expectNext(t, small, `{"data":"still"}`)
	if fs.numConns() != 1 || h.Stats().Reconnects != 0 {
		t.Fatalf("connections %d, reconnects %d", fs.numConns(), h.Stats().Reconnects)
	}
	// Endless: dropped and re-established.
	f2.fc.next("unknown", `{"data":"`+strings.Repeat("y", 20*1024)+`"}`)
	expectEnd(t, small, event.Gap, wantReconnectGap)
	g := fs.frame("subscribe", 4)
	if g.ID != f2.ID || g.fc == f2.fc {
		t.Fatalf("resubscribed %q on a new connection: %v", g.ID, g.fc != f2.fc)
	}
	g.fc.next(g.ID, `{"data":"again"}`)
	expectNext(t, small, `{"data":"again"}`)
}

func TestFrameScan(t *testing.T) {
	for _, tc := range []struct{ in, id, typ string }{
		{`{"id":"1","type":"next","payload":{"id":"x","type":"y"}}`, "1", "next"},
		{`{"payload":{"data":{"id":"nested"}},"type":"data","id":"a\"b"}`, `a"b`, "data"},
		{`{"type" : "next" , "payload" : ["id","q"], "id" : "7"}`, "7", "next"},
		{`{"payload":"{\"id\":\"no\"}","id":"9"}`, "9", ""},
	} {
		var sc frameScan
		for i := range len(tc.in) { // byte by byte: pieces may split anywhere
			sc.feed([]byte{tc.in[i]})
		}
		if sc.id != tc.id || sc.typ != tc.typ {
			t.Errorf("%s: id %q type %q", tc.in, sc.id, sc.typ)
		}
	}
}
