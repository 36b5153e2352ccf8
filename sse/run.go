package sse

import (
	"context"
	"time"

	"github.com/fireboom/fireboom/event"
)

// run serves a stream in its handler (HTTP/2, Once, or when it cannot be
// detached) until it ends: one goroutine that waits for the client to go
// away, the queue, its timer or shutdown. A detached stream does the same
// steps without a goroutine of its own while it waits (see lazy.go).
func (s *stream) run(ctx context.Context, q *event.Queue) Result {
	// Awake, the goroutine holds wmu (see direct.go); it lets go of it
	// only while it waits.
	s.wmu.Lock()
	defer func() {
		s.ended = true
		s.wmu.Unlock()
	}()
	if ctx.Err() != nil {
		return Result{Reason: ReasonClientGone, Err: context.Cause(ctx)}
	}
	if s.opt.Mode != Once && !s.started {
		if err := s.start(); err != nil {
			return failed(err)
		}
	}
	now := time.Now()
	if s.expired(now) {
		return s.expire()
	}

	// One timer serves the heartbeat, the token expiry and the lifetime
	// cap. It is re-armed only when it fires, never per delivered batch:
	// the heartbeat is due Heartbeat after the last write, which the timer
	// checks when it fires (and then sleeps until the new due time).
	s.begin(now)
	var timer *time.Timer
	var timerC <-chan time.Time
	if due := s.nextDue(); !due.IsZero() {
		timer = time.NewTimer(due.Sub(now))
		defer timer.Stop()
		timerC = timer.C
	}
	var shutdown <-chan struct{}
	if s.opt.Shutdown != nil {
		shutdown = s.opt.Shutdown.Done()
	}
	ready := q.Ready()

	var batch []*event.Event
	for {
		s.rest()
		s.wmu.Unlock()
		select {
		case <-ctx.Done():
			s.wmu.Lock()
			return Result{Reason: ReasonClientGone, Err: context.Cause(ctx)}
		case <-ready:
			s.wmu.Lock()
			if err := s.settle(); err != nil {
				return failed(err)
			}
			var res Result
			var end bool
			if batch, res, end = s.onReady(q, batch, time.Now()); end {
				return res
			}
		case <-timerC:
			s.wmu.Lock()
			if err := s.settle(); err != nil {
				return failed(err)
			}
			now := time.Now()
			if res, end := s.onTimer(q, now); end {
				return res
			}
			timer.Reset(s.nextDue().Sub(now))
		case <-shutdown:
			s.wmu.Lock()
			if err := s.settle(); err != nil {
				return failed(err)
			}
			return s.leave(q, ReasonShutdown)
		}
	}
}

// begin starts the stream's clocks at now: the heartbeat and the lifetime
// cap.
func (s *stream) begin(now time.Time) {
	s.lastWrite = now
	if s.opt.MaxLifetime > 0 {
		s.lifeAt = now.Add(s.opt.MaxLifetime)
	}
}

// onReady writes what is queued, at now, taking it into batch (which it
// returns emptied, for reuse); it reports whether the stream ended.
func (s *stream) onReady(q *event.Queue, batch []*event.Event, now time.Time) ([]*event.Event, Result, bool) {
	if s.expired(now) {
		return batch, s.expire(), true
	}
	batch = q.Take(batch[:0])
	res, end := s.deliver(batch, now)
	clear(batch) // let delivered events be collected
	return batch[:0], res, end
}

// onTimer does what is due when the timer fires at now: the token expiry,
// the lifetime cap or a heartbeat. It reports whether the stream ended;
// else the caller re-arms the timer for nextDue.
func (s *stream) onTimer(q *event.Queue, now time.Time) (Result, bool) {
	switch {
	case s.expired(now):
		return s.expire(), true
	case !s.lifeAt.IsZero() && !now.Before(s.lifeAt):
		return s.leave(q, ReasonLifetime), true
	case s.beats() && now.Sub(s.lastWrite) >= s.opt.Heartbeat:
		beat := sseHeartbeat
		if !s.sse {
			beat = jsonBeat
		}
		if err := s.write(beat); err != nil {
			return failed(err), true
		}
		s.lastWrite = now
	}
	return Result{}, false
}

func (s *stream) beats() bool { return s.opt.Heartbeat > 0 && s.opt.Mode != Once }

// nextDue is when the timer must next fire: the earliest of the heartbeat
// (Heartbeat after the last write), the token expiry and the lifetime cap;
// zero when none applies.
func (s *stream) nextDue() time.Time {
	var due time.Time
	pick := func(t time.Time) {
		if !t.IsZero() && (due.IsZero() || t.Before(due)) {
			due = t
		}
	}
	if s.beats() {
		pick(s.lastWrite.Add(s.opt.Heartbeat))
	}
	pick(s.opt.ExpiresAt)
	pick(s.lifeAt)
	return due
}
