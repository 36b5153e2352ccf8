package cluster

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// maxSync bounds how long a resume waits for this instance to read as far
// as an id another instance named (topic.Syncer).
const maxSync = 2 * time.Second

// jsLog is one instance's view of a topic's subject: the records it read,
// applied by the rules of the package doc, the newest events kept for
// replay, and the events read since the topic's last Take. It implements
// topic.Log and topic.Syncer. Its reader (see reader.go) applies records;
// the topic calls the topic.Log methods with its own lock held.
type jsLog struct {
	tag    string
	size   int  // results kept for replay
	state  bool // state topic: takeovers are no gaps
	notify func()
	// pub publishes Append and Break when set (a log that runs its own
	// source; members publish through their owner's run instead).
	pub *publisher

	mu sync.Mutex
	// What the rules need of the records applied so far.
	maxTerm uint64
	lastN   uint64 // ordinal of the newest result; 0 before any
	// floor is the stream sequence of the start of a run that began
	// with no result known: its results are numbered from floor+1, past
	// any ordinal an older, forgotten run can have used (an ordinal never
	// exceeds its record's sequence).
	floor      uint64
	lastSeq    uint64 // stream sequence of the newest record read
	prevKind   byte   // of the newest record applied (not fenced)
	prevInst   string
	prevReason string // of a stop
	prevLive   bool   // the newest record applied was read live
	lastStart  string // the gap the newest start meant ("" for none)
	// followed is set once this instance followed another owner's run:
	// a takeover then may have cost its clients events.
	followed bool
	// loadTo is the newest record of the history (read when the log
	// started); records after it are live. loaded is closed once it was
	// read.
	loadTo   uint64
	isLoaded bool
	loaded   chan struct{}
	progress chan struct{} // closed and replaced whenever lastSeq grows

	ents   []kept // kept events in stream order, from head
	head   int
	nexts  int          // results among ents[head:]
	newest *event.Event // newest result of the current run
	inbox  []*event.Event
}

// kept is one kept event: a result, a gap, or a topic's end.
type kept struct {
	seq, n uint64 // n: the ordinal of the result, or of the one before
	ev     *event.Event
	first  bool // the first result of a run numbered from its start
}

func newLog(tag string, size int, state bool, notify func()) *jsLog {
	if notify == nil {
		notify = func() {}
	}
	return &jsLog{tag: tag, size: max(size, 1), state: state, notify: notify,
		loaded: make(chan struct{}), progress: make(chan struct{})}
}

var (
	_ topic.Log    = (*jsLog)(nil)
	_ topic.Syncer = (*jsLog)(nil)
)

// Append publishes a result when the log runs its own publisher; the
// event comes back through Take once stored.
func (l *jsLog) Append(data []byte) *event.Event {
	if l.pub != nil {
		l.pub.Next(data)
	}
	return nil
}

// Break publishes a gap when the log runs its own publisher.
func (l *jsLog) Break(reason string) *event.Event {
	if l.pub != nil {
		l.pub.Gap(reason)
	}
	return nil
}

func (l *jsLog) Take(dst []*event.Event) []*event.Event {
	l.mu.Lock()
	dst = append(dst, l.inbox...)
	clear(l.inbox)
	l.inbox = l.inbox[:0]
	l.mu.Unlock()
	return dst
}

func (l *jsLog) Newest() *event.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.newest
}

func (l *jsLog) Owns(id string) bool {
	tag, seq, _, ok := parseID(id)
	l.mu.Lock()
	defer l.mu.Unlock()
	return ok && tag == l.tag && seq <= l.lastSeq
}

// position is the id a client at the newest event holds: the newest
// result's, or before any, the point the log has read to.
func (l *jsLog) positionLocked() string {
	if l.newest != nil {
		return l.newest.ID
	}
	return formatID(l.tag, l.lastSeq, l.lastN)
}

func (l *jsLog) Since(id string, dst []*event.Event) ([]*event.Event, *event.GapData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tag, seq, n, ok := parseID(id)
	if !ok || tag != l.tag || seq > l.lastSeq {
		// Another topic, another stream incarnation, or a position this
		// instance has not read (Sync waited for it): unknown.
		return dst, &event.GapData{LastEventID: l.positionLocked(), Reason: "restarted"}
	}
	live := l.ents[l.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].seq > seq })
	// Results before the first one kept after the client's position are
	// not here: the ordinals say how many.
	var after *kept
	for k := range live[i:] {
		if live[i+k].ev.Kind == event.Next {
			after = &live[i+k]
			break
		}
	}
	var missing int64
	switch {
	case n == 0:
		// The client had seen no result: it missed some when a result
		// came before the first one kept after it, and is not kept
		// before its position.
		if after != nil && !after.first && !hasNext(live[:i]) {
			missing = 1
		}
	case after != nil:
		missing = int64(after.n) - 1 - int64(n)
	default:
		missing = int64(l.lastN) - int64(n)
	}
	switch {
	case missing > 0:
		g := &event.GapData{LastEventID: l.positionLocked(), Reason: "expired"}
		if n != 0 && l.lastN > n {
			g.Missed = int(l.lastN - n)
		}
		return dst, g
	case missing < 0:
		return dst, &event.GapData{LastEventID: l.positionLocked(), Reason: "restarted"}
	}
	for _, e := range live[i:] {
		dst = append(dst, e.ev)
		if e.ev.Kind.Terminal() {
			break // a client of an ended run gets its end, not the next run
		}
	}
	return dst, nil
}

func hasNext(ents []kept) bool {
	for _, e := range ents {
		if e.ev.Kind == event.Next {
			return true
		}
	}
	return false
}

