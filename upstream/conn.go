package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/internal/backoff"
)

// closeGrace is how long a normal close waits for the server's close frame
// before dropping the TCP connection.
const closeGrace = time.Second

var offeredProtocols = []string{ProtocolTransportWS, ProtocolGraphQLWS}

// errConnError is a graphql-ws connection_error after connection_ack.
type errConnError struct{ data []byte }

func (e *errConnError) Error() string { return "upstream sent connection_error" }

var errKeepAlive = errors.New("upstream: no frame within the keepalive timeout")

// conn is one upstream connection identity (URL, headers, init payload)
// carrying up to MaxOperationsPerConnection subscriptions. It lives across
// WebSocket sessions: when a session drops without the gateway asking, the
// conn reconnects (see reconnect.go) and re-sends its subscriptions on the
// new session, so the subscriptions (and the topics they feed) go on.
//
// Its run goroutine (owned by the hub's WaitGroup) dials, waits for
// connection_ack, reads every frame, reconnects, and on the way out fails
// whatever subscriptions are left; a keeper goroutine per session (owned
// by run) sends pings, watches liveness and idleness, releases held
// completes, and performs the normal close.
type conn struct {
	h      *Hub
	no     uint64 // for logs
	key    string // connection identity (holds secrets: never log)
	header http.Header
	init   json.RawMessage

	ctx    context.Context // cancelled to close the connection normally
	cancel context.CancelFunc
	done   chan struct{} // closed once the connection is finished
	kick   chan struct{} // operation count changed: re-arm the idle timer

	smu    sync.Mutex
	sess   *session      // the acknowledged session; nil while (re)connecting
	up     chan struct{} // closed while sess is set; replaced when it is lost
	sessNo uint64        // sessions opened so far

	// guarded by h.mu
	ops     map[string]*op
	nextID  uint64
	closing bool // no new operations; closes when idle
}

// session is one WebSocket of a conn, from connection_ack until it is lost.
type session struct {
	c          *conn
	no         uint64 // 1 for the conn's first session, one more per reconnect
	ws         *websocket.Conn
	ex         exchanger
	readCtx    context.Context
	readCancel context.CancelFunc
	readDone   chan struct{}
	started    time.Time
	lastRead   atomic.Int64 // unix nanos of the last inbound frame
	lastKA     atomic.Int64 // unix nanos of the last legacy "ka"; 0 = never
	kaGap      atomic.Int64 // observed interval between legacy "ka"s

	killOnce sync.Once
	killErr  error

	// held are the upstream's completes waiting out CompleteGrace.
	hmu   sync.Mutex
	held  []heldComplete
	hkick chan struct{}
}

// heldComplete is a complete frame not yet passed on to clients.
type heldComplete struct {
	o  *op
	at time.Time // when it is passed on
}

func newConn(h *Hub, no uint64, key string, hdr http.Header, init json.RawMessage) *conn {
	ctx, cancel := context.WithCancel(h.ctx)
	return &conn{
		h: h, no: no, key: key, header: hdr, init: init,
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}), up: make(chan struct{}),
		kick: make(chan struct{}, 1), ops: map[string]*op{},
	}
}

func (c *conn) kickIdle() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// session returns the live session, or nil while (re)connecting.
func (c *conn) session() *session {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.sess
}

// upChan is closed while a session is live; a waiter captures it before
// looking at the session, then waits on it.
func (c *conn) upChan() <-chan struct{} {
	c.smu.Lock()
	defer c.smu.Unlock()
	return c.up
}

func (c *conn) activate(sess *session) {
	c.smu.Lock()
	c.sess = sess
	close(c.up)
	c.smu.Unlock()
}

func (c *conn) deactivate(sess *session) {
	c.smu.Lock()
	if c.sess == sess {
		c.sess = nil
		c.up = make(chan struct{})
	}
	c.smu.Unlock()
}

// sendStop completes subscription id upstream, when the session it was
// subscribed on (number on) is still the live one.
func (c *conn) sendStop(id string, on uint64) {
	if sess := c.session(); sess != nil && sess.no == on {
		sess.write(sess.ex.stopFrame(id))
	}
}

