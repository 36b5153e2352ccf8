package event

import (
	"encoding/json"
	"sync"
)

// Policy says what a full queue does with the next event.
type Policy uint8

const (
	// Disconnect ends the client's stream with a SlowConsumer error once its
	// queue is full. The events already queued are still delivered first, so
	// a client that reconnects with Last-Event-ID resumes without loss.
	Disconnect Policy = iota
	// DropOldest drops the oldest queued events to make room and tells the
	// client with one Gap event before the next event it reads.
	DropOldest
)

// Limits bound one client's queue. A zero field takes its default.
type Limits struct {
	// MaxEvents is the most events held for one client (default 1024).
	MaxEvents int
	// MaxBytes is the most payload bytes held for one client (default 4 MiB).
	MaxBytes int
	// Policy applies when either limit would be passed (default Disconnect).
	Policy Policy
}

// Default queue limits.
const (
	DefaultMaxEvents = 1024
	DefaultMaxBytes  = 4 << 20
)

// Push results.
const (
	Queued  = iota // the event is queued
	Dropped        // older events were dropped to make room (DropOldest)
	Cut            // the queue overflowed and is now closed (Disconnect)
	Closed         // the queue was already closed; the event was ignored
)

// Queue is one client's bounded queue. Push never blocks; Take drains.
// All methods are safe for concurrent use.
type Queue struct {
	lim Limits

	mu sync.Mutex
	// ready is made by the first Ready (a reader woken through SetWake
	// needs none); wake, when set, is called as well.
	ready   chan struct{}
	wake    func()
	events  []*Event // FIFO; head at index 0 of the live window
	head    int
	bytes   int
	closed  bool
	dropped int    // events dropped since the last Take (DropOldest)
	lastID  string // id of the newest dropped event, for the gap notice
	cut     bool   // an overflow closed the queue (Disconnect)
	// extraEvents and extraBytes raise the limits by what Backfill queued,
	// until the next Take.
	extraEvents, extraBytes int
	// direct, when set, takes events straight from Push (see SetDirect).
	direct func(*Event) int
}

// Results of a direct write (see SetDirect).
const (
	DirectRefused = iota // nothing was written: the event is queued as usual
	DirectWritten        // the event was written whole
	DirectHanded         // the writer took the event but needs its reader woken (a partial write, an error)
)

// SetDirect lets the reader take events straight from Push, in the pushing
// goroutine: while nothing is queued, Push hands a non-terminal event to
// direct instead of queueing it and waking the reader. It is called with
// the queue's lock held, so it must never block (a non-blocking write to
// the client's socket, or DirectRefused), and it sees events in Push order:
// an event refused is queued, and no later event reaches direct before the
// reader took it. This is the delivery hot path of a stream: a push and
// one write, no goroutine woken. SetDirect(nil) turns it off; once it
// returned, direct is not running and is never called again.
func (q *Queue) SetDirect(direct func(*Event) int) {
	q.mu.Lock()
	q.direct = direct
	q.mu.Unlock()
}

// SetWake lets the reader be woken by a call instead of (or as well as)
// Ready: wake is called whenever Ready would be signalled, in the pushing
// goroutine, without the queue's lock held. It must not block. It is not
// called for what was queued before SetWake: the reader looks at the queue
// once after it. SetWake(nil) turns it off; a Push in flight may still call
// the previous wake once after it returned.
func (q *Queue) SetWake(wake func()) {
	q.mu.Lock()
	q.wake = wake
	q.mu.Unlock()
}

// NewQueue makes a queue with the given limits.
func NewQueue(lim Limits) *Queue {
	if lim.MaxEvents <= 0 {
		lim.MaxEvents = DefaultMaxEvents
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	return &Queue{lim: lim}
}

// Ready is signalled whenever events may be waiting. A reader selects on it
// and then calls Take; a signal may be spurious.
func (q *Queue) Ready() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ready == nil {
		q.ready = make(chan struct{}, 1)
		if q.head < len(q.events) || q.dropped > 0 {
			q.ready <- struct{}{} // queued before there was a channel to signal
		}
	}
	return q.ready
}

// unlockSignal lets go of the queue's lock and wakes the reader.
func (q *Queue) unlockSignal() {
	ready, wake := q.ready, q.wake
	q.mu.Unlock()
	if wake != nil {
		wake()
	}
	if ready != nil {
		select {
		case ready <- struct{}{}:
		default:
		}
	}
}

