package source

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/internal/backoff"
)

// engine is one kind of server: how to connect, what a channel may be, how
// to publish. A session is one live connection of it.
type engine interface {
	// dial connects; deliver is called by the session's one reader
	// goroutine for each message, with the channel or subscription
	// subject it came on.
	// missed, when the server's client library had to drop messages of a
	// channel (NATS: a slow consumer), tells the source so.
	dial(ctx context.Context, deliver func(ch string, payload []byte), missed func(ch string)) (session, error)
	// check vets a channel or subject (publish: a NATS subject without
	// wildcards).
	check(ch string, publish bool) error
	// maxPayload is the largest payload publish takes (0: the server says).
	maxPayload() int
	// publishesAlone: publish does not need the listening session (Redis
	// publishes on a pool of its own).
	publishesAlone() bool
	// publish sends one payload; sess is the current session, nil when
	// down.
	publish(ctx context.Context, sess session, ch string, payload []byte) error
	// close releases what the engine holds beyond sessions.
	close()
}

type session interface {
	// listen and unlisten return once the server confirmed.
	listen(ctx context.Context, chs []string) error
	unlisten(ctx context.Context, chs []string) error
	// done is closed when the connection is lost or closed; err says why.
	done() <-chan struct{}
	err() error
	// close closes the connection and waits for the session's goroutine.
	close()
}

// dialTimeout bounds one connection attempt.
const dialTimeout = 5 * time.Second

// run owns the connection: it dials, listens to what is wanted, serves
// until the connection is lost, and dials again with backoff.
func (s *Source) run(ctx context.Context) {
	defer s.wg.Done()
	var downSince time.Time
	attempt := 0
	for {
		// A dial never outlasts the reconnect timeout by much, so streams
		// end close to it.
		dialFor := dialTimeout
		if !downSince.IsZero() {
			dialFor = max(min(dialFor, s.timeout-time.Since(downSince)), 10*time.Millisecond)
		}
		dctx, cancel := context.WithTimeout(ctx, dialFor)
		sess, err := s.eng.dial(dctx, s.deliver, s.missed)
		cancel()
		if err == nil {
			if err = s.relisten(ctx, sess); err != nil {
				sess.close()
			}
		}
		if ctx.Err() != nil {
			if err == nil {
				sess.close()
			}
			return
		}
		if err != nil {
			if downSince.IsZero() {
				downSince = time.Now()
			}
			s.failAttempt(err)
			left := s.timeout - time.Since(downSince)
			if left <= 0 {
				s.endAll(fmt.Sprintf("the event source %s was lost and did not come back within %s", s.name, s.timeout))
			}
			wait := backoff.Delay(attempt)
			if left > 0 {
				wait = min(wait, left)
			}
			attempt++
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			s.setState(connecting, nil)
			continue
		}
		attempt = 0
		reconnected := !downSince.IsZero()
		downSince = time.Time{}
		s.mu.Lock()
		if s.state == closed {
			s.mu.Unlock()
			sess.close()
			return
		}
		s.sess, s.state = sess, up
		s.mu.Unlock()
		s.connected.Store(true)
		if reconnected {
			s.log.Info("event source reconnected")
			s.each(func(r *reg) { r.gap() })
		} else {
			s.log.Info("event source connected")
		}
		err = s.serve(ctx, sess)
		sess.close()
		s.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		downSince = time.Now()
		s.log.Warn("event source connection lost; reconnecting", "err", err, "within", s.timeout.String())
		s.mu.Lock()
		s.sess, s.lastErr = nil, err
		if s.state != closed {
			s.state = connecting
		}
		for _, ch := range s.channels {
			ch.listened, ch.unlistening = false, false
		}
		s.mu.Unlock()
		s.each(func(r *reg) { r.gapWhy = "reconnected" })
	}
}

// serve listens and un-listens as streams come and go, until the session
// ends or ctx is done.
func (s *Source) serve(ctx context.Context, sess session) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.done():
			if err := sess.err(); err != nil {
				return err
			}
			return errors.New("connection closed")
		case <-s.kick:
			if err := s.reconcile(ctx, sess); err != nil {
				return err
			}
		}
	}
}

