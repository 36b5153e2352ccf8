package upstream

import (
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
)

// closeGrace is how long a normal close waits for the server's close frame
// before dropping the TCP connection.
const closeGrace = time.Second

var offeredProtocols = []string{ProtocolTransportWS, ProtocolGraphQLWS}

// errConnError is a graphql-ws connection_error after connection_ack.
type errConnError struct{ data []byte }

func (e *errConnError) Error() string { return "upstream sent connection_error" }

var errKeepAlive = errors.New("upstream: no frame within the keepalive timeout")

// conn is one upstream WebSocket connection. Its run goroutine (owned by
// the hub's WaitGroup) dials, waits for connection_ack, reads every frame,
// and on the way out fails whatever subscriptions are left; a keeper
// goroutine (owned by run) sends pings, watches liveness and idleness, and
// performs the normal close.
type conn struct {
	h      *Hub
	no     uint64 // for logs
	key    string // connection identity (holds secrets: never log)
	header http.Header
	init   json.RawMessage

	ctx      context.Context // cancelled to close the connection normally
	cancel   context.CancelFunc
	ready    chan struct{} // closed after connection_ack; ws and ex are set
	done     chan struct{} // closed once the connection is finished
	readDone chan struct{}
	kick     chan struct{} // operation count changed: re-arm the idle timer

	ws         *websocket.Conn
	ex         exchanger
	readCtx    context.Context
	readCancel context.CancelFunc
	lastRead   atomic.Int64 // unix nanos of the last inbound frame
	lastKA     atomic.Int64 // unix nanos of the last legacy "ka"; 0 = never
	kaGap      atomic.Int64 // observed interval between legacy "ka"s

	killOnce sync.Once
	killErr  error

	// guarded by h.mu
	ops     map[string]*shared
	nextID  uint64
	closing bool // no new operations; closes when idle
}

func newConn(h *Hub, no uint64, key string, hdr http.Header, init json.RawMessage) *conn {
	ctx, cancel := context.WithCancel(h.ctx)
	rctx, rcancel := context.WithCancel(context.Background())
	return &conn{
		h: h, no: no, key: key, header: hdr, init: init,
		ctx: ctx, cancel: cancel, readCtx: rctx, readCancel: rcancel,
		ready: make(chan struct{}), done: make(chan struct{}), readDone: make(chan struct{}),
		kick: make(chan struct{}, 1), ops: map[string]*shared{},
	}
}

func (c *conn) kickIdle() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *conn) run() {
	defer c.h.wg.Done()
	defer c.cancel()
	defer c.readCancel()
	err := c.handshake()
	if err != nil {
		c.h.log.Warn("upstream connection failed", "conn", c.no, "err", err)
		c.finish(err)
		return
	}
	c.h.log.Debug("upstream connected", "conn", c.no, "subprotocol", c.ex.name())
	close(c.ready)
	var kwg sync.WaitGroup
	kwg.Add(1)
	go func() {
		defer kwg.Done()
		c.keep()
	}()
	err = c.readLoop()
	close(c.readDone)
	c.finish(err)
	kwg.Wait()
	_ = c.ws.CloseNow()
}

// handshake dials, sends connection_init and waits for connection_ack,
// all within InitTimeout. Every error wraps ErrUnavailable.
func (c *conn) handshake() error {
	cfg := &c.h.cfg
	ctx, cancel := context.WithTimeout(c.ctx, cfg.InitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, cfg.URL, &websocket.DialOptions{
		HTTPClient:   cfg.HTTPClient,
		HTTPHeader:   c.header,
		Subprotocols: offeredProtocols,
	})
	if err != nil {
		return fmt.Errorf("%w: dial: %w", ErrUnavailable, err)
	}
	ws.SetReadLimit(cfg.MaxFrameBytes)
	c.ws, c.ex = ws, exchangerFor(ws.Subprotocol())
	fail := func(format string, args ...any) error {
		_ = ws.CloseNow()
		return fmt.Errorf("%w: "+format, append([]any{ErrUnavailable}, args...)...)
	}
	if err := ws.Write(ctx, websocket.MessageText, c.ex.initFrame(c.init)); err != nil {
		return fail("write connection_init: %w", err)
	}
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			if ctx.Err() != nil && c.ctx.Err() == nil {
				return fail("no connection_ack within %s", cfg.InitTimeout)
			}
			return fail("closed before connection_ack: %w", err)
		}
		m, err := c.ex.decode(b)
		if err != nil {
			return fail("%w", err)
		}
		switch m.kind {
		case msgAck:
			c.lastRead.Store(time.Now().UnixNano())
			return nil
		case msgConnError:
			return fail("connection_error: %s", truncate(c.ex.errorData(m.payload), 200))
		case msgPing:
			if err := ws.Write(ctx, websocket.MessageText, c.ex.pongFrame()); err != nil {
				return fail("write pong: %w", err)
			}
		}
	}
}

