package sse

import (
	"bytes"
	"strconv"

	"github.com/fireboom/fireboom/event"
)

// Fixed byte sequences. They are package variables so that writing them
// allocates nothing.
var (
	sseDone      = []byte("event: done\ndata: done\n\n")
	sseHeartbeat = []byte(":\n\n")
	jsonBeat     = []byte("\n")
	expiredJSON  = event.ErrorJSON("TokenExpired", "token expired")
	onceGoneJSON = []byte(`{"code":"Unavailable","message":"the server ended the request before a result; retry"}`)
	gapPrefix    = `{"errors":[{"message":"events were missed","extensions":{"code":"Gap"`
)

// appendSSE frames e as event-stream bytes. A terminal event (Error or Done)
// is followed by the done event.
func appendSSE(b []byte, e *event.Event) []byte {
	switch e.Kind {
	case event.Next:
		if e.ID != "" && !hasNewline(e.ID) {
			b = append(b, "id: "...)
			b = append(b, e.ID...)
			b = append(b, '\n')
		}
		b = appendData(b, e.Data)
		return append(b, '\n')
	case event.Gap:
		if e.ID != "" && !hasNewline(e.ID) {
			b = append(b, "id: "...)
			b = append(b, e.ID...)
			b = append(b, '\n')
		}
		b = append(b, "event: gap\n"...)
		b = appendData(b, e.Data)
		return append(b, '\n')
	case event.Error:
		b = appendData(b, e.Data)
		b = append(b, '\n')
		return append(b, sseDone...)
	case event.Done:
		return append(b, sseDone...)
	}
	return b
}

func hasNewline(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return true
		}
	}
	return false
}

// appendData writes data as one "data:" line per line of data; CR, LF and
// CRLF all end a line, as the WHATWG parser reads them.
func appendData(b, data []byte) []byte {
	if bytes.IndexByte(data, '\n') < 0 && bytes.IndexByte(data, '\r') < 0 {
		b = append(b, "data: "...)
		b = append(b, data...)
		return append(b, '\n')
	}
	for {
		b = append(b, "data: "...)
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			b = append(b, data...)
			return append(b, '\n')
		}
		b = append(b, data[:i]...)
		b = append(b, '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
}

// appendJSON frames e for the JSON stream. Done writes nothing.
func appendJSON(b []byte, e *event.Event) []byte {
	switch e.Kind {
	case event.Next, event.Error:
		b = appendLine(b, e.Data)
	case event.Gap:
		b = append(b, gapPrefix...)
		// e.Data is a JSON object: splice its members in after "code".
		if d := bytes.TrimSpace(e.Data); len(d) > 2 && d[0] == '{' && d[len(d)-1] == '}' {
			if inner := bytes.TrimSpace(d[1 : len(d)-1]); len(inner) > 0 {
				b = append(b, ',')
				b = appendLine(b, inner)
				b = b[:len(b)-2] // appendLine's blank line
			}
		}
		b = append(b, "}}]}\n\n"...)
	}
	return b
}

// appendLine writes one JSON value and a blank line. Raw CR/LF can only be
// insignificant whitespace in valid JSON, so they become spaces.
func appendLine(b, data []byte) []byte {
	n := len(b)
	b = append(b, data...)
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		for i := n; i < len(b); i++ {
			if b[i] == '\n' || b[i] == '\r' {
				b[i] = ' '
			}
		}
	}
	return append(b, '\n', '\n')
}

// appendRetry writes "retry: <ms>\n\n".
func appendRetry(b []byte, ms int64) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, max(ms, 0), 10)
	return append(b, '\n', '\n')
}
