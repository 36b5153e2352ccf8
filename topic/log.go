package topic

import (
	"strconv"
	"strings"

	"github.com/fireboom/fireboom/event"
)

// Log names a topic's events and keeps the newest ones for replay. It is
// called with the topic's lock held: it must not block.
//
// A log names events either at once (the in-memory ring: Append and Break
// return the named event) or once a broker has stored them (a log shared
// by the instances of a cluster, package cluster: Append and Break return
// nil, and every event, this instance's and other instances', comes back
// named through Take, in the same order and with the same ids on every
// instance). The topic handles both the same way.
type Log interface {
	// Append names a result and keeps it, and returns it; nil when the
	// event comes back through Take instead. The topic may set the
	// returned event's Patch before it hands the event to any client.
	Append(data []byte) *event.Event
	// Break notes that events may have been lost after the newest one
	// and returns the gap event to send live (nil: it comes back through
	// Take); a replay across this point gets the same gap there. A break
	// right after another one is the same break.
	Break(reason string) *event.Event
	// Take appends to dst the events kept since the last call that
	// Append and Break did not return (a synchronous log has none), in
	// log order: results, gaps, and last a terminal event (Done or Error)
	// when the topic ended, after which nothing follows.
	Take(dst []*event.Event) []*event.Event
	// Since appends to dst what a client that last saw id missed, in
	// order, with the gaps recorded between them (nothing when id is the
	// newest). When the log cannot replay from id it returns dst unchanged
	// and the gap to tell the client instead.
	Since(id string, dst []*event.Event) ([]*event.Event, *event.GapData)
	// Newest is the newest result, nil before the first.
	Newest() *event.Event
	// Owns reports whether id names an event of this log.
	Owns(id string) bool
}

// ring is the in-memory Log: the newest len(events) events of one topic
// run, circular. Ids are "<inc>-<seq base36>".
type ring struct {
	inc    string
	seq    uint64         // seq of the newest event
	events []*event.Event // circular
	pos    int            // where the next event goes
	n      int            // how many slots hold events
	// breaks are gaps recorded right after event seq (ascending, within
	// the ring): a replay across one gets its gap at that point.
	breaks []brk
}

type brk struct {
	after uint64
	gap   *event.Event
}

// NewRing makes the in-memory Log of one topic run: it keeps the newest
// size events; run names the run in its ids and must differ for every run
// (the hub makes it from a random per-process salt and a counter).
func NewRing(run string, size int) Log {
	inc := run
	return &ring{inc: inc, events: make([]*event.Event, max(size, 1))}
}

func (r *ring) Append(data []byte) *event.Event {
	r.seq++
	e := &event.Event{Kind: event.Next, ID: r.id(r.seq), Data: data}
	r.events[r.pos] = e
	r.pos = (r.pos + 1) % len(r.events)
	r.n = min(r.n+1, len(r.events))
	return e
}

func (r *ring) Break(reason string) *event.Event {
	if k := len(r.breaks); k > 0 && r.breaks[k-1].after == r.seq {
		return r.breaks[k-1].gap
	}
	oldest := r.seq - uint64(r.n) // breaks after it are within the ring
	keep := r.breaks[:0]
	for _, b := range r.breaks {
		if b.after >= oldest {
			keep = append(keep, b)
		}
	}
	// The gap names no id: the client keeps the one it has, which is
	// where the stream goes on.
	g := event.NewGap(event.GapData{Reason: reason})
	r.breaks = append(keep, brk{after: r.seq, gap: g})
	return g
}

// Take returns dst: the ring names every event in Append and Break.
func (r *ring) Take(dst []*event.Event) []*event.Event { return dst }

func (r *ring) Since(id string, dst []*event.Event) ([]*event.Event, *event.GapData) {
	inc, seq, ok := parseID(id)
	// A gap names the newest event (seq 0 before the first) as its id: a
	// client that reconnects right after it resumes from there.
	newest := r.id(r.seq)
	if !ok || inc != r.inc || seq > r.seq {
		// Another run (or the gateway restarted): what was missed is
		// unknown.
		return dst, &event.GapData{LastEventID: newest, Reason: "restarted"}
	}
	if oldest := r.seq - uint64(r.n) + 1; seq+1 < oldest {
		return dst, &event.GapData{Missed: int(r.seq - seq), LastEventID: newest, Reason: "expired"}
	}
	for s := seq; ; s++ {
		dst = r.breakAfter(s, dst)
		if s == r.seq {
			return dst, nil
		}
		dst = append(dst, r.at(s+1))
	}
}

// breakAfter appends the gap recorded right after event seq, if any.
func (r *ring) breakAfter(seq uint64, dst []*event.Event) []*event.Event {
	for _, b := range r.breaks {
		if b.after == seq {
			return append(dst, b.gap)
		}
	}
	return dst
}

// at returns event seq, which is in the ring.
func (r *ring) at(seq uint64) *event.Event {
	back := int(r.seq - seq) // 0 for the newest
	return r.events[(r.pos-1-back+2*len(r.events))%len(r.events)]
}

func (r *ring) Newest() *event.Event {
	if r.n == 0 {
		return nil
	}
	return r.at(r.seq)
}

func (r *ring) Owns(id string) bool {
	inc, _, ok := parseID(id)
	return ok && inc == r.inc
}

// id renders "<inc>-<seq base36>".
func (r *ring) id(seq uint64) string {
	var b [40]byte
	id := append(b[:0], r.inc...)
	id = append(id, '-')
	id = strconv.AppendUint(id, seq, 36)
	return string(id)
}

func parseID(id string) (inc string, seq uint64, ok bool) {
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