// Sync waits until the log has read as far as id (at most maxSync).
func (l *jsLog) Sync(ctx context.Context, id string) {
	tag, seq, _, ok := parseID(id)
	if !ok || tag != l.tag {
		return
	}
	timer := time.NewTimer(maxSync)
	defer timer.Stop()
	for {
		l.mu.Lock()
		done, progress := l.lastSeq >= seq, l.progress
		l.mu.Unlock()
		if done {
			return
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		}
	}
}

// apply applies one record read from the subject, by the rules of the
// package doc, and reports whether the topic has events to Take.
func (l *jsLog) apply(r record, pending uint64) (notify bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.seq <= l.lastSeq {
		return false // read again after a consumer reset
	}
	l.lastSeq = r.seq
	close(l.progress)
	l.progress = make(chan struct{})
	live := l.isLoaded
	if !live && (r.seq >= l.loadTo || pending == 0) {
		l.markLoadedLocked()
	}
	if r.term < l.maxTerm {
		return false // fenced: an owner that lost its lease
	}
	before := len(l.inbox)
	switch r.kind {
	case kindStart:
		l.maxTerm = r.term
		if l.lastN == 0 {
			l.floor = r.seq
		}
		reason := ""
		switch {
		case l.state || l.prevKind == 0 || l.prevKind == kindDone || l.prevKind == kindError:
		case l.prevKind == kindStop && l.prevReason == stopHandoff:
			reason = "handoff"
		case l.prevKind == kindStop:
			reason = "restarted"
		case l.prevInst != r.inst:
			reason = "failover"
		}
		l.lastStart = reason
		if reason != "" {
			// Told live only to clients that were following a run (a
			// fresh start's clients missed nothing); kept for resumes.
			l.gapLocked(r.seq, reason, live && (l.prevLive || l.followed))
		}
	case kindNext:
		if l.lastN != 0 && r.n <= l.lastN {
			return false // already applied (cannot happen but for a bug)
		}
		if l.lastN != 0 && r.n > l.lastN+1 {
			l.gapLocked(r.seq, "reconnected", live) // results were lost
		}
		e := &event.Event{Kind: event.Next, ID: formatID(l.tag, r.seq, r.n), Data: r.data}
		l.keepLocked(kept{seq: r.seq, n: r.n, ev: e, first: l.lastN == 0 && r.n == l.floor+1})
		l.nexts++
		l.lastN, l.newest = r.n, e
		if live {
			l.inbox = append(l.inbox, e)
		}
	case kindGap:
		l.gapLocked(r.seq, string(r.data), live)
	case kindDone, kindError:
		final := event.DoneEvent
		if r.kind == kindError {
			final = &event.Event{Kind: event.Error, Data: r.data}
		}
		l.keepLocked(kept{seq: r.seq, n: l.lastN, ev: final})
		l.newest = nil // the run ended: the next one starts empty
		if live {
			l.inbox = append(l.inbox, final)
		}
	case kindStop:
		if string(r.data) != stopHandoff {
			l.newest = nil // nothing ran: the next run starts empty
		}
	}
	l.prevKind, l.prevInst, l.prevLive = r.kind, r.inst, live
	if r.kind == kindStop {
		l.prevReason = string(r.data)
	}
	return len(l.inbox) > before
}

// gapLocked keeps a gap at seq (none right after another gap: a break
// right after a break is the same break) and queues it when told.
func (l *jsLog) gapLocked(seq uint64, reason string, tell bool) {
	if k := len(l.ents); k > l.head && l.ents[k-1].ev.Kind == event.Gap {
		return
	}
	g := event.NewGap(event.GapData{Reason: reason})
	l.keepLocked(kept{seq: seq, n: l.lastN, ev: g})
	if tell {
		l.inbox = append(l.inbox, g)
	}
}

// keepLocked appends an entry, dropping the oldest beyond size results
// (and beyond twice as many entries, gaps and ends included).
func (l *jsLog) keepLocked(e kept) {
	l.ents = append(l.ents, e)
	for l.nexts > l.size || len(l.ents)-l.head > 2*l.size+8 {
		if l.ents[l.head].ev.Kind == event.Next {
			l.nexts--
		}
		l.ents[l.head] = kept{}
		l.head++
	}
	if l.head > 64 && l.head*2 > len(l.ents) {
		n := copy(l.ents, l.ents[l.head:])
		clear(l.ents[n:])
		l.ents, l.head = l.ents[:n], 0
	}
}

// markLoadedLocked ends the history: records from now on are live.
func (l *jsLog) markLoadedLocked() {
	if !l.isLoaded {
		l.isLoaded = true
		close(l.loaded)
	}
}

// follow notes that another instance runs the topic while this one has
// clients for it.
func (l *jsLog) follow() {
	l.mu.Lock()
	l.followed = true
	l.mu.Unlock()
}

// base is the ordinal of the newest result, which the owner's next one
// follows: that of the newest result read, or with none the floor of the
// run (see floor). The owner reads it once its own start was applied.
func (l *jsLog) base() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastN != 0 {
		return l.lastN
	}
	return l.floor
}

// readTo reports the stream sequence the log has read to.
func (l *jsLog) readTo() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSeq
}

// waitRead waits until the log has read as far as seq.
func (l *jsLog) waitRead(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		done, progress := l.lastSeq >= seq, l.progress
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// startReason is the gap the newest start record meant: "failover",
// "handoff", "restarted", or "" (a fresh start, or the same owner again).
func (l *jsLog) startReason() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastStart
}

// ended reports whether the newest record applied ended the topic.
func (l *jsLog) ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prevKind == kindDone || l.prevKind == kindError
}
