package upstream

import (
	"errors"
	"fmt"
	"time"

	"github.com/fireboom/fireboom/internal/backoff"
)

// errReconnectTimeout is the end of a conn whose upstream stayed away
// longer than ReconnectTimeout.
type errReconnectTimeout struct {
	after time.Duration
	last  error
}

func (e *errReconnectTimeout) Error() string {
	return fmt.Sprintf("upstream: not back within %s: %v", e.after, e.last)
}

func (e *errReconnectTimeout) Unwrap() error { return ErrUnavailable }

// errAbandoned ends a reconnect that has nothing left to carry.
var errAbandoned = errors.New("upstream: reconnect abandoned: no subscription left")

// shouldReconnect decides, after a session ended with err, whether the conn
// re-establishes it: not when the hub closes, the connection closed as
// idle, the upstream refused it with connection_error, reconnects are off,
// or no subscription is left (the conn is then unlisted).
func (c *conn) shouldReconnect(err error) bool {
	var ce *errConnError
	if c.ctx.Err() != nil || c.h.cfg.ReconnectTimeout < 0 || errors.As(err, &ce) {
		return false
	}
	return !c.abandonIfIdle()
}

// abandonIfIdle stops the conn from taking operations when it carries none,
// and reports whether it did (or the conn was closing already).
func (c *conn) abandonIfIdle() bool {
	h := c.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.closing {
		return true
	}
	if len(c.ops) == 0 {
		c.closing = true
		h.unlistConnLocked(c)
		return true
	}
	return false
}

// reconnect re-establishes a lost session with backoff until
// ReconnectTimeout has passed since the loss. Meanwhile the conn stays
// listed, so new subscriptions with its identity join it and wait. It
// gives up early when the hub closes or every client left.
func (c *conn) reconnect(cause error, attempt int) (*session, int, error) {
	h := c.h
	lost := time.Now()
	deadline := lost.Add(h.cfg.ReconnectTimeout)
	h.log.Warn("upstream connection lost; reconnecting", "conn", c.no, "subscriptions", c.opCount(),
		"err", cause, "timeout", h.cfg.ReconnectTimeout.String())
	last := cause
	for ; ; attempt++ {
		if err := c.pause(min(backoff.Delay(attempt), time.Until(deadline))); err != nil {
			return nil, attempt, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			h.log.Warn("upstream did not come back; ending its streams", "conn", c.no,
				"subscriptions", c.opCount(), "after", h.cfg.ReconnectTimeout.String(), "err", last)
			return nil, attempt, &errReconnectTimeout{after: h.cfg.ReconnectTimeout, last: last}
		}
		sess, err := c.handshake(min(h.cfg.InitTimeout, left))
		if err == nil {
			h.st.reconnects.Add(1)
			h.log.Info("upstream reconnected", "conn", c.no, "attempts", attempt+1,
				"after", time.Since(lost).Round(time.Millisecond).String(), "subprotocol", sess.ex.name())
			return sess, attempt + 1, nil
		}
		if c.ctx.Err() != nil {
			return nil, attempt, c.ctx.Err()
		}
		last = err
		h.log.Debug("upstream reconnect failed", "conn", c.no, "attempt", attempt+1, "err", err)
	}
}

// pause waits d between reconnect attempts. It returns an error when the
// conn should give up: the hub closes, or no subscription is left.
func (c *conn) pause(d time.Duration) error {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	for {
		if c.abandonIfIdle() {
			return errAbandoned
		}
		select {
		case <-c.ctx.Done():
			return c.ctx.Err()
		case <-c.kick:
		case <-t.C:
			return nil
		}
	}
}

func (c *conn) opCount() int {
	c.h.mu.RLock()
	defer c.h.mu.RUnlock()
	return len(c.ops)
}

// resubscribe re-sends every started subscription of the conn on sess, a
// new session, before its reader runs: each one's sink is told of the gap
// (ReasonReconnected) before the new session's events. A failed write kills sess (the conn reconnects again).
func (c *conn) resubscribe(sess *session) {
	h := c.h
	h.mu.RLock()
	ops := make([]*op, 0, len(c.ops))
	for _, o := range c.ops {
		ops = append(ops, o)
	}
	h.mu.RUnlock()
	n := 0
	for _, o := range ops {
		ok, err := o.resubscribe(sess)
		if err != nil {
			sess.kill(err)
			return
		}
		if ok {
			n++
		}
	}
	h.log.Debug("upstream subscriptions resumed", "conn", c.no, "subscriptions", n)
}
