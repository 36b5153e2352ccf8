package event

import (
	"encoding/json"
	"sync/atomic"
)

// Kind says what an Event means to a client stream.
type Kind uint8

const (
	// Next is one GraphQL execution result; Data is its JSON.
	Next Kind = iota + 1
	// Error ends the stream with a GraphQL error object; Data is
	// {"errors":[...]}. It is always the last event of a queue.
	Error
	// Done ends the stream normally (the upstream completed). Data is empty.
	Done
	// Gap tells the client that events were missed. Data is a JSON object
	// describing the gap; the stream goes on after it.
	Gap
)

// String names the kind for logs and metrics.
func (k Kind) String() string {
	switch k {
	case Next:
		return "next"
	case Error:
		return "error"
	case Done:
		return "done"
	case Gap:
		return "gap"
	}
	return "unknown"
}

// Terminal reports whether an event of this kind ends the stream.
func (k Kind) Terminal() bool { return k == Error || k == Done }

// Event is one item on its way to a client. Events are shared by pointer
// between every client of one upstream subscription, so they are never
// modified after they were pushed.
type Event struct {
	Kind Kind
	// ID is the opaque resume id (SSE "id:" field); empty for events that
	// carry none (errors, done). A Gap's ID is the id the stream goes on
	// from (see NewGap), empty when unknown.
	ID string
	// Data is the event's JSON payload.
	Data []byte
	// Resumable marks a terminal Error after which the client is expected
	// to reconnect and resume with Last-Event-ID (a slow-consumer cut-off),
	// so a stream writer must not tell it the stream is done.
	Resumable bool
	// Patch, on a live query's result, is the same result as an RFC 6902
	// JSON Patch against the result before it (same ID), for the clients
	// that asked for patches; nil when there is none.
	Patch *Event

	// frames memoises the event's wire bytes, one slot per Format: an
	// event shared by many clients is framed once (see Frame).
	frames [numFormats]atomic.Pointer[[]byte]
}

// Format names a wire framing of an event (see Frame).
type Format uint8

// The formats a stream writer frames events in.
const (
	FormatSSE         Format = iota // text/event-stream
	FormatJSON                      // the JSON stream
	FormatSSEChunked                // text/event-stream as one HTTP/1.1 chunk
	FormatJSONChunked               // the JSON stream as one HTTP/1.1 chunk
	numFormats
)

// Frame returns the event's bytes in format f, calling encode to make them
// the first time and the same bytes ever after: every client of a topic
// writes one shared copy. The result must not be modified. Concurrent
// first calls may both encode; one result wins and is returned to both.
func (e *Event) Frame(f Format, encode func(*Event) []byte) []byte {
	if b := e.frames[f].Load(); b != nil {
		return *b
	}
	b := encode(e)
	if e.frames[f].CompareAndSwap(nil, &b) {
		return b
	}
	return *e.frames[f].Load()
}

// Size is what the event counts against a queue's byte limit.
func (e *Event) Size() int { return len(e.Data) + len(e.ID) + 16 }

// NewError builds a terminal Error event with one GraphQL error carrying an
// extensions.code, in the shape clients see:
// {"errors":[{"message":"...","extensions":{"code":"..."}}]}.
func NewError(code, message string) *Event {
	return &Event{Kind: Error, Data: ErrorJSON(code, message)}
}

// ErrorJSON renders {"errors":[{"message":message,"extensions":{"code":code}}]}.
func ErrorJSON(code, message string) []byte {
	type ext struct {
		Code string `json:"code"`
	}
	type gqlErr struct {
		Message    string `json:"message"`
		Extensions ext    `json:"extensions"`
	}
	b, _ := json.Marshal(struct {
		Errors []gqlErr `json:"errors"`
	}{[]gqlErr{{message, ext{code}}}})
	return b
}

// DoneEvent is the shared terminal event for a normal end.
var DoneEvent = &Event{Kind: Done}
