package topic

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
)

// errEndedBeforeStart is what a topic whose clients all left before its
// source started reports to a join still waiting (none normally is).
var errEndedBeforeStart = errors.New("topic: every client left before the source started")

// topic is one key's running source, its log and its clients. It is the
// event.Sink its source writes into.
type topic struct {
	h    *Hub
	spec Spec
	st   *counters

	// ready is closed once the source's Open returned; openErr (written
	// before) is its error.
	ready   chan struct{}
	openErr error

	mu       sync.Mutex
	log      Log
	clients  []*Client
	ended    bool
	opening  bool   // Open has not returned yet (set from creation, under h.mu)
	stopFn   func() // the source's stop, once Open returned
	stopOwed bool   // ended while opening: stop once Open returns
	patching bool   // a patch client joined: compute patches from now on
	// last is the newest result delivered: what the next one is diffed
	// against (state topics).
	last *event.Event
	// member is the topic's part in a cluster (Config.Engine), nil for a
	// local topic. Until its Start returned, loading is set: the log has
	// no history yet, so joining clients wait with their catch-up
	// (Client.pending) and nothing is delivered.
	member  Membership
	loading bool
	// hold, when set, releases the topic after ResumeHold unless a client
	// joins first (see holdLocked).
	hold *time.Timer
}

var _ event.Sink = (*topic)(nil)

// open starts the source; the hub's Close cancels a start in progress.
// Clients waiting in Join are released when it returns.
func (t *topic) open(ctx context.Context) {
	t.mu.Lock()
	if t.ended {
		// Every client left before the source started: start nothing
		// (a source started now would have no one to stop it).
		t.opening, t.openErr = false, errEndedBeforeStart
		close(t.ready)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	octx, cancel := context.WithTimeout(t.h.ctx, DefaultOpenTimeout)
	if dl, ok := ctx.Deadline(); ok {
		octx, cancel = context.WithDeadline(t.h.ctx, dl)
	}
	// The start is shared by every client that joins meanwhile: it is
	// bounded by the first client's deadline, not cancelled by its leaving.
	var stop func()
	var err error
	if t.member != nil {
		if err = t.member.Start(octx); err == nil {
			stop = t.member.Leave
		}
	} else {
		stop, err = t.spec.Source.Open(octx, t)
	}
	cancel()
	t.mu.Lock()
	t.opening = false
	if err != nil {
		t.openErr = err
		close(t.ready)
		t.mu.Unlock()
		t.end(nil) // nothing to stop: Open failed
		return
	}
	t.stopFn = stop
	owed := t.stopOwed
	var d drained
	if t.loading && !owed {
		d = t.loadedLocked()
	}
	close(t.ready)
	t.mu.Unlock()
	if owed {
		stop()
		return
	}
	d.after(t)
}

// loadedLocked ends the loading of a shared topic: the clients that joined
// meanwhile catch up from the history now in the log, then what arrived
// since is delivered. t.mu is held; call after on the result once it is
// released.
func (t *topic) loadedLocked() drained {
	t.loading = false
	t.last = t.log.Newest()
	for _, c := range t.clients {
		if c.pending != nil {
			t.catchUpLocked(c, c.pending)
			c.pending = nil
		}
	}
	return t.drainLocked()
}

// notify is the shared log's signal that Take may have events.
func (t *topic) notify() {
	t.mu.Lock()
	if t.ended || t.loading {
		t.mu.Unlock()
		return
	}
	d := t.drainLocked()
	t.mu.Unlock()
	d.after(t)
}

// drained is what delivering left to do once t.mu is released.
type drained struct {
	removed int          // clients dropped (afterPush)
	empty   bool         // none left (afterPush)
	final   *event.Event // the topic ended with it (End)
}

func (d drained) after(t *topic) {
	t.afterPush(d.removed, d.empty)
	if d.final != nil {
		t.End(d.final)
	}
}

// drainLocked delivers what the log named asynchronously, up to a
// terminal event. t.mu is held.
func (t *topic) drainLocked() (d drained) {
	var buf [16]*event.Event
	for {
		evs := t.log.Take(buf[:0])
		if len(evs) == 0 {
			return d
		}
		for _, e := range evs {
			if e.Kind.Terminal() {
				d.final = e
				return d
			}
			removed, empty := t.deliverLocked(e)
			d.removed += removed
			d.empty = d.empty || empty
		}
	}
}

// deliverLocked fans out one named event: a result (with its patch
// against the newest result before it, once a patch client joined) or a
// gap. t.mu is held; pass what it returns to afterPush once released.
func (t *topic) deliverLocked(e *event.Event) (removed int, empty bool) {
	if e.Kind == event.Next {
		if t.spec.State && t.patching && t.spec.Diff != nil && t.last != nil && e.Patch == nil {
			patch := t.spec.Diff(t.last.Data, e.Data)
			if patch == nil {
				patch = e.Data // a patch client gets the full result
			}
			e.Patch = &event.Event{Kind: event.Next, ID: e.ID, Data: patch}
		}
		t.last = e
		t.st.in.Add(1)
	}
	return t.pushLocked(e)
}

// Next names a result, keeps it and fans it out (event.Sink).
func (t *topic) Next(data []byte) {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	var removed int
	var empty bool
	if e := t.log.Append(data); e != nil {
		removed, empty = t.deliverLocked(e)
	}
	t.mu.Unlock()
	t.afterPush(removed, empty)
}

// Gap notes that events may have been lost and tells every client once
// (event.Sink).
func (t *topic) Gap(reason string) {
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		return
	}
	var removed int
	var empty bool
	if g := t.log.Break(reason); g != nil {
		removed, empty = t.pushLocked(g)
	}
	t.mu.Unlock()
	t.afterPush(removed, empty)
}

