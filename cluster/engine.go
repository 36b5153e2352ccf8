package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/topic"
)

// Defaults for the zero values of Config.
const (
	DefaultName             = "fireboom"
	DefaultMaxEvents        = 1000
	DefaultMaxAge           = 10 * time.Minute
	DefaultLeaseTTL         = 5 * time.Second
	DefaultReconnectTimeout = 30 * time.Second
)

// opTimeout bounds one step of a lease operation (a KV write, a publish).
const opTimeout = 5 * time.Second

// Config configures an Engine. Every zero value takes its default.
type Config struct {
	// URL is the NATS server (nats://host:port); required.
	URL string
	// Token and CredsFile authenticate to NATS (either, or none).
	Token     string
	CredsFile string
	// Name is the cluster's name: instances with the same URL and name
	// are one cluster; it prefixes the stream, subjects and bucket
	// (letters, digits, '-' and '_'; default "fireboom").
	Name string
	// MaxEvents is how many records a topic's subject keeps for resume
	// (default 1000); MaxAge how long (default 10m).
	MaxEvents int
	MaxAge    time.Duration
	// LeaseTTL is how long a topic's lease outlives its owner's last
	// refresh: a killed owner is replaced within about this long
	// (default 5s, at least 1s).
	LeaseTTL time.Duration
	// ReconnectTimeout is how long the NATS connection may be down before
	// new streams are refused (default 30s).
	ReconnectTimeout time.Duration
	// Instance names this instance in leases and records (default: a
	// random id).
	Instance string
	// Logger receives the engine's logs (default: none). Topic keys are
	// never logged.
	Logger *slog.Logger
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ErrCredentials is returned by New when NATS refused the credentials.
var ErrCredentials = errors.New("cluster: NATS refused the credentials")

// Engine is a member of a cluster of gateway instances: it implements
// topic.Engine (see the package doc). It is safe for concurrent use.
type Engine struct {
	cfg  Config
	log  *slog.Logger
	inst string
	nc   *nats.Conn
	js   jetstream.JetStream

	ready     atomic.Bool  // stream and bucket are set up
	downSince atomic.Int64 // unix nanos the connection dropped; 0 while up
	// upSince is when the connection last came up (unix nanos). Leases
	// and interest are judged stale only after a lease TTL of being
	// connected: after an outage every owner gets that long to refresh,
	// so that a short NATS restart causes no takeover.
	upSince   atomic.Int64
	failed    atomic.Int64 // publishes that could not be queued
	takeovers sync.Map     // reason → *atomic.Int64

	loopCtx  context.Context
	stopLoop context.CancelFunc
	loops    sync.WaitGroup // keeper and watcher
	ops      sync.WaitGroup // lease operations and leaves

	mu       sync.Mutex
	st       jetstream.Stream
	kv       jetstream.KeyValue
	epoch    int64
	closing  bool // BeginShutdown: sources are handed over, not stopped idle
	closed   bool
	entries  map[string]*entry           // topics with a member or a source here, by hash
	leases   map[string]leaseSeen        // every lease seen, by hash
	interest map[string]map[string]int64 // hash → other instance → unix nanos last seen
}

type leaseSeen struct {
	holder string
	at     time.Time // last write seen (zero: deleted)
}

// New connects to NATS and starts the engine. A server that refuses the
// credentials is an error (ErrCredentials); one that cannot be reached is
// not: the engine keeps trying, logs why, and is not Available meanwhile.
func New(cfg Config) (*Engine, error) {
	if cfg.URL == "" {
		return nil, errors.New("cluster: nats.url is required")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if !validName.MatchString(cfg.Name) {
		return nil, fmt.Errorf("cluster: name %q: use letters, digits, '-' and '_'", cfg.Name)
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	cfg.LeaseTTL = max(cfg.LeaseTTL, time.Second)
	if cfg.ReconnectTimeout <= 0 {
		cfg.ReconnectTimeout = DefaultReconnectTimeout
	}
	if cfg.Instance == "" {
		n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		cfg.Instance = n.Text(36)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: log.With("cluster", cfg.Name, "instance", cfg.Instance), inst: cfg.Instance,
		entries: map[string]*entry{}, leases: map[string]leaseSeen{}, interest: map[string]map[string]int64{}}
	opts := []nats.Option{
		nats.Name("fireboom " + cfg.Instance),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(2 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			e.downSince.CompareAndSwap(0, time.Now().UnixNano())
			e.log.Warn("cluster: NATS connection lost; streams go on and resume when it is back", "err", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			e.upSince.Store(time.Now().UnixNano())
			e.downSince.Store(0)
			e.log.Info("cluster: NATS connection re-established")
		}),
		nats.ConnectHandler(func(*nats.Conn) { // after RetryOnFailedConnect
			e.upSince.Store(time.Now().UnixNano())
			e.downSince.Store(0)
			e.log.Info("cluster: NATS connection established")
		}),
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		if isAuthErr(err) {
			return nil, fmt.Errorf("%w at %s: %v", ErrCredentials, cfg.URL, err)
		}
		// Unreachable: keep trying in the background.
		e.log.Warn("cluster unavailable: NATS cannot be reached; new streams answer 503 until it can", "url", cfg.URL, "err", err)
		e.downSince.Store(time.Now().UnixNano() - int64(cfg.ReconnectTimeout))
		nc, err = nats.Connect(cfg.URL, append(opts, nats.RetryOnFailedConnect(true))...)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	e.nc = nc
	e.upSince.Store(time.Now().UnixNano())
	e.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1<<14), jetstream.WithPublishAsyncTimeout(time.Minute))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	e.loopCtx, e.stopLoop = context.WithCancel(context.Background())
	if nc.IsConnected() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := e.setup(ctx)
		cancel()
		if err != nil {
			e.log.Warn("cluster unavailable: JetStream could not be set up; retrying", "err", err)
		}
	}
	e.loops.Add(2)
	go e.keeper()
	go e.watcher()
	return e, nil
}

func isAuthErr(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		strings.Contains(strings.ToLower(err.Error()), "authorization")
}

// Instance is this instance's id in the cluster.
func (e *Engine) Instance() string { return e.inst }

// streamName, subject and keys: everything the cluster writes is named
// after cfg.Name and topic hashes, never keys.
func (e *Engine) streamName() string         { return e.cfg.Name + "_events" }
func (e *Engine) subject(hash string) string { return e.cfg.Name + ".t." + hash }
func leaseKey(hash string) string            { return "l." + hash }
func (e *Engine) interestKey(hash string) string {
	return "i." + hash + "." + e.inst
}

// setup creates (or updates) the stream and the bucket.
func (e *Engine) setup(ctx context.Context) error {
	st, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              e.streamName(),
		Description:       "fireboom topic events, one subject per topic",
		Subjects:          []string{e.cfg.Name + ".t.*"},
		MaxMsgsPerSubject: int64(e.cfg.MaxEvents),
		MaxAge:            e.cfg.MaxAge,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("stream %s: %w", e.streamName(), err)
	}
	kv, err := e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      e.cfg.Name + "_topics",
		Description: "fireboom topic leases and interest",
		TTL:         e.cfg.LeaseTTL,
		History:     1,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("bucket %s_topics: %w", e.cfg.Name, err)
	}
	e.mu.Lock()
	e.st, e.kv, e.epoch = st, kv, st.CachedInfo().Created.UnixNano()
	e.mu.Unlock()
	e.ready.Store(true)
	e.log.Info("cluster: joined", "url", e.cfg.URL)
	return nil
}

