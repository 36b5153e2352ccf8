package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/fireboom/fireboom/event"
)

// Subscription is one GraphQL subscription over the hub's WebSocket
// connections, as a source of the topic layer: Open starts it on a pooled
// connection and writes its results into a sink; it knows nothing of
// clients, ids or replay.
type Subscription struct {
	h    *Hub
	body []byte
	hdr  http.Header
	init json.RawMessage
	ckey string // connection identity (holds secrets: never log)
}

// Subscription prepares req as a source. Nothing is sent before Open.
func (h *Hub) Subscription(req Request) (*Subscription, error) {
	body, err := req.body()
	if err != nil {
		return nil, err
	}
	init, err := compactInit(req.InitPayload)
	if err != nil {
		return nil, err
	}
	hdr := canonicalHeader(req.Header)
	return &Subscription{h: h, body: body, hdr: hdr, init: init, ckey: connIdentity(h.cfg.URL, hdr, init)}, nil
}

// Key is the subscription's identity: exactly what would be sent upstream
// (URL, headers, init payload, query, operation name, variables). Equal
// keys are the same upstream subscription. It holds secrets: never log it.
func (s *Subscription) Key() string { return s.ckey + "\x00" + string(s.body) }

// Open subscribes upstream and returns once the connection is
// acknowledged and the subscribe frame written, so the caller can still
// answer an error status; the error wraps ErrUnavailable when the upstream
// can't be reached or rejected connection_init, is ErrTooManyConnections at
// HubConfig.MaxConnections, ErrClosed after Hub.Close, and ctx's when it
// ends first. When the connection it would use is being re-established
// after a drop, it waits for that (bounded by ctx), so that a client
// arriving during a short upstream restart gets its stream. stop completes
// the subscription upstream.
func (s *Subscription) Open(ctx context.Context, sink event.Sink) (stop func(), err error) {
	h := s.h
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	c, err := h.connForLocked(s.ckey, s.hdr, s.init)
	if err != nil {
		h.mu.Unlock()
		return nil, err
	}
	o := h.newOpLocked(c, s.body, sink)
	h.mu.Unlock()
	if err := o.wait(ctx); err != nil {
		o.stop()
		return nil, err
	}
	return o.stop, nil
}

// op is one subscription on a connection (one operation id), from Open
// until it ends. Its results go to sink.
type op struct {
	h    *Hub
	c    *conn
	id   string // operation id on c
	body []byte // subscribe payload, kept so a reconnect can re-send it
	sink event.Sink

	mu      sync.Mutex
	started bool   // the subscribe frame is (being) sent
	on      uint64 // the connection session the subscribe frame went out on; 0 none
	// writing is set (and closed when done) while a subscribe frame is
	// being written. The write happens with o.mu released, so that a slow
	// upstream never holds o.mu, and h.mu (which every reader needs) is
	// never held across network I/O. While it is set, stop and end leave
	// the stop frame to the writer (see finishWrite): the subscribe frame
	// always goes out before the stop frame for the same id.
	writing chan struct{}
	// stopOwed: o ended while writing, and whoever ended it wants the
	// subscription completed upstream (the topic stopped it). Not set when
	// the upstream itself ended it.
	stopOwed bool
	ended    bool  // no more events
	endErr   error // why it ended before it started
}

func (h *Hub) newOpLocked(c *conn, body []byte, sink event.Sink) *op {
	c.nextID++
	o := &op{h: h, c: c, id: strconv.FormatUint(c.nextID, 36), body: body, sink: sink}
	c.ops[o.id] = o
	c.kickIdle()
	h.st.subs.Add(1)
	return o
}

// wait blocks until the subscription is started upstream (or fails). While
// its connection is being re-established it waits for that, bounded by ctx.
func (o *op) wait(ctx context.Context) error {
	for {
		up := o.c.upChan()
		if ok, err := o.start(); ok {
			return err
		}
		select {
		case <-up:
		case <-o.c.done:
			if ok, err := o.start(); ok {
				return err
			}
			return fmt.Errorf("%w: the connection ended", ErrUnavailable)
		case <-ctx.Done():
			return fmt.Errorf("upstream: waiting for subscription: %w", ctx.Err())
		}
	}
}

