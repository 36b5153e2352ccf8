package sse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Defaults for the zero values of Options.
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultRetry        = time.Second
)

// Options configure one stream. Every zero value has a sensible meaning.
type Options struct {
	// Mode is the output format (usually from ModeOf); zero means JSON.
	Mode Mode
	// Heartbeat is how long a stream may stay silent before a heartbeat is
	// written; it restarts whenever anything is written. Zero means
	// DefaultHeartbeat, negative disables heartbeats. Once sends none.
	Heartbeat time.Duration
	// ExpiresAt is when the client's token expires; zero means never. At
	// that instant the stream ends with a TokenExpired error.
	ExpiresAt time.Time
	// WriteTimeout bounds each batch of writes (set with
	// http.ResponseController.SetWriteDeadline, so wrapping ResponseWriters
	// must implement Unwrap). Zero means DefaultWriteTimeout, negative none.
	// A write that fails or times out ends the stream.
	WriteTimeout time.Duration
	// Shutdown ends when the server shuts down; the stream then ends with a
	// retry hint and no done (SSE), or a ShuttingDown errors line (JSON
	// stream). A context, so that a detached stream can be told without a
	// goroutine (context.AfterFunc).
	Shutdown context.Context
	// Retry is the reconnection delay hinted to SSE clients at shutdown and
	// at the lifetime cap (and Once's Retry-After). Zero means DefaultRetry.
	Retry time.Duration
	// MaxLifetime caps the stream's duration (the caller adds jitter); zero
	// means no cap. At the cap an SSE stream ends with a retry hint but no
	// done, so that EventSource reconnects and resumes with Last-Event-ID.
	MaxLifetime time.Duration
	// OnEvent, if set, is called for every queued event that was written to
	// the client, after it was flushed: on the stream's writer, or on the
	// pushing goroutine for a direct write (see direct.go). Keep it cheap: it
	// runs on the delivery hot path.
	OnEvent func(e *event.Event)
	// Detach, if set, lets an SSE or JSON stream on HTTP/1.1 outlive its
	// handler, which frees what net/http holds per request (see
	// detach.go): Serve flushes the headers, takes the connection over and
	// calls Detach with abort, which cuts the connection at once, from any
	// goroutine and at any time (even while a write is blocked on a client
	// that stopped reading); the stream then ends promptly. Detach returns
	// end, and Serve returns at once with ReasonDetached: the stream goes on
	// without a goroutine of its own while it has nothing to write (see
	// lazy.go), and calls end exactly once with its Result, on a goroutine
	// of its own, when it has ended and closed its connection. The caller
	// keeps track of the stream (and waits for it) until then. When Detach
	// returns nil, Serve serves the rest itself and returns its Result.
	// Unset, or when the connection can't be taken over (HTTP/2, a
	// ResponseWriter that can't hijack), Serve serves the stream in the
	// handler as usual.
	Detach func(abort func()) (end func(Result))
	// Watcher, if set, notices the clients of detached streams leaving
	// without a reader goroutine per stream (see Watcher). Unset, every
	// detached stream has one.
	Watcher *Watcher
}

// Reasons a stream ended, as reported in Result.Reason. They are stable and
// fit as metric labels.
const (
	ReasonDone         = "done"          // the upstream completed (or Once delivered its result)
	ReasonError        = "error"         // an Error event ended the stream
	ReasonSlowConsumer = "slow-consumer" // the queue cut the client off (also when the write then failed)
	ReasonClientGone   = "client-gone"   // the request context ended, or the client closed or reset the connection
	ReasonExpired      = "expired"       // the token expired
	ReasonShutdown     = "shutdown"      // Options.Shutdown was closed
	ReasonLifetime     = "lifetime"      // Options.MaxLifetime passed
	ReasonWriteFailed  = "write-failed"  // a write or flush failed or timed out
	// ReasonPanic ends a detached stream whose writer panicked (Result.Err
	// holds the value); its connection is cut.
	ReasonPanic = "panic"
	// ReasonDetached is what Serve returns when the stream went on in
	// Options.Detach; it is never a stream's final reason.
	ReasonDetached = "detached"
)

// ErrWriteFailed wraps the error of a failed write or flush in Result.Err.
var ErrWriteFailed = errors.New("stream write failed")