// Available reports whether new streams may start: JetStream is set up
// and the connection is up, or has been down for less than
// ReconnectTimeout.
func (e *Engine) Available() bool {
	if !e.ready.Load() {
		return false
	}
	down := e.downSince.Load()
	return down == 0 || time.Since(time.Unix(0, down)) < e.cfg.ReconnectTimeout
}

// Status reports the engine's state (topic.Engine).
func (e *Engine) Status() topic.EngineStatus {
	s := topic.EngineStatus{Connected: e.nc.IsConnected(), Available: e.Available(),
		Takeovers: map[string]int64{"failover": 0, "handoff": 0}}
	e.takeovers.Range(func(k, v any) bool {
		s.Takeovers[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	e.mu.Lock()
	for _, ent := range e.entries {
		if ent.own != nil {
			s.Owned++
		}
	}
	e.mu.Unlock()
	return s
}

func (e *Engine) countTakeover(reason string) {
	if reason != "failover" && reason != "handoff" {
		return
	}
	v, _ := e.takeovers.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// BeginShutdown makes the engine hand its topics over rather than stop
// them when their last local client leaves: the gateway is going away and
// its clients reconnect to the other instances. Close does the handoff.
func (e *Engine) BeginShutdown() {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
}

// Close hands over every topic whose source runs here (the source is
// stopped, a "handoff" stop is published and the lease deleted, so that
// an instance with clients takes over at once), stops the engine's
// goroutines and closes the connection. Call it after the topic hub's
// Close. It is safe to call more than once.
func (e *Engine) Close() error {
	e.BeginShutdown()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.stopLoop()
	e.loops.Wait()
	e.ops.Wait() // leaves and takeovers in flight
	e.mu.Lock()
	var owned []*entry
	for _, ent := range e.entries {
		if ent.own != nil {
			owned = append(owned, ent)
		}
	}
	e.mu.Unlock()
	// One deadline for every handoff: with NATS gone, Close must still
	// end within the gateway's shutdownTimeout.
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	for _, ent := range owned {
		e.letGo(ctx, ent, stopHandoff)
	}
	flush(ctx, e.js)
	cancel()
	e.js.CleanupPublisher()
	e.nc.Close()
	e.ops.Wait()
	return nil
}

// spawn runs f on a goroutine Close waits for.
func (e *Engine) spawn(f func()) {
	e.ops.Add(1)
	go func() {
		defer e.ops.Done()
		f()
	}()
}

// watcher follows the bucket: who holds each lease and which instances
// have clients for each topic. A deleted lease (a handoff) is taken over
// at once by an instance with clients.
func (e *Engine) watcher() {
	defer e.loops.Done()
	for e.loopCtx.Err() == nil {
		if !e.ready.Load() {
			select {
			case <-e.loopCtx.Done():
				return
			case <-time.After(250 * time.Millisecond):
				continue
			}
		}
		e.mu.Lock()
		kv := e.kv
		e.mu.Unlock()
		w, err := kv.WatchAll(e.loopCtx)
		if err != nil {
			select {
			case <-e.loopCtx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for u := range w.Updates() {
			if u != nil {
				e.seen(u)
			}
		}
		_ = w.Stop()
	}
}

// seen applies one bucket update.
func (e *Engine) seen(u jetstream.KeyValueEntry) {
	key, put := u.Key(), u.Operation() == jetstream.KeyValuePut
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case strings.HasPrefix(key, "l."):
		hash := key[2:]
		if put {
			e.leases[hash] = leaseSeen{holder: string(u.Value()), at: now}
			return
		}
		delete(e.leases, hash)
		if ent := e.entries[hash]; ent != nil && ent.m != nil && ent.own == nil {
			e.tryTakeoverLocked(ent) // handed over: the first to come takes it
		}
	case strings.HasPrefix(key, "i."):
		rest := key[2:]
		i := strings.IndexByte(rest, '.')
		if i < 0 || rest[i+1:] == e.inst {
			return
		}
		hash, inst := rest[:i], rest[i+1:]
		if put {
			if e.interest[hash] == nil {
				e.interest[hash] = map[string]int64{}
			}
			e.interest[hash][inst] = now.UnixNano()
		} else if m := e.interest[hash]; m != nil {
			delete(m, inst)
			if len(m) == 0 {
				delete(e.interest, hash)
			}
		}
	}
}

// othersInterestedLocked reports whether another instance showed interest
// in the topic within a lease TTL. e.mu is held.
func (e *Engine) othersInterestedLocked(hash string) bool {
	cut := time.Now().Add(-e.cfg.LeaseTTL).UnixNano()
	for _, at := range e.interest[hash] {
		if at > cut {
			return true
		}
	}
	return false
}

// FromConfig is the engine configuration of a fireboom.json "cluster"
// section, logging to log.
func FromConfig(c *config.Cluster, log *slog.Logger) Config {
	return Config{
		URL:              c.NATS.URL,
		Token:            c.NATS.Token,
		CredsFile:        c.NATS.CredsFile,
		Name:             c.Name,
		MaxEvents:        c.Replay.MaxEvents,
		MaxAge:           c.Replay.MaxAge.D(),
		LeaseTTL:         c.LeaseTTL.D(),
		ReconnectTimeout: c.ReconnectTimeout.D(),
		Logger:           log,
	}
}
