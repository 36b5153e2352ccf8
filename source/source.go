package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Kinds of source, as fireboom.json names them.
const (
	Postgres = "postgres"
	NATS     = "nats"
	Redis    = "redis"
)

// DefaultReconnectTimeout is how long a lost connection is re-dialled while
// streams stay open, when Options leave it unset.
const DefaultReconnectTimeout = 30 * time.Second

// commandTimeout bounds one LISTEN, UNLISTEN, SUBSCRIBE or publish on the
// server, whatever the caller's context, so that a client that goes away
// mid-command cannot break the shared connection.
const commandTimeout = 10 * time.Second

// Errors of the package; the gateway maps them to statuses.
var (
	// ErrUnavailable: the source is not connected, or refused or failed a
	// command (502 UpstreamUnavailable).
	ErrUnavailable = errors.New("event source unavailable")
	// ErrPayloadTooLarge: a publish payload over the source's limit,
	// refused before anything was sent (413).
	ErrPayloadTooLarge = errors.New("event payload too large")
	// ErrInvalidChannel: a channel or subject the source cannot use (400).
	ErrInvalidChannel = errors.New("invalid channel or subject")
)

// Options tune a Source. The zero value works.
type Options struct {
	// ReconnectTimeout is how long a lost connection is re-dialled while
	// streams stay open; past it they end with UpstreamUnavailable
	// (default DefaultReconnectTimeout; the gateway passes
	// upstream.reconnectTimeout).
	ReconnectTimeout time.Duration
	// Logger receives connection changes and bad messages (never their
	// content). Default: discard.
	Logger *slog.Logger
}

// Transform turns one message of a channel into the bytes a stream
// delivers. v is the payload decoded as JSON (map[string]any, []any,
// string, json.Number, bool or nil), shared by every stream of the channel:
// it must not be modified. A nil result with no error skips the message
// (a filter); an error makes it a bad message (dropped, logged, counted).
type Transform func(v any) ([]byte, error)

// Source is one configured event source and its connection. It is safe
// for concurrent use.
type Source struct {
	name, kind string
	eng        engine
	log        *slog.Logger
	timeout    time.Duration

	messages, bad, dropped atomic.Uint64
	connected              atomic.Bool

	mu       sync.Mutex
	state    state
	lastErr  error
	sess     session // the current connection while up
	channels map[string]*channel

	kick   chan struct{} // wakes the loop to listen or un-listen
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type state uint8

const (
	connecting state = iota // an attempt is under way: Open waits for it
	up
	down // between attempts: Open fails at once
	closed
)

// channel is what a Source knows of one channel or subject.
type channel struct {
	regs        []*reg       // open and opening streams
	listened    bool         // confirmed on the current connection
	unlistening bool         // an UNLISTEN is under way
	waiters     []chan error // Opens waiting for the LISTEN
}

// New checks the URL of a source of the given kind and starts connecting in
// the background; Ready says when it is connected. Close stops it.
func New(name, kind, url string, opt Options) (*Source, error) {
	var (
		eng engine
		err error
	)
	switch kind {
	case Postgres:
		eng, err = newPostgres(name, url)
	case NATS:
		eng, err = newNATS(name, url)
	case Redis:
		eng, err = newRedis(name, url)
	default:
		return nil, fmt.Errorf("source %s: unknown kind %q", name, kind)
	}
	if err != nil {
		// The driver's parse error may quote the URL, password included.
		return nil, fmt.Errorf("source %s: bad %s URL", name, kind)
	}
	if opt.ReconnectTimeout <= 0 {
		opt.ReconnectTimeout = DefaultReconnectTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{
		name: name, kind: kind, eng: eng,
		log:      opt.Logger.With("source", name, "kind", kind),
		timeout:  opt.ReconnectTimeout,
		channels: map[string]*channel{},
		kick:     make(chan struct{}, 1),
		cancel:   cancel,
	}
	s.wg.Add(1)
	go s.run(ctx)
	return s, nil
}

// Name and Kind say which source this is.
func (s *Source) Name() string { return s.name }

// Kind is Postgres, NATS or Redis.
func (s *Source) Kind() string { return s.kind }

// Close ends every open stream with UpstreamUnavailable, closes the
// connections and waits for the source's goroutines. It is safe to call
// more than once.
func (s *Source) Close() {
	s.mu.Lock()
	if s.state == closed {
		s.mu.Unlock()
		return
	}
	s.state = closed
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.endAll("the event source " + s.name + " was closed")
	s.eng.close()
}

// Ready reports whether the source is connected: nil, or an error wrapping
// ErrUnavailable that names the source (for /ready).
func (s *Source) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == up {
		return nil
	}
	return s.unavailableLocked()
}

func (s *Source) unavailableLocked() error {
	if s.lastErr != nil {
		return fmt.Errorf("%w: %s (%s): %v", ErrUnavailable, s.name, s.kind, s.lastErr)
	}
	return fmt.Errorf("%w: %s (%s): not connected", ErrUnavailable, s.name, s.kind)
}

// Stats are a source's counters, for metrics.
type Stats struct {
	Messages    uint64 // messages received (fireboom_source_messages_total)
	BadMessages uint64 // dropped as not JSON or not fitting (fireboom_source_bad_messages_total)
	Dropped     uint64 // times the client library dropped messages (fireboom_source_dropped_total)
	Connected   bool   // fireboom_source_connected
}

// Stats reads the counters.
func (s *Source) Stats() Stats {
	return Stats{Messages: s.messages.Load(), BadMessages: s.bad.Load(), Dropped: s.dropped.Load(), Connected: s.connected.Load()}
}

// CheckChannel reports whether the source can listen on or publish to ch,
// as an error wrapping ErrInvalidChannel (the gateway answers 400).
func (s *Source) CheckChannel(ch string, publish bool) error {
	if err := s.eng.check(ch, publish); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidChannel, err)
	}
	return nil
}