// relisten listens, on a new session, to every channel some stream wants,
// and answers the Opens waiting for them.
func (s *Source) relisten(ctx context.Context, sess session) error {
	s.mu.Lock()
	var want []string
	for _, name := range sortedNames(s.channels) {
		if len(s.channels[name].regs) > 0 {
			want = append(want, name)
		} else {
			delete(s.channels, name)
		}
	}
	s.mu.Unlock()
	if len(want) > 0 {
		cctx, cancel := context.WithTimeout(ctx, commandTimeout)
		err := sess.listen(cctx, want)
		cancel()
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	for _, name := range want {
		if ch := s.channels[name]; ch != nil {
			ch.listened = true
			ch.answer(nil)
		}
	}
	s.mu.Unlock()
	// A stream that came meanwhile is listened to by the next reconcile.
	s.mu.Lock()
	s.kickLocked()
	s.mu.Unlock()
	return nil
}

// reconcile brings the session's listened channels in line with the
// streams: LISTEN what is wanted and not listened, UNLISTEN what is
// listened and no longer wanted. An error of the connection itself ends
// the session; a refused LISTEN fails only the Opens waiting for it.
func (s *Source) reconcile(ctx context.Context, sess session) error {
	s.mu.Lock()
	var listen, unlisten []string
	for _, name := range sortedNames(s.channels) {
		ch := s.channels[name]
		switch {
		case len(ch.regs) > 0 && !ch.listened && !ch.unlistening:
			listen = append(listen, name)
		case len(ch.regs) == 0 && ch.listened && !ch.unlistening:
			ch.unlistening = true
			unlisten = append(unlisten, name)
		case len(ch.regs) == 0 && !ch.listened:
			delete(s.channels, name)
		}
	}
	s.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	if len(unlisten) > 0 {
		if err := sess.unlisten(cctx, unlisten); err != nil {
			return err
		}
		s.mu.Lock()
		for _, name := range unlisten {
			if ch := s.channels[name]; ch != nil {
				ch.listened, ch.unlistening = false, false
				if len(ch.regs) == 0 {
					delete(s.channels, name)
				} else {
					s.kickLocked() // wanted again meanwhile
				}
			}
		}
		s.mu.Unlock()
	}
	if len(listen) > 0 {
		err := sess.listen(cctx, listen)
		s.mu.Lock()
		for _, name := range listen {
			ch := s.channels[name]
			if ch == nil {
				continue
			}
			if err == nil {
				ch.listened = true
				ch.answer(nil)
			} else {
				ch.answer(fmt.Errorf("%w: %s: listen: %v", ErrUnavailable, s.name, err))
			}
		}
		s.mu.Unlock()
		select {
		case <-sess.done():
			return err
		default:
		}
	}
	return nil
}

// answer tells the Opens waiting for the channel how its LISTEN went.
func (ch *channel) answer(err error) {
	for _, w := range ch.waiters {
		w <- err
	}
	ch.waiters = nil
}

// failAttempt records a failed connection attempt: the source is down
// until the next one, and Opens waiting for a LISTEN fail.
func (s *Source) failAttempt(err error) {
	s.log.Warn("event source unavailable", "err", err)
	s.setState(down, err)
	s.mu.Lock()
	unavailable := s.unavailableLocked()
	for _, ch := range s.channels {
		ch.answer(unavailable)
	}
	s.mu.Unlock()
}

func (s *Source) setState(st state, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == closed {
		return
	}
	s.state = st
	if err != nil {
		s.lastErr = err
	}
}

// endAll ends every open stream with UpstreamUnavailable and forgets it.
func (s *Source) endAll(msg string) {
	final := event.NewError("UpstreamUnavailable", msg)
	s.mu.Lock()
	var regs []*reg
	for name, ch := range s.channels {
		regs = append(regs, ch.regs...)
		ch.answer(fmt.Errorf("%w: %s", ErrUnavailable, msg))
		delete(s.channels, name)
	}
	s.mu.Unlock()
	for _, r := range regs {
		r.mu.Lock()
		if r.active && !r.done {
			r.sink.End(final)
		}
		r.done = true
		r.mu.Unlock()
	}
}
