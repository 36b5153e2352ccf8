package topic_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// selfWaiter is a source whose stop waits for the goroutine that writes
// into the sink, as live.Poller, upstream.HTTPSubscription and
// source.Stream do.
type selfWaiter struct {
	next    chan []byte
	stopped chan struct{}
}

func (w *selfWaiter) Open(_ context.Context, sink event.Sink) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-w.next:
				sink.Next(b)
			}
		}
	})
	return func() { cancel(); wg.Wait(); close(w.stopped) }, nil
}

// Regression: the last client's queue closed by someone else (a reload
// ends the stream through its queue) made the next event stop the source
// from inside Next, on the source's own goroutine: stop waited for itself,
// and the source (a whole event-source connection) froze.
func TestStopNeverInsideNext(t *testing.T) {
	h := newHub(t, topic.Config{ResumeHold: -1})
	w := &selfWaiter{next: make(chan []byte), stopped: make(chan struct{})}
	c := join(t, h, topic.Spec{Key: "k", Source: w}, topic.JoinOptions{})
	c.Queue().Close(event.NewError("OperationReloaded", "operation changed"))
	w.next <- []byte(`{"data":1}`) // finds the queue closed: the topic has no client left
	select {
	case <-w.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the source was never stopped (stopped inside its own Next?)")
	}
}

// Regression: a client whose request ended before its topic's source had
// started left the source started and never stopped.
func TestLeaveBeforeStartLeaksNothing(t *testing.T) {
	h := newHub(t, topic.Config{})
	for i := range 40 {
		s := newScript()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if c, err := h.Join(ctx, topic.Spec{Key: "k", Source: s}, topic.JoinOptions{}); err == nil {
			c.Close()
		}
		eventually(t, "no source left running", func() bool {
			opens, stops := s.counts()
			return opens == stops && h.Stats("").Topics == 0
		})
		if opens, _ := s.counts(); opens > 1 {
			t.Fatalf("run %d: %d opens", i, opens)
		}
	}
}

// ender ends itself when told, then reports that End returned; stopped is
// closed when it was stopped first.
type ender struct{ end, returned, stopped chan struct{} }

func (e *ender) Open(_ context.Context, sink event.Sink) (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-e.end:
			sink.End(event.DoneEvent)
			close(e.returned)
		}
	})
	return func() { cancel(); wg.Wait(); close(e.stopped) }, nil
}

// onStop runs fire when stopped.
type onStop struct{ fire func() }

func (o *onStop) Open(context.Context, event.Sink) (func(), error) { return o.fire, nil }

// Regression: a source ending itself while Close stopped other topics had
// its stop called inside End, waiting for itself.
func TestEndDuringClose(t *testing.T) {
	for i := range 20 {
		h := topic.NewHub(topic.Config{})
		b := &ender{end: make(chan struct{}), returned: make(chan struct{}), stopped: make(chan struct{})}
		stuck := false
		a := &onStop{fire: func() {
			close(b.end) // b ends itself while Close is at work
			select {
			case <-b.returned:
			case <-b.stopped: // Close stopped b first
			case <-time.After(2 * time.Second):
				stuck = true
			}
		}}
		join(t, h, topic.Spec{Key: "a", Source: a}, topic.JoinOptions{})
		join(t, h, topic.Spec{Key: "b", Source: b}, topic.JoinOptions{})
		h.Close()
		if stuck {
			t.Fatalf("run %d: End waited for the source's own stop", i)
		}
	}
}
