package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fireboom/fireboom/event"
)

// publisher is the event.Sink of a source this instance runs: it
// publishes what the source produces as records of the topic's subject,
// stamped with the owner's term and each result's ordinal. Publishes are
// asynchronous and pipelined; their order on the connection is their
// order in the stream. A publish that fails leaves a hole in the ordinals,
// which every reader turns into a gap.
type publisher struct {
	js      jetstream.JetStream
	subject string
	inst    string
	// onEnd is called once, on a goroutine of its own choosing, when the
	// source ended itself (End): the owner then lets the topic go.
	onEnd func()
	// failed counts publishes that could not even be queued.
	failed *atomic.Int64

	mu     sync.Mutex
	term   uint64
	n      uint64 // ordinal of the newest result published
	closed bool   // stopped or ended: nothing more is published
}

var _ event.Sink = (*publisher)(nil)

// pubOpts: no retry (a retried publish could land after later ones), and
// a short stall when too many acks are pending (a NATS outage): the
// source's reader must not wait long; what cannot be queued is a hole.
var pubOpts = []jetstream.PublishOpt{jetstream.WithRetryAttempts(0), jetstream.WithStallWait(5 * time.Millisecond)}

func (p *publisher) Next(data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.n++
	p.publishLocked(kindNext, data)
}

func (p *publisher) Gap(reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.publishLocked(kindGap, []byte(reason))
	}
}

// End publishes the topic's end (done, or the error) and lets the topic
// go: every instance ends its clients' streams when it reads it.
func (p *publisher) End(final *event.Event) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if final != nil && final.Kind == event.Error {
		p.publishLocked(kindError, final.Data)
	} else {
		p.publishLocked(kindDone, nil)
	}
	p.closed = true
	p.mu.Unlock()
	if p.onEnd != nil {
		p.onEnd()
	}
}

// begin sets the term and the ordinal the next result follows (after the
// owner's start record was applied by its own reader).
func (p *publisher) begin(term, base uint64) {
	p.mu.Lock()
	p.term, p.n = term, base
	p.mu.Unlock()
}

// renew moves a running publisher to a new term of the same owner (its
// lease lapsed during an outage and was won again): results go on with
// their ordinals.
func (p *publisher) renew(term uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.term = term
	p.publishLocked(kindStart, nil)
}

// close stops publishing: after it returns nothing more is sent.
func (p *publisher) close() (wasOpen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasOpen = !p.closed
	p.closed = true
	return wasOpen
}

func (p *publisher) publishLocked(kind byte, data []byte) {
	if _, err := p.js.PublishMsgAsync(newRecord(p.subject, kind, p.term, p.inst, p.n, data), pubOpts...); err != nil && p.failed != nil {
		p.failed.Add(1)
	}
}

// flush waits (bounded by ctx) until the broker acknowledged every
// publish of this connection, so that a successor starts after them.
func flush(ctx context.Context, js jetstream.JetStream) {
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
	}
}