// End ends the topic for every client with final (event.Sink). The
// source's stop is then called on a goroutine of the hub's: it may wait for
// the very goroutine that called End, or for a lock held around this call.
func (t *topic) End(final *event.Event) {
	if final == nil || !final.Kind.Terminal() {
		final = event.DoneEvent
	}
	t.finish(final, false, true)
}

// end unlists t and closes every client's queue with final (nil: Done,
// after a failed start). It returns the source's stop when this call ended
// t and the source is open; nil otherwise (already ended, or still
// opening: then open stops it).
func (t *topic) end(final *event.Event) (stop func()) { return t.finish(final, false, false) }

// release ends t when its last client left and no hold keeps it, and
// stops its source.
func (t *topic) release() {
	if stop := t.finish(event.DoneEvent, true, false); stop != nil {
		stop()
	}
}

// finish is end; with idleOnly it does nothing while t has a client or a
// hold. Both locks are held while it decides, so a client joining at the
// same time either comes first (and t stays) or finds t gone. With async,
// it runs the stop itself, on a goroutine counted in the hub's WaitGroup
// before h.mu is let go (so that Close, which ends every topic before it
// waits, waits for it too), and returns nil.
func (t *topic) finish(final *event.Event, idleOnly, async bool) (stop func()) {
	h := t.h
	h.mu.Lock()
	t.mu.Lock()
	if t.ended || (idleOnly && (len(t.clients) > 0 || t.hold != nil)) {
		t.mu.Unlock()
		h.mu.Unlock()
		return nil
	}
	h.dropLocked(t)
	t.ended = true
	t.stopHoldLocked()
	if final == nil {
		final = event.DoneEvent
	} else if final.Kind == event.Done && !idleOnly && t.log.Newest() != nil {
		h.keepDoneLocked(t)
	}
	clients := t.clients
	t.clients = nil
	for _, c := range clients {
		c.idx = -1
	}
	if t.opening {
		t.stopOwed = true
	} else {
		stop = t.stopFn
	}
	t.mu.Unlock()
	if async && stop != nil {
		h.wg.Add(1)
	}
	h.mu.Unlock()
	for _, c := range clients {
		c.q.Close(final)
	}
	t.st.clients.Add(-int64(len(clients)))
	if async && stop != nil {
		run := stop
		go func() {
			defer h.wg.Done()
			run()
		}()
		return nil
	}
	return stop
}

