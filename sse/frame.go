package sse

import (
	"bytes"
	"time"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/fireboom/fireboom/event"
)

// Fixed byte sequences, encoded once with go-sse (see the package doc).
// They are package variables so that writing them allocates nothing.
var (
	sseDone      = message("", "done", []byte("done"))
	sseHeartbeat = marshal(func() *gosse.Message { m := &gosse.Message{}; m.AppendComment("ping"); return m }())
	jsonBeat     = []byte("\n")
	expiredJSON  = event.ErrorJSON("TokenExpired", "token expired")
	onceGoneJSON = []byte(`{"code":"Unavailable","message":"the server ended the request before a result; retry"}`)
	gapPrefix    = `{"errors":[{"message":"events were missed","extensions":{"code":"Gap"`
)

// appendSSE appends e's event-stream bytes: framed once per event (see
// event.Event.Frame) and shared by every client that writes it.
func appendSSE(b []byte, e *event.Event) []byte {
	return append(b, e.Frame(event.FormatSSE, encodeSSE)...)
}

// encodeSSE frames e with go-sse. A terminal event (Error or Done) is
// followed by the done event.
func encodeSSE(e *event.Event) []byte {
	switch e.Kind {
	case event.Next:
		return message(e.ID, "", e.Data)
	case event.Gap:
		return message(e.ID, "gap", e.Data)
	case event.Error:
		return append(message("", "", e.Data), sseDone...)
	case event.Done:
		return sseDone
	}
	return nil
}

// EncodeMessage encodes one SSE message with go-sse, as every stream of
// this package does: for the gateway's own SSE endpoints (/_/stats).
func EncodeMessage(id, typ string, data []byte) []byte { return message(id, typ, data) }

// EncodeRetry encodes a retry hint alone in its message, as the streams of
// this package end at shutdown.
func EncodeRetry(d time.Duration) []byte { return retryMessage(d) }

// message encodes one SSE message: id (left out when it is empty or not
// a valid single line), event type, and data split into one data: line
// per line of data as the WHATWG format requires (go-sse's AppendData).
func message(id, typ string, data []byte) []byte {
	m := &gosse.Message{}
	if id != "" {
		if v, err := gosse.NewID(id); err == nil {
			m.ID = v
		}
	}
	if typ != "" {
		m.Type = gosse.Type(typ)
	}
	m.AppendData(string(data))
	return marshal(m)
}

// retryMessage encodes "retry: <ms>\n\n": the reconnection delay for
// EventSource, alone in its message.
func retryMessage(d time.Duration) []byte {
	return marshal(&gosse.Message{Retry: max(d, time.Millisecond)})
}

func marshal(m *gosse.Message) []byte {
	b, _ := m.MarshalText() // writes to a bytes.Buffer: never fails
	return b
}

// appendJSON appends e's JSON-stream bytes, framed once per event like
// appendSSE.
func appendJSON(b []byte, e *event.Event) []byte {
	return append(b, e.Frame(event.FormatJSON, encodeJSON)...)
}

// encodeJSON frames e for the JSON stream. Done writes nothing.
func encodeJSON(e *event.Event) []byte {
	var b []byte
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