// start writes the subscribe frame once, on the live session; it reports
// false when no session is live (wait for one). It marks o started and
// writing under o.mu, then writes with o.mu released (see writing), so
// no lock is held across network I/O. Reading the session under o.mu
// orders it against resubscribe: either resubscribe sees started (and
// waits for this write), or start sees the new session. A failed write
// kills the session; the reconnect then sends the subscription.
func (o *op) start() (bool, error) {
	o.mu.Lock()
	if o.started {
		o.mu.Unlock()
		return true, nil
	}
	if o.ended {
		err := o.endErr
		o.mu.Unlock()
		if err != nil {
			return true, err
		}
		return true, fmt.Errorf("%w: subscription ended before it started", ErrUnavailable)
	}
	sess := o.c.session()
	if sess == nil {
		o.mu.Unlock()
		return false, nil
	}
	o.started = true
	o.writing = make(chan struct{})
	o.mu.Unlock()
	err := sess.writeErr(sess.ex.subscribeFrame(o.id, o.body))
	if err != nil {
		sess.kill(err)
	}
	o.finishWrite(sess, err == nil, false)
	return true, nil
}

// finishWrite ends the subscribe write that start or resubscribe began on
// sess (ok: the frame went out). If o ended meanwhile with a stop wanted
// (stopOwed), stop or end could not send it while o was writing: it is
// sent here, after the subscribe. gap tells the sink of a resubscription.
func (o *op) finishWrite(sess *session, ok, gap bool) {
	o.mu.Lock()
	close(o.writing)
	o.writing = nil
	if ok {
		o.on = sess.no
	}
	stop := ok && o.stopOwed
	tell := ok && gap && !o.ended
	o.mu.Unlock()
	if stop {
		o.c.sendStop(o.id, sess.no)
	}
	if tell {
		// Before any event of sess: its reader is not running yet.
		o.sink.Gap(ReasonReconnected)
	}
}

// ReasonReconnected is the gap reason a source gives after its upstream
// connection dropped and was re-established: what the upstream published
// meanwhile may be lost.
const ReasonReconnected = "reconnected"

// resubscribe sends the subscription again on sess, a new session of its
// connection, then tells the sink of the gap. It reports whether it sent
// anything; an error means the write failed. Like start, it writes with
// o.mu released; a subscribe write start still has in flight (on the old
// session) is waited for first.
func (o *op) resubscribe(sess *session) (bool, error) {
	o.mu.Lock()
	for o.writing != nil {
		w := o.writing
		o.mu.Unlock()
		<-w
		o.mu.Lock()
	}
	if o.ended || !o.started || o.on == sess.no {
		o.mu.Unlock()
		return false, nil
	}
	o.writing = make(chan struct{})
	o.mu.Unlock()
	err := sess.writeErr(sess.ex.subscribeFrame(o.id, o.body))
	o.finishWrite(sess, err == nil, true)
	if err != nil {
		return false, err
	}
	return true, nil
}

// stop completes the subscription upstream (the topic's stop). After an
// end it does nothing.
func (o *op) stop() {
	if on := o.end(nil, nil, true); on != 0 {
		o.c.sendStop(o.id, on)
	}
}

// end takes o off its connection. final, when set, is passed to the sink
// (the upstream ended it, or the connection was lost); cause is what a
// start still waiting reports; want says whether the caller wants the
// subscription completed upstream (not when the upstream ended it). When
// this call ended o, it returns the session number the subscription is
// live on upstream, so the caller may complete it there: 0 for none, or
// while its subscribe frame is being written (the writer then sends the
// stop, if wanted: see finishWrite).
func (o *op) end(final *event.Event, cause error, want bool) uint64 {
	h := o.h
	h.mu.Lock()
	h.dropLocked(o)
	o.mu.Lock()
	if o.ended {
		o.mu.Unlock()
		h.mu.Unlock()
		return 0
	}
	o.ended = true
	o.endErr = cause
	on := o.on
	if o.writing != nil {
		on, o.stopOwed = 0, want
	}
	o.mu.Unlock()
	h.mu.Unlock()
	if final != nil {
		o.sink.End(final)
	}
	return on
}

// deliver passes one upstream result on, on one line.
func (o *op) deliver(payload json.RawMessage) {
	o.h.st.in.Add(1)
	o.sink.Next(compactJSON(payload))
}

// compactJSON returns p on one line (json.Compact), or "null" when empty.
func compactJSON(p json.RawMessage) []byte {
	if len(p) == 0 {
		return []byte("null")
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(p)))
	if json.Compact(buf, p) != nil {
		return []byte("null")
	}
	return buf.Bytes()
}
