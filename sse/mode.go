package sse

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// ErrInvalidFlag is returned by Flag (and so by ModeOf) for a boolean
// parameter whose value is not "true", "false" or empty; the gateway
// answers 400.
var ErrInvalidFlag = errors.New("invalid flag value")

// Flag reads the boolean query parameter name. This is the one rule for
// every boolean wg_ parameter (wg_sse, wg_subscribe_once, wg_live,
// wg_json_patch): absent means false; otherwise it must appear once, and
// "true" or no value at all (?wg_sse, as Cosmo and WunderGraph clients
// write it) means true, "false" means false. Anything else (wg_sse=1,
// wg_sse=TRUE, a repeated parameter) is an error wrapping ErrInvalidFlag
// rather than a guess. The error does not echo the value: it is client
// input.
func Flag(q url.Values, name string) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return false, nil
	}
	if len(vs) == 1 {
		switch vs[0] {
		case "true", "":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, fmt.Errorf("%w: %s must be true or false", ErrInvalidFlag, name)
}

// ModeOf chooses the output mode of a subscription request.
//
// wg_sse and wg_subscribe_once are read by Flag: "true" (or no value) or
// "false", any other value is an error wrapping ErrInvalidFlag.
//
// SSE is chosen by wg_sse=true or, when wg_sse is absent, by an Accept header
// containing text/event-stream (case-insensitive); an explicit wg_sse=false
// wins over Accept. wg_subscribe_once=true gives Once, or OnceSSE together
// with SSE. Everything else is JSON.
func ModeOf(r *http.Request) (Mode, error) {
	q := r.URL.Query()
	sse, err := Flag(q, ParamSSE)
	if err != nil {
		return 0, err
	}
	once, err := Flag(q, ParamOnce)
	if err != nil {
		return 0, err
	}
	if _, set := q[ParamSSE]; !set {
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

func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}
