// Package logtest is the conformance suite of topic.Log: every
// implementation (the in-memory ring, a broker-backed log) runs the same
// tests, so a topic behaves the same whatever keeps its events.
package logtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// New makes an empty log of one topic run that keeps at least size events
// and at most size events for replay. Two calls with different run names
// must give logs whose ids the other does not own.
type New func(t *testing.T, run string, size int) topic.Log

// Run runs the suite against logs made by mk.
func Run(t *testing.T, mk New) {
	t.Run("ids grow and are owned", func(t *testing.T) { ids(t, mk) })
	t.Run("since replays in order", func(t *testing.T) { since(t, mk) })
	t.Run("gaps", func(t *testing.T) { gaps(t, mk) })
	t.Run("breaks replayed where they happened", func(t *testing.T) { breaks(t, mk) })
	t.Run("patches kept", func(t *testing.T) { patches(t, mk) })
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
		e := l.Append(data(i), nil)
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
		evs = append(evs, l.Append(data(i), nil))
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
		evs = append(evs, l.Append(data(i), nil))
	}
	// Events 2 and 3 are no longer held: resuming after 1 skips them.
	got, gap := l.Since(evs[0].ID, nil)
	if len(got) != 0 || gap == nil || *gap != (event.GapData{Missed: 4, LastEventID: evs[4].ID, Reason: "expired"}) {
		t.Fatalf("expired: %s %+v", render(got), gap)
	}
	other := mk(t, "b", 2)
	foreign := other.Append(data(1), nil)
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
	first := empty.Append(data(1), nil)
	if got, gap := empty.Since(gap.LastEventID, nil); gap != nil || len(got) != 1 || got[0] != first {
		t.Fatalf("resume from an empty log's position: %s %+v", render(got), gap)
	}
}

func breaks(t *testing.T, mk New) {
	l := mk(t, "a", 8)
	e1 := l.Append(data(1), nil)
	g := l.Break("reconnected")
	if g.Kind != event.Gap || string(g.Data) != `{"missed":0,"reason":"reconnected"}` {
		t.Fatalf("gap %v %s", g.Kind, g.Data)
	}
	if again := l.Break("reconnected"); render([]*event.Event{again}) != render([]*event.Event{g}) {
		t.Error("a second break at the same point is not the same gap")
	}
	l.Append(data(2), nil)
	got, gap := l.Since(e1.ID, nil)
	if gap != nil || render(got) != `gap {"missed":0,"reason":"reconnected"};next {"data":2};` {
		t.Fatalf("across the break: %s %+v", render(got), gap)
	}
	l.Break("reconnected")
	e3 := l.Append(data(3), nil)
	got, _ = l.Since(e1.ID, nil)
	if render(got) != `gap {"missed":0,"reason":"reconnected"};next {"data":2};gap {"missed":0,"reason":"reconnected"};next {"data":3};` {
		t.Fatalf("two breaks: %s", render(got))
	}
	// Up to date right after a break: the gap alone.
	l.Break("reconnected")
	if got, _ := l.Since(e3.ID, nil); render(got) != `gap {"missed":0,"reason":"reconnected"};` {
		t.Fatalf("break after the newest: %s", render(got))
	}
}

func patches(t *testing.T, mk New) {
	l := mk(t, "a", 4)
	e1 := l.Append(data(1), nil)
	if e1.Patch != nil {
		t.Fatal("patch without one given")
	}
	e2 := l.Append(data(2), []byte(`[{"op":"replace","path":"/data","value":2}]`))
	if e2.Patch == nil || e2.Patch.ID != e2.ID || string(e2.Patch.Data) != `[{"op":"replace","path":"/data","value":2}]` {
		t.Fatalf("patch %+v", e2.Patch)
	}
	if got, _ := l.Since(e1.ID, nil); len(got) != 1 || got[0].Patch == nil {
		t.Fatal("replayed event lost its patch")
	}
}
