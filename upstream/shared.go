package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/event"
)

// shared is one upstream subscription (one operation id on one connection)
// and the clients fed by it.
type shared struct {
	h    *Hub
	c    *conn
	id   string // operation id on c
	key  string // subscription identity; "" when not in the dedup index
	body []byte // subscribe payload, kept so a reconnect can re-send it
	inc  string // incarnation: first part of every event id

	mu      sync.Mutex
	started bool   // a client stream began: the subscription is wanted upstream
	on      uint64 // the connection session the subscribe frame went out on; 0 none
	// writing is set (and closed when done) while a subscribe frame is
	// being written. The write happens with s.mu released, so that a slow
	// upstream never holds s.mu (which Hub.Subscribe waits for under h.mu,
	// and every reader needs h.mu). While it is set, release and end leave
	// the stop frame to the writer (see finishWrite): the subscribe frame
	// always goes out before the stop frame for the same id.
	writing chan struct{}
	// stopOwed: s ended while writing, and whoever ended it wants the
	// subscription completed upstream (the last client left, the hub
	// closed). Not set when the upstream itself ended it.
	stopOwed bool
	ended    bool  // no more events; clients were closed or left
	endErr   error // why it ended before it started
	clients  []*Subscription
	seq      uint64         // sequence of the newest event
	ring     []*event.Event // the newest len(ring) events, circular
	ringPos  int            // where the next event goes
	ringN    int            // how many ring slots hold events
	last     *event.Event
	// breaks are the seqs after which the connection was re-established
	// (ascending, within the ring): a resume across one gets reconnectGap
	// at that point.
	breaks []uint64
	// hold, when set, releases the subscription after ResumeHold: its last
	// client was cut off or suspended and is expected back (see holdLocked).
	hold *time.Timer
}

// Subscription is one client's attachment to a shared upstream
// subscription.
type Subscription struct {
	h      *Hub
	s      *shared
	q      *event.Queue
	idx    int // position in s.clients; -1 when detached (guarded by s.mu)
	closed atomic.Bool
}

// Queue holds this client's events; it ends with Done (the upstream
// completed or the hub closed) or Error.
func (sub *Subscription) Queue() *event.Queue { return sub.q }

// Close detaches the client. The last client to leave completes the
// upstream subscription at once. Safe to call more than once (and after
// Suspend, which it then does not undo).
func (sub *Subscription) Close() { sub.detach(false) }

// Suspend detaches a client whose stream the gateway ended although the
// client is expected to reconnect at once: the stream reached its lifetime
// cap, or the client was cut off as a slow consumer. If it was the last
// client, the upstream subscription is kept for HubConfig.ResumeHold, so
// that the reconnect (with Last-Event-ID) finds it and resumes from the
// replay ring without loss; with no client by then, it is completed.
func (sub *Subscription) Suspend() { sub.detach(true) }

func (sub *Subscription) detach(hold bool) {
	if sub.closed.Swap(true) {
		return
	}
	s := sub.s
	s.mu.Lock()
	removed := sub.idx >= 0
	if removed {
		last := len(s.clients) - 1
		moved := s.clients[last]
		s.clients[sub.idx] = moved
		moved.idx = sub.idx
		s.clients[last] = nil
		s.clients = s.clients[:last]
		sub.idx = -1
	}
	empty := len(s.clients) == 0 && !s.ended
	if empty && hold {
		empty = !s.holdLocked()
	}
	s.mu.Unlock()
	if removed {
		sub.h.st.clients.Add(-1)
	}
	sub.q.Close(event.DoneEvent)
	if empty {
		s.release()
	}
}

