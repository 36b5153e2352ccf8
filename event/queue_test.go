package event

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func next(i int) *Event {
	return &Event{Kind: Next, ID: fmt.Sprintf("s-%d", i), Data: []byte(fmt.Sprintf(`{"data":%d}`, i))}
}

func ids(es []*Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Kind.String() + ":" + e.ID
	}
	return out
}

func TestDisconnectCutsAndKeepsQueued(t *testing.T) {
	q := NewQueue(Limits{MaxEvents: 2})
	for i := 1; i <= 2; i++ {
		if r := q.Push(next(i)); r != Queued {
			t.Fatalf("push %d: %d", i, r)
		}
	}
	if q.Overflowed() {
		t.Fatal("overflowed before the limit")
	}
	if r := q.Push(next(3)); r != Cut {
		t.Fatalf("push 3: %d, want Cut", r)
	}
	if !q.Overflowed() || q.Push(next(4)) != Closed {
		t.Fatal("not closed after the cut")
	}
	got := q.Take(nil)
	if fmt.Sprint(ids(got)) != "[next:s-1 next:s-2 error:]" || string(got[2].Data) != `{"errors":[{"message":"the client did not read fast enough; reconnect with Last-Event-ID to resume","extensions":{"code":"SlowConsumer"}}]}` {
		t.Fatalf("took %v %s", ids(got), got[len(got)-1].Data)
	}
}

func TestDropOldestGap(t *testing.T) {
	q := NewQueue(Limits{MaxEvents: 2, Policy: DropOldest})
	for i := 1; i <= 5; i++ {
		q.Push(next(i))
	}
	got := q.Take(nil)
	if fmt.Sprint(ids(got)) != "[gap:s-3 next:s-4 next:s-5]" {
		t.Fatalf("took %v", ids(got))
	}
	// The gap names the last dropped event, as its id (EventSource keeps
	// it) and in its data.
	if string(got[0].Data) != `{"missed":3,"lastEventId":"s-3","reason":"slow-consumer"}` {
		t.Errorf("gap data %s", got[0].Data)
	}
	if q.Overflowed() {
		t.Error("drop-oldest reported a cut")
	}
}

// A backfill (a replay) larger than the limits is queued whole and does
// not eat the room for live events until it is taken.
func TestBackfillBeyondLimits(t *testing.T) {
	q := NewQueue(Limits{MaxEvents: 2, MaxBytes: 64})
	for i := 1; i <= 5; i++ {
		if !q.Backfill(next(i)) {
			t.Fatal("backfill refused")
		}
	}
	if q.Backfill(&Event{Kind: Done}) {
		t.Error("a terminal event was backfilled")
	}
	if r := q.Push(next(6)); r != Queued {
		t.Fatalf("live push after the backfill: %d", r)
	}
	if got := q.Take(nil); len(got) != 6 {
		t.Fatalf("took %v", ids(got))
	}
	// The limits are back to normal after the Take.
	q.Push(next(7))
	q.Push(next(8))
	if r := q.Push(next(9)); r != Cut {
		t.Fatalf("push past the limit after a take: %d", r)
	}
	q.Close(nil)
	if q.Backfill(next(10)) {
		t.Error("backfill into a closed queue")
	}
}

func TestSetWake(t *testing.T) {
	q := NewQueue(Limits{MaxEvents: 1, Policy: DropOldest})
	q.Push(next(0)) // before SetWake: no call
	wakes := 0
	q.SetWake(func() { wakes++ })
	q.Push(next(1))     // dropped 0
	q.Backfill(next(2)) // a replay
	q.SetDirect(func(*Event) int { return DirectWritten })
	q.Take(nil)
	q.Push(next(3)) // written directly: nobody to wake
	q.SetDirect(func(*Event) int { return DirectHanded })
	q.Push(next(4)) // handed: the reader must finish it
	q.SetDirect(nil)
	q.Close(nil)
	if wakes != 4 {
		t.Fatalf("wake called %d times, want 4", wakes)
	}
	q.SetWake(nil)
	q.Push(next(5))
	if wakes != 4 {
		t.Fatal("wake called after SetWake(nil)")
	}
}

// Ready's channel is made when first asked for; what was queued before is
// signalled on it.
func TestReadyMadeLate(t *testing.T) {
	q := NewQueue(Limits{})
	if len(q.Ready()) != 0 {
		t.Fatal("an empty queue is signalled")
	}
	q = NewQueue(Limits{})
	q.Push(next(1))
	select {
	case <-q.Ready():
	default:
		t.Fatal("an event queued before Ready is not signalled")
	}
	q.Push(next(2))
	if len(q.Ready()) != 1 {
		t.Fatal("Push did not signal Ready")
	}
}