func (c *conn) readLoop() error {
	for {
		_, b, err := c.ws.Read(c.readCtx)
		if err != nil {
			return err
		}
		now := time.Now().UnixNano()
		c.lastRead.Store(now)
		m, err := c.ex.decode(b)
		if err != nil {
			c.h.log.Debug("upstream sent an undecodable frame", "conn", c.no, "err", err)
			continue
		}
		switch m.kind {
		case msgNext:
			if s := c.op(m.id); s != nil {
				c.h.st.in.Add(1)
				s.deliver(m.payload)
			}
		case msgError:
			if s := c.op(m.id); s != nil {
				s.end(&event.Event{Kind: event.Error, Data: c.ex.errorData(m.payload)}, nil)
			}
		case msgComplete:
			if s := c.op(m.id); s != nil {
				s.end(event.DoneEvent, nil)
			}
		case msgPing:
			c.write(c.ex.pongFrame())
		case msgKeepAlive:
			if prev := c.lastKA.Swap(now); prev != 0 {
				c.kaGap.Store(now - prev)
			}
		case msgConnError:
			return &errConnError{data: c.ex.errorData(m.payload)}
		}
	}
}

func (c *conn) op(id string) *shared {
	c.h.mu.RLock()
	s := c.ops[id]
	c.h.mu.RUnlock()
	return s
}

// keep runs beside the reader: pings and liveness every KeepAlive, the idle
// timer, and the normal close when c.ctx is cancelled.
func (c *conn) keep() {
	cfg := &c.h.cfg
	tick := time.NewTicker(cfg.KeepAlive)
	defer tick.Stop()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	c.kickIdle() // arm at once if nothing is left to carry
	for {
		select {
		case <-c.readDone:
			return
		case <-c.ctx.Done():
			c.closeNormally()
			return
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
				c.closeNormally()
				return
			}
		case now := <-tick.C:
			silent := time.Duration(now.UnixNano() - c.lastRead.Load())
			limit := 2 * cfg.KeepAlive
			if c.lastKA.Load() != 0 {
				limit = max(limit, 3*time.Duration(c.kaGap.Load()))
			}
			if ping := c.ex.pingFrame(); ping != nil {
				if silent > limit {
					c.kill(errKeepAlive)
					return
				}
				c.write(ping)
			} else if c.lastKA.Load() != 0 && silent > limit {
				// Legacy servers that never sent "ka" may be silent forever.
				c.kill(errKeepAlive)
				return
			}
		}
	}
}

// closeNormally says goodbye (connection_terminate in graphql-ws) and
// closes with 1000, dropping the connection if the server doesn't answer
// within closeGrace.
func (c *conn) closeNormally() {
	if t := c.ex.terminateFrame(); t != nil {
		c.write(t)
	}
	force := time.AfterFunc(closeGrace, c.readCancel)
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	force.Stop()
}

// kill drops the connection at once; the reader then fails every
// subscription with err.
func (c *conn) kill(err error) {
	c.killOnce.Do(func() { c.killErr = err })
	c.readCancel()
}

// write sends one frame, ignoring failure (the reader notices a broken
// connection).
func (c *conn) write(b []byte) {
	if err := c.writeErr(b); err != nil {
		c.h.log.Debug("upstream write failed", "conn", c.no, "err", err)
	}
}

func (c *conn) writeErr(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.h.cfg.WriteTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// finish takes the connection out of the hub and ends what it carried.
func (c *conn) finish(err error) {
	c.killOnce.Do(func() {})
	if c.killErr != nil {
		err = c.killErr
	}
	h := c.h
	h.mu.Lock()
	if !c.closing {
		c.closing = true
		h.unlistConnLocked(c)
	}
	delete(h.all, c)
	ops := make([]*shared, 0, len(c.ops))
	for _, s := range c.ops {
		ops = append(ops, s)
	}
	h.mu.Unlock()
	h.st.conns.Add(-1)

	var final *event.Event
	var ce *errConnError
	switch {
	case errors.As(err, &ce):
		final = &event.Event{Kind: event.Error, Data: ce.data}
	case errors.Is(err, websocket.ErrMessageTooBig):
		final = event.NewError("UpstreamFrameTooLarge", "the upstream sent a frame larger than the gateway accepts")
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
	for _, s := range ops {
		s.end(final, cause)
	}
	close(c.done)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
