package topic

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
)

// ErrClosed is returned by Join after Hub.Close.
var ErrClosed = errors.New("topic: hub closed")

// Defaults for the zero values of Config and Spec.
const (
	DefaultResumeHold = 5 * time.Second
	DefaultReplay     = 256
	// DefaultOpenTimeout bounds a source's start when the joining
	// context has no deadline.
	DefaultOpenTimeout = 15 * time.Second
)

// Source produces one topic's events into a Sink. It knows nothing of
// clients, ids or replay.
type Source interface {
	// Open starts the source. It returns once the source is live (for an
	// upstream subscription: acknowledged and subscribed; for a poller:
	// after its first poll), or with the error that the joining clients
	// are answered with, before any stream byte. ctx bounds only the
	// start. The source may write into sink before Open returns. stop
	// ends the source (completing an upstream subscription); the topic
	// calls it exactly once, also after the source ended itself with
	// Sink.End, and nothing reaches sink after it returned.
	Open(ctx context.Context, sink event.Sink) (stop func(), err error)
}

// Config configures a Hub. Every zero value has a sensible meaning.
type Config struct {
	// ResumeHold is how long a topic outlives its last client when the
	// gateway ended that client's stream and expects it back at once
	// (Client.Suspend, a slow-consumer cut-off), and how long a topic its
	// source completed is kept for the resumes of clients that were away
	// (default 5s; negative: neither).
	ResumeHold time.Duration
	// NewLog makes the log of a new topic run; nil means the in-memory
	// ring of Spec.Replay events.
	NewLog func(key string, size int, inc string) Log
	// Logger receives topic-level logs; nil means none. Keys hold
	// secrets and are never logged.
	Logger *slog.Logger
	// Engine, when set, shares keyed topics with the other instances of
	// a cluster (see Engine); NewLog then applies to unkeyed topics only.
	Engine Engine
}

// Spec says what a client joins. Clients with equal, non-empty keys share
// one topic; the rest of the spec is used by the join that starts it.
type Spec struct {
	// Key identifies the topic. It must hold everything that makes two
	// sources differ. Empty means never shared. It may hold secrets.
	Key string
	// Kind labels the topic in Stats ("subscription", "live", "source").
	Kind string
	// Source is started when this join starts the topic.
	Source Source
	// Replay is how many recent events are kept for resume (default 256).
	Replay int
	// State makes results states rather than a log (live queries): a new
	// client gets the newest result first, and a resume gets the newest
	// result or the patches that lead to it (see the package doc).
	State bool
	// Diff, for state topics, returns next as a JSON Patch against prev,
	// or nil when a patch would not be smaller than next; it is computed
	// only once a client asked for patches.
	Diff func(prev, next []byte) []byte
}

// JoinOptions tune one client.
type JoinOptions struct {
	// ReplayLast gives a client that joins a running topic its newest
	// event first.
	ReplayLast bool
	// LastEventID resumes after that event, or starts with one gap
	// event when that can't be done without loss.
	LastEventID string
	// Patch asks for a state topic's patches (event.Event.Patch) after
	// the first result. A patch client always has the Disconnect policy:
	// it cannot skip a patch.
	Patch bool
	// Queue bounds the client's queue.
	Queue event.Limits
}

// Stats is a snapshot of one kind's counters (or of all kinds).
type Stats struct {
	Topics    int64 // running topics (one source each)
	Clients   int64 // client queues attached
	EventsIn  int64 // results the sources produced
	EventsOut int64 // events pushed into client queues
	Cut       int64 // clients cut off as slow consumers (or found closed)
	Dropped   int64 // pushes that dropped older events (DropOldest)
}

type counters struct {
	topics, clients, in, out, cut, dropped atomic.Int64
}

// Hub owns the topics. It is safe for concurrent use.
type Hub struct {
	cfg  Config
	log  *slog.Logger
	salt string // random per hub: incarnations differ across restarts
	incs atomic.Uint64
	ctx  context.Context // cancelled by Close: sources still opening give up
	stop context.CancelFunc
	wg   sync.WaitGroup // timer callbacks, sources starting, stops after End

	mu     sync.Mutex
	closed bool
	topics map[string]*topic     // shared topics by key
	all    map[*topic]struct{}   // every running topic
	kinds  map[string]*counters  // by Spec.Kind
	done   map[string]*doneTopic // completed topics kept for resumes, by key
}

// doneTopic is a topic its source completed, kept for ResumeHold.
type doneTopic struct {
	t      *topic
	expiry *time.Timer
}

// NewHub makes a Hub. No source starts before the first Join.
func NewHub(cfg Config) *Hub {
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
		cfg: cfg, log: log, salt: strconv.FormatUint(salt, 36), ctx: ctx, stop: cancel,
		topics: map[string]*topic{}, all: map[*topic]struct{}{},
		kinds: map[string]*counters{}, done: map[string]*doneTopic{},
	}
}

// Stats returns the counters of one kind; "" sums every kind.
func (h *Hub) Stats(kind string) Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	var s Stats
	for k, c := range h.kinds {
		if kind != "" && k != kind {
			continue
		}
		s.Topics += c.topics.Load()
		s.Clients += c.clients.Load()
		s.EventsIn += c.in.Load()
		s.EventsOut += c.out.Load()
		s.Cut += c.cut.Load()
		s.Dropped += c.dropped.Load()
	}
	return s
}