// addLocked attaches c, first queueing what it should see of the past.
// A shared log's events read but not yet delivered go to the other clients
// first, so that the catch-up and the live events meet exactly. t.mu is
// held; call after on the result once it is released.
func (t *topic) addLocked(c *Client, opt *JoinOptions) (d drained) {
	if c.patch {
		t.patching = true
	}
	if t.member != nil && !t.loading {
		d = t.drainLocked()
	}
	if t.loading {
		o := *opt
		c.pending = &o // caught up once the history is in (loadedLocked)
	} else {
		t.catchUpLocked(c, opt)
	}
	c.idx = len(t.clients)
	t.clients = append(t.clients, c)
	t.st.clients.Add(1)
	t.stopHoldLocked()
	return d
}

// catchUpLocked queues for a joining client what it should see of the
// past. It backfills (event.Queue.Backfill): a replay larger than the
// client's queue limits does not cut it off. t.mu is held.
func (t *topic) catchUpLocked(c *Client, opt *JoinOptions) {
	if t.spec.State {
		t.catchUpStateLocked(c, opt.LastEventID)
		return
	}
	switch {
	case opt.LastEventID != "":
		var buf [16]*event.Event
		evs, gap := t.log.Since(opt.LastEventID, buf[:0])
		if gap != nil {
			c.q.Backfill(event.NewGap(*gap))
			return
		}
		for _, e := range evs {
			if e.Kind.Terminal() {
				// A shared log replays across the end of a run: the
				// client gets what it missed of that run, then its end.
				c.q.Close(e)
				break
			}
			c.q.Backfill(e)
		}
		t.st.out.Add(int64(len(evs)))
	case opt.ReplayLast:
		if e := t.log.Newest(); e != nil {
			c.q.Backfill(e)
			t.st.out.Add(1)
		}
	}
}

// catchUpStateLocked brings a client of a state topic that held lastID
// (or nothing) to the newest result: nothing when it holds it, the patches
// it missed when it asked for patches and they are smaller than the
// newest result, else the newest result. t.mu is held.
func (t *topic) catchUpStateLocked(c *Client, lastID string) {
	cur := t.log.Newest()
	if cur == nil {
		return
	}
	if lastID != "" {
		var buf [16]*event.Event
		evs, gap := t.log.Since(lastID, buf[:0])
		if gap == nil && len(evs) == 0 {
			return // up to date
		}
		if gap == nil && c.patch {
			size := 0
			for _, e := range evs {
				if e.Patch == nil {
					size = -1 // joined before patches were computed
					break
				}
				size += len(e.Patch.Data)
			}
			if size >= 0 && size < len(cur.Data) {
				for _, e := range evs {
					c.q.Backfill(e.Patch)
				}
				t.st.out.Add(int64(len(evs)))
				return
			}
		}
	}
	c.q.Backfill(cur)
	t.st.out.Add(1)
}

// pushLocked fans e out to every client, dropping those whose queue is
// cut or closed; it reports how many were dropped and whether none is
// left (then the topic is to be released). When the last clients were cut
// off as slow consumers it is held instead (see holdLocked): they are
// expected back. t.mu is held; call afterPush once it is released.
func (t *topic) pushLocked(e *event.Event) (removed int, empty bool) {
	w, cut, dropped := 0, 0, 0
	for i, c := range t.clients {
		ev := e
		if c.patch && e.Patch != nil {
			ev = e.Patch
		}
		switch c.q.Push(ev) {
		case event.Cut:
			cut++
			c.idx = -1
			continue
		case event.Closed:
			c.idx = -1
			continue
		case event.Dropped:
			dropped++
		}
		if w != i {
			t.clients[w] = c
			c.idx = w
		}
		w++
	}
	t.st.out.Add(int64(w))
	if cut > 0 {
		t.st.cut.Add(int64(cut))
	}
	if dropped > 0 {
		t.st.dropped.Add(int64(dropped))
	}
	clear(t.clients[w:])
	removed = len(t.clients) - w
	t.clients = t.clients[:w]
	empty = w == 0 && removed > 0
	if empty && cut > 0 && t.holdLocked() {
		empty = false
	}
	return removed, empty
}

