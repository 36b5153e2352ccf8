package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Defaults for the zero values of Query.
const DefaultMaxBackoff = 30 * time.Second

// Poll outcomes, passed to Query.OnPoll. They are stable metric labels.
const (
	PollChanged   = "changed"   // a new result was pushed
	PollUnchanged = "unchanged" // the result equals the last one; nothing pushed
	PollFailed    = "failed"    // no result (upstream unreachable, not JSON)
)

// FailedJSON is the result pushed (once) when polling fails after a result
// was sent. It is an ordinary result for the client, not the end of the
// stream.
var FailedJSON = event.ErrorJSON("UpstreamUnavailable", "the upstream could not be reached; retrying")

// ErrNotJSON wraps a poll whose answer is not JSON.
var ErrNotJSON = errors.New("live: upstream answer is not JSON")

// Query is one live query: how to poll it.
type Query struct {
	// Interval is the time between the starts of two polls (> 0).
	Interval time.Duration
	// Fetch polls the upstream once and returns its answer, a JSON value.
	// An error means there is no result. It is called on the poller's
	// goroutine, with a context that ends when the poller stops.
	Fetch func(ctx context.Context) ([]byte, error)
	// MaxBackoff caps the delay between polls while the upstream fails
	// (default 30s; never below Interval).
	MaxBackoff time.Duration
	// OnPoll, if set, is called after every poll with its outcome
	// (PollChanged, PollUnchanged, PollFailed), on the poller's goroutine.
	OnPoll func(outcome string)
}

// Poller polls one Query and writes each changed result into a sink: a
// source of the topic layer, which shares it between the clients of one
// upstream request and gives them ids, resume and patches.
type Poller struct {
	q Query
}

// NewPoller makes a poller for q. Nothing is polled before Open.
func NewPoller(q Query) (*Poller, error) {
	if q.Interval <= 0 || q.Fetch == nil {
		return nil, fmt.Errorf("live: query needs an interval and a fetch function")
	}
	if q.MaxBackoff <= 0 {
		q.MaxBackoff = DefaultMaxBackoff
	}
	return &Poller{q: q}, nil
}

// Open polls once: a failure is returned (the gateway answers 502 before
// any stream starts) and nothing is pushed; a result is pushed, and
// polling goes on in a goroutine until stop, which waits for it.
func (p *Poller) Open(ctx context.Context, sink event.Sink) (stop func(), err error) {
	start := time.Now()
	data, err := p.fetch(ctx)
	p.outcome(err, true)
	if err != nil {
		return nil, fmt.Errorf("live: poll: %w", err)
	}
	sink.Next(data)
	rctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { p.run(rctx, sink, data, p.q.Interval-time.Since(start)) })
	return func() {
		cancel()
		wg.Wait()
	}, nil
}

// run polls after wait, then every Interval (backing off while polls
// fail), pushing what changed, until ctx ends.
func (p *Poller) run(ctx context.Context, sink event.Sink, last []byte, wait time.Duration) {
	// Reset below discards a stale fire (Go 1.23 timer semantics).
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		data, err := p.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			fails++
			data = FailedJSON
		} else {
			fails = 0
		}
		changed := !bytes.Equal(data, last)
		if changed {
			sink.Next(data)
			last = data
		}
		p.outcome(err, changed)
		wait := p.q.Interval - time.Since(start)
		if fails > 0 {
			wait = backoff(p.q.Interval, fails, p.q.MaxBackoff)
		}
		t.Reset(max(wait, 0))
	}
}

func (p *Poller) outcome(err error, changed bool) {
	if p.q.OnPoll == nil {
		return
	}
	switch {
	case err != nil:
		p.q.OnPoll(PollFailed)
	case changed:
		p.q.OnPoll(PollChanged)
	default:
		p.q.OnPoll(PollUnchanged)
	}
}

// backoff is the delay after n consecutive failures: 2^n intervals, capped
// at max(limit, interval).
func backoff(interval time.Duration, n int, limit time.Duration) time.Duration {
	limit = max(limit, interval)
	d := interval
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// fetch polls once and returns the answer compacted.
func (p *Poller) fetch(ctx context.Context) ([]byte, error) {
	data, err := p.q.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(data))
	if err := json.Compact(&buf, data); err != nil || buf.Len() == 0 {
		return nil, ErrNotJSON
	}
	return buf.Bytes(), nil
}

// Diff is a live query topic's patch function (topic.Spec.Diff): the RFC
// 6902 patch from prev to next when it is smaller than next, else nil (the
// client gets the full result). Around a failure (FailedJSON) there is no
// patch: the client's state is an error, not a result.
func Diff(prev, next []byte) []byte {
	if bytes.Equal(prev, FailedJSON) || bytes.Equal(next, FailedJSON) {
		return nil
	}
	if p := diff(prev, next); p != nil && len(p) < len(next) {
		return p
	}
	return nil
}
