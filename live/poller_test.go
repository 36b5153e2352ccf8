package live

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// fakeUpstream answers polls with whatever the test set last.
type fakeUpstream struct {
	mu    sync.Mutex
	data  string
	err   error
	calls int
}

func (f *fakeUpstream) set(data string, err error) {
	f.mu.Lock()
	f.data, f.err = data, err
	f.mu.Unlock()
}

func (f *fakeUpstream) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeUpstream) fetch(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return []byte(f.data), nil
}

// lq is a live query as the gateway joins it: a topic key and a Query.
type lq struct {
	key string
	q   Query
}

func query(f *fakeUpstream, interval time.Duration) lq {
	return lq{"k", Query{Interval: interval, Fetch: f.fetch}}
}

// newHub is the topic layer as the gateway sets it up for live queries,
// with a ring of replay results per poller (0: the gateway's 16).
func newHub(replay int) *hub {
	if replay == 0 {
		replay = 16
	}
	return &hub{topic.NewHub(topic.Config{}), replay}
}

type hub struct {
	*topic.Hub
	replay int
}

// Join joins q's topic as the gateway does.
func (h *hub) Join(ctx context.Context, q lq, opt topic.JoinOptions) (*topic.Client, error) {
	p, err := NewPoller(q.q)
	if err != nil {
		return nil, err
	}
	return h.Hub.Join(ctx, topic.Spec{Key: q.key, Kind: "live", Source: p, Replay: h.replay, State: true, Diff: Diff}, opt)
}

// pollers and clients are the topic layer's counts.
func (h *hub) pollers() int64 { return h.Stats("live").Topics }
func (h *hub) clients() int64 { return h.Stats("live").Clients }

// take drains q.
func take(q *event.Queue) []*event.Event { return q.Take(nil) }

// payloads renders events as "kind id data" lines for exact comparison.
func payloads(evs []*event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s %s\n", e.Kind, e.ID, e.Data)
	}
	return b.String()
}

func join(t *testing.T, h *hub, q lq, opt topic.JoinOptions) *topic.Client {
	t.Helper()
	c, err := h.Join(t.Context(), q, opt)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Fifty clients of one query share one poller: one upstream call per
// interval, one event per change, all with the same id.
func TestSharedPolling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		f := &fakeUpstream{data: `{"data": {"n": 1}}`}
		const interval = 100 * time.Millisecond
		clients := make([]*topic.Client, 50)
		for i := range clients {
			clients[i] = join(t, h, query(f, interval), topic.JoinOptions{})
		}
		first := take(clients[0].Queue())
		if len(first) != 1 || string(first[0].Data) != `{"data":{"n":1}}` {
			t.Fatalf("first client got %q", payloads(first))
		}
		for _, c := range clients[1:] {
			if got := take(c.Queue()); payloads(got) != payloads(first) {
				t.Fatalf("late joiner got %q, want %q", payloads(got), payloads(first))
			}
		}
		time.Sleep(950 * time.Millisecond) // polls at 0, 100, ..., 900 ms
		synctest.Wait()
		if n := f.count(); n != 10 {
			t.Fatalf("upstream polled %d times in 950ms at 100ms, want 10", n)
		}
		for _, c := range clients {
			if got := take(c.Queue()); len(got) != 0 {
				t.Fatalf("unchanged result pushed: %q", payloads(got))
			}
		}
		f.set(`{"data":{"n":2}}`, nil)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		for _, c := range clients {
			got := take(c.Queue())
			if len(got) != 1 || string(got[0].Data) != `{"data":{"n":2}}` || got[0].ID == first[0].ID {
				t.Fatalf("after a change got %q", payloads(got))
			}
		}
		if s := h.Stats("live"); s.Topics != 1 || s.Clients != 50 || s.EventsIn != 2 || f.count() != 11 {
			t.Fatalf("stats %+v, polls %d", s, f.count())
		}
		for _, c := range clients {
			c.Close()
		}
		synctest.Wait()
		if h.pollers() != 0 || h.clients() != 0 {
			t.Fatalf("after the last client left: %+v", h.Stats("live"))
		}
		time.Sleep(time.Second)
		if n := f.count(); n != 11 {
			t.Fatalf("stopped poller still polls: %d", n)
		}
	})
}

// Different keys never share; a new poller after the last one stopped is
// a new incarnation with fresh ids.
func TestPollerPerKeyAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		f := &fakeUpstream{data: `{"a":1}`}
		a := join(t, h, lq{"a", Query{Interval: time.Second, Fetch: f.fetch}}, topic.JoinOptions{})
		b := join(t, h, lq{"b", Query{Interval: time.Second, Fetch: f.fetch}}, topic.JoinOptions{})
		if h.pollers() != 2 || f.count() != 2 {
			t.Fatalf("pollers %d, polls %d", h.pollers(), f.count())
		}
		idA := take(a.Queue())[0].ID
		a.Close()
		b.Close()
		a2 := join(t, h, lq{"a", Query{Interval: time.Second, Fetch: f.fetch}}, topic.JoinOptions{LastEventID: idA})
		got := take(a2.Queue())
		if len(got) != 1 || got[0].ID == idA || string(got[0].Data) != `{"a":1}` {
			t.Fatalf("rejoin after restart got %q (old id %s)", payloads(got), idA)
		}
		a2.Close()
	})
}

