// Package sse writes one client's subscription stream: it drains an
// *event.Queue into an http.ResponseWriter in one of the output modes of
// CONTRACT §5, with heartbeats, write deadlines and a well-defined end. It
// knows nothing about the upstream, authentication or routing; the gateway
// decides everything that can fail with a plain status before it calls Serve.
//
// # Modes and flags
//
// ModeOf picks the mode from wg_sse, wg_subscribe_once and the Accept
// header. Every boolean wg_ query parameter (those two, and the gateway's
// wg_live and wg_json_patch) is read by Flag, the one rule: absent is false,
// otherwise exactly "true" or "false", given once; anything else is an error
// wrapping ErrInvalidFlag, which the gateway answers with 400.
//
// # Wire formats
//
// SSE (text/event-stream, also Cache-Control: no-cache and
// X-Accel-Buffering: no; headers are flushed before the first event).
// Every message is encoded with go-sse's Message (github.com/tmaxmax/go-sse),
// once per event and shared by every client of a topic (event.Event.Frame):
//
//	Next       id: <ID>\ndata: <Data>\n\n   (no id line when ID is empty)
//	Gap        id: <ID>\nevent: gap\ndata: <Data>\n\n   (no id line when ID is empty; the stream goes on)
//	Error      data: <Data>\n\nevent: done\ndata: done\n\n
//	cut-off    data: <the SlowConsumer error>\n\nretry: <ms>\n\n   (no done, see below)
//	Done       event: done\ndata: done\n\n
//	heartbeat  : ping\n\n
//	expiry     data: {"errors":[{"message":"token expired","extensions":{"code":"TokenExpired"}}]}\n\nevent: done\ndata: done\n\n
//	shutdown   retry: <ms>\n\n   (no done, see below)
//	lifetime   retry: <ms>\n\n   (then the response ends, see below)
//
// A Data value holding CR or LF is split into several data: lines, as the
// WHATWG event-stream format requires (results are compact JSON, which
// holds none); an ID holding CR or LF is not sent. The heartbeat is a
// comment with text because go-sse writes no empty comment; clients must
// not depend on a comment's text.
//
// The lifetime cap (Options.MaxLifetime) and shutdown deliberately end
// WITHOUT "done": clients that follow the contract close their EventSource
// on "done", which would turn a routine connection recycle, or a rolling
// restart of the gateway, into the end of the subscription.
// Without it EventSource reconnects after the retry hint and resumes with
// Last-Event-ID. A slow-consumer cut-off (an Error event whose code is
// SlowConsumer, pushed by an overflowing event.Queue) ends the same way,
// after the error event, for the same reason.
//
// JSON stream (application/x-ndjson, same cache headers, flushed at once):
//
//	Next       <Data>\n\n
//	Gap        {"errors":[{"message":"events were missed","extensions":{"code":"Gap",<Data's fields>}}]}\n\n
//	Error      <Data>\n\n and the response ends
//	Done       the response ends
//	heartbeat  \n
//	expiry     {"errors":[{"message":"token expired","extensions":{"code":"TokenExpired"}}]}\n\n and the end
//	shutdown   {"errors":[{"message":"the gateway is shutting down; reconnect","extensions":{"code":"ShuttingDown"}}]}\n\n and the end
//	lifetime   {"errors":[{..."code":"StreamLifetime"}}]}\n\n and the end
//
// The gap line is GraphQL-shaped so that a client which only knows
// {"data"}/{"errors"} results still sees something meaningful; the gap
// payload's fields (missed, lastEventId, reason) sit beside "code" in
// extensions. It does not end the stream. CR and LF bytes in Data are written
// as spaces: outside JSON strings they are insignificant whitespace and
// inside strings they can only appear escaped, so the value is unchanged and
// the framing holds.
//
// Once (application/json): nothing is written until the first result.
//
//	Next first   200, Content-Type: application/json, Data as the body
//	Error first  200, the error object as the body (GraphQL style)
//	Done first   204, no body
//	expiry       200, the TokenExpired error object as the body
//	shutdown or lifetime before any result: 503 with Retry-After (seconds)
//	and {"code":"Unavailable","message":"the server ended the request before a result; retry"}
//
// Once with SSE (OnceSSE): SSE headers at once, heartbeats while waiting,
// then the first result as one event followed by the done event. Errors,
// gaps, expiry and shutdown are written as in SSE mode.
//
// # Detached streams
//
// With Options.Detach set, an SSE or JSON stream over HTTP/1.1 outlives its
// handler: Serve flushes the headers through net/http, takes the connection
// over (http.ResponseController.Hijack) and hands the stream to the caller
// (Detach gets abort, and returns the func that receives the Result). The
// handler returns, and with it what net/http keeps per request: its
// goroutine's stack (8–16 KB), its background reader, and the connection's
// read, write and chunking buffers (10 KB). The body on the wire is the same
// chunked body; the response says "Connection: close" and the connection is
// closed when the stream ends. HTTP/2, Once modes and ResponseWriters that
// cannot hijack are served in the handler as before.
//
// A detached stream has no goroutine while it has nothing to write (see
// lazy.go). Events reach a caught-up client as direct writes (see direct.go)
// made by the topic's fan-out; a Watcher (Options.Watcher: one goroutine and
// one epoll instance for all streams, Linux) notices the client leaving;
// and whatever else needs the stream (an event queued behind a full socket,
// its timer for heartbeat, expiry and lifetime, shutdown, the client gone,
// abort) wakes it: a short-lived writer runs the same steps as the handler's
// loop and stops when nothing is left. An idle stream then costs its state
// only: about 6 KB of RSS in all, against 17 KB with a writer and a reader
// goroutine each, and 35 KB held by net/http. Without a Watcher, on other
// systems, or over TLS, a detached stream keeps a reader goroutine to notice
// its client leaving.
//
// # Hot path
//
// The writer takes every queued event at once (event.Queue.Take into a
// reused slice), copies each event's shared frame into one pooled buffer
// and writes the batch once: through net/http with one flush, or on a
// detached connection as one write (one writev past 4 KB: chunk header,
// batch, CRLF). The write deadline is re-armed only when less than half of
// WriteTimeout is left, and one timer serves the heartbeat, the token
// expiry and the lifetime cap, re-armed only when it fires: a delivered
// batch updates no timer. Waking a detached stream's writer costs the waker
// a few atomic operations and at most a goroutine start; it never waits for
// a client. In steady state this allocates nothing per delivered event.
package sse
