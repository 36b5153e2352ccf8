package topic_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// script is a source the test drives: it records opens and stops and
// hands the test the sink. (A real source cannot fail or stall on demand.)
type script struct {
	mu      sync.Mutex
	sink    event.Sink
	opens   int
	stops   int
	openErr error
	gate    chan struct{} // when set, Open waits for it
	opened  chan struct{} // signalled when Open is entered
}

func newScript() *script { return &script{opened: make(chan struct{}, 16)} }

func (s *script) Open(ctx context.Context, sink event.Sink) (func(), error) {
	s.mu.Lock()
	s.opens++
	gate, err := s.gate, s.openErr
	s.mu.Unlock()
	s.opened <- struct{}{}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.sink = sink
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.stops++
		s.mu.Unlock()
	}, nil
}

func (s *script) counts() (opens, stops int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens, s.stops
}

func (s *script) next(i int) { s.sink.Next([]byte(fmt.Sprintf(`{"data":%d}`, i))) }

func newHub(t *testing.T, cfg topic.Config) *topic.Hub {
	h := topic.NewHub(cfg)
	t.Cleanup(h.Close)
	return h
}

func join(t *testing.T, h *topic.Hub, spec topic.Spec, opt topic.JoinOptions) *topic.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.Join(ctx, spec, opt)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// take drains a client's queue as "kind data" (and ids when withIDs).
func take(c *topic.Client) []*event.Event { return c.Queue().Take(nil) }

func render(evs []*event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s;", e.Kind, e.Data)
	}
	return b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSharedTopicOneSource(t *testing.T) {
	h := newHub(t, topic.Config{})
	s := newScript()
	spec := topic.Spec{Key: "k", Kind: "subscription", Source: s}
	a := join(t, h, spec, topic.JoinOptions{})
	b := join(t, h, topic.Spec{Key: "k", Kind: "subscription", Source: newScript()}, topic.JoinOptions{})
	s.next(1)
	ea, eb := take(a), take(b)
	if render(ea) != `next {"data":1};` || len(eb) != 1 || ea[0] != eb[0] {
		t.Fatalf("a %s, b %s: want one shared event", render(ea), render(eb))
	}
	if st := h.Stats("subscription"); st.Topics != 1 || st.Clients != 2 || st.EventsIn != 1 || st.EventsOut != 2 {
		t.Fatalf("stats %+v", st)
	}
	a.Close()
	if _, stops := s.counts(); stops != 0 {
		t.Fatal("stopped while a client remains")
	}
	b.Close()
	if opens, stops := s.counts(); opens != 1 || stops != 1 {
		t.Fatalf("opens %d stops %d", opens, stops)
	}
	if st := h.Stats(""); st.Topics != 0 || st.Clients != 0 {
		t.Fatalf("stats after the last left %+v", st)
	}
	// The next join starts afresh, with new ids.
	s2 := newScript()
	c := join(t, h, topic.Spec{Key: "k", Source: s2}, topic.JoinOptions{})
	s2.next(2)
	if e := take(c); len(e) != 1 || e[0].ID == ea[0].ID {
		t.Fatalf("new run: %s", render(e))
	}
}

func TestPrivateTopics(t *testing.T) {
	h := newHub(t, topic.Config{})
	s1, s2 := newScript(), newScript()
	a := join(t, h, topic.Spec{Source: s1}, topic.JoinOptions{})
	join(t, h, topic.Spec{Source: s2}, topic.JoinOptions{})
	s1.next(1)
	if render(take(a)) != `next {"data":1};` || h.Stats("").Topics != 2 {
		t.Fatal("an unkeyed topic was shared")
	}
}