func (c *conn) run() {
	defer c.h.wg.Done()
	defer c.cancel()
	sess, err := c.handshake(c.h.cfg.InitTimeout)
	if err != nil {
		c.h.log.Warn("upstream connection failed", "conn", c.no, "err", err)
		c.finish(err)
		return
	}
	c.h.log.Debug("upstream connected", "conn", c.no, "subprotocol", sess.ex.name())
	attempt := 0
	for {
		err = c.serve(sess)
		held := sess.takeHeld()
		if !c.shouldReconnect(err) {
			// The upstream completed these just before the end: pass it on.
			for _, hc := range held {
				hc.o.end(event.DoneEvent, nil, false)
			}
			c.finish(err)
			return
		}
		// A session that did not last is a flapping upstream: keep
		// backing off instead of starting again at the shortest delay.
		if time.Since(sess.started) >= backoff.Max {
			attempt = 0
		}
		sess, attempt, err = c.reconnect(err, attempt)
		if err != nil {
			c.finish(err)
			return
		}
	}
}

// serve runs one acknowledged session until it is lost and returns why.
func (c *conn) serve(sess *session) error {
	c.activate(sess)
	if sess.no > 1 {
		c.resubscribe(sess)
		if f := c.h.cfg.OnReconnect; f != nil {
			f()
		}
	}
	var kwg sync.WaitGroup
	kwg.Add(1)
	go func() {
		defer kwg.Done()
		sess.keep()
	}()
	err := sess.readLoop()
	close(sess.readDone)
	c.deactivate(sess)
	kwg.Wait()
	_ = sess.ws.CloseNow()
	sess.readCancel()
	sess.killOnce.Do(func() {})
	if sess.killErr != nil {
		err = sess.killErr
	}
	return err
}

// handshake dials, sends connection_init and waits for connection_ack,
// all within timeout. Every error wraps ErrUnavailable.
func (c *conn) handshake(timeout time.Duration) (*session, error) {
	cfg := &c.h.cfg
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, cfg.URL, &websocket.DialOptions{
		HTTPClient:   cfg.HTTPClient,
		HTTPHeader:   c.header,
		Subprotocols: offeredProtocols,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: dial: %w", ErrUnavailable, err)
	}
	ws.SetReadLimit(cfg.MaxFrameBytes)
	ex := exchangerFor(ws.Subprotocol())
	fail := func(format string, args ...any) (*session, error) {
		_ = ws.CloseNow()
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
	}
	if err := ws.Write(ctx, websocket.MessageText, ex.initFrame(c.init)); err != nil {
		return fail("write connection_init: %w", err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil && c.ctx.Err() == nil {
				return fail("no connection_ack within %s", timeout)
			}
			return fail("closed before connection_ack: %w", err)
		}
		m, err := ex.decode(b)
		if err != nil {
			return fail("%w", err)
		}
		switch m.kind {
		case msgAck:
			// readFrame applies the limit itself, frame by frame, so that
			// one oversized result does not cost the whole connection.
			ws.SetReadLimit(-1)
			c.smu.Lock()
			c.sessNo++
			no := c.sessNo
			c.smu.Unlock()
			rctx, rcancel := context.WithCancel(context.Background())
			sess := &session{
				c: c, no: no, ws: ws, ex: ex, readCtx: rctx, readCancel: rcancel,
				readDone: make(chan struct{}), started: time.Now(), hkick: make(chan struct{}, 1),
			}
			sess.lastRead.Store(time.Now().UnixNano())
			return sess, nil
		case msgConnError:
			return fail("connection_error: %s", truncate(ex.errorData(m.payload), 200))
		case msgPing:
			if err := ws.Write(ctx, websocket.MessageText, ex.pongFrame()); err != nil {
				return fail("write pong: %w", err)
			}
		}
	}
}

