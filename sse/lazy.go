package sse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/event"
)

// A detached stream has no goroutine while it has nothing to write. Most
// of its deliveries are direct writes (see direct.go), made by the topic's
// fan-out; the client leaving is noticed by the Watcher. Everything else
// wakes it: an event queued (event.Queue.SetWake), its timer (heartbeat,
// token expiry, lifetime cap: one time.AfterFunc, re-armed only when it
// fires), the server shutting down (context.AfterFunc on
// Options.Shutdown), the client leaving, abort. Waking starts a goroutine,
// the stream's writer, unless one is running already; the writer does what
// is due (pass, the same steps as run) and stops when nothing is left, or
// ends the stream.
//
// Who runs is decided by state, never under a lock that a write holds, so
// that waking costs the waker (the topic's fan-out, the Watcher) a few
// atomic operations and never waits for a client:
//
//	idle     no writer: the next wake starts one
//	running  a writer is at work (or the stream is being set up)
//	again    ... and was woken meanwhile: it passes once more before it stops
//	over     the stream ended; wakes do nothing
//
// A waker first records why (flags, or the queue's events) and then wakes;
// a writer stops only by moving running to idle, which fails once a waker
// moved it to again. So work that arrives while the writer decides to stop
// is never left behind: either the writer sees it, or the waker starts the
// next writer.
const (
	idle = iota
	running
	again
	over
)

// Why a detached stream was woken, besides its queue.
const (
	flagGone     = 1 << iota // the client left, or abort cut the connection
	flagTimer                // the timer fired
	flagShutdown             // Options.Shutdown ended
)

// errPanic wraps the value of a writer's panic in Result.Err.
var errPanic = errors.New("sse: stream writer panicked")

// takeOver serves the rest of the stream on conn, taken over from net/http
// with the headers flushed: it sets the stream up to be woken, hands it to
// detach and returns ReasonDetached, or serves it to its end here when
// detach declines (returns nil).
func (s *stream) takeOver(conn net.Conn, q *event.Queue, detach func(abort func()) func(Result)) Result {
	s.conn, s.q = conn, q
	// Direct writes and the Watcher need the socket itself: not through
	// TLS, say.
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
		}
	}
	// Setting up, this goroutine is the stream's writer: whatever wakes
	// the stream meanwhile makes it pass once it is set up.
	s.state.Store(running)
	s.wmu.Lock()
	now := time.Now()
	s.begin(now)
	if s.raw != nil {
		s.chunked = event.FormatJSONChunked
		if s.sse {
			s.chunked = event.FormatSSEChunked
		}
		q.SetDirect(s.tryDirect)
	}
	q.SetWake(s.wake)
	if due := s.nextDue(); !due.IsZero() {
		s.timer = time.AfterFunc(due.Sub(now), s.timerFired)
	}
	if s.opt.Shutdown != nil {
		s.stopShut = context.AfterFunc(s.opt.Shutdown, s.shutdownBegan)
	}
	s.wmu.Unlock()
	s.watchClient()

	end := detach(s.abort)
	var served chan Result
	if end == nil {
		served = make(chan Result, 1)
		end = func(res Result) { served <- res }
	}
	s.end = end
	// Events queued before SetWake woke nobody; an expired token is due.
	if q.Len() > 0 || s.expired(now) || !s.park() {
		go s.work()
	}
	if served != nil {
		return <-served
	}
	return Result{Reason: ReasonDetached}
}

// wake makes sure a writer looks at the stream after this call: it starts
// one unless one is running, and then makes it pass once more. It never
// blocks.
func (s *stream) wake() { s.kick(false) }

// kick is wake; inline, the calling goroutine (one the stream may block:
// a timer's, an AfterFunc's) becomes the writer instead of starting one.
func (s *stream) kick(inline bool) {
	for {
		switch s.state.Load() {
		case idle:
			if s.state.CompareAndSwap(idle, running) {
				if inline {
					s.work()
				} else {
					go s.work()
				}
				return
			}
		case running:
			if s.state.CompareAndSwap(running, again) {
				return
			}
		default: // again, over
			return
		}
	}
}

// park stops the writer: it reports false when the stream was woken since
// its last pass, and the writer must pass again. Only the writer leaves
// running and again.
func (s *stream) park() bool {
	if s.state.CompareAndSwap(running, idle) {
		return true
	}
	s.state.Store(running) // from again
	return false
}

func (s *stream) clientGone() {
	s.flags.Or(flagGone)
	s.wake()
}

func (s *stream) timerFired() {
	s.flags.Or(flagTimer)
	s.kick(true)
}

func (s *stream) shutdownBegan() {
	s.flags.Or(flagShutdown)
	s.kick(true)
}

// abort is Options.Detach's: it cuts the connection at once. A write in
// progress fails (ReasonWriteFailed); an idle stream ends as
// ReasonClientGone.
func (s *stream) abort() {
	s.closeConn()
	s.flags.Or(flagGone)
	s.wake()
}

// work is the writer: it passes until nothing is left, and ends the stream
// when a pass did.
func (s *stream) work() {
	if res, ended := s.passes(); ended {
		s.close(res)
	}
}

// passes runs passes until the writer may park (false) or the stream
// ended (true). A panic ends the stream too.
func (s *stream) passes() (res Result, ended bool) {
	locked := false
	defer func() {
		if v := recover(); v != nil {
			if !locked {
				s.wmu.Lock()
			}
			s.ended = true
			s.wmu.Unlock()
			res, ended = Result{Reason: ReasonPanic, Err: fmt.Errorf("%w: %v", errPanic, v)}, true
		}
	}()
	var reuse [16]*event.Event
	batch := reuse[:0]
	for {
		s.wmu.Lock()
		locked = true
		batch, res, ended = s.pass(batch)
		if ended {
			s.ended = true // no more direct writes
		}
		s.wmu.Unlock()
		locked = false
		if ended || s.park() {
			return res, ended
		}
	}
}

// pass does, holding s.wmu, what run does when something wakes it: the
// client gone, what a direct write left, shutdown, the timer, the queue.
// It reports whether the stream ended.
func (s *stream) pass(batch []*event.Event) ([]*event.Event, Result, bool) {
	f := s.flags.Load()
	if f&flagGone != 0 {
		return batch, Result{Reason: ReasonClientGone, Err: ErrClientGone}, true
	}
	if err := s.settle(); err != nil {
		return batch, failed(err), true
	}
	if f&flagShutdown != 0 {
		return batch, s.leave(s.q, ReasonShutdown), true
	}
	now := time.Now()
	if f&flagTimer != 0 {
		s.flags.And(^uint32(flagTimer))
		if res, end := s.onTimer(s.q, now); end {
			return batch, res, true
		}
		s.timer.Reset(s.nextDue().Sub(now))
	}
	return s.onReady(s.q, batch, now)
}

// close ends a detached stream after its last pass: no more wakes or
// direct writes, the body's end (unless the connection failed), the
// connection closed, then end with the Result.
func (s *stream) close(res Result) {
	s.state.Store(over)
	if s.raw != nil {
		s.q.SetDirect(nil)
	}
	s.q.SetWake(nil)
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.stopShut != nil {
		s.stopShut()
	}
	switch res.Reason {
	case ReasonWriteFailed, ReasonClientGone, ReasonPanic:
	default:
		// The end of the chunked body, so that the client sees a clean end.
		s.deadline()
		_, _ = s.conn.Write(lastChunk)
	}
	s.closeConn() // ends a reader goroutine's Read
	if s.readerDone != nil {
		<-s.readerDone
	}
	s.end(s.finish(res, s.q))
}