// Publish sends payload to the channel or subject ch. It returns once the
// server accepted it; errors wrap ErrPayloadTooLarge (nothing was sent),
// ErrInvalidChannel or ErrUnavailable.
func (s *Source) Publish(ctx context.Context, ch string, payload []byte) error {
	if err := s.CheckChannel(ch, true); err != nil {
		return err
	}
	if n := s.eng.maxPayload(); n > 0 && len(payload) > n {
		return fmt.Errorf("%w: %d bytes, %s takes at most %d", ErrPayloadTooLarge, len(payload), s.kind, n)
	}
	s.mu.Lock()
	sess := s.sess
	var err error
	if s.state != up && !s.eng.publishesAlone() {
		err = s.unavailableLocked()
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.eng.publish(ctx, sess, ch, payload); err != nil {
		if errors.Is(err, ErrPayloadTooLarge) || errors.Is(err, ErrUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %s: publish: %v", ErrUnavailable, s.name, err)
	}
	return nil
}

// Stream is one distinct stream of a source: a channel or subject and what
// each of its messages becomes. Streams that would deliver the same bytes
// are shared by the caller (the topic layer), not here.
type Stream struct {
	src     *Source
	channel string
	t       Transform
}

// Stream describes a stream of channel ch; Open starts it. It may be opened
// again after it was stopped.
func (s *Source) Stream(ch string, t Transform) *Stream {
	return &Stream{src: s, channel: ch, t: t}
}

// reg is one Open of a Stream. mu serializes the calls to sink and the
// flags that stop them, so nothing reaches the sink after stop returned.
type reg struct {
	st     *Stream
	sink   event.Sink
	mu     sync.Mutex
	active bool   // Open returned: messages go to sink
	done   bool   // stopped or ended: nothing goes to sink
	gapWhy string // events were lost (the connection dropped, the client library dropped some): Gap(gapWhy) before the next Next
}

// Open registers the stream and returns once the source listens to its
// channel, or an error wrapping ErrUnavailable (the source is not
// connected, or the LISTEN failed) or ErrInvalidChannel, before anything
// was written to sink. Then each message of the channel that passes the
// Transform goes to sink.Next; a reconnect is one sink.Gap("reconnected");
// a reconnect that does not succeed within the reconnect timeout ends the
// stream with sink.End(UpstreamUnavailable).
//
// stop ends the stream: the channel is un-listened when no other stream
// wants it. Nothing is written to sink after stop returned; stop waits for
// a sink call under way, so it must not be called from inside one. It is
// safe to call more than once.
func (st *Stream) Open(ctx context.Context, sink event.Sink) (stop func(), err error) {
	s := st.src
	if err := s.CheckChannel(st.channel, false); err != nil {
		return nil, err
	}
	r := &reg{st: st, sink: sink}
	s.mu.Lock()
	switch s.state {
	case closed, down:
		err := s.unavailableLocked()
		s.mu.Unlock()
		return nil, err
	}
	ch := s.channels[st.channel]
	if ch == nil {
		ch = &channel{}
		s.channels[st.channel] = ch
	}
	ch.regs = append(ch.regs, r)
	if s.state == up && ch.listened && !ch.unlistening {
		r.active = true
		s.mu.Unlock()
		return st.stopFunc(r), nil
	}
	w := make(chan error, 1)
	ch.waiters = append(ch.waiters, w)
	s.kickLocked()
	s.mu.Unlock()
	select {
	case err = <-w:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		s.remove(r)
		return nil, err
	}
	r.mu.Lock()
	r.active = true
	r.mu.Unlock()
	return st.stopFunc(r), nil
}

func (st *Stream) stopFunc(r *reg) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.done = true
			r.mu.Unlock()
			st.src.remove(r)
		})
	}
}

