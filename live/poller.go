package live

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fireboom/fireboom/event"
)

// entry is one pushed result: the full event and the event patch clients
// get (a patch, or the full event when the patch would not be smaller, or
// nil when no patch was computed).
type entry struct {
	seq   uint64
	full  *event.Event
	patch *event.Event
}

// poller polls one query and fans its changed results out.
type poller struct {
	h      *Hub
	q      Query
	inc    string // incarnation: first part of every event id
	cancel context.CancelFunc
	// first is closed after the first poll's outcome is known (or the
	// poller stopped before it).
	first     chan struct{}
	firstOnce sync.Once

	// Only the poller's goroutine writes cur and lastData (under mu), so it
	// may read them without the lock.
	mu       sync.Mutex
	stopped  bool
	clients  []*Client
	patching bool  // a patch client joined: compute patches from now on
	lastErr  error // the last poll's error while no result exists
	seq      uint64
	cur      *entry // newest result; nil before the first
	ring     []entry
	ringPos  int    // where the next entry goes
	ringN    int    // how many ring slots hold entries
	lastData []byte // payload of the newest pushed event
}

// run polls until the poller stops. It is owned by the Hub.
func (p *poller) run(ctx context.Context) {
	defer p.h.wg.Done()
	defer p.firstOnce.Do(func() { close(p.first) })
	// Reset below discards a stale fire (Go 1.23 timer semantics).
	t := time.NewTimer(p.q.Interval)
	defer t.Stop()
	fails := 0
	for {
		start := time.Now()
		data, err := p.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		p.h.polls.Add(1)
		var outcome string
		if err != nil {
			fails++
			outcome = p.publish(FailedJSON, err)
		} else {
			fails = 0
			outcome = p.publish(data, nil)
		}
		p.firstOnce.Do(func() { close(p.first) })
		if p.h.cfg.OnPoll != nil {
			p.h.cfg.OnPoll(outcome)
		}
		wait := p.q.Interval - time.Since(start)
		if fails > 0 {
			wait = backoff(p.q.Interval, fails, p.h.cfg.MaxBackoff)
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
func (p *poller) fetch(ctx context.Context) ([]byte, error) {
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

// publish pushes data to every client when it differs from the last pushed
// payload, and reports the poll's outcome. failure is the poll's error
// (data is then FailedJSON).
func (p *poller) publish(data []byte, failure error) string {
	outcome := PollChanged
	if failure != nil {
		outcome = PollFailed
	}
	if bytes.Equal(data, p.lastData) {
		if outcome == PollChanged {
			outcome = PollUnchanged
		}
		return outcome
	}
	if failure != nil && p.cur == nil {
		// Nothing was ever sent: joiners are told (502), nothing is pushed.
		p.mu.Lock()
		p.lastErr = fmt.Errorf("live: poll: %w", failure)
		p.mu.Unlock()
		return outcome
	}
	p.mu.Lock()
	patching := p.patching
	p.mu.Unlock()
	// The diff runs outside the lock: joins are not held up by it.
	var patch []byte
	if patching && p.cur != nil && failure == nil && !bytes.Equal(p.lastData, FailedJSON) {
		patch = diff(p.lastData, data)
	}

	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return outcome
	}
	p.seq++
	id := p.eventID(p.seq)
	e := entry{seq: p.seq, full: &event.Event{Kind: event.Next, ID: id, Data: data}}
	switch {
	case patch != nil && len(patch) < len(data):
		e.patch = &event.Event{Kind: event.Next, ID: id, Data: patch}
	case patching && p.cur != nil:
		e.patch = e.full
	}
	p.ring[p.ringPos] = e
	p.cur = &p.ring[p.ringPos]
	p.ringPos = (p.ringPos + 1) % len(p.ring)
	p.ringN = min(p.ringN+1, len(p.ring))
	p.lastData = data
	p.lastErr = nil
	p.h.pushes.Add(1)
	empty := p.fanoutLocked(&e)
	p.mu.Unlock()
	if empty {
		// The last clients were cut off: stop, as if they had left.
		p.release()
	}
	return outcome
}

// fanoutLocked pushes e to every client, dropping the clients whose queue
// was cut or closed, and reports whether that left none. p.mu is held; Push
// never blocks.
func (p *poller) fanoutLocked(e *entry) bool {
	w := 0
	for _, c := range p.clients {
		ev := e.full
		if c.patch && e.patch != nil {
			ev = e.patch
		}
		if r := c.q.Push(ev); r == event.Cut || r == event.Closed {
			c.idx = -1
			continue
		}
		p.clients[w] = c
		c.idx = w
		w++
	}
	if removed := len(p.clients) - w; removed > 0 {
		clear(p.clients[w:])
		p.clients = p.clients[:w]
		p.h.clients.Add(-int64(removed))
		return w == 0
	}
	return false
}

// addLocked attaches c and queues what it needs to catch up. p.mu is held.
func (p *poller) addLocked(c *Client, lastID string) {
	if c.patch {
		p.patching = true
	}
	if p.cur != nil {
		p.catchUpLocked(c, lastID)
	}
	c.idx = len(p.clients)
	p.clients = append(p.clients, c)
	p.h.clients.Add(1)
}

// catchUpLocked queues, for a client that held lastID (or nothing), what
// brings it to the newest result. p.mu is held and p.cur is set.
func (p *poller) catchUpLocked(c *Client, lastID string) {
	cur := p.cur
	if inc, seq, ok := parseEventID(lastID); ok && inc == p.inc && seq <= cur.seq {
		missed := cur.seq - seq
		if missed == 0 {
			return // up to date
		}
		if c.patch && missed <= uint64(p.ringN) {
			evs := make([]*event.Event, 0, missed)
			size := 0
			for i := missed; i > 0; i-- {
				e := &p.ring[(p.ringPos-int(i)+len(p.ring))%len(p.ring)]
				ev := e.patch
				if ev == nil {
					ev = e.full
				}
				evs = append(evs, ev)
				size += len(ev.Data)
			}
			if size < len(cur.full.Data) {
				for _, ev := range evs {
					c.q.Push(ev)
				}
				return
			}
		}
	}
	c.q.Push(cur.full)
}

// failure is what Join reports after the first poll: the error when no
// result exists and the last poll failed, ErrClosed when the poller stopped
// without a result.
func (p *poller) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.cur != nil:
		return nil
	case p.lastErr != nil:
		return p.lastErr
	case p.stopped:
		return ErrClosed
	}
	return nil
}

// release stops the poller when it has no client left.
func (p *poller) release() {
	h := p.h
	h.mu.Lock()
	p.mu.Lock()
	if p.stopped || len(p.clients) > 0 {
		p.mu.Unlock()
		h.mu.Unlock()
		return
	}
	p.stopped = true
	if h.pollers[p.q.Key] == p {
		delete(h.pollers, p.q.Key)
	}
	p.mu.Unlock()
	h.mu.Unlock()
	p.cancel()
}

// eventID renders "<incarnation>-<seq base36>".
func (p *poller) eventID(seq uint64) string {
	return p.inc + "-" + strconv.FormatUint(seq, 36)
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
