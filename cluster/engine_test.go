package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// upstream is a fake upstream the test drives: every open subscription
// (a Source opened on some instance) gets what the test publishes, as a
// real upstream would send an event to each of its subscribers.
type upstream struct {
	mu    sync.Mutex
	sinks map[*sub]struct{}
	opens int
	stops int
}

type sub struct{ sink event.Sink }

func newUpstream() *upstream { return &upstream{sinks: map[*sub]struct{}{}} }

func (u *upstream) Open(_ context.Context, sink event.Sink) (func(), error) {
	s := &sub{sink: sink}
	u.mu.Lock()
	u.sinks[s] = struct{}{}
	u.opens++
	u.mu.Unlock()
	return func() {
		u.mu.Lock()
		if _, ok := u.sinks[s]; ok {
			delete(u.sinks, s)
			u.stops++
		}
		u.mu.Unlock()
	}, nil
}

// publish sends result i to every open subscription.
func (u *upstream) publish(i int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for s := range u.sinks {
		s.sink.Next(fmt.Appendf(nil, `{"data":%d}`, i))
	}
}

// end completes every open subscription.
func (u *upstream) end() {
	u.mu.Lock()
	sinks := make([]*sub, 0, len(u.sinks))
	for s := range u.sinks {
		sinks = append(sinks, s)
	}
	u.mu.Unlock()
	for _, s := range sinks {
		s.sink.End(event.DoneEvent)
	}
}

func (u *upstream) counts() (open, opens, stops int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.sinks), u.opens, u.stops
}

// instance is one gateway instance's topic layer in the cluster.
type instance struct {
	e *Engine
	h *topic.Hub
}

func newInstance(t *testing.T, url, name string) *instance {
	t.Helper()
	e, err := New(Config{URL: url, Name: "test", LeaseTTL: time.Second, Instance: name})
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{e: e, h: topic.NewHub(topic.Config{Engine: e, ResumeHold: -1})}
	t.Cleanup(in.close)
	eventually(t, "the engine is available", e.Available)
	return in
}

func (in *instance) close() {
	in.e.BeginShutdown()
	in.h.Close()
	_ = in.e.Close()
}

// crash ends the instance as kill -9 would: no handoff, no lease deleted,
// its sources cut off from NATS.
func (in *instance) crash() {
	in.e.stopLoop()
	in.e.loops.Wait()
	in.e.nc.Close()
	in.h.Close()
	in.e.ops.Wait()
}

func (in *instance) join(t *testing.T, u *upstream, lastID string) *topic.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := in.h.Join(ctx, topic.Spec{Key: "secret key", Kind: "subscription", Source: u}, topic.JoinOptions{LastEventID: lastID})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// reader collects what a client receives.
type got struct {
	c   *topic.Client
	evs []*event.Event
}

func (g *got) until(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for render(g.evs) != want {
		if time.Now().After(deadline) {
			t.Fatalf("got %s, want %s", render(g.evs), want)
		}
		select {
		case <-g.c.Queue().Ready():
		case <-time.After(10 * time.Millisecond):
		}
		g.evs = g.c.Queue().Take(g.evs)
	}
}

func render(evs []*event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s;", e.Kind, e.Data)
	}
	return b.String()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOneSourceForThreeInstances(t *testing.T) {
	srv := startNATS(t)
	u := newUpstream()
	a, b, c := newInstance(t, srv.URL(), "a"), newInstance(t, srv.URL(), "b"), newInstance(t, srv.URL(), "c")
	ga := &got{c: a.join(t, u, "")}
	gb := &got{c: b.join(t, u, "")}
	gc := &got{c: c.join(t, u, "")}
	if open, opens, _ := u.counts(); open != 1 || opens != 1 {
		t.Fatalf("%d open subscriptions after %d opens, want 1", open, opens)
	}
	for i := 1; i <= 3; i++ {
		u.publish(i)
	}
	want := `next {"data":1};next {"data":2};next {"data":3};`
	ga.until(t, want)
	gb.until(t, want)
	gc.until(t, want)
	for i := range ga.evs {
		if ga.evs[i].ID != gb.evs[i].ID || ga.evs[i].ID != gc.evs[i].ID {
			t.Fatalf("ids differ: %q %q %q", ga.evs[i].ID, gb.evs[i].ID, gc.evs[i].ID)
		}
	}
	if st := a.e.Status(); st.Owned != 1 || !st.Connected {
		t.Fatalf("owner status %+v", st)
	}
	// A resume on another instance gets exactly what it missed.
	gr := &got{c: c.join(t, u, ga.evs[0].ID)}
	gr.until(t, `next {"data":2};next {"data":3};`)

	// The owner's clients leave; the others keep the source running.
	ga.c.Close()
	time.Sleep(300 * time.Millisecond)
	u.publish(4)
	gb.until(t, want+`next {"data":4};`)
	if open, opens, _ := u.counts(); open != 1 || opens != 1 {
		t.Fatalf("after the owner's clients left: %d open, %d opens", open, opens)
	}
	// The last instance to lose interest completes the subscription.
	gb.c.Close()
	gc.c.Close()
	gr.c.Close()
	eventually(t, "the source stopped", func() bool { open, _, stops := u.counts(); return open == 0 && stops == 1 })
}

