package live

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Defaults for the zero values of Config.
const (
	DefaultReplayBuffer = 16
	DefaultMaxBackoff   = 30 * time.Second
)

// Poll outcomes, passed to Config.OnPoll. They are stable metric labels.
const (
	PollChanged   = "changed"   // a new result was pushed
	PollUnchanged = "unchanged" // the result equals the last one; nothing pushed
	PollFailed    = "failed"    // no result (upstream unreachable, not JSON)
)

// FailedJSON is the event pushed (once) when polling fails after a result
// was sent. It is an ordinary result for the client, not the end of the
// stream.
var FailedJSON = event.ErrorJSON("UpstreamUnavailable", "the upstream could not be reached; retrying")

// Errors returned by Join.
var (
	// ErrClosed: the Hub is closed (the gateway shuts down).
	ErrClosed = errors.New("live: hub closed")
	// ErrNotJSON wraps a poll whose answer is not JSON.
	ErrNotJSON = errors.New("live: upstream answer is not JSON")
)

// Config configures a Hub. Every zero value has a sensible meaning.
type Config struct {
	// ReplayBuffer is how many recent results each poller keeps for
	// Last-Event-ID resume (default 16).
	ReplayBuffer int
	// MaxBackoff caps the delay between polls while the upstream fails
	// (default 30s; never below a query's interval).
	MaxBackoff time.Duration
	// OnPoll, if set, is called after every poll with its outcome
	// (PollChanged, PollUnchanged, PollFailed), on the poller's goroutine.
	OnPoll func(outcome string)
}

// Query is one live query: what identifies it and how to poll it.
type Query struct {
	// Key identifies the poller: clients with equal keys share one. It must
	// hold everything that makes the upstream request differ (URL, headers,
	// document, variables) and the interval. It may hold secrets: it is
	// never logged.
	Key string
	// Interval is the time between the starts of two polls (> 0).
	Interval time.Duration
	// Fetch polls the upstream once and returns its answer, a JSON value.
	// An error means there is no result. It is called on the poller's
	// goroutine, with a context that ends when the poller stops.
	Fetch func(ctx context.Context) ([]byte, error)
}

// JoinOptions tune one client.
type JoinOptions struct {
	// Patch asks for RFC 6902 patches after the first result (see the
	// package doc).
	Patch bool
	// LastEventID resumes a client that held that result (see the package
	// doc). Empty means a new client: it gets the newest result first.
	LastEventID string
	// Queue bounds the client's queue. A patch client always has the
	// Disconnect policy: it cannot skip a patch.
	Queue event.Limits
}

// Stats is a snapshot of a Hub's counters.
type Stats struct {
	Pollers int64 // running pollers
	Clients int64 // attached clients
	Polls   int64 // polls made since the Hub started
	Pushes  int64 // results pushed (changes), counted once per poller
}

// Hub owns the pollers. It is safe for concurrent use.
type Hub struct {
	cfg  Config
	salt string // random per hub, so ids differ across restarts
	incs atomic.Uint64
	wg   sync.WaitGroup // poller goroutines

	clients, polls, pushes atomic.Int64

	mu      sync.Mutex
	closed  bool
	pollers map[string]*poller
}

// NewHub makes a Hub. No goroutine starts before the first Join.
func NewHub(cfg Config) *Hub {
	if cfg.ReplayBuffer <= 0 {
		cfg.ReplayBuffer = DefaultReplayBuffer
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	var rb [8]byte
	_, _ = rand.Read(rb[:])
	// 36^5 <= salt < 36^6: always six base36 digits.
	salt := 60466176 + binary.LittleEndian.Uint64(rb[:])%(2176782336-60466176)
	return &Hub{cfg: cfg, salt: strconv.FormatUint(salt, 36), pollers: map[string]*poller{}}
}

// Stats returns a snapshot of the counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n := len(h.pollers)
	h.mu.Unlock()
	return Stats{Pollers: int64(n), Clients: h.clients.Load(), Polls: h.polls.Load(), Pushes: h.pushes.Load()}
}

// Join attaches a client to the poller of q, starting one if none runs.
// It returns once the client has something to read or to wait for: the
// poller has a result (queued for the client unless it is up to date), or
// its first poll is still the only outcome and it failed, which Join
// reports (the error wraps Fetch's). ctx bounds the wait for a first poll.
func (h *Hub) Join(ctx context.Context, q Query, opt JoinOptions) (*Client, error) {
	if q.Interval <= 0 || q.Fetch == nil {
		return nil, fmt.Errorf("live: query needs an interval and a fetch function")
	}
	if opt.Patch {
		// A patch applies only to the result before it: a client that
		// missed one (drop-oldest) could not apply the rest. It is cut
		// off instead, and resumes with Last-Event-ID.
		opt.Queue.Policy = event.Disconnect
	}
	c := &Client{q: event.NewQueue(opt.Queue), patch: opt.Patch, idx: -1}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	p := h.pollers[q.Key]
	if p != nil {
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			p = nil
		} else {
			p.addLocked(c, opt.LastEventID)
			p.mu.Unlock()
		}
	}
	if p == nil {
		p = h.newPollerLocked(q)
		p.mu.Lock()
		p.addLocked(c, "")
		p.mu.Unlock()
	}
	c.p = p
	h.mu.Unlock()

	select {
	case <-p.first:
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("live: waiting for the first poll: %w", ctx.Err())
	}
	if err := p.failure(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// newPollerLocked makes and starts a poller. h.mu is held.
func (h *Hub) newPollerLocked(q Query) *poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poller{
		h: h, q: q, cancel: cancel,
		inc:   h.salt + strconv.FormatUint(h.incs.Add(1), 36),
		first: make(chan struct{}),
		ring:  make([]entry, h.cfg.ReplayBuffer),
	}
	h.pollers[q.Key] = p
	h.wg.Add(1)
	go p.run(ctx)
	return p
}

// Close stops every poller, ends every client's queue with Done and waits
// for the pollers' goroutines. It is safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	ps := make([]*poller, 0, len(h.pollers))
	for _, p := range h.pollers {
		ps = append(ps, p)
	}
	clear(h.pollers)
	h.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		p.stopped = true
		clients := p.clients
		p.clients = nil
		for _, c := range clients {
			c.idx = -1
		}
		p.mu.Unlock()
		p.cancel()
		for _, c := range clients {
			c.q.Close(event.DoneEvent)
		}
		h.clients.Add(-int64(len(clients)))
	}
	h.wg.Wait()
}

// Client is one client's attachment to a poller.
type Client struct {
	p      *poller
	q      *event.Queue
	patch  bool
	idx    int // position in p.clients; -1 when detached (guarded by p.mu)
	closed atomic.Bool
}

// Queue holds the client's results. It ends with Done when the Hub closes.
func (c *Client) Queue() *event.Queue { return c.q }

// Close detaches the client; the last client to leave stops the poller.
// Safe to call more than once.
func (c *Client) Close() {
	if c.closed.Swap(true) {
		return
	}
	p := c.p
	p.mu.Lock()
	removed := c.idx >= 0
	if removed {
		last := len(p.clients) - 1
		moved := p.clients[last]
		p.clients[c.idx] = moved
		moved.idx = c.idx
		p.clients[last] = nil
		p.clients = p.clients[:last]
		c.idx = -1
	}
	empty := len(p.clients) == 0
	p.mu.Unlock()
	if removed {
		p.h.clients.Add(-1)
	}
	c.q.Close(event.DoneEvent)
	if empty {
		p.release()
	}
}
