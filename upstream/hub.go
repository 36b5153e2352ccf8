package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Hub errors.
var (
	// ErrTooManyConnections is returned by Subscribe when a new upstream
	// connection is needed but HubConfig.MaxConnections are open.
	ErrTooManyConnections = errors.New("upstream: too many connections")
	// ErrClosed is returned by Subscribe after Hub.Close.
	ErrClosed = errors.New("upstream: hub closed")
)

// HubConfig defaults.
const (
	DefaultInitTimeout                = 10 * time.Second
	DefaultKeepAlive                  = 15 * time.Second
	DefaultIdleTimeout                = 2 * time.Second
	DefaultMaxOperationsPerConnection = 100
	DefaultMaxFrameBytes              = 8 << 20
	DefaultWriteTimeout               = 10 * time.Second
	DefaultReconnectTimeout           = 30 * time.Second
	DefaultCompleteGrace              = 100 * time.Millisecond
)

// HubConfig configures a Hub. A zero field takes its default.
type HubConfig struct {
	// URL is the ws:// or wss:// subscription endpoint (required).
	URL string
	// InitTimeout bounds dial + connection_init until connection_ack
	// (default 10s).
	InitTimeout time.Duration
	// KeepAlive is the graphql-transport-ws ping interval; a connection with
	// no inbound frame for 2×KeepAlive is dead (default 15s).
	KeepAlive time.Duration
	// IdleTimeout closes a connection that carried no subscription for this
	// long (default 2s).
	IdleTimeout time.Duration
	// MaxOperationsPerConnection is the most subscriptions one connection
	// carries before another opens (default 100).
	MaxOperationsPerConnection int
	// MaxConnections caps open upstream connections; 0 means unlimited.
	// At the cap, a connection that carries no subscription is closed to
	// make room (a closing connection no longer counts).
	MaxConnections int
	// MaxFrameBytes is the read limit on one upstream frame (default 8 MiB);
	// a larger frame kills the connection.
	MaxFrameBytes int64
	// WriteTimeout bounds each frame written upstream (default 10s).
	WriteTimeout time.Duration
	// ReconnectTimeout is how long a connection that dropped without the
	// gateway asking is re-dialled (exponential backoff from 100ms to 5s,
	// with jitter) before its subscriptions end with UpstreamUnavailable
	// (default 30s; negative: never reconnect, end them at once). Its
	// subscriptions are re-sent on the new connection, and each one's sink
	// is told once with a gap of reason "reconnected".
	ReconnectTimeout time.Duration
	// CompleteGrace holds an upstream complete this long before the
	// clients see it (default 100ms; negative: none). A server shutting
	// down may complete every subscription just before it closes (gqlgen
	// does); when the connection drops within the grace those
	// subscriptions are resumed after the reconnect instead of ended.
	CompleteGrace time.Duration
	// OnReconnect, if set, is called after a connection was re-established
	// and its subscriptions re-sent (for example to fetch the upstream
	// schema again). It runs on the connection's goroutine: it must not
	// block.
	OnReconnect func()
	// HTTPClient dials the WebSocket; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives connection-level logs; nil means none. Header values
	// and payloads are never logged.
	Logger *slog.Logger
}

// HubStats is a snapshot of the hub's counters.
type HubStats struct {
	Connections   int64 // open (or opening) upstream connections
	Subscriptions int64 // live upstream subscriptions
	EventsIn      int64 // upstream next/data events received
	Reconnects    int64 // lost connections re-established (see ReconnectTimeout)
}

type counters struct {
	conns, subs, in, reconnects atomic.Int64
}

// Hub multiplexes GraphQL subscriptions over pooled upstream WebSocket
// connections. Each Subscription is a source of the topic layer.
type Hub struct {
	cfg    HubConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection goroutines
	st     counters

	mu     sync.RWMutex
	closed bool
	conns  map[string][]*conn // by connection identity; accepting new ops
	all    map[*conn]struct{} // every connection not yet finished
	connNo uint64
}

// NewHub validates cfg and makes a Hub. No connection opens until the first
// Subscribe.
func NewHub(cfg HubConfig) (*Hub, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss" && u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream: subscription URL must be ws:// or wss://")
	}
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxOperationsPerConnection <= 0 {
		cfg.MaxOperationsPerConnection = DefaultMaxOperationsPerConnection
	}
	if cfg.MaxConnections < 0 {
		return nil, fmt.Errorf("upstream: MaxConnections must not be negative")
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.ReconnectTimeout == 0 {
		cfg.ReconnectTimeout = DefaultReconnectTimeout
	}
	if cfg.CompleteGrace == 0 {
		cfg.CompleteGrace = DefaultCompleteGrace
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		cfg: cfg, log: log, ctx: ctx, cancel: cancel,
		conns: map[string][]*conn{}, all: map[*conn]struct{}{},
	}, nil
}