func TestFailover(t *testing.T) {
	srv := startNATS(t)
	u := newUpstream()
	a, b, c := newInstance(t, srv.URL(), "a"), newInstance(t, srv.URL(), "b"), newInstance(t, srv.URL(), "c")
	a.join(t, u, "")
	gb := &got{c: b.join(t, u, "")}
	gc := &got{c: c.join(t, u, "")}
	u.publish(1)
	gb.until(t, `next {"data":1};`)
	a.crash()
	start := time.Now()
	// The dead owner's subscription stays open upstream, but nothing it
	// gets reaches NATS; one of b and c takes over within the TTL + 1s.
	eventually(t, "a takeover", func() bool { _, opens, _ := u.counts(); return opens == 2 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("takeover after %v, want within leaseTTL + 1s", d)
	}
	u.publish(2)
	want := `next {"data":1};gap {"missed":0,"reason":"failover"};next {"data":2};`
	gb.until(t, want)
	gc.until(t, want)
	// The killed instance's client resumes on a survivor.
	gr := &got{c: b.join(t, u, gb.evs[0].ID)}
	gr.until(t, `gap {"missed":0,"reason":"failover"};next {"data":2};`)
	took := b.e.Status().Takeovers["failover"] + c.e.Status().Takeovers["failover"]
	if took != 1 {
		t.Errorf("%d failover takeovers, want 1", took)
	}
}

func TestHandoffOnClose(t *testing.T) {
	srv := startNATS(t)
	u := newUpstream()
	a, b := newInstance(t, srv.URL(), "a"), newInstance(t, srv.URL(), "b")
	ga := &got{c: a.join(t, u, "")}
	gb := &got{c: b.join(t, u, "")}
	u.publish(1)
	ga.until(t, `next {"data":1};`)
	gb.until(t, `next {"data":1};`)
	start := time.Now()
	a.close()
	eventually(t, "b took over", func() bool { open, opens, _ := u.counts(); return open == 1 && opens == 2 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("handoff took %v", d)
	}
	u.publish(2)
	gb.until(t, `next {"data":1};gap {"missed":0,"reason":"handoff"};next {"data":2};`)
	// a's client comes back on b and resumes across the handoff.
	gr := &got{c: b.join(t, u, ga.evs[0].ID)}
	gr.until(t, `gap {"missed":0,"reason":"handoff"};next {"data":2};`)
	if n := b.e.Status().Takeovers["handoff"]; n != 1 {
		t.Errorf("%d handoffs counted", n)
	}
}

func TestEndReachesEveryInstance(t *testing.T) {
	srv := startNATS(t)
	u := newUpstream()
	a, b := newInstance(t, srv.URL(), "a"), newInstance(t, srv.URL(), "b")
	ga := &got{c: a.join(t, u, "")}
	gb := &got{c: b.join(t, u, "")}
	u.publish(1)
	u.end()
	want := `next {"data":1};done ;`
	ga.until(t, want)
	gb.until(t, want)
	eventually(t, "the source stopped", func() bool { open, _, stops := u.counts(); return open == 0 && stops == 1 })
	// A resume after the end gets what it missed and done.
	gr := &got{c: b.join(t, u, ga.evs[0].ID)}
	gr.until(t, `done ;`)
}

func TestUnavailableWithoutNATS(t *testing.T) {
	srv := startNATS(t)
	url := srv.URL()
	srv.Shutdown()
	e, err := New(Config{URL: url, Name: "test", ReconnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	h := topic.NewHub(topic.Config{Engine: e})
	defer h.Close()
	if e.Available() {
		t.Fatal("available without NATS")
	}
	if _, err := h.Join(context.Background(), topic.Spec{Key: "k", Source: newUpstream()}, topic.JoinOptions{}); err != topic.ErrUnavailable {
		t.Fatalf("join: %v", err)
	}
}