// afterPush accounts for the clients pushLocked dropped and releases the
// topic when none is left.
func (t *topic) afterPush(removed int, empty bool) {
	if removed > 0 {
		t.st.clients.Add(-int64(removed))
	}
	if empty && t.h.background() {
		// Not here: this is the source's goroutine, inside a Sink call,
		// and the source's stop may wait for it (or for a lock held
		// around the call). If the hub is closing, Close stops t.
		go func() {
			defer t.h.wg.Done()
			t.release()
		}()
	}
}

// holdLocked (re)starts the timer that releases t after ResumeHold unless
// a client joins first; it reports false when holding is turned off. t.mu
// is held, t has no client and has not ended.
func (t *topic) holdLocked() bool {
	h := t.h
	if h.cfg.ResumeHold <= 0 {
		return false
	}
	t.stopHoldLocked()
	var tm *time.Timer
	tm = time.AfterFunc(h.cfg.ResumeHold, func() {
		if !h.background() {
			return // the hub is closing and ends t itself
		}
		defer h.wg.Done()
		t.mu.Lock()
		mine := t.hold == tm // not stopped, replaced or ended meanwhile
		if mine {
			t.hold = nil
		}
		t.mu.Unlock()
		if mine {
			t.release()
		}
	})
	t.hold = tm
	return true
}

// stopHoldLocked cancels a pending hold. t.mu is held.
func (t *topic) stopHoldLocked() {
	if t.hold != nil {
		t.hold.Stop()
		t.hold = nil
	}
}

// Client is one client's attachment to a topic.
type Client struct {
	t     *topic
	q     *event.Queue
	patch bool
	idx   int // position in t.clients; -1 when detached (guarded by t.mu)
	// pending holds the join options of a client that joined a shared
	// topic still loading its history (guarded by t.mu).
	pending *JoinOptions
	closed  atomic.Bool
}

// Queue holds this client's events; it ends with Done (the source
// completed, or the hub closed) or Error.
func (c *Client) Queue() *event.Queue { return c.q }

// Close detaches the client; the last client to leave stops the source.
// Safe to call more than once (and after Suspend, which it then does not
// undo).
func (c *Client) Close() { c.detach(false) }

// Suspend detaches a client whose stream the gateway ended although the
// client is expected to reconnect at once (the lifetime cap, a
// slow-consumer cut-off). If it was the last client, the topic is kept for
// Config.ResumeHold, so that its reconnect with Last-Event-ID resumes
// without loss; with no client by then, the source is stopped.
func (c *Client) Suspend() { c.detach(true) }

func (c *Client) detach(hold bool) {
	if c.closed.Swap(true) {
		return
	}
	t := c.t
	t.mu.Lock()
	removed := c.idx >= 0
	if removed {
		last := len(t.clients) - 1
		moved := t.clients[last]
		t.clients[c.idx] = moved
		moved.idx = c.idx
		t.clients[last] = nil
		t.clients = t.clients[:last]
		c.idx = -1
	}
	empty := len(t.clients) == 0 && !t.ended
	if empty && hold {
		empty = !t.holdLocked()
	}
	t.mu.Unlock()
	if removed {
		t.st.clients.Add(-1)
	}
	c.q.Close(event.DoneEvent)
	if empty {
		t.release()
	}
}
