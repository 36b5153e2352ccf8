package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/internal/backoff"
)

// Subscription protocols: the values of upstream.subscriptionProtocol.
const (
	// ProtocolWS carries subscriptions over pooled WebSockets (Hub).
	ProtocolWS = "ws"
	// ProtocolSSE is GraphQL over SSE, the graphql-sse protocol's
	// "distinct connections" mode (GraphQL Yoga, Hot Chocolate,
	// graphql-sse): one POST per subscription, answered with
	// text/event-stream.
	ProtocolSSE = "sse"
	// ProtocolMultipart is Apollo's multipart HTTP subscription protocol
	// (Apollo Router): one POST per subscription, answered with
	// multipart/mixed parts holding {"payload": <result>}.
	ProtocolMultipart = "multipart"
)

// HTTPSubConfig defaults.
const (
	DefaultHTTPSubStartTimeout = 10 * time.Second
)

// The Accept headers of a subscription request. graphql-sse's handler
// streams only when Accept is exactly text/event-stream.
const (
	acceptSSE       = "text/event-stream"
	acceptMultipart = `multipart/mixed;subscriptionSpec="1.0", application/json`
)

// HTTPSubConfig configures subscriptions carried over HTTP (SSE or
// multipart). A zero field takes its default. One config serves every
// subscription of an upstream; it is not modified.
type HTTPSubConfig struct {
	// URL is the http(s) endpoint each subscription is POSTed to
	// (upstream.subscriptionUrl; required).
	URL string
	// Protocol is ProtocolSSE or ProtocolMultipart (required).
	Protocol string
	// Header holds the static upstream headers (upstream.headers).
	// Request.Header (the forwarded ones) goes on top.
	Header http.Header
	// StartTimeout bounds one request until its response headers, on
	// Open within its ctx and on every re-request (default 10s).
	StartTimeout time.Duration
	// ReconnectTimeout is how long a dropped stream is re-requested
	// (backoff from 100ms doubling to 5s, with jitter) before the
	// subscription ends with UpstreamUnavailable; the same setting as
	// HubConfig.ReconnectTimeout (default 30s; negative: never
	// re-request, end at once).
	ReconnectTimeout time.Duration
	// MaxFrameBytes is the read limit on one SSE event or one multipart
	// part (default 8 MiB, as HubConfig.MaxFrameBytes); a larger one ends
	// the subscription with UpstreamFrameTooLarge.
	MaxFrameBytes int64
	// IdleTimeout treats a stream that carried no byte, not even a
	// heartbeat, for this long as dropped, and re-requests it (0: off,
	// the default, as not every upstream sends heartbeats; GraphQL Yoga
	// and graphql-sse ping every 12s, Apollo Router every 5s, so 30s
	// suits them). A dead peer is found by TCP keep-alive regardless.
	IdleTimeout time.Duration
	// HTTPClient sends the requests (nil: http.DefaultClient, whose
	// transport speaks HTTP/2 to https upstreams that offer it, so that
	// the subscriptions to one upstream share one connection). It must
	// not set a Timeout: that would cut every stream.
	HTTPClient *http.Client
	// Logger receives stream-level logs; nil means none. Header values
	// and payloads are never logged.
	Logger *slog.Logger
	// Stats, if set, counts the subscriptions open now and the results
	// received (for fireboom_upstream_subscriptions and
	// fireboom_upstream_events_total); one Stats serves every
	// subscription of the config.
	Stats *HTTPSubStats
}

// HTTPSubStats are the counters of the subscriptions of one HTTPSubConfig.
type HTTPSubStats struct {
	Open   atomic.Int64 // subscriptions whose request was answered with a stream, not ended yet
	Events atomic.Int64 // results received
}