// A first poll that fails is reported by Join (the gateway answers 502);
// a later failure is pushed once, polling backs off, and recovery pushes
// the result again.
func TestFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var outcomes []string
		h := newHub(0)
		defer h.Close()
		down := errors.New("connection refused")
		f := &fakeUpstream{err: down}
		q := query(f, 100*time.Millisecond)
		q.q.MaxBackoff = time.Second
		q.q.OnPoll = func(o string) {
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}
		if _, err := h.Join(t.Context(), q, topic.JoinOptions{}); !errors.Is(err, down) {
			t.Fatalf("Join = %v, want the fetch error", err)
		}
		synctest.Wait()
		if h.pollers() != 0 {
			t.Fatalf("a poller without clients runs: %+v", h.Stats("live"))
		}

		f.set(`{"data":{"v":1}}`, nil)
		c := join(t, h, q, topic.JoinOptions{})
		defer c.Close()
		start := time.Now()
		before := take(c.Queue())
		f.set("", down)
		// Polls at 100 (fails), then 200, 400, 800 and 1000 (capped) ms
		// later: 300, 700, 1500, 2500.
		time.Sleep(2550 * time.Millisecond)
		synctest.Wait()
		got := take(c.Queue())
		if len(got) != 1 || string(got[0].Data) != string(FailedJSON) || got[0].Kind != event.Next {
			t.Fatalf("after failures got %q, want one ordinary FailedJSON event", payloads(got))
		}
		if n := f.count(); n != 1+6 {
			t.Fatalf("polls %d by %v, want 1 before + 6 (0, 100, 300, 700, 1500, 2500ms)", n, time.Since(start))
		}
		f.set(`{"data":{"v":1}}`, nil)
		time.Sleep(time.Second)
		synctest.Wait()
		got = take(c.Queue())
		if len(got) != 1 || string(got[0].Data) != `{"data":{"v":1}}` || got[0].ID == before[0].ID {
			t.Fatalf("recovery got %q", payloads(got))
		}
		mu.Lock()
		defer mu.Unlock()
		want := "failed changed failed failed failed failed failed changed"
		if got := strings.Join(outcomes, " "); !strings.HasPrefix(got, want) {
			t.Fatalf("outcomes %q, want prefix %q", got, want)
		}
	})
}

// A Join whose context ends while the first poll hangs gives up, and the
// poller stops with it.
func TestJoinTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		hang := func(ctx context.Context) ([]byte, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := h.Join(ctx, lq{"k", Query{Interval: time.Second, Fetch: hang}}, topic.JoinOptions{})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Join = %v", err)
		}
		synctest.Wait()
		if h.pollers() != 0 {
			t.Fatalf("stats %+v", h.Stats("live"))
		}
	})
}

// Patch clients get the full result first, then a patch when smaller, else
// the full result; other clients of the same poller always get full ones.
func TestPatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		list := func(third string) string {
			return `{"data":{"items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"},{"id":3,"name":"` + third + `"},{"id":4,"name":"delta"}]}}`
		}
		f := &fakeUpstream{data: list("gamma")}
		q := query(f, 100*time.Millisecond)
		pc := join(t, h, q, topic.JoinOptions{Patch: true})
		defer pc.Close()
		fc := join(t, h, q, topic.JoinOptions{})
		defer fc.Close()
		if got := take(pc.Queue()); len(got) != 1 || string(got[0].Data) != list("gamma") {
			t.Fatalf("patch client's first event %q", payloads(got))
		}
		take(fc.Queue())

		f.set(list("GAMMA"), nil)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		p, full := take(pc.Queue()), take(fc.Queue())
		want := `[{"op":"replace","path":"/data/items/2/name","value":"GAMMA"}]`
		if len(p) != 1 || string(p[0].Data) != want {
			t.Fatalf("patch client got %q, want %s", payloads(p), want)
		}
		if len(full) != 1 || string(full[0].Data) != list("GAMMA") || full[0].ID != p[0].ID {
			t.Fatalf("full client got %q", payloads(full))
		}

		f.set(`{"data":null}`, nil) // the patch would be larger
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if p := take(pc.Queue()); len(p) != 1 || string(p[0].Data) != `{"data":null}` {
			t.Fatalf("patch client got %q, want the full result", payloads(p))
		}
	})
}

