package logtest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// New makes an empty log of one topic run that keeps at least size events
// and at most size events for replay. Two calls with different run names
// must give logs whose ids the other does not own.
//
// A log may name events at once (Append and Break return them) or once a
// broker stored them (they return nil and the events come back through
// Take): the suite accepts both and asserts the same outcome.
type New func(t *testing.T, run string, size int) topic.Log

// syncWait bounds how long the suite waits for a log that names events
// asynchronously.
const syncWait = 10 * time.Second

// add appends a result and returns it named, from Append or from Take.
func add(t *testing.T, l topic.Log, d []byte) *event.Event {
	t.Helper()
	if e := l.Append(d); e != nil {
		return e
	}
	evs := takeN(t, l, 1)
	if evs[0].Kind != event.Next || string(evs[0].Data) != string(d) {
		t.Fatalf("took %s, want next %s", render(evs), d)
	}
	return evs[0]
}

// brk breaks the log and returns the gap it named: Break's, or the one
// that came through Take; nil when none came (a break right after another
// one adds none). A log that names asynchronously is probed with a result
// after the break, which brk takes and returns as next.
func brk(t *testing.T, l topic.Log, reason string, probe []byte) (gap, next *event.Event) {
	t.Helper()
	if g := l.Break(reason); g != nil {
		if probe != nil {
			next = add(t, l, probe)
		}
		return g, next
	}
	if probe == nil {
		t.Fatal("an asynchronous log's break needs a probe")
	}
	if e := l.Append(probe); e != nil {
		t.Fatal("a log named a result at once but not a gap")
	}
	var evs []*event.Event
	deadline := time.Now().Add(syncWait)
	for len(evs) == 0 || evs[len(evs)-1].Kind == event.Gap {
		if time.Now().After(deadline) {
			t.Fatalf("after a break took %s", render(evs))
		}
		if evs = l.Take(evs); len(evs) == 0 || evs[len(evs)-1].Kind == event.Gap {
			time.Sleep(time.Millisecond)
		}
	}
	if len(evs) > 2 || evs[len(evs)-1].Kind != event.Next || string(evs[len(evs)-1].Data) != string(probe) {
		t.Fatalf("after a break took %s", render(evs))
	}
	if len(evs) == 2 {
		gap = evs[0]
	}
	return gap, evs[len(evs)-1]
}

// takeN polls Take until n events came.
func takeN(t *testing.T, l topic.Log, n int) []*event.Event {
	t.Helper()
	var evs []*event.Event
	deadline := time.Now().Add(syncWait)
	for len(evs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("took %s, want %d events", render(evs), n)
		}
		if evs = l.Take(evs); len(evs) < n {
			time.Sleep(time.Millisecond)
		}
	}
	if len(evs) > n {
		t.Fatalf("took %s, want %d events", render(evs), n)
	}
	return evs
}

// Run runs the suite against logs made by mk.
func Run(t *testing.T, mk New) {
	t.Run("ids grow and are owned", func(t *testing.T) { ids(t, mk) })
	t.Run("since replays in order", func(t *testing.T) { since(t, mk) })
	t.Run("gaps", func(t *testing.T) { gaps(t, mk) })
	t.Run("breaks replayed where they happened", func(t *testing.T) { breaks(t, mk) })
	t.Run("events kept by reference", func(t *testing.T) { patches(t, mk) })
	t.Run("take returns each event once", func(t *testing.T) { takeOnce(t, mk) })
}

func data(i int) []byte { return []byte(fmt.Sprintf(`{"data":%d}`, i)) }

// render writes events as "kind data" for exact comparison.
func render(evs []*event.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s;", e.Kind, e.Data)
	}
	return b.String()
}

func ids(t *testing.T, mk New) {
	l := mk(t, "a", 4)
	if l.Newest() != nil {
		t.Fatal("an empty log has a newest event")
	}
	seen := map[string]bool{}
	var last *event.Event
	for i := 1; i <= 6; i++ {
		e := add(t, l, data(i))
		if e.Kind != event.Next || string(e.Data) != string(data(i)) || e.ID == "" || seen[e.ID] {
			t.Fatalf("append %d: %v %q %s", i, e.Kind, e.ID, e.Data)
		}
		seen[e.ID] = true
		if !l.Owns(e.ID) {
			t.Fatalf("log does not own its id %q", e.ID)
		}
		last = e
	}
	if l.Newest() != last {
		t.Error("Newest is not the last appended event")
	}
	other := mk(t, "b", 4)
	if other.Owns(last.ID) {
		t.Errorf("another run owns %q", last.ID)
	}
	for _, id := range []string{"", "garbage", "-", "x-y"} {
		if l.Owns(id) {
			t.Errorf("owns %q", id)
		}
	}
}

func since(t *testing.T, mk New) {
	l := mk(t, "a", 4)
	var evs []*event.Event
	for i := 1; i <= 4; i++ {
		evs = append(evs, add(t, l, data(i)))
	}
	got, gap := l.Since(evs[0].ID, nil)
	if gap != nil || render(got) != `next {"data":2};next {"data":3};next {"data":4};` {
		t.Fatalf("since 1: %s %+v", render(got), gap)
	}
	if got[0] != evs[1] {
		t.Error("replay is not the appended event itself")
	}
	if got, gap := l.Since(evs[3].ID, nil); gap != nil || len(got) != 0 {
		t.Fatalf("since newest: %s %+v", render(got), gap)
	}
}