func (sess *session) readLoop() error {
	c := sess.c
	var buf bytes.Buffer
	for {
		b, over, err := sess.readFrame(&buf)
		if over != nil {
			c.tooLarge(sess, over)
		}
		if err != nil {
			return err
		}
		if over != nil {
			continue
		}
		now := time.Now().UnixNano()
		sess.lastRead.Store(now)
		m, err := sess.ex.decode(b)
		if err != nil {
			c.h.log.Debug("upstream sent an undecodable frame", "conn", c.no, "err", err)
			continue
		}
		switch m.kind {
		case msgNext:
			if o := c.op(m.id); o != nil {
				o.deliver(m.payload)
			}
		case msgError:
			if o := c.op(m.id); o != nil {
				o.end(&event.Event{Kind: event.Error, Data: sess.ex.errorData(m.payload)}, nil, false)
			}
		case msgComplete:
			if o := c.op(m.id); o != nil {
				sess.holdComplete(o)
			}
		case msgPing:
			sess.write(sess.ex.pongFrame())
		case msgKeepAlive:
			if prev := sess.lastKA.Swap(now); prev != 0 {
				sess.kaGap.Store(now - prev)
			}
		case msgConnError:
			return &errConnError{data: sess.ex.errorData(m.payload)}
		}
	}
}

// frameTooLarge ends a subscription whose result passed MaxFrameBytes.
var frameTooLarge = event.NewError("UpstreamFrameTooLarge", "the upstream sent a frame larger than the gateway accepts")

// tooLarge ends the one subscription an oversized frame belonged to (and
// completes it upstream); the others on the connection go on.
func (c *conn) tooLarge(sess *session, over *oversized) {
	o := c.op(over.id)
	c.h.log.Warn("upstream frame over the read limit", "conn", c.no, "bytes", over.size,
		"limit", c.h.cfg.MaxFrameBytes, "type", over.typ, "known", o != nil)
	if o == nil {
		return
	}
	if on := o.end(frameTooLarge, nil, true); on == sess.no {
		sess.write(sess.ex.stopFrame(o.id))
	}
}

func (c *conn) op(id string) *op {
	c.h.mu.RLock()
	o := c.ops[id]
	c.h.mu.RUnlock()
	return o
}

// holdComplete passes the upstream's complete on after CompleteGrace,
// unless the session is lost first: a server shutting down (gqlgen, for
// one) completes every subscription just before it closes, and those
// subscriptions are to be resumed on the next session, not ended.
func (sess *session) holdComplete(o *op) {
	grace := sess.c.h.cfg.CompleteGrace
	if grace <= 0 {
		o.end(event.DoneEvent, nil, false)
		return
	}
	sess.hmu.Lock()
	sess.held = append(sess.held, heldComplete{o: o, at: time.Now().Add(grace)})
	sess.hmu.Unlock()
	select {
	case sess.hkick <- struct{}{}:
	default:
	}
}

// releaseHeld ends the held subscriptions that are due and returns when
// the next one is (zero when none is left).
func (sess *session) releaseHeld(now time.Time) time.Time {
	sess.hmu.Lock()
	var due []*op
	keep := sess.held[:0]
	for _, hc := range sess.held {
		if now.Before(hc.at) {
			keep = append(keep, hc)
		} else {
			due = append(due, hc.o)
		}
	}
	clear(sess.held[len(keep):])
	sess.held = keep
	var next time.Time
	if len(keep) > 0 {
		next = keep[0].at
	}
	sess.hmu.Unlock()
	for _, o := range due {
		o.end(event.DoneEvent, nil, false)
	}
	return next
}

func (sess *session) takeHeld() []heldComplete {
	sess.hmu.Lock()
	defer sess.hmu.Unlock()
	h := sess.held
	sess.held = nil
	return h
}