// Push queues e without blocking and reports what happened (Queued,
// Dropped, Cut or Closed). A terminal event closes the queue; it is always
// queued, whatever the limits.
func (q *Queue) Push(e *Event) int {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return Closed
	}
	if q.direct != nil && q.head == len(q.events) && q.dropped == 0 && !e.Kind.Terminal() {
		switch q.direct(e) {
		case DirectWritten:
			q.mu.Unlock()
			return Queued
		case DirectHanded:
			q.unlockSignal()
			return Queued
		}
	}
	res := Queued
	if e.Kind.Terminal() {
		q.closed = true
	} else if n := len(q.events) - q.head; n >= q.lim.MaxEvents+q.extraEvents || (n > 0 && q.bytes+e.Size() > q.lim.MaxBytes+q.extraBytes) {
		if q.lim.Policy == Disconnect {
			q.closed, q.cut = true, true
			e = NewError("SlowConsumer", "the client did not read fast enough; reconnect with Last-Event-ID to resume")
			e.Resumable = true
			res = Cut
		} else {
			for len(q.events)-q.head > 0 && (len(q.events)-q.head >= q.lim.MaxEvents+q.extraEvents || q.bytes+e.Size() > q.lim.MaxBytes+q.extraBytes) {
				old := q.events[q.head]
				q.events[q.head] = nil
				q.head++
				q.bytes -= old.Size()
				q.dropped++
				if old.ID != "" {
					q.lastID = old.ID
				}
			}
			res = Dropped
		}
	}
	if q.head > 0 && q.head == len(q.events) {
		q.events, q.head = q.events[:0], 0
	}
	q.events = append(q.events, e)
	q.bytes += e.Size()
	q.unlockSignal()
	return res
}

// Backfill queues a non-terminal event of the past (a replay of missed
// events, a gap notice) whatever the limits, and raises them by its size
// until the next Take: a client that resumes is not cut off for the
// backlog it asked for, and still has its full room for live events.
// It reports false when the queue is closed.
func (q *Queue) Backfill(e *Event) bool {
	q.mu.Lock()
	if q.closed || e.Kind.Terminal() {
		q.mu.Unlock()
		return false
	}
	q.events = append(q.events, e)
	q.bytes += e.Size()
	q.extraEvents++
	q.extraBytes += e.Size()
	q.unlockSignal()
	return true
}

// Close ends the queue with a terminal event (Done or Error) after what is
// already queued. It is safe to call more than once; only the first call, or
// a terminal Push before it, takes effect. It reports whether it did.
func (q *Queue) Close(final *Event) bool {
	if final == nil || !final.Kind.Terminal() {
		final = DoneEvent
	}
	return q.Push(final) != Closed
}

// Overflowed reports whether the queue was closed because it overflowed
// under the Disconnect policy (the client was cut off as a slow consumer).
func (q *Queue) Overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.cut
}

// GapData is the payload of a Gap event.
type GapData struct {
	// Missed is how many events the client did not receive, when known
	// (0 when unknown).
	Missed int `json:"missed"`
	// LastEventID is the id of the last event that was missed, when known;
	// the stream resumes after it.
	LastEventID string `json:"lastEventId,omitempty"`
	// Reason says why: "slow-consumer", "expired", "restarted", or
	// "reconnected" (the upstream connection dropped and was re-established:
	// what the upstream published meanwhile may be lost).
	Reason string `json:"reason"`
}

// NewGap builds a Gap event. Its ID is d.LastEventID: the position the
// stream goes on from, so that an SSE client which reconnects right after
// the gap (EventSource keeps the last id it saw) resumes there instead of
// being told of the same gap again.
func NewGap(d GapData) *Event {
	b, _ := json.Marshal(d)
	return &Event{Kind: Gap, ID: d.LastEventID, Data: b}
}

// Take appends the queued events to dst and empties the queue. If events
// were dropped since the last Take, a Gap event comes first. After a
// terminal event has been taken, Take returns nothing more.
func (q *Queue) Take(dst []*Event) []*Event {
	q.mu.Lock()
	if q.dropped > 0 {
		dst = append(dst, NewGap(GapData{Missed: q.dropped, LastEventID: q.lastID, Reason: "slow-consumer"}))
		q.dropped, q.lastID = 0, ""
	}
	for i := q.head; i < len(q.events); i++ {
		dst = append(dst, q.events[i])
		q.events[i] = nil
	}
	q.events, q.head, q.bytes = q.events[:0], 0, 0
	q.extraEvents, q.extraBytes = 0, 0
	q.mu.Unlock()
	return dst
}

// Len reports how many events are waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.events) - q.head
}
