package sse

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Direct writes. On a taken-over connection (see detach.go) the stream
// lets its queue hand it events straight from the topic's fan-out
// (event.Queue.SetDirect): while the client is caught up, the pushing
// goroutine writes the event's shared chunk to the socket with one
// non-blocking write, and the stream's writer is not started at all (see
// lazy.go). That is most deliveries, and it saves a goroutine start (or,
// in the handler, a wake-up, a select and a park) per client per event.
//
// Everything else stays with the stream's writer, which holds s.wmu
// whenever it is at work: a direct write only happens when it can take
// s.wmu at once (TryLock), nothing is queued, the stream has not ended,
// and neither the token nor the lifetime cap has run out. A write that
// would block writes nothing and is refused (the event is queued and the
// writer writes it under its write deadline); a partial write leaves the
// rest of the chunk in s.pending, which the writer writes before anything
// else; an error is kept in s.werr and ends the stream.

// tryDirect is the stream's direct writer (event.Queue.SetDirect). It runs
// with the queue's lock held and never blocks.
func (s *stream) tryDirect(e *event.Event) int {
	if !s.wmu.TryLock() {
		return event.DirectRefused // the writer is at work: it takes the event
	}
	defer s.wmu.Unlock()
	if s.ended || s.pending != nil || s.werr != nil {
		return event.DirectRefused
	}
	now := time.Now()
	if s.expired(now) || (!s.lifeAt.IsZero() && !now.Before(s.lifeAt)) {
		return event.DirectRefused // the writer ends the stream
	}
	b := e.Frame(s.chunked, chunkEncoder(s.chunked))
	if len(b) == 0 {
		return event.DirectWritten // nothing to write (no such event is pushed)
	}
	w := rawWrites.Get().(*rawWrite)
	w.b = b
	err := s.raw.Write(w.write)
	n, werr := w.n, w.err
	*w = rawWrite{write: w.write}
	rawWrites.Put(w)
	switch {
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded), werr == syscall.EAGAIN, werr == syscall.EINTR:
		return event.DirectRefused // the writer writes it, under a fresh deadline
	case err != nil || werr != nil:
		s.werr = errors.Join(err, werr)
		return event.DirectHanded
	}
	// Result.Bytes counts the body before HTTP framing: the chunk's payload
	// (a partial write's rest is counted here, not by settle).
	s.bytes += int64(len(b) - chunkOverhead(len(b)))
	s.lastWrite = now
	if e.Kind == event.Next {
		s.events++
	}
	if s.opt.OnEvent != nil {
		s.opt.OnEvent(e)
	}
	if n < len(b) {
		s.pending = b[n:]
		return event.DirectHanded
	}
	return event.DirectWritten
}

// rawWrite is one non-blocking write through syscall.RawConn.Write. A
// closure there would escape, with what it captures: three allocations
// per direct write. These are pooled, each with its method value made once.
type rawWrite struct {
	b     []byte
	n     int
	err   error
	write func(fd uintptr) bool // this rawWrite's do
}

var rawWrites = sync.Pool{New: func() any {
	w := &rawWrite{}
	w.write = w.do
	return w
}}

func (w *rawWrite) do(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.b)
	return true // one attempt: never wait for the socket
}

// settle finishes what a direct write left: the rest of a chunk, or its
// error. The writer calls it, holding s.wmu, before it writes anything.
func (s *stream) settle() error {
	if s.werr != nil {
		return s.werr
	}
	if len(s.pending) == 0 {
		return nil
	}
	s.deadline()
	_, err := s.conn.Write(s.pending)
	s.pending = nil
	return err
}

func chunkEncoder(f event.Format) func(*event.Event) []byte {
	if f == event.FormatSSEChunked {
		return encodeSSEChunk
	}
	return encodeJSONChunk
}

func encodeSSEChunk(e *event.Event) []byte  { return chunk(appendSSE(nil, e)) }
func encodeJSONChunk(e *event.Event) []byte { return chunk(appendJSON(nil, e)) }

// chunkOverhead is how many bytes of an n-byte chunk are framing: the
// hex size, two CRLFs.
func chunkOverhead(n int) int {
	for size := 1; ; size++ { // hex digits of the payload size
		if p := n - size - 4; p < 1<<(4*size) {
			return size + 4
		}
	}
}

// chunk frames b as one HTTP/1.1 chunk; nothing for nothing (an empty
// chunk would end the body).
func chunk(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	out := strconv.AppendInt(make([]byte, 0, len(b)+12), int64(len(b)), 16)
	out = append(out, '\r', '\n')
	out = append(out, b...)
	return append(out, '\r', '\n')
}
