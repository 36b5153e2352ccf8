package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/fireboom/fireboom/topic"
)

// entry is what this instance knows and does about one topic: its local
// member (while it has clients here) and its ownership (while its source
// runs here). Fields are guarded by Engine.mu; op serialises the
// multi-step lease operations (start, takeover, leave, let go), which
// happen with Engine.mu released.
type entry struct {
	hash    string
	subject string
	op      sync.Mutex

	m        *member
	src      topic.Source // the latest local member's source
	own      *ownership
	interest time.Time // when this instance's interest key was last written
	tried    time.Time // last takeover attempt
}

// ownership is this instance's run of a topic's source.
type ownership struct {
	term, rev uint64 // the lease's revision when won, and now
	pub       *publisher
	stop      func() // the source's stop, once Open returned
	refreshed time.Time
}

// member is one local topic's membership (topic.Membership).
type member struct {
	e     *Engine
	hash  string
	spec  topic.EngineSpec
	log   *jsLog
	rd    *reader
	ent   *entry
	start bool // Start succeeded: Leave has work to do
}

// Join makes this instance a member of a topic (topic.Engine). The topic
// key is hashed here and never kept.
func (e *Engine) Join(spec topic.EngineSpec, notify func()) topic.Membership {
	hash := topicHash(spec.Key)
	spec.Key = ""
	size := e.cfg.MaxEvents
	if spec.State {
		size = max(spec.Replay, 1)
	}
	e.mu.Lock()
	tag := idTag(e.epoch, hash)
	e.mu.Unlock()
	return &member{e: e, hash: hash, spec: spec, log: newLog(tag, size, spec.State, notify)}
}

func (m *member) Log() topic.Log { return m.log }

// Start registers interest, reads the history, and either finds the
// topic's owner or becomes it, opening the source.
func (m *member) Start(ctx context.Context) (err error) {
	e := m.e
	if !e.Available() {
		return topic.ErrUnavailable
	}
	e.mu.Lock()
	if e.closed || e.kv == nil {
		e.mu.Unlock()
		return topic.ErrUnavailable
	}
	ent := e.entries[m.hash]
	if ent == nil {
		ent = &entry{hash: m.hash, subject: e.subject(m.hash)}
		e.entries[m.hash] = ent
	}
	ent.m, ent.src, m.ent = m, m.spec.Source, ent
	st, kv := e.st, e.kv
	e.mu.Unlock()
	ent.op.Lock()
	defer func() {
		if err != nil {
			e.mu.Lock()
			if ent.m == m {
				ent.m = nil
			}
			e.mu.Unlock()
			e.dropInterest(ent)
			e.dropIfIdle(ent)
		}
		ent.op.Unlock()
	}()
	if _, err = kv.Put(ctx, e.interestKey(m.hash), []byte(e.inst)); err != nil {
		return err
	}
	e.mu.Lock()
	ent.interest = time.Now()
	e.mu.Unlock()
	if m.rd, err = startReader(ctx, st, ent.subject, m.log); err != nil {
		return err
	}
	e.mu.Lock()
	owned := ent.own != nil
	e.mu.Unlock()
	if !owned {
		if _, err = e.acquire(ctx, ent); err != nil {
			m.rd.stop()
			return err
		}
	}
	m.log.absorb()
	m.start = true
	return nil
}

// Leave ends the membership on a goroutine of the engine's: the reader
// stops, the interest key goes, and the source stops unless another
// instance still has clients (or this one is shutting down: Close hands
// it over).
func (m *member) Leave() {
	if !m.start {
		return
	}
	e, ent := m.e, m.ent
	e.spawn(func() {
		ent.op.Lock()
		e.mu.Lock()
		mine := ent.m == m
		if mine {
			ent.m = nil
		}
		e.mu.Unlock()
		if mine {
			e.dropInterest(ent)
		}
		e.releaseIfIdle(ent)
		e.dropIfIdle(ent)
		ent.op.Unlock()
		// Last: an operation that held op may have waited on this reader.
		m.rd.stop()
	})
}

