package demo

import "sync"

// feed is the queue between publishers and one subscription. Publishers
// append without ever blocking (a full feed drops the item and says so); the
// subscription's goroutine drains it into the resolver's channel at the pace
// gqlgen reads it. This keeps a slow WebSocket from stalling postMessage or the
// ticker's single publisher goroutine.
type feed[T any] struct {
	mu    sync.Mutex
	items []T
	max   int
	ready chan struct{} // capacity 1: "items is not empty"
}

func newFeed[T any](max int) *feed[T] {
	return &feed[T]{max: max, ready: make(chan struct{}, 1)}
}

// push queues v and reports whether it was kept (false: the feed was full).
func (f *feed[T]) push(v T) bool {
	f.mu.Lock()
	if len(f.items) >= f.max {
		f.mu.Unlock()
		return false
	}
	f.items = append(f.items, v)
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
	return true
}

// take removes and returns every queued item.
func (f *feed[T]) take() []T {
	f.mu.Lock()
	items := f.items
	f.items = nil
	f.mu.Unlock()
	return items
}

// pump forwards f's items to out, in order, until done is closed. It does not
// close out.
func pump[T any](done <-chan struct{}, f *feed[T], out chan<- T) {
	for {
		select {
		case <-done:
			return
		case <-f.ready:
		}
		for _, v := range f.take() {
			select {
			case out <- v:
			case <-done:
				return
			}
		}
	}
}
