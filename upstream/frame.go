package upstream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coder/websocket"
)

// oversizeFactor bounds how much of one oversized frame is drained, as a
// multiple of MaxFrameBytes: past it the connection is dropped (and
// reconnected), so that an endless frame cannot hold the reader forever.
const oversizeFactor = 16

// errFrameTooLarge is a frame past oversizeFactor×MaxFrameBytes. It wraps
// websocket.ErrMessageTooBig.
var errFrameTooLarge = fmt.Errorf("upstream: frame far larger than the read limit: %w", websocket.ErrMessageTooBig)

// oversized describes a frame larger than MaxFrameBytes that was drained
// without being kept: only its top-level "id" and "type" are known.
type oversized struct {
	id, typ string
	size    int64
}

// readFrame reads one WebSocket message into buf (reused between calls).
// A message larger than MaxFrameBytes is never held in memory: it is read
// to its end through a scanner that keeps only its top-level id and type,
// and reported as *oversized, so that the connection (and the other
// subscriptions on it) go on.
func (s *session) readFrame(buf *bytes.Buffer) ([]byte, *oversized, error) {
	_, r, err := s.ws.Reader(s.readCtx)
	if err != nil {
		return nil, nil, err
	}
	limit := s.c.h.cfg.MaxFrameBytes
	if buf.Cap() > 1<<20 {
		*buf = bytes.Buffer{} // don't keep one large frame's buffer for the connection's life
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if n <= limit {
		return buf.Bytes(), nil, nil
	}
	var sc frameScan
	sc.feed(buf.Bytes())
	total := n
	chunk := buf.Bytes()[:min(len(buf.Bytes()), 32<<10)]
	for {
		k, err := r.Read(chunk)
		sc.feed(chunk[:k])
		total += int64(k)
		s.lastRead.Store(time.Now().UnixNano())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if total > oversizeFactor*limit {
			return nil, &oversized{id: sc.id, typ: sc.typ, size: total}, errFrameTooLarge
		}
	}
	return nil, &oversized{id: sc.id, typ: sc.typ, size: total}, nil
}

// frameScan finds the top-level "id" and "type" string members of a JSON
// object fed to it in pieces, in constant memory, wherever they appear.
type frameScan struct {
	depth     int
	inStr     bool
	esc       bool
	isKey     bool // the string being read is a top-level key
	expectKey bool // the next top-level string is a key
	cur       []byte
	key       string // the last top-level key
	id, typ   string
}

// maxScanned bounds the top-level strings kept (ids and types are short).
const maxScanned = 128

func (sc *frameScan) feed(p []byte) {
	for _, c := range p {
		if sc.inStr {
			switch {
			case sc.esc:
				sc.esc = false
			case c == '\\':
				sc.esc = true
				continue
			case c == '"':
				sc.inStr = false
				if sc.depth == 1 {
					sc.endString()
				}
				continue
			}
			if sc.depth == 1 && len(sc.cur) < maxScanned {
				sc.cur = append(sc.cur, c)
			}
			continue
		}
		switch c {
		case '{', '[':
			sc.depth++
			if sc.depth == 1 {
				sc.expectKey = c == '{'
			}
		case '}', ']':
			sc.depth--
		case '"':
			sc.inStr, sc.cur = true, sc.cur[:0]
			sc.isKey = sc.depth == 1 && sc.expectKey
		case ':':
			if sc.depth == 1 {
				sc.expectKey = false
			}
		case ',':
			if sc.depth == 1 {
				sc.expectKey, sc.key = true, ""
			}
		}
	}
}

func (sc *frameScan) endString() {
	if sc.isKey {
		sc.key = string(sc.cur)
		return
	}
	switch sc.key {
	case "id":
		sc.id = string(sc.cur)
	case "type":
		sc.typ = string(sc.cur)
	}
}