func gaps(t *testing.T, mk New) {
	l := mk(t, "a", 2)
	var evs []*event.Event
	for i := 1; i <= 5; i++ {
		evs = append(evs, add(t, l, data(i)))
	}
	// Events 2 and 3 are no longer held: resuming after 1 skips them.
	got, gap := l.Since(evs[0].ID, nil)
	if len(got) != 0 || gap == nil || *gap != (event.GapData{Missed: 4, LastEventID: evs[4].ID, Reason: "expired"}) {
		t.Fatalf("expired: %s %+v", render(got), gap)
	}
	other := mk(t, "b", 2)
	foreign := add(t, other, data(1))
	for _, id := range []string{foreign.ID, "garbage"} {
		got, gap := l.Since(id, nil)
		if len(got) != 0 || gap == nil || gap.Reason != "restarted" || gap.LastEventID != evs[4].ID || gap.Missed != 0 {
			t.Fatalf("%q: %s %+v", id, render(got), gap)
		}
	}
	// A new run's gap names where it stands: before its first event.
	empty := mk(t, "c", 2)
	_, gap = empty.Since(foreign.ID, nil)
	if gap == nil || gap.Reason != "restarted" || !empty.Owns(gap.LastEventID) {
		t.Fatalf("empty log: %+v", gap)
	}
	first := add(t, empty, data(1))
	if got, gap := empty.Since(gap.LastEventID, nil); gap != nil || len(got) != 1 || got[0] != first {
		t.Fatalf("resume from an empty log's position: %s %+v", render(got), gap)
	}
}

func breaks(t *testing.T, mk New) {
	l := mk(t, "a", 8)
	e1 := add(t, l, data(1))
	g, e2 := brk(t, l, "reconnected", data(2))
	if g == nil || g.Kind != event.Gap || string(g.Data) != `{"missed":0,"reason":"reconnected"}` {
		t.Fatalf("gap %+v", g)
	}
	got, gap := l.Since(e1.ID, nil)
	if gap != nil || render(got) != `gap {"missed":0,"reason":"reconnected"};next {"data":2};` {
		t.Fatalf("across the break: %s %+v", render(got), gap)
	}
	// A second break right after the first is the same break: the log
	// holds one gap there (a synchronous log hands back the same gap).
	l2 := mk(t, "b", 8)
	f1 := add(t, l2, data(1))
	g1 := l2.Break("reconnected")
	g2, _ := brk(t, l2, "reconnected", data(2))
	if g1 == nil && g2 == nil || g1 != nil && (g2 == nil || render([]*event.Event{g1}) != render([]*event.Event{g2})) {
		t.Fatalf("second break: %+v %+v", g1, g2)
	}
	if got, _ := l2.Since(f1.ID, nil); render(got) != `gap {"missed":0,"reason":"reconnected"};next {"data":2};` {
		t.Fatalf("two breaks at one point: %s", render(got))
	}
	_, e3 := brk(t, l, "reconnected", data(3))
	got, _ = l.Since(e1.ID, nil)
	if render(got) != `gap {"missed":0,"reason":"reconnected"};next {"data":2};gap {"missed":0,"reason":"reconnected"};next {"data":3};` {
		t.Fatalf("two breaks: %s", render(got))
	}
	if got, _ := l.Since(e2.ID, nil); render(got) != `gap {"missed":0,"reason":"reconnected"};next {"data":3};` {
		t.Fatalf("from between the breaks: %s", render(got))
	}
	// Up to date right after a break: the gap alone.
	if g := l.Break("reconnected"); g == nil {
		deadline := time.Now().Add(syncWait)
		for {
			if got, _ := l.Since(e3.ID, nil); len(got) > 0 || time.Now().After(deadline) {
				break
			}
			l.Take(nil)
			time.Sleep(time.Millisecond)
		}
	}
	if got, _ := l.Since(e3.ID, nil); render(got) != `gap {"missed":0,"reason":"reconnected"};` {
		t.Fatalf("break after the newest: %s", render(got))
	}
}

// patches: the topic sets a state result's Patch on the event the log
// named; a replay returns that very event, patch included.
func patches(t *testing.T, mk New) {
	l := mk(t, "a", 4)
	e1 := add(t, l, data(1))
	e2 := add(t, l, data(2))
	e2.Patch = &event.Event{Kind: event.Next, ID: e2.ID, Data: []byte(`[{"op":"replace","path":"/data","value":2}]`)}
	if got, _ := l.Since(e1.ID, nil); len(got) != 1 || got[0] != e2 || got[0].Patch == nil {
		t.Fatalf("replayed event lost its patch: %s", render(got))
	}
	if l.Newest() != e2 {
		t.Fatal("Newest is not the named event")
	}
}

func takeOnce(t *testing.T, mk New) {
	l := mk(t, "a", 4)
	for i := 1; i <= 3; i++ {
		add(t, l, data(i))
	}
	if evs := l.Take(nil); len(evs) != 0 {
		t.Fatalf("Take again: %s", render(evs))
	}
}