// Join attaches a client to the topic of spec.Key, starting its source if
// no topic runs. It returns once the source is live (or was already), so
// the caller can still answer an error status: the error is the source's
// Open error, ErrClosed, or ctx's.
func (h *Hub) Join(ctx context.Context, spec Spec, opt JoinOptions) (*Client, error) {
	if spec.Source == nil {
		return nil, errors.New("topic: spec without a source")
	}
	if opt.Patch {
		opt.Queue.Policy = event.Disconnect
	}
	if h.cfg.Engine != nil && !h.cfg.Engine.Available() {
		return nil, ErrUnavailable
	}
	c := &Client{q: event.NewQueue(opt.Queue), patch: opt.Patch, idx: -1}
	synced := false
again:
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if d := h.done[spec.Key]; d != nil && spec.Key != "" && opt.LastEventID != "" && d.t.log.Owns(opt.LastEventID) {
		// The client follows a topic that completed while it was away:
		// it gets what it missed and done, not a new start.
		h.mu.Unlock()
		d.t.mu.Lock()
		d.t.catchUpLocked(c, &opt)
		d.t.mu.Unlock()
		c.t = d.t
		c.closed.Store(true)
		c.q.Close(event.DoneEvent)
		return c, nil
	}
	var t *topic
	var d drained // what catching the client up delivered to the others
	if spec.Key != "" {
		if cand := h.topics[spec.Key]; cand != nil {
			if s, ok := cand.log.(Syncer); ok && opt.LastEventID != "" && !synced {
				// Another instance may have named the client's last
				// event before this one read it: resume once it has.
				h.mu.Unlock()
				s.Sync(ctx, opt.LastEventID)
				synced = true
				goto again
			}
			cand.mu.Lock()
			if !cand.ended {
				d = cand.addLocked(c, &opt)
				t = cand
			}
			cand.mu.Unlock()
		}
	}
	starts := t == nil
	if starts {
		t = h.newTopicLocked(spec)
		t.mu.Lock()
		t.addLocked(c, &opt)
		t.mu.Unlock()
		h.wg.Add(1) // Close waits for the start and the stop it may owe
	}
	c.t = t
	h.mu.Unlock()
	d.after(t)

	if starts {
		// On a goroutine of the hub's, so that a joiner that gives up
		// (its client left) does not wait for the start of the others.
		go func() {
			defer h.wg.Done()
			t.open(ctx)
		}()
	}
	select {
	case <-t.ready:
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	if t.openErr != nil {
		c.Close()
		return nil, t.openErr
	}
	return c, nil
}

// newTopicLocked makes a topic and registers it. h.mu is held.
func (h *Hub) newTopicLocked(spec Spec) *topic {
	if spec.Replay <= 0 {
		spec.Replay = DefaultReplay
	}
	st := h.kinds[spec.Kind]
	if st == nil {
		st = &counters{}
		h.kinds[spec.Kind] = st
	}
	// opening from the start: a client that leaves before the start
	// goroutine runs must find the stop owed, not lost.
	t := &topic{h: h, spec: spec, st: st, ready: make(chan struct{}), opening: true}
	if h.cfg.Engine != nil && spec.Key != "" {
		t.member = h.cfg.Engine.Join(EngineSpec{Key: spec.Key, Kind: spec.Kind, State: spec.State,
			Replay: spec.Replay, Source: spec.Source}, t.notify)
		t.log, t.loading = t.member.Log(), true
	} else {
		inc := h.salt + strconv.FormatUint(h.incs.Add(1), 36)
		if h.cfg.NewLog != nil {
			t.log = h.cfg.NewLog(spec.Key, spec.Replay, inc)
		} else {
			t.log = NewRing(inc, spec.Replay)
		}
	}
	if spec.Key != "" {
		h.topics[spec.Key] = t
	}
	h.all[t] = struct{}{}
	st.topics.Add(1)
	return t
}

// dropLocked unlists t (once). h.mu is held.
func (h *Hub) dropLocked(t *topic) {
	if _, ok := h.all[t]; !ok {
		return
	}
	delete(h.all, t)
	if t.spec.Key != "" && h.topics[t.spec.Key] == t {
		delete(h.topics, t.spec.Key)
	}
	t.st.topics.Add(-1)
}

// keepDoneLocked keeps t, which its source completed, for ResumeHold.
// h.mu is held.
func (h *Hub) keepDoneLocked(t *topic) {
	if h.cfg.ResumeHold <= 0 || h.closed || t.spec.Key == "" {
		return
	}
	key := t.spec.Key
	if old := h.done[key]; old != nil {
		old.expiry.Stop()
	}
	d := &doneTopic{t: t}
	d.expiry = time.AfterFunc(h.cfg.ResumeHold, func() {
		if !h.background() {
			return
		}
		defer h.wg.Done()
		h.mu.Lock()
		if h.done[key] == d {
			delete(h.done, key)
		}
		h.mu.Unlock()
	})
	h.done[key] = d
}

// background counts a timer callback in h.wg unless the hub is closing;
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

// Close ends every client's queue with Done, stops every source and waits
// for them and for the hub's timers. It is safe to call more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for key, d := range h.done {
		d.expiry.Stop()
		delete(h.done, key)
	}
	all := make([]*topic, 0, len(h.all))
	for t := range h.all {
		all = append(all, t)
	}
	h.mu.Unlock()
	h.stop() // sources still opening give up
	for _, t := range all {
		if stop := t.end(event.DoneEvent); stop != nil {
			stop()
		}
	}
	h.wg.Wait() // timers, and starts in progress with the stops they owe
}
