package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/sse"
	"github.com/fireboom/fireboom/upstream"
)

// indexEntry is one operation in GET /operations.
type indexEntry struct {
	Name                   string          `json:"name"`
	Path                   string          `json:"path"`
	Kind                   string          `json:"kind"`
	Method                 string          `json:"method"`
	Variables              json.RawMessage `json:"variables"`
	RequiresAuthentication bool            `json:"requiresAuthentication"`
	RBAC                   *auth.Policy    `json:"rbac,omitempty"`
	Live                   bool            `json:"live,omitempty"`
}

// handleIndex lists the operations (GET or HEAD; any other method is a
// JSON 405, as everywhere under /operations).
func (g *Gateway) handleIndex(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		newError(http.StatusMethodNotAllowed, codeMethodNotAllowed, "the index is read with GET").with("Allow", "GET, HEAD").write(w)
		return
	}
	reg := g.reg.Load()
	list := []indexEntry{}
	for _, ep := range reg.sorted() {
		e := indexEntry{
			Name:                   ep.Name,
			Path:                   "/operations/" + ep.Name,
			Kind:                   string(ep.Kind),
			Method:                 http.MethodGet,
			Variables:              ep.VariablesSchema,
			RequiresAuthentication: ep.RequiresAuth,
			Live:                   ep.Kind == operation.Query && ep.live > 0,
		}
		if ep.Kind == operation.Mutation {
			e.Method = http.MethodPost
		}
		if !ep.policy.IsZero() {
			p := ep.policy
			e.RBAC = &p
		}
		list = append(list, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": list})
}

// handleReady answers 200 when the upstream and every event source are
// reachable and the operations are loaded, else 503 naming what is not (also once a graceful shutdown began,
// so that a load balancer stops sending new clients).
func (g *Gateway) handleReady(w http.ResponseWriter, _ *http.Request) {
	unavailable := func(reason string) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": reason})
	}
	reg := g.reg.Load()
	switch {
	case g.shuttingDown():
		unavailable("shutting down")
	case g.engine != nil && !g.engine.Available():
		unavailable(clusterUnavailable)
	case reg.schema == nil:
		unavailable("the upstream schema is not loaded yet")
	case g.cfg.HasUpstream() && !g.ready.upstreamUp(g.client):
		unavailable("the upstream is unreachable")
	case g.sources != nil && g.sources.Ready() != nil:
		unavailable(g.sources.Ready().Error())
	case g.shuttingDown(): // began while the probe waited
		unavailable("shutting down")
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "operations": len(reg.endpoints)})
	}
}

func (g *Gateway) shuttingDown() bool {
	select {
	case <-g.shutdown:
		return true
	default:
		return false
	}
}

// readyTTL is how long /ready reuses its upstream probe.
const readyTTL = time.Second

// readyProbe asks the upstream for __typename on behalf of /ready, at most
// once per readyTTL: /ready is public, and a crowd of probes (or anyone)
// must not turn into a crowd of upstream queries. Probes arriving while one
// is in flight wait for its answer.
type readyProbe struct {
	mu sync.Mutex
	at time.Time // when the last probe answered; zero: never
	up bool
}

func (p *readyProbe) upstreamUp(c *upstream.Client) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < readyTTL {
		return p.up
	}
	// Not the request's context: the answer serves every waiting probe.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, status, err := c.Do(ctx, upstream.Request{Query: "query Ready { __typename }", OperationName: "Ready"})
	p.up, p.at = err == nil && status/100 == 2, time.Now()
	return p.up
}

// handleInfo tells the dashboard how this gateway authenticates.
func (g *Gateway) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"dev":          g.cfg.Dev,
		"tokenMinting": g.cfg.Dev && g.cfg.Auth.JWT.Secret != "",
		"auth": map[string]string{
			"cookie":     g.cfg.Auth.Cookie,
			"queryParam": *g.cfg.Auth.QueryParam,
		},
	})
}

// handleMintToken signs a development token. The route exists only with
// "dev": true and an HMAC secret.
func (g *Gateway) handleMintToken(w http.ResponseWriter, r *http.Request) {
	// Only the dashboard on this very origin may mint: a JSON body (a
	// cross-site form cannot send one without a CORS preflight, which this
	// route never grants) and no cross-site fetch metadata.
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") || !sameOrigin(r) {
		newError(http.StatusForbidden, codeForbidden, "tokens are minted only for same-origin JSON requests").write(w)
		return
	}
	var in struct {
		Sub    string         `json:"sub"`
		Roles  []string       `json:"roles"`
		Claims map[string]any `json:"claims"`
		TTL    string         `json:"ttl"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil || strings.TrimSpace(in.Sub) == "" {
		newError(http.StatusBadRequest, codeInput, `expected {"sub": "...", "roles": [...], "claims": {...}, "ttl": "1h"}`).write(w)
		return
	}
	ttl := time.Hour
	if in.TTL != "" {
		d, err := time.ParseDuration(in.TTL)
		if err != nil || d <= 0 || d > 30*24*time.Hour {
			newError(http.StatusBadRequest, codeInput, "ttl must be a duration between 1s and 720h").write(w)
			return
		}
		ttl = d
	}
	tok, err := auth.Mint(AuthConfig(g.cfg), in.Sub, in.Roles, in.Claims, ttl)
	if err != nil {
		newError(http.StatusBadRequest, codeInput, err.Error()).write(w)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// statsTimeFormat is RFC 3339 with milliseconds: ticks one second apart can
// fall in the same wall-clock second, and the dashboard divides by the
// difference of two samples' times.
const statsTimeFormat = "2006-01-02T15:04:05.000Z07:00"

// sameOrigin reports whether a browser request comes from the gateway's own
// origin (requests without Origin or fetch metadata, like curl's, pass).
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// handleStats streams the dashboard's live figures as SSE, one event per
// second: open streams, upstream connections and subscriptions, and the
// event totals (the dashboard derives rates).
func (g *Gateway) handleStats(w http.ResponseWriter, r *http.Request) {
	// A stats stream holds a connection like any other stream: it counts
	// against the same limits (it is public, so per client IP).
	release, aerr := g.admitStream(r, nil)
	if aerr != nil {
		aerr.write(w)
		return
	}
	defer release()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s, ts := g.hub.Stats(), g.topics.Stats("")
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		sample := fmt.Appendf(nil, `{"openStreams":%d,"upstreamConnections":%d,"upstreamSubscriptions":%d,"eventsIn":%d,"eventsOut":%d%s,"time":%q}`,
			g.streams.Load(), s.Connections, g.upstreamSubscriptions(), g.upstreamEvents(), ts.EventsOut, g.clusterStats(), time.Now().UTC().Format(statsTimeFormat))
		if _, err := w.Write(sse.EncodeMessage("", "", sample)); err != nil || rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-g.shutdown:
			// As every SSE stream: a retry hint and no done, so the
			// dashboard reconnects to the next instance.
			_, _ = w.Write(sse.EncodeRetry(sse.DefaultRetry))
			_ = rc.Flush()
			return
		case <-t.C:
		}
	}
}