// acquire tries to win the topic's lease; won, it becomes the owner
// (opening the source). Lost to a live holder, it follows. ent.op is held.
func (e *Engine) acquire(ctx context.Context, ent *entry) (won bool, err error) {
	e.mu.Lock()
	kv := e.kv
	ent.tried = time.Now()
	e.mu.Unlock()
	rev, err := kv.Create(ctx, leaseKey(ent.hash), []byte(e.inst))
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Someone runs it. When did it last write its lease? The
		// takeover waits for that plus the TTL.
		if cur, gerr := kv.Get(ctx, leaseKey(ent.hash)); gerr == nil {
			e.mu.Lock()
			e.leases[ent.hash] = leaseSeen{holder: string(cur.Value()), at: cur.Created()}
			e.mu.Unlock()
		}
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, e.becomeOwner(ctx, ent, rev)
}

// becomeOwner runs the topic here under the lease of revision rev: it
// publishes the start of its term, waits until its own reader applied it
// (so the ordinals go on from the newest result), and opens the source.
// A source that fails to open lets the topic go again. ent.op is held.
func (e *Engine) becomeOwner(ctx context.Context, ent *entry, rev uint64) error {
	e.mu.Lock()
	m, src := ent.m, ent.src
	e.mu.Unlock()
	own := &ownership{term: rev, rev: rev, refreshed: time.Now()}
	own.pub = &publisher{js: e.js, subject: ent.subject, inst: e.inst, term: rev, failed: &e.failed}
	own.pub.onEnd = func() { e.spawn(func() { e.ended(ent, own) }) }
	e.mu.Lock()
	ent.own = own
	e.mu.Unlock()
	ack, err := e.js.PublishMsg(ctx, newRecord(ent.subject, kindStart, rev, e.inst, 0, nil))
	if err == nil && m != nil {
		err = m.log.waitRead(ctx, ack.Sequence)
	}
	if err != nil {
		e.giveUp(ent, own, "")
		return err
	}
	if m != nil {
		own.pub.begin(rev, m.log.base())
		e.countTakeover(m.log.startReason())
	}
	stop, err := src.Open(ctx, own.pub)
	if err != nil {
		e.giveUp(ent, own, stopIdle)
		return err
	}
	e.mu.Lock()
	still := ent.own == own
	if still {
		own.stop = stop
	}
	e.mu.Unlock()
	if !still {
		stop() // lost while opening
	}
	e.log.Debug("cluster: running topic", "topic", ent.hash, "term", rev)
	return nil
}

// giveUp ends an ownership that could not start: a stop record (when
// one is due) and the lease deleted, so that another instance may try.
func (e *Engine) giveUp(ent *entry, own *ownership, stopReason string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	e.giveUpCtx(ctx, ent, own, stopReason)
}

// giveUpCtx is giveUp bounded by ctx (Close shares one deadline between
// every topic it hands over).
func (e *Engine) giveUpCtx(ctx context.Context, ent *entry, own *ownership, stopReason string) {
	own.pub.close()
	if stopReason != "" {
		_, _ = e.js.PublishMsg(ctx, newRecord(ent.subject, kindStop, own.term, e.inst, 0, []byte(stopReason)))
	}
	e.mu.Lock()
	if ent.own == own {
		ent.own = nil
	}
	rev, kv := own.rev, e.kv
	e.mu.Unlock()
	_ = kv.Delete(ctx, leaseKey(ent.hash), jetstream.LastRevision(rev))
}

// letGo stops a source that runs here, publishes a stop (stopIdle: no
// instance has clients; stopHandoff: this one is going away) and deletes
// the lease. ent.op need not be held (Close).
func (e *Engine) letGo(ctx context.Context, ent *entry, reason string) {
	e.mu.Lock()
	own := ent.own
	e.mu.Unlock()
	if own == nil || !own.pub.close() {
		return
	}
	if own.stop != nil {
		own.stop() // the upstream subscription is completed
	}
	e.giveUpCtx(ctx, ent, own, reason)
	e.log.Debug("cluster: let a topic go", "topic", ent.hash, "reason", reason)
}