// Resume with Last-Event-ID: nothing when up to date; missed patches when
// they are smaller; else the newest result.
func TestResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(2)
		defer h.Close()
		big := func(n int) string {
			return fmt.Sprintf(`{"data":{"n":%d,"pad":"%s"}}`, n, strings.Repeat("x", 200))
		}
		f := &fakeUpstream{data: big(0)}
		q := query(f, 100*time.Millisecond)
		keep := join(t, h, q, topic.JoinOptions{Patch: true}) // keeps the poller running
		defer keep.Close()
		ids := []string{take(keep.Queue())[0].ID}
		for n := 1; n <= 3; n++ {
			f.set(big(n), nil)
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
			ids = append(ids, take(keep.Queue())[0].ID)
		}
		cases := []struct {
			name  string
			patch bool
			last  string
			want  []string
		}{
			{"up to date", false, ids[3], nil},
			{"full client behind", false, ids[1], []string{big(3)}},
			{"patch client, one missed", true, ids[2], []string{`[{"op":"replace","path":"/data/n","value":3}]`}},
			{"patch client, two missed", true, ids[1], []string{`[{"op":"replace","path":"/data/n","value":2}]`, `[{"op":"replace","path":"/data/n","value":3}]`}},
			{"patch client, beyond the ring", true, ids[0], []string{big(3)}},
			{"unknown incarnation", true, "zzzzzz1-3", []string{big(3)}},
			{"garbage", false, "not an id", []string{big(3)}},
		}
		for _, tc := range cases {
			c := join(t, h, q, topic.JoinOptions{Patch: tc.patch, LastEventID: tc.last})
			var got []string
			for _, e := range take(c.Queue()) {
				got = append(got, string(e.Data))
			}
			c.Close()
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
			}
		}
	})
}

// A client cut off as a slow consumer leaves the poller; when it was the
// last, the poller stops once it did not come back within the topic's
// resume hold.
func TestSlowConsumerStopsPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		f := &fakeUpstream{data: `{"n":0}`}
		c := join(t, h, query(f, 100*time.Millisecond), topic.JoinOptions{Queue: event.Limits{MaxEvents: 1}})
		defer c.Close()
		for n := 1; n <= 2; n++ {
			f.set(fmt.Sprintf(`{"n":%d}`, n), nil)
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		if h.pollers() != 1 || h.clients() != 0 {
			t.Fatalf("right after the cut: %+v", h.Stats("live"))
		}
		polls := f.count()
		time.Sleep(topic.DefaultResumeHold)
		synctest.Wait()
		if h.pollers() != 0 {
			t.Fatalf("after the hold: %+v", h.Stats("live"))
		}
		if n := f.count(); n > polls+int(topic.DefaultResumeHold/(100*time.Millisecond)) {
			t.Fatalf("%d polls during the hold", n-polls)
		}
		got := take(c.Queue())
		if len(got) != 2 || got[1].Kind != event.Error || !strings.Contains(string(got[1].Data), "SlowConsumer") {
			t.Fatalf("queue %q", payloads(got))
		}
	})
}

// Close ends every client's queue with Done and refuses new clients.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		f := &fakeUpstream{data: `{"n":0}`}
		c := join(t, h, query(f, time.Second), topic.JoinOptions{})
		h.Close()
		got := take(c.Queue())
		if len(got) != 2 || got[1].Kind != event.Done {
			t.Fatalf("queue %q", payloads(got))
		}
		c.Close()
		if _, err := h.Join(t.Context(), query(f, time.Second), topic.JoinOptions{}); !errors.Is(err, topic.ErrClosed) {
			t.Fatalf("Join after Close = %v", err)
		}
		h.Close()
	})
}

// Answers that are not JSON count as failures.
func TestNotJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		f := &fakeUpstream{data: `<html>`}
		if _, err := h.Join(t.Context(), query(f, time.Second), topic.JoinOptions{}); !errors.Is(err, ErrNotJSON) {
			t.Fatalf("Join = %v", err)
		}
	})
}

// A patch client is never given a gap in its patches: under drop-oldest it
// is cut off instead (and resumes with Last-Event-ID), while a full client
// skips to the newest results.
func TestPatchClientNeverSkips(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHub(0)
		defer h.Close()
		f := &fakeUpstream{data: `{"n":0}`}
		lim := event.Limits{MaxEvents: 2, Policy: event.DropOldest}
		pc := join(t, h, query(f, 100*time.Millisecond), topic.JoinOptions{Patch: true, Queue: lim})
		defer pc.Close()
		fc := join(t, h, query(f, 100*time.Millisecond), topic.JoinOptions{Queue: lim})
		defer fc.Close()
		for n := 1; n <= 3; n++ {
			f.set(fmt.Sprintf(`{"n":%d}`, n), nil)
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		p := take(pc.Queue())
		if len(p) != 3 || p[2].Kind != event.Error || !strings.Contains(string(p[2].Data), "SlowConsumer") {
			t.Fatalf("patch client %q, want two results and the cut-off", payloads(p))
		}
		f2 := take(fc.Queue())
		// (Its first result was backfilled, beside the limits.)
		if len(f2) != 4 || f2[0].Kind != event.Gap || string(f2[3].Data) != `{"n":3}` {
			t.Fatalf("full client %q, want a gap and the newest results", payloads(f2))
		}
	})
}