// withDefaults returns cfg with every zero field set to its default.
func (cfg HTTPSubConfig) withDefaults() HTTPSubConfig {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultHTTPSubStartTimeout
	}
	if cfg.ReconnectTimeout == 0 {
		cfg.ReconnectTimeout = DefaultReconnectTimeout
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// HTTPSubscription is one GraphQL subscription carried over HTTP, SSE or
// multipart: a source of events for the topic layer. It knows nothing of
// clients or ids; it writes results into an event.Sink.
//
// Each Open sends one request; the stream it answers is read by one
// goroutine that Open starts and stop waits for. A stream that drops (a
// reset connection, an end without the protocol's completion, a failed
// re-request) is requested again with backoff for up to ReconnectTimeout,
// and the sink is told with one Gap("reconnected") before the new
// stream's results.
type HTTPSubscription struct {
	cfg HTTPSubConfig
	req Request
}

// NewHTTPSubscription makes the subscription req as cfg says; nothing is
// sent before Open.
func NewHTTPSubscription(cfg HTTPSubConfig, req Request) *HTTPSubscription {
	return &HTTPSubscription{cfg: cfg.withDefaults(), req: req}
}

// Key is the subscription's identity: exactly what would be sent (URL,
// forwarded headers, query, operation name, variables). Equal keys are the
// same upstream subscription. It holds secrets: never log it.
func (s *HTTPSubscription) Key() string {
	body, _ := s.req.body() // a bad body fails Open; its key shares nothing
	return connIdentity(s.cfg.URL, canonicalHeader(s.req.Header), nil) + "\x00" + string(body)
}

// errNotStreaming is why a response that is not a stream and carries no
// GraphQL errors cannot serve the subscription.
var errNotStreaming = errors.New("upstream: subscription not answered with a stream")

// Open starts the subscription. It returns once the subscription is live
// upstream (the response arrived with status 200 and the protocol's
// streaming content type), or once the upstream refused it with GraphQL
// errors (a response that carries {"errors":[...]} instead of a stream,
// such as graphql-sse's 400 for a document that does not parse; the sink
// then gets them as its End), or with an error wrapping ErrUnavailable
// when the upstream cannot be reached or answers otherwise (the gateway
// answers 502). ctx (and StartTimeout) bound only the start. A protocol
// other than sse or multipart, or variables that are not JSON, are errors
// of their own.
//
// The sink is written only from the goroutine Open starts, never from
// within Open. stop ends the subscription: it cancels the request (which
// is how an HTTP subscription is completed upstream) and waits for that
// goroutine, which may be inside a Sink call: do not call stop while
// holding a lock the Sink takes. After stop returns, nothing more is
// written to sink. stop may be called more than once.
func (s *HTTPSubscription) Open(ctx context.Context, sink event.Sink) (stop func(), err error) {
	if s.cfg.Protocol != ProtocolSSE && s.cfg.Protocol != ProtocolMultipart {
		return nil, fmt.Errorf("upstream: subscription protocol %q is not carried over HTTP", s.cfg.Protocol)
	}
	body, err := s.req.body()
	if err != nil {
		return nil, err
	}
	// The stream outlives ctx, but keeps its values (trace ids).
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	startCtx, cancelStart := context.WithTimeout(ctx, s.cfg.StartTimeout)
	st, err := s.request(startCtx, runCtx, body)
	cancelStart()
	if err != nil {
		cancel()
		return nil, err
	}
	done := make(chan struct{})
	if c := s.cfg.Stats; c != nil {
		c.Open.Add(1)
	}
	go func() {
		defer close(done)
		if c := s.cfg.Stats; c != nil {
			defer c.Open.Add(-1)
		}
		s.run(runCtx, body, st, sink)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}, nil
}

// stream is one answered request: a live response body, or the upstream's
// refusal (final).
type stream struct {
	body     io.ReadCloser
	reader   io.Reader // body, through the idle watchdog when there is one
	cancel   context.CancelFunc
	idle     *time.Timer
	idled    atomic.Bool
	boundary string // multipart
	started  time.Time
	// final ends the subscription at once: the upstream refused it with
	// GraphQL errors.
	final *event.Event
}

func (st *stream) close() {
	if st.idle != nil {
		st.idle.Stop()
	}
	if st.cancel != nil {
		st.cancel()
	}
	if st.body != nil {
		st.body.Close()
	}
}

// request sends one subscription request. startCtx bounds it until the
// response headers (and a refusal's body) arrived; the stream then lives
// in runCtx. The error wraps ErrUnavailable.
func (s *HTTPSubscription) request(startCtx, runCtx context.Context, body []byte) (*stream, error) {
	reqCtx, cancelReq := context.WithCancel(runCtx)
	unwatch := context.AfterFunc(startCtx, cancelReq)
	fail := func(err error) (*stream, error) {
		unwatch()
		cancelReq()
		return nil, err
	}
	hr, err := newPost(reqCtx, s.cfg.URL, s.cfg.Header, s.req.Header, body)
	if err != nil {
		return fail(err)
	}
	if s.cfg.Protocol == ProtocolSSE {
		hr.Header.Set("Accept", acceptSSE)
	} else {
		hr.Header.Set("Accept", acceptMultipart)
	}
	resp, err := s.cfg.HTTPClient.Do(hr)
	if err != nil {
		if startCtx.Err() != nil && runCtx.Err() == nil {
			err = fmt.Errorf("no response within the start timeout: %w", context.Cause(startCtx))
		}
		return fail(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	st := &stream{body: resp.Body, reader: resp.Body, cancel: cancelReq, started: time.Now()}
	if ok := s.streaming(resp, st); !ok {
		// Read the refusal while startCtx still bounds it.
		st.final, err = s.refusal(resp)
		st.close()
		unwatch()
		if err != nil {
			return nil, err
		}
		return &stream{final: st.final}, nil
	}
	if !unwatch() {
		// startCtx ended as the headers came: the request is cancelled.
		st.close()
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(startCtx))
	}
	if d := s.cfg.IdleTimeout; d > 0 {
		st.idle = time.AfterFunc(d, func() {
			st.idled.Store(true)
			cancelReq()
		})
		st.reader = &idleReader{r: resp.Body, t: st.idle, d: d}
	}
	return st, nil
}

// streaming reports whether resp is the stream the protocol answers with,
// and notes the multipart boundary.
func (s *HTTPSubscription) streaming(resp *http.Response, st *stream) bool {
	if resp.StatusCode != http.StatusOK {
		return false
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		return false
	}
	switch s.cfg.Protocol {
	case ProtocolSSE:
		return mt == "text/event-stream"
	case ProtocolMultipart:
		if mt != "multipart/mixed" {
			return false
		}
		// The incremental delivery RFC's default; Apollo Router names
		// "graphql".
		st.boundary = "-"
		if b := params["boundary"]; b != "" {
			st.boundary = b
		}
		return true
	}
	return false
}

// refusal reads a response that is not a stream. One that carries GraphQL
// errors ({"errors":[...]} as JSON, or in the first event of an SSE body,
// as GraphQL Yoga sends with a 4xx status) is the upstream refusing the
// operation: it is returned as the final Error event, with the errors as
// sent. A server error (5xx, 408, 429), or any other answer, wraps
// ErrUnavailable: the gateway answers 502, or the re-request is tried
// again.
func (s *HTTPSubscription) refusal(resp *http.Response) (*event.Event, error) {
	limit := s.cfg.MaxFrameBytes
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: status %d: read body: %w", ErrUnavailable, resp.StatusCode, err)
	}
	retryable := resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout ||
		resp.StatusCode == http.StatusTooManyRequests
	if int64(len(data)) <= limit && !retryable {
		if errs := bodyErrors(resp.Header.Get("Content-Type"), data); errs != nil {
			return &event.Event{Kind: event.Error, Data: errs}, nil
		}
	}
	return nil, fmt.Errorf("%w: status %d, content type %q: %w", ErrUnavailable,
		resp.StatusCode, resp.Header.Get("Content-Type"), errNotStreaming)
}

// bodyErrors returns {"errors":[...]} (compacted) when body holds GraphQL
// errors, or nil.
func bodyErrors(contentType string, body []byte) []byte {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "text/event-stream" {
		for ev, err := range sseRead(bytes.NewReader(body), int64(len(body))) {
			if err != nil {
				return nil
			}
			if errs := resultErrors([]byte(ev.Data)); errs != nil {
				return errs
			}
		}
		return nil
	}
	return resultErrors(body)
}

// resultErrors returns {"errors":[...]} when b is a JSON object whose
// "errors" is a non-empty array, or nil.
func resultErrors(b []byte) []byte {
	var r struct {
		Errors json.RawMessage `json:"errors"`
	}
	if json.Unmarshal(b, &r) != nil || !nonEmptyArray(r.Errors) {
		return nil
	}
	return normalizeErrors(r.Errors)
}

func nonEmptyArray(b json.RawMessage) bool {
	var a []json.RawMessage
	return json.Unmarshal(b, &a) == nil && len(a) > 0
}

// run reads st, then every stream that replaces it, until the subscription
// ends or runCtx is cancelled (stop).
func (s *HTTPSubscription) run(ctx context.Context, body []byte, st *stream, sink event.Sink) {
	log := s.cfg.Logger
	deliver := sink.Next
	if c := s.cfg.Stats; c != nil {
		deliver = func(b []byte) {
			c.Events.Add(1)
			sink.Next(b)
		}
	}
	next := compacted(deliver, log)
	attempt := 0
	for {
		if st.final != nil {
			if ctx.Err() == nil {
				sink.End(st.final)
			}
			return
		}
		final, err := s.read(st, next)
		st.close()
		if ctx.Err() != nil {
			return
		}
		if final != nil {
			if final == frameTooLarge {
				log.Warn("upstream subscription result over the read limit", "protocol", s.cfg.Protocol,
					"limit", s.cfg.MaxFrameBytes)
			}
			sink.End(final)
			return
		}
		if st.idled.Load() {
			err = fmt.Errorf("no byte for %s (idle timeout)", s.cfg.IdleTimeout)
		}
		// A stream that did not last is a flapping upstream: keep backing
		// off instead of starting again at the shortest delay.
		if time.Since(st.started) >= backoff.Max {
			attempt = 0
		}
		st, attempt, final = s.reconnect(ctx, body, err, attempt)
		switch {
		case ctx.Err() != nil:
			if st != nil {
				st.close()
			}
			return
		case final != nil:
			sink.End(final)
			return
		case st.final == nil:
			sink.Gap("reconnected")
		}
	}
}

// compacted returns a next that passes each result on to deliver on one
// line (json.Compact, as the WebSocket path does), and drops one that is
// not JSON.
func compacted(deliver func([]byte), log *slog.Logger) func([]byte) {
	return func(raw []byte) {
		var buf bytes.Buffer
		buf.Grow(len(raw))
		if err := json.Compact(&buf, raw); err != nil {
			log.Warn("upstream sent a result that is not JSON; dropped", "err", err)
			return
		}
		deliver(buf.Bytes())
	}
}

// read reads one stream until it ends. It returns the final event when the
// stream ended the subscription (completed, refused, too large), or nil
// and why the stream was lost.
func (s *HTTPSubscription) read(st *stream, next func([]byte)) (*event.Event, error) {
	if s.cfg.Protocol == ProtocolSSE {
		return readSSE(st.reader, s.cfg.MaxFrameBytes, next, s.cfg.Logger)
	}
	return readMultipart(st.reader, st.boundary, s.cfg.MaxFrameBytes, next, s.cfg.Logger)
}

// reconnect requests the subscription again, with backoff, until
// ReconnectTimeout has passed since the loss. It returns the new stream, or
// the final event past the timeout, or neither when ctx was cancelled.
func (s *HTTPSubscription) reconnect(ctx context.Context, body []byte, cause error, attempt int) (*stream, int, *event.Event) {
	log := s.cfg.Logger
	timeout := s.cfg.ReconnectTimeout
	if timeout < 0 {
		log.Warn("upstream subscription stream lost", "protocol", s.cfg.Protocol, "err", cause)
		return nil, attempt, event.NewError("UpstreamUnavailable", "the upstream connection was lost")
	}
	lost := time.Now()
	deadline := lost.Add(timeout)
	log.Warn("upstream subscription stream lost; re-requesting", "protocol", s.cfg.Protocol,
		"err", cause, "timeout", timeout.String())
	last := cause
	for ; ; attempt++ {
		t := time.NewTimer(max(min(backoff.Delay(attempt), time.Until(deadline)), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, attempt, nil
		case <-t.C:
		}
		left := time.Until(deadline)
		if left <= 0 {
			log.Warn("upstream did not come back; ending the subscription", "protocol", s.cfg.Protocol,
				"after", timeout.String(), "err", last)
			return nil, attempt, event.NewError("UpstreamUnavailable",
				fmt.Sprintf("the upstream connection was lost and did not come back within %s", timeout))
		}
		startCtx, cancel := context.WithTimeout(ctx, min(s.cfg.StartTimeout, left))
		st, err := s.request(startCtx, ctx, body)
		cancel()
		if err == nil {
			log.Info("upstream subscription re-requested", "protocol", s.cfg.Protocol, "attempts", attempt+1,
				"after", time.Since(lost).Round(time.Millisecond).String())
			return st, attempt + 1, nil
		}
		if ctx.Err() != nil {
			return nil, attempt, nil
		}
		last = err
		log.Debug("upstream subscription re-request failed", "protocol", s.cfg.Protocol, "attempt", attempt+1, "err", err)
	}
}

// idleReader re-arms the idle watchdog t on every read that brought bytes.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.t.Reset(ir.d)
	}
	return n, err
}