// ended: the source ended the topic itself (the end record is out); the
// lease goes, and the source's stop is called as its contract wants.
func (e *Engine) ended(ent *entry, own *ownership) {
	ent.op.Lock()
	defer ent.op.Unlock()
	if own.stop != nil {
		own.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	flush(ctx, e.js) // the end is stored before the lease goes
	cancel()
	e.giveUp(ent, own, "")
	e.dropIfIdle(ent)
}

// releaseIfIdle lets a topic go that runs here when no instance has
// clients for it any more (not while shutting down: Close hands over).
// ent.op is held.
func (e *Engine) releaseIfIdle(ent *entry) {
	e.mu.Lock()
	idle := ent.own != nil && ent.m == nil && !e.closing && !e.othersInterestedLocked(ent.hash)
	e.mu.Unlock()
	if idle {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		e.letGo(ctx, ent, stopIdle)
	}
}

// dropInterest deletes this instance's interest key of the topic.
func (e *Engine) dropInterest(ent *entry) {
	e.mu.Lock()
	kv := e.kv
	ent.interest = time.Time{}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	_ = kv.Delete(ctx, e.interestKey(ent.hash))
	cancel()
}

// dropIfIdle forgets a topic with neither a member nor a source here.
func (e *Engine) dropIfIdle(ent *entry) {
	e.mu.Lock()
	if ent.m == nil && ent.own == nil && e.entries[ent.hash] == ent {
		delete(e.entries, ent.hash)
	}
	e.mu.Unlock()
}

// tryTakeoverLocked starts a takeover attempt of a topic this instance
// has clients for, unless one is in progress. e.mu is held.
func (e *Engine) tryTakeoverLocked(ent *entry) {
	if e.closing || !ent.op.TryLock() {
		return
	}
	ent.tried = time.Now()
	e.spawn(func() {
		defer ent.op.Unlock()
		e.mu.Lock()
		go_ := ent.m != nil && ent.own == nil && !e.closing
		e.mu.Unlock()
		if !go_ {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), topic.DefaultOpenTimeout)
		defer cancel()
		if e.topicEnded(ctx, ent) {
			return // the source completed it: its members end, none restarts it
		}
		if won, err := e.acquire(ctx, ent); err != nil {
			e.log.Warn("cluster: taking a topic over failed; retrying", "topic", ent.hash, "err", err)
		} else if won {
			e.log.Info("cluster: took a topic over", "topic", ent.hash)
		}
	})
}

// topicEnded reads the topic's subject to its newest record and reports
// whether that is the topic's end: the owner deletes its lease after the
// end is stored, and this instance may see the deletion first.
func (e *Engine) topicEnded(ctx context.Context, ent *entry) bool {
	e.mu.Lock()
	st, m := e.st, ent.m
	e.mu.Unlock()
	last, err := st.GetLastMsgForSubject(ctx, ent.subject)
	if err != nil {
		return false
	}
	if m.log.waitRead(ctx, last.Sequence) != nil {
		return false
	}
	return m.log.ended()
}

// keeper refreshes this instance's leases and interest keys, takes over
// topics whose owner stopped refreshing, and lets go of topics no
// instance has clients for. It also sets JetStream up once NATS is
// reachable.
func (e *Engine) keeper() {
	defer e.loops.Done()
	tick := min(e.cfg.LeaseTTL/8, 250*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-e.loopCtx.Done():
			return
		case <-t.C:
		}
		if !e.ready.Load() {
			if e.nc.IsConnected() {
				ctx, cancel := context.WithTimeout(e.loopCtx, opTimeout)
				if err := e.setup(ctx); err != nil {
					e.log.Warn("cluster unavailable: JetStream could not be set up; retrying", "err", err)
				}
				cancel()
			}
			continue
		}
		if e.nc.IsConnected() {
			e.keep()
		}
	}
}