// Result says how a stream ended.
type Result struct {
	// Reason is one of the Reason constants.
	Reason string
	// Events counts the results (Next events) written to the client.
	Events int
	// Bytes counts the body bytes the stream wrote (before any HTTP
	// framing).
	Bytes int64
	// Err is set for ReasonWriteFailed (wrapping ErrWriteFailed) and
	// ReasonClientGone (the context's cause, or the failed write's error;
	// ErrClientGone on a detached stream).
	Err error
}

const (
	// writeChunk is how much of a batch is buffered before it is handed to
	// the ResponseWriter; the batch is still flushed only once.
	writeChunk = 64 << 10
	// maxPooled keeps the buffer pool from holding on to huge buffers.
	maxPooled = 256 << 10
)

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

type stream struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	opt        Options
	events     int
	bytes      int64
	deadlineAt time.Time // the write deadline in force
	lastWrite  time.Time // when the stream last wrote (the heartbeat is due Heartbeat later)
	sse        bool      // event-stream framing (SSE, OnceSSE)
	// noDeadline is set once the writer said it has no write deadlines;
	// asking again would build a new error on every batch.
	noDeadline bool
	lastDL     bool // deadlineAt is final (shutdown): never extended
	h2         bool // HTTP/2: the deadline is cleared between writes (see rest)
	started    bool // the headers were flushed

	// A taken-over connection (see detach.go), written by emit.
	conn net.Conn
	// How the stream notices its client leaving: the Watcher's id, or a
	// reader goroutine's end.
	watchID    uint64
	readerDone chan struct{}
	// A detached stream's writer, started when there is work (lazy.go).
	q        *event.Queue
	state    atomic.Int32  // idle, running, again, over
	flags    atomic.Uint32 // what woke it: flagGone, flagTimer, flagShutdown
	timer    *time.Timer   // heartbeat, expiry, lifetime; nil for none
	stopShut func() bool   // stops the context.AfterFunc of opt.Shutdown
	end      func(Result)  // from Options.Detach

	// Direct writes (see direct.go). wmu is held by the stream's writer
	// whenever it is at work, and by a direct write; it guards every write
	// to the client and the fields below, lastWrite, events and bytes.
	wmu     sync.Mutex
	ended   bool            // the stream ended: no more direct writes
	raw     syscall.RawConn // the taken-over connection's, when direct writes are on
	chunked event.Format    // the frame format a direct write sends
	lifeAt  time.Time       // the lifetime cap; zero for none
	pending []byte          // the rest of a chunk a direct write could not finish
	werr    error           // a direct write failed: the stream ends
}

// Serve writes the events of q to w in opt.Mode until the stream ends, and
// reports why it ended. It returns at once when the client goes away. It
// never closes q or anything upstream; the caller does that after Serve
// returns. Serve must be called from the request's handler goroutine.
func Serve(w http.ResponseWriter, r *http.Request, q *event.Queue, opt Options) Result {
	s := newStream(opt)
	s.w, s.rc, s.h2 = w, http.NewResponseController(w), r.ProtoMajor >= 2
	if r.Context().Err() == nil && s.detachable(r) {
		if res, ok := s.detach(r, q); ok {
			return res
		}
	}
	return s.finish(s.run(r.Context(), q), q)
}

// newStream makes a stream with opt, its zero values defaulted.
func newStream(opt Options) *stream {
	if opt.Mode == 0 {
		opt.Mode = JSON
	}
	if opt.Heartbeat == 0 {
		opt.Heartbeat = DefaultHeartbeat
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.Retry <= 0 {
		opt.Retry = DefaultRetry
	}
	return &stream{opt: opt, sse: opt.Mode == SSE || opt.Mode == OnceSSE}
}

// finish completes a stream's Result.
func (s *stream) finish(res Result, q *event.Queue) Result {
	if res.Reason == ReasonWriteFailed && q.Overflowed() {
		// The client stopped reading: the write blocked until its deadline
		// while the queue overflowed behind it. That is a slow consumer.
		res.Reason = ReasonSlowConsumer
	}
	// The last deadline stays in force while net/http finishes the
	// response; the server clears it before reading the next request on a
	// kept-alive connection.
	res.Events, res.Bytes = s.events, s.bytes
	return res
}

// failed is the Result of a failed write: the client went away when the
// connection was reset or closed by its end, else the write failed (or
// timed out).
func failed(err error) Result {
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return Result{Reason: ReasonClientGone, Err: err}
	}
	return Result{Reason: ReasonWriteFailed, Err: fmt.Errorf("%w: %w", ErrWriteFailed, err)}
}

