package sse

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/event"
)

// A stream held by net/http costs about 25 KB however little it does: the
// handler goroutine's stack (8–16 KB, grown by the deepest call the request
// ever made, header writing included), net/http's background-read
// goroutine, the connection's 4 KB read and write buffers and the response's
// 2 KB chunking buffer, all kept until the handler returns. A detached
// stream gives all of that back: once the headers are flushed, Serve takes
// the connection over (http.ResponseController.Hijack), the handler
// returns, and the stream goes on by itself, writing HTTP/1.1 chunks
// straight to the socket (one write per batch), with no goroutine while it
// waits (lazy.go) and its client watched by a Watcher (or, without one, a
// reader goroutine).

// ErrClientGone is the cause of a detached stream's ReasonClientGone: the
// client closed the connection (or it broke).
var ErrClientGone = errors.New("client closed the connection")

// lastChunk ends a chunked HTTP/1.1 body.
var lastChunk = []byte("0\r\n\r\n")

// detachable reports whether the stream may be taken over from net/http:
// a long-lived mode on HTTP/1.1, whose body net/http frames as chunks once
// the headers are flushed without a Content-Length.
func (s *stream) detachable(r *http.Request) bool {
	return s.opt.Detach != nil && (s.opt.Mode == SSE || s.opt.Mode == JSON) &&
		r.ProtoMajor == 1 && r.ProtoMinor == 1 && s.w.Header().Get("Transfer-Encoding") == ""
}

// detach flushes the headers through net/http, takes the connection over
// and hands the rest of the stream to opt.Detach (takeOver). It reports
// false only when the connection could not be taken over: the stream then
// goes on in the handler, its headers already flushed. Otherwise res is
// what Serve returns: ReasonDetached, or the stream's own result when the
// headers could not be written or Detach declined (and Serve served it).
func (s *stream) detach(r *http.Request, q *event.Queue) (res Result, detached bool) {
	// The connection ends with the stream: a client must not pool it for
	// another request (it would find it closed).
	s.w.Header().Set("Connection", "close")
	if err := s.start(); err != nil {
		return s.finish(failed(err), q), true
	}
	s.started = true
	conn, _, err := s.rc.Hijack()
	if err != nil {
		return Result{}, false // HTTP/2, a test recorder...: serve in the handler
	}
	s.deadlineAt = time.Time{} // Hijack cleared the deadlines
	// Drop what belongs to the request: the stream must not keep net/http's
	// response (and its buffers) alive, nor Detach, which may refer to it.
	detach := s.opt.Detach
	s.w, s.rc, s.opt.Detach = nil, nil, nil
	return s.takeOver(conn, q, detach), true
}

// maxClientBytes is how much a client may send on a taken-over stream
// connection before it is cut off.
const maxClientBytes = 4 << 10

// watchClient makes sure the stream notices its client leaving: through
// the Watcher, or else with a reader goroutine.
func (s *stream) watchClient() {
	if s.raw != nil {
		if id, ok := s.opt.Watcher.watch(s); ok {
			s.watchID = id
			return
		}
	}
	s.readerDone = make(chan struct{})
	go func() {
		defer close(s.readerDone)
		var b [64]byte
		for sent := 0; ; {
			// A client of a stream has nothing to say: a little of what it
			// sends is read and dropped; a client that keeps sending is cut
			// off rather than costing a read per byte.
			n, err := s.conn.Read(b[:])
			if sent += n; err != nil || sent > maxClientBytes {
				s.clientGone()
				return
			}
		}
	}()
}

func (s *stream) rawConn() syscall.RawConn { return s.raw }

// closeConn closes the taken-over connection, once the Watcher let go of
// it (see Watcher). It is safe from any goroutine, at any time, and more
// than once.
func (s *stream) closeConn() {
	s.opt.Watcher.unwatch(s.watchID)
	_ = s.conn.Close() // safe beside Read and Write, and final
}

// emit writes b: through net/http (which buffers it until flush), or on a
// taken-over connection as one HTTP/1.1 chunk, in one write.
func (s *stream) emit(b []byte) error {
	s.bytes += int64(len(b))
	if s.conn == nil {
		_, err := s.w.Write(b)
		return err
	}
	if len(b) == 0 {
		return nil
	}
	cw := chunkPool.Get().(*chunkWriter)
	defer chunkPool.Put(cw)
	head := strconv.AppendInt(cw.head[:0], int64(len(b)), 16)
	head = append(head, '\r', '\n')
	if len(b) <= smallChunk {
		c := append(append(append(cw.small[:0], head...), b...), crlf...)
		cw.small = c[:0]
		_, err := s.conn.Write(c)
		return err
	}
	cw.vec = [3][]byte{head, b, crlf}
	cw.bufs = cw.vec[:]
	_, err := cw.bufs.WriteTo(s.conn)
	cw.vec = [3][]byte{} // don't keep the batch buffer
	return err
}

// smallChunk is the largest chunk emit copies into one buffer for one
// write rather than write as a vector: the heartbeats of idle streams, most
// batches. (Once a connection wrote a vector, internal/poll keeps an iovec
// array for it as long as it lives.)
const smallChunk = 4 << 10

// chunkWriter is what emit needs to write a chunk without allocating,
// pooled rather than kept by every stream.
type chunkWriter struct {
	head  [20]byte
	small []byte
	vec   [3][]byte
	bufs  net.Buffers
}

var chunkPool = sync.Pool{New: func() any {
	return &chunkWriter{small: make([]byte, 0, smallChunk+len("1000\r\n\r\n"))}
}}

// flush sends what emit buffered (a no-op on a taken-over connection,
// where emit writes at once).
func (s *stream) flush() error {
	if s.conn != nil {
		return nil
	}
	return s.rc.Flush()
}

var crlf = []byte("\r\n")

// setDeadline sets the write deadline of the connection or, through
// net/http, of the response.
func (s *stream) setDeadline(t time.Time) error {
	if s.conn != nil {
		return s.conn.SetWriteDeadline(t)
	}
	return s.rc.SetWriteDeadline(t)
}