func TestResume(t *testing.T) {
	h := newHub(t, topic.Config{})
	s := newScript()
	spec := topic.Spec{Key: "k", Source: s, Replay: 3}
	keep := join(t, h, spec, topic.JoinOptions{})
	var ids []string
	for i := 1; i <= 5; i++ {
		s.next(i)
		ids = append(ids, take(keep)[0].ID)
	}
	for _, tc := range []struct{ name, last, want string }{
		{"in the ring", ids[2], `next {"data":4};next {"data":5};`},
		{"newest", ids[4], ``},
		{"expired", ids[0], `gap {"missed":4,"lastEventId":"` + ids[4] + `","reason":"expired"};`},
		{"other run", "zzzzzz9-2", `gap {"missed":0,"lastEventId":"` + ids[4] + `","reason":"restarted"};`},
	} {
		c := join(t, h, spec, topic.JoinOptions{LastEventID: tc.last})
		if got := render(take(c)); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
		c.Close()
	}
	// A gap carries the newest id, so EventSource resumes from there.
	c := join(t, h, spec, topic.JoinOptions{LastEventID: ids[0]})
	if g := take(c); len(g) != 1 || g[0].ID != ids[4] {
		t.Fatalf("gap id %+v", g)
	}
	s.next(6)
	if got := render(take(c)); got != `next {"data":6};` {
		t.Fatalf("live after the gap: %s", got)
	}
}

func TestGapAndReplayAcrossIt(t *testing.T) {
	h := newHub(t, topic.Config{})
	s := newScript()
	spec := topic.Spec{Key: "k", Source: s}
	a := join(t, h, spec, topic.JoinOptions{})
	s.next(1)
	id1 := take(a)[0].ID
	s.sink.Gap("reconnected")
	s.next(2)
	if got := render(take(a)); got != `gap {"missed":0,"reason":"reconnected"};next {"data":2};` {
		t.Fatalf("live: %s", got)
	}
	b := join(t, h, spec, topic.JoinOptions{LastEventID: id1})
	if got := render(take(b)); got != `gap {"missed":0,"reason":"reconnected"};next {"data":2};` {
		t.Fatalf("replay across the gap: %s", got)
	}
}

func TestReplayLast(t *testing.T) {
	h := newHub(t, topic.Config{})
	s := newScript()
	spec := topic.Spec{Key: "k", Source: s}
	join(t, h, spec, topic.JoinOptions{})
	s.next(1)
	s.next(2)
	if got := render(take(join(t, h, spec, topic.JoinOptions{ReplayLast: true}))); got != `next {"data":2};` {
		t.Fatalf("replayLast: %s", got)
	}
	if got := take(join(t, h, spec, topic.JoinOptions{})); len(got) != 0 {
		t.Fatalf("plain join got %s", render(got))
	}
}

// A source that ends ends every client's stream; its stop is still called,
// once, off the source's goroutine.
func TestSourceEnd(t *testing.T) {
	h := newHub(t, topic.Config{ResumeHold: -1})
	s := newScript()
	a := join(t, h, topic.Spec{Key: "k", Source: s}, topic.JoinOptions{})
	s.next(1)
	s.sink.End(event.NewError("Boom", "it broke"))
	s.next(2) // ignored
	if got := render(take(a)); got != `next {"data":1};error {"errors":[{"message":"it broke","extensions":{"code":"Boom"}}]};` {
		t.Fatalf("got %s", got)
	}
	eventually(t, "stop after end", func() bool { _, stops := s.counts(); return stops == 1 })
	a.Close()
	if _, stops := s.counts(); stops != 1 {
		t.Fatalf("%d stops", stops)
	}
}

// A client away when the source completed, back within ResumeHold with
// an id of it, gets what it missed and done, not a new start.
func TestResumeAcrossCompletion(t *testing.T) {
	h := newHub(t, topic.Config{ResumeHold: time.Minute})
	s := newScript()
	spec := topic.Spec{Key: "k", Source: s}
	a := join(t, h, spec, topic.JoinOptions{})
	s.next(1)
	id1 := take(a)[0].ID
	a.Suspend()
	s.next(2)
	s.sink.End(event.DoneEvent)
	b := join(t, h, spec, topic.JoinOptions{LastEventID: id1})
	if got := render(take(b)); got != `next {"data":2};done ;` {
		t.Fatalf("got %s", got)
	}
	if opens, _ := s.counts(); opens != 1 {
		t.Fatalf("%d opens", opens)
	}
	s2 := newScript()
	join(t, h, topic.Spec{Key: "k", Source: s2}, topic.JoinOptions{})
	if opens, _ := s2.counts(); opens != 1 {
		t.Fatal("a join without an id of the completed run did not start afresh")
	}
}