// start writes and flushes the stream's headers.
func (s *stream) start() error {
	h := s.w.Header()
	if s.sse {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Del("Content-Length")
	s.deadline()
	s.w.WriteHeader(http.StatusOK)
	return s.rc.Flush()
}

// deadline makes sure a write deadline between half the write timeout and
// the whole of it from now is in force: re-arming it for every batch would
// cost a timer update per delivered event.
func (s *stream) deadline() { s.deadlineFrom(time.Now()) }

func (s *stream) deadlineFrom(now time.Time) {
	if s.opt.WriteTimeout <= 0 || s.noDeadline || s.lastDL {
		return
	}
	if s.deadlineAt.Sub(now) > s.opt.WriteTimeout/2 {
		return
	}
	s.deadlineAt = now.Add(s.opt.WriteTimeout)
	// ErrNotSupported only costs the protection; the writes still work.
	err := s.setDeadline(s.deadlineAt)
	s.noDeadline = errors.Is(err, http.ErrNotSupported)
}

// rest clears the write deadline of an HTTP/2 stream while it waits for
// something to write. Over HTTP/2 a write deadline is a timer that resets
// the stream when it fires, whether a write is in progress or not, so a
// deadline left in force would cut a stream that idles longer than
// WriteTimeout (by default shorter than the heartbeat). Over HTTP/1.1, and
// on a detached connection, a deadline only bounds the write in progress
// and may stay in force, which spares a timer update per batch.
func (s *stream) rest() {
	if !s.h2 || s.deadlineAt.IsZero() || s.lastDL || s.noDeadline {
		return
	}
	s.deadlineAt = time.Time{}
	_ = s.setDeadline(time.Time{})
}

// shutdownWrite bounds what a stream may still write once the server shuts
// down: a client that stopped reading must not hold the shutdown for a whole
// WriteTimeout. (In the handler, http.Server.Close would cut it; a detached
// stream cuts itself.)
const shutdownWrite = 2 * time.Second

// lastDeadline sets a write deadline d from now (if none sooner is in
// force) that no later write extends.
func (s *stream) lastDeadline(d time.Duration) {
	if d <= 0 || s.noDeadline {
		return
	}
	t := time.Now().Add(d)
	if s.deadlineAt.IsZero() || t.Before(s.deadlineAt) {
		s.deadlineAt = t
		s.noDeadline = errors.Is(s.setDeadline(t), http.ErrNotSupported)
	}
	s.lastDL = true
}

// write writes b under a fresh deadline and flushes.
func (s *stream) write(b []byte) error {
	s.deadline()
	if len(b) > 0 {
		if err := s.emit(b); err != nil {
			return err
		}
	}
	return s.flush()
}

func (s *stream) expired(now time.Time) bool {
	return !s.opt.ExpiresAt.IsZero() && !now.Before(s.opt.ExpiresAt)
}

// expire ends the stream with the TokenExpired error.
func (s *stream) expire() Result {
	var err error
	switch {
	case s.opt.Mode == Once:
		err = s.respond(http.StatusOK, expiredJSON)
	case s.sse:
		err = s.write(appendSSE(nil, expiredEvent))
	default:
		err = s.write(appendJSON(nil, expiredEvent))
	}
	if err != nil {
		return failed(err)
	}
	return Result{Reason: ReasonExpired}
}

// leave ends the stream at shutdown or at the lifetime cap. What is queued
// already is delivered first, so a JSON stream (which cannot resume) loses
// nothing that had arrived.
func (s *stream) leave(q *event.Queue, reason string) Result {
	if reason == ReasonShutdown {
		s.lastDeadline(min(s.opt.WriteTimeout, shutdownWrite))
	}
	if q.Len() > 0 {
		batch := q.Take(nil)
		if res, end := s.deliver(batch, time.Now()); end {
			return res
		}
	}
	var err error
	switch {
	case s.opt.Mode == Once:
		secs := int64((s.opt.Retry + time.Second - 1) / time.Second)
		s.w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		err = s.respond(http.StatusServiceUnavailable, onceGoneJSON)
	case s.sse:
		// No done, at shutdown either: EventSource reconnects after the
		// retry hint (through the load balancer, to another instance) and
		// resumes with Last-Event-ID; done would stop it for good.
		err = s.write(retryMessage(s.opt.Retry))
	default:
		// A JSON stream has no retry hint or done: its last line says
		// the gateway ended it, so the client does not mistake the end
		// for the upstream completing.
		if reason == ReasonShutdown {
			err = s.write(jsonShutdown)
		} else {
			err = s.write(jsonLifetime)
		}
	}
	if err != nil {
		return failed(err)
	}
	return Result{Reason: reason}
}

// The last lines of a JSON stream that the gateway ends, and the expiry
// error of every stream.
var (
	expiredEvent = &event.Event{Kind: event.Error, Data: expiredJSON}
	jsonShutdown = append(event.ErrorJSON("ShuttingDown", "the gateway is shutting down; reconnect"), '\n', '\n')
	jsonLifetime = append(event.ErrorJSON("StreamLifetime", "the stream reached subscriptions.maxLifetime; reconnect"), '\n', '\n')
)

// respond writes Once's single response.
func (s *stream) respond(status int, body []byte) error {
	h := s.w.Header()
	if body != nil {
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	s.deadline()
	s.w.WriteHeader(status)
	return s.write(body)
}

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

func endOf(e *event.Event) string {
	if e.Kind == event.Error {
		if e.Resumable {
			return ReasonSlowConsumer
		}
		return ReasonError
	}
	return ReasonDone
}

// deliver writes one batch, at now: framed into one buffer, one deadline,
// one flush. It reports whether the stream ended.
func (s *stream) deliver(batch []*event.Event, now time.Time) (res Result, end bool) {
	if len(batch) == 0 {
		return res, false // a spurious Ready signal
	}
	if s.opt.Mode == Once {
		return s.deliverOnce(batch)
	}
	bp := bufPool.Get().(*[]byte)
	defer putBuf(bp)
	b := (*bp)[:0]
	n := 0 // events framed
	s.deadlineFrom(now)
	for _, e := range batch {
		n++
		switch {
		case s.sse && e.Kind == event.Error && e.Resumable:
			// Cut off as a slow consumer: the error, then the retry hint
			// and no done, so that EventSource reconnects and resumes with
			// Last-Event-ID (done would make it stop for good).
			b = append(b, message("", "", e.Data)...)
			b = append(b, retryMessage(s.opt.Retry)...)
		case s.sse:
			b = appendSSE(b, e)
		default:
			b = appendJSON(b, e)
		}
		if e.Kind == event.Next {
			s.events++
			if s.opt.Mode == OnceSSE {
				b = append(b, sseDone...)
				end, res.Reason = true, ReasonDone
				break
			}
		}
		if e.Kind.Terminal() {
			end, res.Reason = true, endOf(e)
			break
		}
		if len(b) >= writeChunk {
			if err := s.emit(b); err != nil {
				*bp = b
				return failed(err), true
			}
			b = b[:0]
		}
	}
	*bp = b
	if len(b) > 0 {
		if err := s.emit(b); err != nil {
			return failed(err), true
		}
	}
	if err := s.flush(); err != nil {
		return failed(err), true
	}
	s.lastWrite = now
	if s.opt.OnEvent != nil {
		for _, e := range batch[:n] {
			s.opt.OnEvent(e)
		}
	}
	return res, end
}

// deliverOnce answers Once with the first result, error or done.
func (s *stream) deliverOnce(batch []*event.Event) (res Result, end bool) {
	for _, e := range batch {
		var err error
		switch e.Kind {
		case event.Gap:
			continue // not a result; the client asked for one value only
		case event.Next:
			s.events++
			err, res.Reason = s.respond(http.StatusOK, e.Data), ReasonDone
		case event.Error:
			err, res.Reason = s.respond(http.StatusOK, e.Data), endOf(e)
		default:
			err, res.Reason = s.respond(http.StatusNoContent, nil), ReasonDone
		}
		if err != nil {
			return failed(err), true
		}
		if s.opt.OnEvent != nil {
			s.opt.OnEvent(e)
		}
		return res, true
	}
	return res, false
}
