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
	started bool  // the subscribe frame was written
	ended   bool  // no more events; clients were closed or left
	endErr  error // why it ended before it started
	clients []*Subscription
	seq     uint64         // sequence of the newest event
	ring    []*event.Event // the newest len(ring) events, circular
	ringPos int            // where the next event goes
	ringN   int            // how many ring slots hold events
	last    *event.Event
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
// upstream subscription at once. Safe to call more than once.
func (sub *Subscription) Close() {
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
	s.mu.Unlock()
	if removed {
		sub.h.st.clients.Add(-1)
	}
	sub.q.Close(event.DoneEvent)
	if empty {
		s.release()
	}
}

// addLocked attaches sub, first queueing what it should see of the past.
// s.mu is held.
func (s *shared) addLocked(sub *Subscription, opt *SubscribeOptions) {
	switch {
	case opt.LastEventID != "":
		s.replayLocked(sub.q, opt.LastEventID)
	case opt.ReplayLast && s.last != nil:
		sub.q.Push(s.last)
		s.h.st.out.Add(1)
	}
	sub.idx = len(s.clients)
	s.clients = append(s.clients, sub)
	s.h.st.clients.Add(1)
}

// replayLocked queues the ring's events after lastID, or one Gap when they
// can't be given without loss. s.mu is held.
func (s *shared) replayLocked(q *event.Queue, lastID string) {
	inc, seq, ok := parseEventID(lastID)
	newest := ""
	if s.seq > 0 {
		newest = s.eventID(s.seq)
	}
	if !ok || inc != s.inc || seq > s.seq {
		// Another incarnation (or the gateway restarted): we can't tell
		// what was missed.
		q.Push(event.NewGap(event.GapData{LastEventID: newest, Reason: "restarted"}))
		return
	}
	oldest := s.seq - uint64(s.ringN) + 1
	if seq+1 < oldest {
		// Everything after seq up to now is skipped; live events follow.
		q.Push(event.NewGap(event.GapData{Missed: int(s.seq - seq), LastEventID: newest, Reason: "expired"}))
		return
	}
	n := int(s.seq - seq)
	for i := n; i > 0; i-- {
		pos := (s.ringPos - i + len(s.ring)) % len(s.ring)
		q.Push(s.ring[pos])
	}
	s.h.st.out.Add(int64(n))
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

// wait blocks until the subscription is started upstream (or fails).
func (s *shared) wait(ctx context.Context) error {
	select {
	case <-s.c.ready:
	case <-s.c.done:
	case <-ctx.Done():
		return fmt.Errorf("upstream: waiting for subscription: %w", ctx.Err())
	}
	return s.start()
}

// start writes the subscribe frame once, after connection_ack. Holding
// s.mu across the write orders it before any stop frame (release reads
// started under s.mu).
func (s *shared) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	if s.ended {
		if s.endErr != nil {
			return s.endErr
		}
		return fmt.Errorf("%w: subscription ended before it started", ErrUnavailable)
	}
	if err := s.c.writeErr(s.c.ex.subscribeFrame(s.id, s.body)); err != nil {
		s.c.kill(err)
		return fmt.Errorf("%w: write subscribe: %w", ErrUnavailable, err)
	}
	s.started = true
	return nil
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
	started := s.started
	s.mu.Unlock()
	h.dropLocked(s)
	h.mu.Unlock()
	if started {
		s.c.write(s.c.ex.stopFrame(s.id))
	}
}

// end removes s from the hub and closes every client queue with final.
// cause is what a Subscribe still waiting for the start reports. It
// reports whether this call ended a subscription that was started
// upstream (so the caller may complete it there).
func (s *shared) end(final *event.Event, cause error) bool {
	h := s.h
	h.mu.Lock()
	h.dropLocked(s)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		h.mu.Unlock()
		return false
	}
	s.ended, s.endErr = true, cause
	clients := s.clients
	s.clients = nil
	for _, cl := range clients {
		cl.idx = -1
	}
	started := s.started
	s.mu.Unlock()
	h.mu.Unlock()
	for _, cl := range clients {
		cl.q.Close(final)
	}
	h.st.clients.Add(-int64(len(clients)))
	return started
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
	n := fanout(e, s.clients, &s.h.st)
	for i := n; i < len(s.clients); i++ {
		s.clients[i] = nil
	}
	removed := len(s.clients) - n
	s.clients = s.clients[:n]
	empty := n == 0 && removed > 0
	s.mu.Unlock()
	if removed > 0 {
		s.h.st.clients.Add(-int64(removed))
	}
	if empty {
		s.release()
	}
}

// fanout pushes e into every client queue, compacting out the clients whose
// queue is cut or closed, and returns how many remain (at the front).
func fanout(e *event.Event, clients []*Subscription, st *counters) int {
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
	return w
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