// gap tells the sink, once, that events were lost; r.mu is held.
func (r *reg) gap() {
	if r.gapWhy != "" {
		r.sink.Gap(r.gapWhy)
		r.gapWhy = ""
	}
}

// missed marks the streams of channel ch: the client library dropped some
// of its messages (our reader fell behind). Each stream is told with a
// slow-consumer gap before its next event; the drop is counted and logged.
func (s *Source) missed(ch string) {
	s.dropped.Add(1)
	s.log.Warn("event messages dropped by the client library: the gateway read too slowly", "channel", ch)
	s.mu.Lock()
	var regs []*reg
	if c := s.channels[ch]; c != nil {
		regs = append(regs, c.regs...)
	}
	s.mu.Unlock()
	for _, r := range regs {
		r.mu.Lock()
		if r.gapWhy == "" {
			r.gapWhy = "slow-consumer"
		}
		r.mu.Unlock()
	}
}

// remove unregisters r; the loop un-listens a channel left without streams.
func (s *Source) remove(r *reg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[r.st.channel]
	if ch == nil {
		return
	}
	for i, x := range ch.regs {
		if x == r {
			ch.regs = append(ch.regs[:i], ch.regs[i+1:]...)
			break
		}
	}
	if len(ch.regs) == 0 {
		s.kickLocked()
	}
}

func (s *Source) kickLocked() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// deliver is called by a session's reader for each message, one at a time.
func (s *Source) deliver(chName string, payload []byte) {
	s.messages.Add(1)
	s.mu.Lock()
	var regs []*reg
	if ch := s.channels[chName]; ch != nil {
		regs = append(regs, ch.regs...)
	}
	s.mu.Unlock()
	if len(regs) == 0 {
		return
	}
	v, err := decode(payload)
	if err != nil {
		s.badMessage(chName, err)
		return
	}
	var badErr error
	for _, r := range regs {
		r.mu.Lock()
		if r.active && !r.done {
			data, err := r.st.t(v)
			switch {
			case err != nil:
				badErr = err
			case data != nil:
				// The gap comes before the first event of a new
				// connection, whichever goroutine gets there first.
				r.gap()
				r.sink.Next(data)
			}
		}
		r.mu.Unlock()
	}
	if badErr != nil {
		s.badMessage(chName, badErr)
	}
}

// badMessage counts a dropped message once and logs why, never its
// content (it may be anyone's data).
func (s *Source) badMessage(ch string, err error) {
	s.bad.Add(1)
	s.log.Warn("event message dropped", "channel", ch, "reason", err.Error())
}

// decode reads a payload as one JSON value, numbers as json.Number.
func decode(p []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("payload is not JSON")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("payload is not JSON: data after the value")
	}
	return v, nil
}

// each calls fn for every open stream (active and not done), one at a time
// per stream, with the stream's lock held.
func (s *Source) each(fn func(r *reg)) {
	s.mu.Lock()
	var regs []*reg
	for _, name := range sortedNames(s.channels) {
		regs = append(regs, s.channels[name].regs...)
	}
	s.mu.Unlock()
	for _, r := range regs {
		r.mu.Lock()
		if r.active && !r.done {
			fn(r)
		}
		r.mu.Unlock()
	}
}

func sortedNames(m map[string]*channel) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
