package upstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
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
	DefaultReplayBuffer               = 256
	DefaultMaxFrameBytes              = 8 << 20
	DefaultWriteTimeout               = 10 * time.Second
	DefaultReconnectTimeout           = 30 * time.Second
	DefaultCompleteGrace              = 100 * time.Millisecond
	DefaultResumeHold                 = 5 * time.Second
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
	// ReplayBuffer is how many recent events each shared subscription keeps
	// for Last-Event-ID resume (default 256).
	ReplayBuffer int
	// MaxFrameBytes is the read limit on one upstream frame (default 8 MiB);
	// a larger frame kills the connection.
	MaxFrameBytes int64
	// WriteTimeout bounds each frame written upstream (default 10s).
	WriteTimeout time.Duration
	// ResumeHold is how long a shared subscription outlives its last
	// client when that client was cut off as a slow consumer or suspended
	// (Subscription.Suspend: the gateway ended its stream at the lifetime
	// cap), so that its reconnect resumes from the replay ring (default
	// 5s; negative: complete at once).
	ResumeHold time.Duration
	// ReconnectTimeout is how long a connection that dropped without the
	// gateway asking is re-dialled (exponential backoff from 100ms to 5s,
	// with jitter) before its subscriptions end with UpstreamUnavailable
	// (default 30s; negative: never reconnect, end them at once). Its
	// subscriptions are re-sent on the new connection with the same shared
	// subscriptions and client queues; each client is told once with an
	// event.Gap of reason "reconnected", and event ids go on.
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
	Clients       int64 // client queues attached
	EventsIn      int64 // upstream next/data events received
	EventsOut     int64 // events pushed into client queues
	Cut           int64 // clients cut off as slow consumers (or found closed)
	Dropped       int64 // pushes that dropped older events (DropOldest)
	Reconnects    int64 // lost connections re-established (see ReconnectTimeout)
}

type counters struct {
	conns, subs, clients, in, out, cut, dropped, reconnects atomic.Int64
}

// SubscribeOptions tune one client's subscription.
type SubscribeOptions struct {
	// Dedup joins an identical live upstream subscription instead of
	// starting another.
	Dedup bool
	// ReplayLast gives a client joining a live subscription its most
	// recent event first.
	ReplayLast bool
	// LastEventID resumes after that event from the replay ring, or starts
	// with one event.Gap when it can't.
	LastEventID string
	// Queue bounds the client's queue.
	Queue event.Limits
}