// holdLocked (re)starts the timer that releases s after ResumeHold unless
// a client joins first; it reports false when holding is turned off. s.mu
// is held, s has no client and has not ended.
func (s *shared) holdLocked() bool {
	h := s.h
	if h.cfg.ResumeHold <= 0 {
		return false
	}
	if s.hold != nil {
		s.hold.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(h.cfg.ResumeHold, func() {
		if !h.background() {
			return // the hub is closing and ends s itself
		}
		defer h.wg.Done()
		s.mu.Lock()
		mine := s.hold == t // not stopped, replaced or ended meanwhile
		if mine {
			s.hold = nil
		}
		s.mu.Unlock()
		if mine {
			s.release()
		}
	})
	s.hold = t
	return true
}

// stopHoldLocked cancels a pending hold. s.mu is held.
func (s *shared) stopHoldLocked() {
	if s.hold != nil {
		s.hold.Stop()
		s.hold = nil
	}
}

// addLocked attaches sub, first queueing what it should see of the past.
// s.mu is held.
func (s *shared) addLocked(sub *Subscription, opt *SubscribeOptions) {
	switch {
	case opt.LastEventID != "":
		s.replayLocked(sub.q, opt.LastEventID)
	case opt.ReplayLast && s.last != nil:
		sub.q.Backfill(s.last)
		s.h.st.out.Add(1)
	}
	sub.idx = len(s.clients)
	s.clients = append(s.clients, sub)
	s.h.st.clients.Add(1)
	s.stopHoldLocked()
}

// replayLocked queues the ring's events after lastID, or one Gap when they
// can't be given without loss. It backfills (event.Queue.Backfill): a
// replay larger than the client's queue limits does not cut it off. s.mu
// is held.
func (s *shared) replayLocked(q *event.Queue, lastID string) {
	inc, seq, ok := parseEventID(lastID)
	// A gap names the newest event (seq 0 before the first one) as its
	// id: a client that reconnects right after it resumes from there.
	newest := s.eventID(s.seq)
	if !ok || inc != s.inc || seq > s.seq {
		// Another incarnation (or the gateway restarted): we can't tell
		// what was missed.
		q.Backfill(event.NewGap(event.GapData{LastEventID: newest, Reason: "restarted"}))
		return
	}
	oldest := s.seq - uint64(s.ringN) + 1
	if seq+1 < oldest {
		// Everything after seq up to now is skipped; live events follow.
		q.Backfill(event.NewGap(event.GapData{Missed: int(s.seq - seq), LastEventID: newest, Reason: "expired"}))
		return
	}
	n := int(s.seq - seq)
	for i := n; i > 0; i-- {
		if s.brokeAfter(s.seq - uint64(i)) {
			q.Backfill(reconnectGap)
		}
		pos := (s.ringPos - i + len(s.ring)) % len(s.ring)
		q.Backfill(s.ring[pos])
	}
	if s.brokeAfter(s.seq) {
		q.Backfill(reconnectGap)
	}
	s.h.st.out.Add(int64(n))
}

// brokeAfter reports whether the connection was re-established right
// after event seq. s.mu is held.
func (s *shared) brokeAfter(seq uint64) bool {
	for _, b := range s.breaks {
		if b == seq {
			return true
		}
	}
	return false
}

// noteBreakLocked records a reconnect after the newest event, forgetting
// the breaks older than the ring. s.mu is held.
func (s *shared) noteBreakLocked() {
	if n := len(s.breaks); n > 0 && s.breaks[n-1] == s.seq {
		return
	}
	oldest := s.seq - uint64(s.ringN) // events after it are in the ring
	keep := s.breaks[:0]
	for _, b := range s.breaks {
		if b >= oldest {
			keep = append(keep, b)
		}
	}
	s.breaks = append(keep, s.seq)
}

// follows reports whether id names an event of this subscription.
func (s *shared) follows(id string) bool {
	inc, _, ok := parseEventID(id)
	return ok && inc == s.inc
}

// eventID renders "<incarnation>-<seq base36>".
func (s *shared) eventID(seq uint64) string {
	var b [40]byte
	id := append(b[:0], s.inc...)
	id = append(id, '-')
	id = strconv.AppendUint(id, seq, 36)
	return string(id)
}

func parseEventID(id string) (inc string, seq uint64, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(id[i+1:], 36, 64)
	if err != nil {
		return "", 0, false
	}
	return id[:i], seq, true
}

// wait blocks until the subscription is started upstream (or fails). While
// its connection is being re-established it waits for that, bounded by ctx.
func (s *shared) wait(ctx context.Context) error {
	for {
		up := s.c.upChan()
		if ok, err := s.start(); ok {
			return err
		}
		select {
		case <-up:
		case <-s.c.done:
			if ok, err := s.start(); ok {
				return err
			}
			return fmt.Errorf("%w: the connection ended", ErrUnavailable)
		case <-ctx.Done():
			return fmt.Errorf("upstream: waiting for subscription: %w", ctx.Err())
		}
	}
}

// start writes the subscribe frame once, on the live session; it reports
// false when no session is live (wait for one). It marks s started and
// writing under s.mu, then writes with s.mu released (see writing), so
// no lock is held across network I/O. Reading the session under s.mu
// orders it against resubscribe: either resubscribe sees started (and
// waits for this write), or start sees the new session. A failed write
// kills the session; the reconnect then sends the subscription.
func (s *shared) start() (bool, error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return true, nil
	}
	if s.ended {
		err := s.endErr
		s.mu.Unlock()
		if err != nil {
			return true, err
		}
		return true, fmt.Errorf("%w: subscription ended before it started", ErrUnavailable)
	}
	sess := s.c.session()
	if sess == nil {
		s.mu.Unlock()
		return false, nil
	}
	s.started = true
	s.writing = make(chan struct{})
	s.mu.Unlock()
	err := sess.writeErr(sess.ex.subscribeFrame(s.id, s.body))
	if err != nil {
		sess.kill(err)
	}
	s.finishWrite(sess, err == nil, false)
	return true, nil
}