// The last client suspended, or cut off as a slow consumer, holds the
// topic for ResumeHold; a resume within it loses nothing; without one the
// source stops.
func TestHold(t *testing.T) {
	h := newHub(t, topic.Config{ResumeHold: 50 * time.Millisecond})
	s := newScript()
	spec := topic.Spec{Key: "k", Source: s}
	a := join(t, h, spec, topic.JoinOptions{})
	s.next(1)
	id1 := take(a)[0].ID
	a.Suspend()
	s.next(2)
	b := join(t, h, spec, topic.JoinOptions{LastEventID: id1, Queue: event.Limits{MaxEvents: 1}})
	if got := render(take(b)); got != `next {"data":2};` {
		t.Fatalf("resume within the hold: %s", got)
	}
	s.next(3)
	s.next(4) // b's queue overflows: it is cut off, and the topic held
	if got := render(take(b)); !strings.HasPrefix(got, `next {"data":3};error {"errors":[{"message":"the client did not read fast enough`) {
		t.Fatalf("cut: %s", got)
	}
	if _, stops := s.counts(); stops != 0 {
		t.Fatal("stopped at the cut")
	}
	eventually(t, "stop after the hold", func() bool { _, stops := s.counts(); return stops == 1 })
	if st := h.Stats(""); st.Topics != 0 || st.Cut != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A failed start fails every client waiting for it; the next join tries
// again.
func TestOpenError(t *testing.T) {
	h := newHub(t, topic.Config{})
	boom := errors.New("upstream down")
	s := newScript()
	s.openErr, s.gate = boom, make(chan struct{})
	spec := topic.Spec{Key: "k", Source: s}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := h.Join(context.Background(), spec, topic.JoinOptions{})
			errs <- err
		}()
	}
	<-s.opened
	eventually(t, "both joined", func() bool { return h.Stats("").Clients == 2 })
	close(s.gate)
	for range 2 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("join: %v", err)
		}
	}
	if opens, stops := s.counts(); opens != 1 || stops != 0 {
		t.Fatalf("opens %d stops %d", opens, stops)
	}
	ok := newScript()
	join(t, h, topic.Spec{Key: "k", Source: ok}, topic.JoinOptions{})
	if opens, _ := ok.counts(); opens != 1 {
		t.Fatal("no new start after a failed one")
	}
}

// The first client leaving while its source starts does not cancel the
// start for the others; when nobody is left the source is stopped once it
// started.
func TestLeaveDuringOpen(t *testing.T) {
	h := newHub(t, topic.Config{})
	s := newScript()
	s.gate = make(chan struct{})
	spec := topic.Spec{Key: "k", Source: s}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := h.Join(ctx, spec, topic.JoinOptions{})
		first <- err
	}()
	<-s.opened
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first join: %v", err)
	}
	close(s.gate)
	eventually(t, "stop owed after the start", func() bool { _, stops := s.counts(); return stops == 1 })
}

func TestCloseStopsEverything(t *testing.T) {
	h := topic.NewHub(topic.Config{})
	s := newScript()
	a := join(t, h, topic.Spec{Key: "k", Source: s}, topic.JoinOptions{})
	h.Close()
	if got := render(take(a)); got != `done ;` {
		t.Fatalf("got %s", got)
	}
	if _, stops := s.counts(); stops != 1 {
		t.Fatalf("%d stops", stops)
	}
	if _, err := h.Join(context.Background(), topic.Spec{Source: newScript()}, topic.JoinOptions{}); !errors.Is(err, topic.ErrClosed) {
		t.Fatalf("join after close: %v", err)
	}
	h.Close()
}