// keep runs beside the reader: pings and liveness every KeepAlive, the idle
// timer, held completes, and the normal close when c.ctx is cancelled.
func (sess *session) keep() {
	c := sess.c
	cfg := &c.h.cfg
	tick := time.NewTicker(cfg.KeepAlive)
	defer tick.Stop()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	held := time.NewTimer(time.Hour)
	held.Stop()
	defer held.Stop()
	c.kickIdle() // arm at once if nothing is left to carry
	for {
		select {
		case <-sess.readDone:
			return
		case <-c.ctx.Done():
			sess.closeNormally()
			return
		case <-sess.hkick:
			if next := sess.releaseHeld(time.Now()); !next.IsZero() {
				held.Reset(time.Until(next))
			}
		case now := <-held.C:
			if next := sess.releaseHeld(now); !next.IsZero() {
				held.Reset(time.Until(next))
			}
		case <-c.kick:
			c.h.mu.RLock()
			n := len(c.ops)
			c.h.mu.RUnlock()
			if n == 0 {
				idle.Reset(cfg.IdleTimeout)
			} else {
				idle.Stop()
			}
		case <-idle.C:
			h := c.h
			h.mu.Lock()
			if len(c.ops) == 0 && !c.closing {
				c.closing = true
				h.unlistConnLocked(c)
			}
			closing := c.closing && len(c.ops) == 0
			h.mu.Unlock()
			if closing {
				h.log.Debug("upstream connection idle, closing", "conn", c.no)
				sess.closeNormally()
				return
			}
		case now := <-tick.C:
			silent := time.Duration(now.UnixNano() - sess.lastRead.Load())
			limit := 2 * cfg.KeepAlive
			if sess.lastKA.Load() != 0 {
				limit = max(limit, 3*time.Duration(sess.kaGap.Load()))
			}
			if ping := sess.ex.pingFrame(); ping != nil {
				if silent > limit {
					sess.kill(errKeepAlive)
					return
				}
				sess.write(ping)
			} else if sess.lastKA.Load() != 0 && silent > limit {
				// Legacy servers that never sent "ka" may be silent forever.
				sess.kill(errKeepAlive)
				return
			}
		}
	}
}

// closeNormally says goodbye (connection_terminate in graphql-ws) and
// closes with 1000, dropping the connection if the server doesn't answer
// within closeGrace.
func (sess *session) closeNormally() {
	if t := sess.ex.terminateFrame(); t != nil {
		sess.write(t)
	}
	force := time.AfterFunc(closeGrace, sess.readCancel)
	_ = sess.ws.Close(websocket.StatusNormalClosure, "")
	force.Stop()
}

// kill drops the session at once; the reader then returns err.
func (sess *session) kill(err error) {
	sess.killOnce.Do(func() { sess.killErr = err })
	sess.readCancel()
}

// write sends one frame, ignoring failure (the reader notices a broken
// connection).
func (sess *session) write(b []byte) {
	if err := sess.writeErr(b); err != nil {
		sess.c.h.log.Debug("upstream write failed", "conn", sess.c.no, "err", err)
	}
}

func (sess *session) writeErr(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), sess.c.h.cfg.WriteTimeout)
	defer cancel()
	return sess.ws.Write(ctx, websocket.MessageText, b)
}

// finish takes the connection out of the hub and ends what it carried.
func (c *conn) finish(err error) {
	h := c.h
	h.mu.Lock()
	if !c.closing {
		c.closing = true
		h.unlistConnLocked(c)
	}
	delete(h.all, c)
	ops := make([]*op, 0, len(c.ops))
	for _, o := range c.ops {
		ops = append(ops, o)
	}
	h.mu.Unlock()
	h.st.conns.Add(-1)

	var final *event.Event
	var ce *errConnError
	var rt *errReconnectTimeout
	switch {
	case errors.As(err, &ce):
		final = &event.Event{Kind: event.Error, Data: ce.data}
	case errors.As(err, &rt):
		final = event.NewError("UpstreamUnavailable", fmt.Sprintf("the upstream connection was lost and did not come back within %s", rt.after))
	case errors.Is(err, websocket.ErrMessageTooBig):
		final = frameTooLarge
	default:
		final = event.NewError("UpstreamUnavailable", "the upstream connection was lost")
	}
	cause := err
	if !errors.Is(cause, ErrUnavailable) {
		cause = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if len(ops) > 0 {
		h.log.Warn("upstream connection lost", "conn", c.no, "subscriptions", len(ops), "err", err)
	}
	for _, o := range ops {
		o.end(final, cause, false)
	}
	close(c.done)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