// finishWrite ends the subscribe write that start or resubscribe began on
// sess (ok: the frame went out). If s ended meanwhile with a stop wanted
// (stopOwed), release or end could not send it while s was writing: it is
// sent here, after the subscribe. gap tells the clients of a
// resubscription.
func (s *shared) finishWrite(sess *session, ok, gap bool) {
	s.mu.Lock()
	close(s.writing)
	s.writing = nil
	if ok {
		s.on = sess.no
	}
	stop := ok && s.stopOwed
	var removed int
	var empty bool
	if ok && gap && !s.ended {
		s.noteBreakLocked()
		removed, empty = s.pushLocked(reconnectGap)
	}
	s.mu.Unlock()
	if stop {
		s.c.sendStop(s.id, sess.no)
	}
	s.afterPush(removed, empty)
}

// resubscribe sends the subscription again on sess, a new session of its
// connection, then tells its clients of the gap (before any event of sess:
// its reader is not running yet). It reports whether it sent anything; an
// error means the write failed. Like start, it writes with s.mu released;
// a subscribe write start still has in flight (on the old session) is
// waited for first.
func (s *shared) resubscribe(sess *session) (bool, error) {
	s.mu.Lock()
	for s.writing != nil {
		w := s.writing
		s.mu.Unlock()
		<-w
		s.mu.Lock()
	}
	if s.ended || !s.started || s.on == sess.no {
		s.mu.Unlock()
		return false, nil
	}
	s.writing = make(chan struct{})
	s.mu.Unlock()
	err := sess.writeErr(sess.ex.subscribeFrame(s.id, s.body))
	s.finishWrite(sess, err == nil, true)
	if err != nil {
		return false, err
	}
	return true, nil
}

// release completes the subscription upstream when its last client left.
func (s *shared) release() {
	h := s.h
	h.mu.Lock()
	s.mu.Lock()
	if s.ended || len(s.clients) > 0 {
		s.mu.Unlock()
		h.mu.Unlock()
		return
	}
	s.ended = true
	s.stopHoldLocked()
	on := s.on
	if s.writing != nil {
		on, s.stopOwed = 0, true // the writer sends the stop after its subscribe (finishWrite)
	}
	s.mu.Unlock()
	h.dropLocked(s)
	h.mu.Unlock()
	if on != 0 {
		s.c.sendStop(s.id, on)
	}
}

