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
	lastStart  string // the gap the newest start meant ("" for none)
	// loadTo is the newest record of the history (read when the log
	// started); records after it are live. loaded is closed once it was
	// read.
	loadTo   uint64
	isLoaded bool
	loaded   chan struct{}
	progress chan struct{} // closed and replaced whenever lastSeq grows

	lastWasGap bool // the newest record applied kept a gap

	// What the topic sees: the history, then what Take handed over. A
	// record read live waits in pending until Take, so that a client
	// catching up (Since) and the live events meet exactly.
	ents     []kept // kept events in stream order, from head
	head     int
	nexts    int          // results among ents[head:]
	newest   *event.Event // newest result of the current run
	takenSeq uint64       // the newest record the topic sees
	pending  []kept
}

// kept is one kept event: a result, a gap, or a topic's end.
type kept struct {
	seq, n uint64 // n: the ordinal of the result, or of the one before
	ev     *event.Event
	first  bool // the first result of a run numbered from its start
	// Pending only: tell hands ev to the clients; reset ends the run
	// (newest goes); ev nil: nothing to keep.
	tell, reset bool
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
	for _, k := range l.pending {
		l.showLocked(k)
		if k.tell {
			dst = append(dst, k.ev)
		}
	}
	clear(l.pending)
	l.pending = l.pending[:0]
	l.mu.Unlock()
	return dst
}

// showLocked makes a record's event part of what the topic sees.
func (l *jsLog) showLocked(k kept) {
	l.takenSeq = k.seq
	if k.ev != nil {
		l.keepLocked(k)
		if k.ev.Kind == event.Next {
			l.newest = k.ev
		}
	}
	if k.reset {
		l.newest = nil
	}
}

// addLocked queues a record's event for Take, or shows it at once when
// it is history.
func (l *jsLog) addLocked(k kept, live bool) {
	if live {
		l.pending = append(l.pending, k)
	} else {
		l.showLocked(k)
	}
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
	return formatID(l.tag, l.takenSeq, l.newestN())
}

// newestN is the ordinal of the newest result the topic sees.
func (l *jsLog) newestN() uint64 {
	for i := len(l.ents) - 1; i >= l.head; i-- {
		return l.ents[i].n
	}
	return 0
}

func (l *jsLog) Since(id string, dst []*event.Event) ([]*event.Event, *event.GapData) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tag, seq, n, ok := parseID(id)
	if !ok || tag != l.tag || seq > l.takenSeq {
		// Another topic, another stream incarnation, or a position this
		// instance has not read (Sync waited for it): unknown.
		return dst, &event.GapData{LastEventID: l.positionLocked(), Reason: "restarted"}
	}
	live := l.ents[l.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].seq > seq })
	// Results before the first one kept after the client's position are
	// not here: the ordinals say how many.
	var after *kept
	declared := false // a gap kept before it says why results are missing
	for k := range live[i:] {
		if live[i+k].ev.Kind == event.Next {
			after = &live[i+k]
			break
		}
		declared = declared || live[i+k].ev.Kind == event.Gap
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
	case after != nil && declared && after.n > n:
	case after != nil:
		missing = int64(after.n) - 1 - int64(n)
	default:
		missing = int64(l.newestN()) - int64(n)
	}
	switch {
	case missing > 0:
		g := &event.GapData{LastEventID: l.positionLocked(), Reason: "expired"}
		if top := l.newestN(); n != 0 && top > n {
			g.Missed = int(top - n)
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
	if r.kind == 0 || r.term < l.maxTerm {
		return false // not a record, or fenced: an owner that lost its lease
	}
	switch r.kind {
	case kindStart:
		l.maxTerm = r.term
		if l.lastN == 0 {
			l.floor = r.seq
		}
		l.lastStart = ""
		switch {
		case l.prevKind == kindStop && l.prevReason == stopHandoff:
			l.lastStart = "handoff" // the stop made the gap
		case l.prevKind == 0 || l.prevKind == kindDone || l.prevKind == kindError || l.prevKind == kindStop:
		case l.prevInst != r.inst:
			l.lastStart = "failover"
		}
		if l.lastStart == "failover" && !l.state {
			l.gapLocked(r.seq, "failover", live)
		} else {
			l.addLocked(kept{seq: r.seq}, live)
		}
	case kindNext:
		if l.lastN != 0 && r.n <= l.lastN {
			return false // already applied (cannot happen but for a bug)
		}
		if l.lastN != 0 && r.n > l.lastN+1 {
			l.gapLocked(r.seq, "reconnected", live) // results were lost
		}
		e := &event.Event{Kind: event.Next, ID: formatID(l.tag, r.seq, r.n), Data: r.data}
		l.addLocked(kept{seq: r.seq, n: r.n, ev: e, first: l.lastN == 0 && r.n == l.floor+1, tell: true}, live)
		l.lastN, l.lastWasGap = r.n, false
	case kindGap:
		l.gapLocked(r.seq, string(r.data), live)
	case kindDone, kindError:
		final := event.DoneEvent
		if r.kind == kindError {
			final = &event.Event{Kind: event.Error, Data: r.data}
		}
		// The run ended: the next one starts empty.
		l.addLocked(kept{seq: r.seq, n: l.lastN, ev: final, tell: true, reset: true}, live)
		l.lastWasGap = false
	case kindStop:
		// Nothing runs until the next start: what the upstream sends
		// meanwhile is lost. The gap is placed here, so that a client
		// resuming from before it is told, and one that joins after it
		// is not. After an idle stop the next run starts empty.
		idle := string(r.data) != stopHandoff
		switch {
		case l.state:
			l.addLocked(kept{seq: r.seq, reset: idle}, live)
		case idle:
			l.gapLocked(r.seq, "restarted", live)
			l.addLocked(kept{seq: r.seq, reset: true}, live)
		default:
			l.gapLocked(r.seq, "handoff", live)
		}
	}
	l.prevKind, l.prevInst = r.kind, r.inst
	if r.kind == kindStop {
		l.prevReason = string(r.data)
	}
	return live
}

// gapLocked keeps a gap at seq (none right after another gap: a break
// right after a break is the same break).
func (l *jsLog) gapLocked(seq uint64, reason string, live bool) {
	if l.lastWasGap {
		return
	}
	l.lastWasGap = true
	g := event.NewGap(event.GapData{Reason: reason})
	l.addLocked(kept{seq: seq, n: l.lastN, ev: g, tell: true}, live)
}

// keepLocked appends an entry, dropping the oldest beyond size results
// (and beyond twice as many entries, gaps and ends included).
func (l *jsLog) keepLocked(e kept) {
	e.tell, e.reset = false, false
	l.ents = append(l.ents, e)
	if e.ev.Kind == event.Next {
		l.nexts++
	}
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

// absorb shows what was read while the topic was starting, without
// telling it: no client has caught up yet, and each will from its own
// position (Since). So a client that starts a topic anew is not told of
// the gap its own start makes after a stopped run, while a client that
// resumes from before that stop is.
func (l *jsLog) absorb() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.pending {
		l.showLocked(k)
	}
	clear(l.pending)
	l.pending = l.pending[:0]
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

// startReason says what the newest start record was: a takeover after a
// "failover" or a "handoff", or "" (a start after an idle stop or an end,
// a fresh topic, or the same owner again).
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