// Hub multiplexes GraphQL subscriptions over pooled upstream WebSocket
// connections and fans their events out to client queues.
type Hub struct {
	cfg    HubConfig
	log    *slog.Logger
	salt   string // random per hub: incarnations differ across restarts
	incs   atomic.Uint64
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection goroutines
	st     counters

	mu     sync.RWMutex
	closed bool
	conns  map[string][]*conn // by connection identity; accepting new ops
	all    map[*conn]struct{} // every connection not yet finished
	shared map[string]*shared // dedup index by subscription identity
	// completed keeps normally completed shared subscriptions for
	// ResumeHold, by subscription identity (see keepCompletedLocked).
	completed map[string]completedSub
	connNo    uint64
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
	if cfg.ReplayBuffer <= 0 {
		cfg.ReplayBuffer = DefaultReplayBuffer
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
	if cfg.ResumeHold == 0 {
		cfg.ResumeHold = DefaultResumeHold
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	// 36^5 <= salt < 36^6: always six base36 digits.
	salt := 60466176 + binary.LittleEndian.Uint64(rb[:])%(2176782336-60466176)
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		cfg: cfg, log: log, salt: strconv.FormatUint(salt, 36),
		ctx: ctx, cancel: cancel,
		conns: map[string][]*conn{}, all: map[*conn]struct{}{}, shared: map[string]*shared{},
		completed: map[string]completedSub{},
	}, nil
}

// Stats returns a snapshot of the hub's counters.
func (h *Hub) Stats() HubStats {
	return HubStats{
		Connections: h.st.conns.Load(), Subscriptions: h.st.subs.Load(), Clients: h.st.clients.Load(),
		EventsIn: h.st.in.Load(), EventsOut: h.st.out.Load(), Cut: h.st.cut.Load(), Dropped: h.st.dropped.Load(),
		Reconnects: h.st.reconnects.Load(),
	}
}

// Subscribe attaches a client to the upstream subscription req. It returns
// once the connection is acknowledged and the subscribe frame written (or a
// live identical subscription joined), so the caller can still answer an
// error status; the error wraps ErrUnavailable when the upstream can't be
// reached or rejected connection_init, and ctx cancels the wait. When the
// connection it would use is being re-established after a drop, it waits
// for that (bounded by ctx), so that a client arriving during a short
// upstream restart gets its stream instead of an error.
func (h *Hub) Subscribe(ctx context.Context, req Request, opt SubscribeOptions) (*Subscription, error) {
	body, err := req.body()
	if err != nil {
		return nil, err
	}
	init, err := compactInit(req.InitPayload)
	if err != nil {
		return nil, err
	}
	hdr := canonicalHeader(req.Header)
	ckey := connIdentity(h.cfg.URL, hdr, init)
	skey := ckey + "\x00" + string(body)

	sub := &Subscription{h: h, q: event.NewQueue(opt.Queue), idx: -1}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if opt.Dedup && opt.LastEventID != "" {
		// The client follows a subscription that completed while it was
		// away: it gets what it missed and done, not a new start.
		if done := h.completed[skey].s; done != nil && done.follows(opt.LastEventID) {
			done.mu.Lock()
			done.replayLocked(sub.q, opt.LastEventID)
			done.mu.Unlock()
			sub.q.Close(event.DoneEvent)
			sub.s = done
			h.mu.Unlock()
			return sub, nil
		}
	}
	var s *shared
	if opt.Dedup {
		if cand := h.shared[skey]; cand != nil {
			cand.mu.Lock()
			if !cand.ended {
				cand.addLocked(sub, &opt)
				s = cand
			}
			cand.mu.Unlock()
		}
	}
	if s == nil {
		c, err := h.connForLocked(ckey, hdr, init)
		if err != nil {
			h.mu.Unlock()
			return nil, err
		}
		key := ""
		if opt.Dedup {
			key = skey
		}
		s = h.newSharedLocked(c, body, key)
		s.mu.Lock()
		s.addLocked(sub, &opt)
		s.mu.Unlock()
	}
	sub.s = s
	h.mu.Unlock()

	if err := s.wait(ctx); err != nil {
		sub.Close()
		return nil, err
	}
	return sub, nil
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

// completedSub is a completed shared subscription kept for resumes.
type completedSub struct {
	s      *shared
	expiry *time.Timer
}

// keepCompletedLocked keeps s, which the upstream completed normally,
// for ResumeHold: a client that was away when it completed (its stream
// capped, or cut off) and comes back with a Last-Event-ID of it gets the
// events it missed and done, instead of a gap and a new subscription.
// h.mu is held.
func (h *Hub) keepCompletedLocked(s *shared) {
	if h.cfg.ResumeHold <= 0 || h.closed {
		return
	}
	if old := h.completed[s.key]; old.expiry != nil {
		old.expiry.Stop()
	}
	h.completed[s.key] = completedSub{s: s, expiry: time.AfterFunc(h.cfg.ResumeHold, func() {
		if !h.background() {
			return
		}
		defer h.wg.Done()
		h.mu.Lock()
		if h.completed[s.key].s == s {
			delete(h.completed, s.key)
		}
		h.mu.Unlock()
	})}
}

// background counts a timer callback in h.wg, unless the hub is closing;
// the callback then calls h.wg.Done.
func (h *Hub) background() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
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

func (h *Hub) newSharedLocked(c *conn, body []byte, key string) *shared {
	c.nextID++
	s := &shared{
		h: h, c: c, id: strconv.FormatUint(c.nextID, 36), key: key, body: body,
		inc:  h.salt + strconv.FormatUint(h.incs.Add(1), 36),
		ring: make([]*event.Event, h.cfg.ReplayBuffer),
	}
	c.ops[s.id] = s
	c.kickIdle()
	if key != "" {
		h.shared[key] = s
	}
	h.st.subs.Add(1)
	return s
}

// dropLocked removes s from its connection and the dedup index (once).
// h.mu is held.
func (h *Hub) dropLocked(s *shared) {
	if s.c.ops[s.id] != s {
		return
	}
	delete(s.c.ops, s.id)
	s.c.kickIdle()
	if s.key != "" && h.shared[s.key] == s {
		delete(h.shared, s.key)
	}
	h.st.subs.Add(-1)
}

// Close ends every client stream with Done, completes the upstream
// subscriptions, closes the connections and waits for their goroutines.
// It is safe to call more than once.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.wg.Wait()
		return nil
	}
	h.closed = true
	for key, done := range h.completed {
		done.expiry.Stop()
		delete(h.completed, key)
	}
	var all []*shared
	for c := range h.all {
		for _, s := range c.ops {
			all = append(all, s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		if on := s.end(event.DoneEvent, nil, true); on != 0 {
			s.c.sendStop(s.id, on)
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