// keep is one pass of the keeper.
func (e *Engine) keep() {
	now := time.Now()
	every := e.cfg.LeaseTTL / 4
	type refresh struct {
		ent *entry
		own *ownership
	}
	var leases []refresh
	var interests []*entry
	// Right after an outage nothing is stale: owners refresh first.
	settled := now.Sub(time.Unix(0, e.upSince.Load())) > e.cfg.LeaseTTL
	e.mu.Lock()
	kv := e.kv
	for _, ent := range e.entries {
		if own := ent.own; own != nil && own.pub != nil && now.Sub(own.refreshed) >= every {
			leases = append(leases, refresh{ent, own})
		}
		if ent.m != nil && !ent.interest.IsZero() && now.Sub(ent.interest) >= every {
			interests = append(interests, ent)
		}
		if settled && ent.m != nil && ent.own == nil && now.Sub(ent.tried) >= 250*time.Millisecond {
			if l, ok := e.leases[ent.hash]; !ok || now.Sub(l.at) > e.cfg.LeaseTTL {
				e.tryTakeoverLocked(ent) // the owner stopped refreshing
			}
		}
		if settled && ent.own != nil && ent.m == nil && !e.closing && !e.othersInterestedLocked(ent.hash) && ent.op.TryLock() {
			ent := ent
			e.spawn(func() {
				defer ent.op.Unlock()
				e.releaseIfIdle(ent)
				e.dropIfIdle(ent)
			})
		}
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.loopCtx, opTimeout)
	defer cancel()
	for _, r := range leases {
		rev, err := kv.Update(ctx, leaseKey(r.ent.hash), []byte(e.inst), r.own.rev)
		switch {
		case err == nil:
			e.mu.Lock()
			r.own.rev, r.own.refreshed = rev, now
			e.mu.Unlock()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
			e.lost(r.ent, r.own)
		}
	}
	for _, ent := range interests {
		if _, err := kv.Put(ctx, e.interestKey(ent.hash), []byte(e.inst)); err == nil {
			e.mu.Lock()
			if !ent.interest.IsZero() {
				ent.interest = now
			}
			e.mu.Unlock()
		}
	}
	e.prune(now)
}

// lost: the lease of a topic that runs here lapsed (an outage longer
// than the TTL) or was taken. Won back at once, the source goes on under
// a new term (no gap: nothing was lost); else it stops: the new owner's
// start fences whatever it still publishes.
func (e *Engine) lost(ent *entry, own *ownership) {
	if !ent.op.TryLock() {
		return // busy: the next pass sees it again
	}
	e.spawn(func() {
		defer ent.op.Unlock()
		e.mu.Lock()
		mine, kv := ent.own == own, e.kv
		e.mu.Unlock()
		if !mine {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		rev, err := kv.Create(ctx, leaseKey(ent.hash), []byte(e.inst))
		if err == nil {
			e.mu.Lock()
			own.term, own.rev, own.refreshed = rev, rev, time.Now()
			e.mu.Unlock()
			own.pub.renew(rev)
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return // NATS trouble: try again on the next pass
		}
		e.log.Warn("cluster: lost a topic's lease to another instance; stopping its source here", "topic", ent.hash)
		own.pub.close()
		if own.stop != nil {
			own.stop()
		}
		e.mu.Lock()
		if ent.own == own {
			ent.own = nil
		}
		e.mu.Unlock()
		e.dropIfIdle(ent)
	})
}

// prune forgets interest not refreshed for a while (an instance that
// died) and leases that lapsed long ago.
func (e *Engine) prune(now time.Time) {
	cut := now.Add(-4 * e.cfg.LeaseTTL).UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	for hash, l := range e.leases {
		if l.at.UnixNano() < cut && e.entries[hash] == nil {
			delete(e.leases, hash) // lapsed long ago (no delete is seen for an expiry)
		}
	}
	for hash, m := range e.interest {
		for inst, at := range m {
			if at < cut {
				delete(m, inst)
			}
		}
		if len(m) == 0 {
			delete(e.interest, hash)
		}
	}
}
