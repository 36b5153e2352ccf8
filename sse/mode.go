package sse

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Mode is the output format of one stream.
type Mode int

const (
	// SSE is a text/event-stream.
	SSE Mode = iota + 1
	// JSON is a stream of JSON values, each followed by a blank line
	// (application/x-ndjson).
	JSON
	// Once answers the first result as a plain application/json response.
	Once
	// OnceSSE is an event stream that carries the first result and then done.
	OnceSSE
)

// String names the mode for logs and metrics.
func (m Mode) String() string {
	switch m {
	case SSE:
		return "sse"
	case JSON:
		return "json"
	case Once:
		return "once"
	case OnceSSE:
		return "once-sse"
	}
	return "unknown"
}

// Query parameters that choose the mode.
const (
	ParamSSE  = "wg_sse"
	ParamOnce = "wg_subscribe_once"
)

// ErrInvalidFlag is returned by ModeOf for a mode parameter whose value is
// not a boolean; the gateway answers 400.
var ErrInvalidFlag = errors.New("invalid flag value")

// ModeOf chooses the output mode of a subscription request.
//
// wg_sse and wg_subscribe_once are booleans: present without a value
// (?wg_sse or ?wg_sse=) means true, as in WunderGraph; otherwise the value is
// read by strconv.ParseBool (true/false, 1/0, t/f, TRUE/FALSE, ...). Any other
// value is an error wrapping ErrInvalidFlag. Only a parameter's first value
// counts.
//
// SSE is chosen by wg_sse=true or, when wg_sse is absent, by an Accept header
// containing text/event-stream (case-insensitive); an explicit wg_sse=false
// wins over Accept. wg_subscribe_once=true gives Once, or OnceSSE together
// with SSE. Everything else is JSON.
func ModeOf(r *http.Request) (Mode, error) {
	q := r.URL.Query()
	sse, set, err := flag(q, ParamSSE)
	if err != nil {
		return 0, err
	}
	once, _, err := flag(q, ParamOnce)
	if err != nil {
		return 0, err
	}
	if !set {
		sse = acceptsEventStream(r.Header)
	}
	switch {
	case once && sse:
		return OnceSSE, nil
	case once:
		return Once, nil
	case sse:
		return SSE, nil
	}
	return JSON, nil
}

func flag(q map[string][]string, name string) (value, set bool, err error) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return false, false, nil
	}
	if vs[0] == "" {
		return true, true, nil
	}
	b, perr := strconv.ParseBool(vs[0])
	if perr != nil {
		// The raw value is not echoed back: it is client input.
		return false, true, fmt.Errorf("%w: %s must be true or false", ErrInvalidFlag, name)
	}
	return b, true, nil
}

func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}
