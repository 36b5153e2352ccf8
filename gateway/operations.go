package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/sse"
	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream"
)

// Reserved query parameters: never variables.
var reservedParams = map[string]bool{
	"wg_sse": true, "wg_subscribe_once": true, "wg_live": true, "wg_variables": true,
	"wg_json_patch": true, "wg_last_event_id": true,
}

// call is one authorized request for an operation, with its variables
// built: everything that is decided before anything is sent upstream.
type call struct {
	ep  *endpoint
	id  *auth.Identity
	req upstream.Request
	flags
}

// handleOperation serves /operations/<name> for every kind of operation.
// Every failure is answered here, with a plain status, before any stream
// byte is written.
func (g *Gateway) handleOperation(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c, aerr := g.prepare(w, r)
	if aerr != nil {
		switch aerr.Code {
		case codeUnauthorized:
			g.met.authFailures.WithLabelValues(aerr.reason()).Inc()
		case codeForbidden:
			g.met.authFailures.WithLabelValues("forbidden").Inc()
		}
		aerr.write(w)
		return
	}
	switch {
	case c.ep.Event != nil && c.ep.Event.Publish:
		g.servePublish(w, r, c)
	case c.ep.Event != nil:
		g.serveEventSubscription(w, r, c)
	case c.ep.Kind == operation.Subscription:
		g.serveSubscription(w, r, c)
	default:
		g.serveQuery(w, r, c, start)
	}
}

// prepare resolves the endpoint, the identity and the variables.
func (g *Gateway) prepare(w http.ResponseWriter, r *http.Request) (*call, *apiError) {
	name := strings.TrimPrefix(r.URL.Path, "/operations/")
	reg := g.reg.Load()
	ep := reg.endpoints[name]
	if ep == nil {
		if reg.pending[name] {
			return nil, newError(http.StatusBadGateway, codeUnavailable, "the upstream schema is not available yet; retrying")
		}
		return nil, newError(http.StatusNotFound, codeNotFound, "no operation named "+quote(name))
	}
	method := http.MethodGet
	if ep.Kind == operation.Mutation {
		method = http.MethodPost
	}
	// HEAD is a GET without a body: fine for a query, meaningless for a
	// stream (it would open an upstream subscription and send its body).
	fl, ferr := readFlags(r)
	headOK := ep.Kind == operation.Query && !fl.live
	if r.Method != method && !(headOK && r.Method == http.MethodHead) {
		allow := method
		if headOK {
			allow = "GET, HEAD"
		}
		return nil, newError(http.StatusMethodNotAllowed, codeMethodNotAllowed,
			ep.Name+" is a "+string(ep.Kind)+": use "+method).with("Allow", allow)
	}
	id, aerr := g.identify(r, ep)
	if aerr != nil {
		return nil, aerr
	}
	if ferr != nil {
		return nil, variablesError(ferr)
	}
	vars, err := g.variables(w, r, ep)
	if err == nil && len(ep.Claims) > 0 {
		vars, err = ep.InjectClaims(vars, claimLookup(id))
	}
	if err != nil {
		return nil, variablesError(err)
	}
	return &call{ep: ep, id: id, req: g.upstreamRequest(r, ep, id, vars), flags: fl}, nil
}

// variables reads the request's variables: query parameters for GET, the
// JSON body for POST.
func (g *Gateway) variables(w http.ResponseWriter, r *http.Request, ep *endpoint) (json.RawMessage, error) {
	if r.Method != http.MethodPost {
		if r.ContentLength != 0 {
			// Never read: a stream would leave it pending for net/http to
			// discard after the stream, with no deadline.
			return nil, &operation.InputError{
				Message: "a " + r.Method + " request has no body: variables go in the query string",
				Errors:  []operation.FieldError{{PropertyPath: "/", Message: "unexpected request body"}},
			}
		}
		return ep.VariablesFromQuery(r.URL.Query(), g.reserved)
	}
	// Variables of a POST come from the body only: a query parameter that
	// is not reserved is an error, not silently dropped.
	q := r.URL.Query()
	for name := range q {
		if !g.reserved(name) {
			return nil, &operation.InputError{
				Message: "unknown query parameter " + quote(name) + ": a POST takes its variables from the JSON body",
				Errors:  []operation.FieldError{{PropertyPath: "/" + name, Message: "unknown query parameter"}},
			}
		}
	}
	limit := g.settings().Limits.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit} // refused before reading
	}
	// Read within the deadline bodyDeadline set, then clear it.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return nil, err
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return ep.VariablesFromJSON(body)
}

func (g *Gateway) reserved(name string) bool {
	return reservedParams[name] || (name == *g.cfg.Auth.QueryParam && name != "")
}