// Stats returns a snapshot of the hub's counters (zero on a nil Hub).
func (h *Hub) Stats() HubStats {
	if h == nil { // a gateway serving event sources alone has no hub
		return HubStats{}
	}
	return HubStats{
		Connections: h.st.conns.Load(), Subscriptions: h.st.subs.Load(),
		EventsIn: h.st.in.Load(), Reconnects: h.st.reconnects.Load(),
	}
}

// connForLocked finds a connection with room for one more operation or
// starts one. h.mu is held.
func (h *Hub) connForLocked(key string, hdr http.Header, init json.RawMessage) (*conn, error) {
	for _, c := range h.conns[key] {
		if len(c.ops) < h.cfg.MaxOperationsPerConnection {
			return c, nil
		}
	}
	if h.cfg.MaxConnections > 0 && !h.roomForConnLocked() {
		return nil, ErrTooManyConnections
	}
	h.connNo++
	c := newConn(h, h.connNo, key, hdr, init)
	h.conns[key] = append(h.conns[key], c)
	h.all[c] = struct{}{}
	h.st.conns.Add(1)
	h.wg.Add(1)
	go c.run()
	return c, nil
}

// roomForConnLocked reports whether another connection may open under
// MaxConnections. Connections that are closing (idle, or evicted) do not
// count: when the cap is reached it closes one that carries nothing (it
// would close after IdleTimeout anyway) to make room. h.mu is held.
func (h *Hub) roomForConnLocked() bool {
	n := 0
	var idle *conn
	for c := range h.all {
		if c.closing {
			continue
		}
		n++
		if len(c.ops) == 0 && idle == nil {
			idle = c
		}
	}
	if n < h.cfg.MaxConnections {
		return true
	}
	if idle == nil {
		return false
	}
	idle.closing = true
	h.unlistConnLocked(idle)
	idle.cancel()
	h.log.Debug("upstream connection idle, closed to make room", "conn", idle.no)
	return true
}

// unlistConnLocked stops c from taking new operations. h.mu is held.
func (h *Hub) unlistConnLocked(c *conn) {
	list := h.conns[c.key]
	for i, x := range list {
		if x == c {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(h.conns, c.key)
	} else {
		h.conns[c.key] = list
	}
}

// dropLocked removes o from its connection (once). h.mu is held.
func (h *Hub) dropLocked(o *op) {
	if o.c.ops[o.id] != o {
		return
	}
	delete(o.c.ops, o.id)
	o.c.kickIdle()
	h.st.subs.Add(-1)
}

// Close ends every subscription's sink with Done, completes the
// subscriptions upstream, closes the connections and waits for their
// goroutines. (The gateway stops the topics first, which completes them.)
// It is safe to call more than once.
func (h *Hub) Close() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.wg.Wait()
		return nil
	}
	h.closed = true
	var all []*op
	for c := range h.all {
		for _, o := range c.ops {
			all = append(all, o)
		}
	}
	h.mu.Unlock()
	for _, o := range all {
		if on := o.end(event.DoneEvent, nil, true); on != 0 {
			o.c.sendStop(o.id, on)
		}
	}
	h.cancel()
	h.wg.Wait()
	return nil
}

// canonicalHeader copies h with canonical keys, dropping empty ones.
func canonicalHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, v := range h {
		if len(v) == 0 {
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		out[ck] = append(out[ck], v...)
	}
	return out
}

// connIdentity serializes what makes two connections interchangeable: URL,
// headers (sorted keys) and init payload. It holds secrets: never log it.
func connIdentity(u string, h http.Header, init json.RawMessage) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(u)
	b.WriteByte(0)
	for _, k := range keys {
		b.WriteString(k)
		for _, v := range h[k] {
			b.WriteByte(1)
			b.WriteString(v)
		}
		b.WriteByte(2)
	}
	b.WriteByte(0)
	b.Write(init)
	return b.String()
}

func compactInit(p json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(p)) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, p); err != nil {
		return nil, fmt.Errorf("upstream: init payload: %w", err)
	}
	return buf.Bytes(), nil
}