// end removes s from the hub and closes every client queue with final.
// cause is what a Subscribe still waiting for the start reports; stop says
// whether the caller wants the subscription completed upstream (not when
// the upstream ended it). When this call ended it, it returns the session
// number the subscription is live on upstream, so the caller may complete
// it there: 0 for none, or while its subscribe frame is being written (the
// writer then sends the stop, if wanted: see finishWrite).
func (s *shared) end(final *event.Event, cause error, stop bool) uint64 {
	h := s.h
	h.mu.Lock()
	h.dropLocked(s)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		h.mu.Unlock()
		return 0
	}
	s.ended, s.endErr = true, cause
	s.stopHoldLocked()
	if final.Kind == event.Done && s.key != "" && s.seq > 0 {
		h.keepCompletedLocked(s)
	}
	clients := s.clients
	s.clients = nil
	for _, cl := range clients {
		cl.idx = -1
	}
	on := s.on
	if s.writing != nil {
		// The writer sends the stop after its subscribe (finishWrite), if
		// one is wanted.
		on, s.stopOwed = 0, stop
	}
	s.mu.Unlock()
	h.mu.Unlock()
	for _, cl := range clients {
		cl.q.Close(final)
	}
	h.st.clients.Add(-int64(len(clients)))
	return on
}

// deliver fans one upstream result out to every client: one shared Event,
// one non-blocking Push per client, no allocation per client. s.mu is held
// across the pushes so that joins and resumes see a consistent ring and
// client list (no gap, no duplicate); Push never blocks.
func (s *shared) deliver(payload json.RawMessage) {
	data := compactJSON(payload)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.seq++
	e := &event.Event{Kind: event.Next, ID: s.eventID(s.seq), Data: data}
	s.ring[s.ringPos] = e
	s.ringPos = (s.ringPos + 1) % len(s.ring)
	if s.ringN < len(s.ring) {
		s.ringN++
	}
	s.last = e
	removed, empty := s.pushLocked(e)
	s.mu.Unlock()
	s.afterPush(removed, empty)
}

// pushLocked fans e out to every client, dropping those whose queue is cut
// or closed; it reports how many were dropped and whether none is left
// (then the subscription is to be completed). When the last clients were
// cut off as slow consumers it is held instead (see holdLocked): they are
// expected to reconnect and resume. s.mu is held; call afterPush once it
// is released.
func (s *shared) pushLocked(e *event.Event) (removed int, empty bool) {
	n, cut := fanout(e, s.clients, &s.h.st)
	for i := n; i < len(s.clients); i++ {
		s.clients[i] = nil
	}
	removed = len(s.clients) - n
	s.clients = s.clients[:n]
	empty = n == 0 && removed > 0
	if empty && cut > 0 && s.holdLocked() {
		empty = false
	}
	return removed, empty
}

// afterPush accounts for the clients pushLocked dropped and completes the
// subscription when none is left.
func (s *shared) afterPush(removed int, empty bool) {
	if removed > 0 {
		s.h.st.clients.Add(-int64(removed))
	}
	if empty {
		s.release()
	}
}

// fanout pushes e into every client queue, compacting out the clients whose
// queue is cut or closed, and returns how many remain (at the front) and
// how many were cut.
func fanout(e *event.Event, clients []*Subscription, st *counters) (kept, cut int) {
	w, cut, dropped := 0, 0, 0
	for i, cl := range clients {
		switch cl.q.Push(e) {
		case event.Cut:
			cut++
			cl.idx = -1
			continue
		case event.Closed:
			cl.idx = -1
			continue
		case event.Dropped:
			dropped++
		}
		if w != i {
			clients[w] = cl
			cl.idx = w
		}
		w++
	}
	st.out.Add(int64(len(clients)))
	if cut > 0 {
		st.cut.Add(int64(cut))
	}
	if dropped > 0 {
		st.dropped.Add(int64(dropped))
	}
	return w, cut
}

// compactJSON returns p on one line (json.Compact), or "null" when empty.
func compactJSON(p json.RawMessage) []byte {
	if len(p) == 0 {
		return []byte("null")
	}
	buf := bytes.NewBuffer(make([]byte, 0, len(p)))
	if json.Compact(buf, p) != nil {
		return []byte("null")
	}
	return buf.Bytes()
}