// variablesError maps a variables failure to its answer.
func variablesError(err error) *apiError {
	var tooLarge *http.MaxBytesError
	var input *operation.InputError
	switch {
	case errors.As(err, &tooLarge):
		return newError(http.StatusRequestEntityTooLarge, codeTooLarge, "the request body is larger than limits.maxBodyBytes")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return newError(http.StatusRequestTimeout, codeTimeout, "the request body did not arrive in time")
	case errors.Is(err, operation.ErrClaimMissing):
		return claimMissing()
	case errors.As(err, &input):
		e := newError(http.StatusBadRequest, codeInput, input.Message)
		e.Errors = input.Errors
		return e
	}
	return newError(http.StatusBadRequest, codeInput, "could not read the variables")
}

// serveQuery POSTs a query or mutation upstream and relays the answer.
func (g *Gateway) serveQuery(w http.ResponseWriter, r *http.Request, c *call, start time.Time) {
	if c.live {
		g.serveLive(w, r, c)
		return
	}
	body, status, err := g.client.Do(r.Context(), c.req)
	g.met.queryDuration.WithLabelValues(c.ep.Name, string(c.ep.Kind)).Observe(time.Since(start).Seconds())
	if err != nil {
		if r.Context().Err() == nil {
			g.log.Warn("upstream request failed", "operation", c.ep.Name, "err", err)
			newError(http.StatusBadGateway, codeUnavailable, "the upstream could not be reached").write(w)
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serveSubscription joins (or opens) the topic of the upstream
// subscription and streams it to the client in the requested mode.
func (g *Gateway) serveSubscription(w http.ResponseWriter, r *http.Request, c *call) {
	src, key, err := g.subscription(c.req)
	if err != nil {
		g.log.Warn("subscription could not be prepared", "operation", c.ep.Name, "err", err)
		newError(http.StatusBadGateway, codeUnavailable, "the upstream could not be reached").write(w)
		return
	}
	spec := topic.Spec{Kind: kindSubscription, Source: src, Replay: g.settings().Subscriptions.ReplayBuffer}
	if c.ep.dedup {
		spec.Key = key
	}
	g.openStream(w, r, c, spec, topic.JoinOptions{ReplayLast: c.ep.replayLast, LastEventID: lastEventID(r)})
}

// upstreamSubscriptions and upstreamEvents count the subscriptions this
// instance has open upstream and the results they brought, whatever the
// protocol (in a cluster, not those other instances run).
func (g *Gateway) upstreamSubscriptions() int64 {
	return g.hub.Stats().Subscriptions + g.httpSubStats.Open.Load()
}

func (g *Gateway) upstreamEvents() int64 {
	return g.hub.Stats().EventsIn + g.httpSubStats.Events.Load()
}

// subscription makes the source of one upstream subscription, over the
// upstream's subscription protocol (WebSocket, SSE or multipart), and its
// topic key.
func (g *Gateway) subscription(req upstream.Request) (topic.Source, string, error) {
	if g.httpSubs != nil {
		s := upstream.NewHTTPSubscription(*g.httpSubs, req)
		return s, s.Key(), nil
	}
	s, err := g.hub.Subscription(req)
	if err != nil {
		return nil, "", err
	}
	return s, s.Key(), nil
}

// Topic kinds, as labelled in topic stats.
const (
	kindSubscription = "subscription"
	kindLive         = "live"
	kindSource       = "source"
)

func lastEventID(r *http.Request) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return r.URL.Query().Get("wg_last_event_id")
}

// flags are what the request's wg_ parameters ask for.
type flags struct {
	live  bool     // wg_live: stream a query as a live query
	patch bool     // wg_json_patch: send RFC 6902 patches on a live query
	mode  sse.Mode // wg_sse, wg_subscribe_once and Accept: how a stream is written
}

// readFlags checks every boolean wg_ parameter by sse.Flag, the one rule
// ("true", "false" or no value), and reads what they ask for.
func readFlags(r *http.Request) (flags, error) {
	q := r.URL.Query()
	var f flags
	for _, p := range []struct {
		name string
		dst  *bool // nil: checked here, read by sse.ModeOf below
	}{
		{sse.ParamSSE, nil}, {sse.ParamOnce, nil},
		{"wg_live", &f.live}, {"wg_json_patch", &f.patch},
	} {
		v, err := sse.Flag(q, p.name)
		if err != nil {
			return flags{}, &operation.InputError{Message: p.name + " must be true or false",
				Errors: []operation.FieldError{{PropertyPath: "/" + p.name, Message: "expected true or false"}}}
		}
		if p.dst != nil {
			*p.dst = v
		}
	}
	f.mode, _ = sse.ModeOf(r) // its flags passed sse.Flag above: no error
	return f, nil
}

func quote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
