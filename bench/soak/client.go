package main

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	gosse "github.com/tmaxmax/go-sse"
)

// tally adds up what every client saw.
type tally struct {
	mu       sync.Mutex
	streams  int // 200 answers
	resumed  int // of which sent Last-Event-ID
	events   int
	lost     int // events missing outside a declared gap (1 when unknown)
	breaks   int // undeclared discontinuities
	dups     int // events repeated or out of order
	gaps     map[string]int
	ends     map[string]int // streams the gateway ended, by why
	refused  map[string]int // non-200 answers, by status
	connErrs int
}

func newTally() *tally {
	return &tally{gaps: map[string]int{}, ends: map[string]int{}, refused: map[string]int{}}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func (t *tally) gapTotal() int     { return sum(t.gaps) }
func (t *tally) endTotal() int     { return sum(t.ends) }
func (t *tally) refusedTotal() int { return sum(t.refused) }

// client is one churning SSE client of one symbol.
type client struct {
	hc        *http.Client
	base      string
	pick      func() string // with -cluster: the gateway of this connection, as a balancer picks
	symbol    string
	maxEvents int
	t         *tally
	rnd       *rand.Rand

	// What it saw last, across its connections.
	lastID  string // gateway event id; "" before the first event
	inc     string
	seq     uint64 // gateway seq within inc
	tick    int    // the upstream's per-symbol seq
	gapSeen bool   // a gap came after the last event
}

// loop connects, reads, leaves and comes back until ctx ends.
func (c *client) loop(ctx context.Context) {
	for ctx.Err() == nil {
		if c.lastID != "" && c.rnd.IntN(10) == 0 {
			c.forget() // now and then a new client
		}
		c.once(ctx)
		pause := time.Duration(c.rnd.IntN(300)) * time.Millisecond
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (c *client) forget() {
	c.lastID, c.inc, c.seq, c.tick, c.gapSeen = "", "", 0, 0, false
}

// once runs one connection.
func (c *client) once(ctx context.Context) {
	base := c.base
	if c.pick != nil {
		base = c.pick()
	}
	u := base + "/operations/Ticks?wg_sse=true&symbol=" + url.QueryEscape(c.symbol)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.t.mu.Lock()
			c.t.connErrs++
			c.t.mu.Unlock()
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		c.t.mu.Lock()
		c.t.refused[strconv.Itoa(resp.StatusCode)]++
		c.t.mu.Unlock()
		select { // as a client would, wait before trying again
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		return
	}
	c.t.mu.Lock()
	c.t.streams++
	if c.lastID != "" {
		c.t.resumed++
	}
	c.t.mu.Unlock()
	want := 1 + c.rnd.IntN(c.maxEvents)
	got := 0
	for e, err := range gosse.Read(resp.Body, &gosse.ReadConfig{MaxEventSize: 1 << 20}) {
		if err != nil {
			break
		}
		switch {
		case e.Type == "gap":
			c.gap(e.Data)
		case e.Type == "done":
			c.end("done")
			return
		case strings.HasPrefix(e.Data, `{"errors"`):
			// The gateway's errors carry no id (e.LastEventID is the one
			// before, as EventSource keeps it) and end the stream.
			c.end(errorCode(e.Data))
		case e.Data != "":
			c.next(e.LastEventID, e.Data)
			got++
			if got >= want {
				return // the client leaves
			}
		}
	}
	if ctx.Err() == nil {
		c.end("closed")
	}
}

func (c *client) gap(data string) {
	var g struct{ Reason string }
	_ = json.Unmarshal([]byte(data), &g)
	c.gapSeen = true
	c.t.mu.Lock()
	c.t.gaps[g.Reason]++
	c.t.mu.Unlock()
}

func (c *client) end(why string) {
	c.t.mu.Lock()
	c.t.ends[why]++
	c.t.mu.Unlock()
}

// next checks one event against the previous one.
func (c *client) next(id, data string) {
	var ev struct {
		Data struct {
			StockPricesChanged struct {
				Symbol string
				Seq    int
			}
		}
	}
	_ = json.Unmarshal([]byte(data), &ev)
	tick := ev.Data.StockPricesChanged.Seq
	inc, seqText, _ := strings.Cut(id, "-")
	if _, ordinal, ok := strings.Cut(seqText, "."); ok {
		// A cluster's id, "<tag>-<stream seq>.<ordinal>": the ordinal
		// counts the topic's events one by one, across owners.
		seqText = ordinal
	}
	seq, _ := strconv.ParseUint(seqText, 36, 64)
	lost, dup := 0, false
	if c.lastID != "" && !c.gapSeen {
		// Events the gateway had but this client missed show in both
		// sequences, events the gateway missed only in the upstream's.
		gw := 0
		switch {
		case inc != c.inc:
			gw = 1 // another incarnation without a gap: an unknown loss
		case seq <= c.seq:
			dup = true
		case seq > c.seq+1:
			gw = int(seq - c.seq - 1)
		}
		up := 0
		switch {
		case tick > c.tick+1:
			up = tick - c.tick - 1
		case tick <= c.tick && !dup:
			up = 1 // the upstream started over without a gap: an unknown loss
		}
		lost = max(gw, up)
		if ev.Data.StockPricesChanged.Symbol != c.symbol {
			dup = true
		}
	}
	c.lastID, c.inc, c.seq, c.tick, c.gapSeen = id, inc, seq, tick, false
	c.t.mu.Lock()
	c.t.events++
	c.t.lost += lost
	if lost > 0 {
		c.t.breaks++
	}
	if dup {
		c.t.dups++
	}
	c.t.mu.Unlock()
}

func errorCode(data string) string {
	var e struct {
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	if json.Unmarshal([]byte(data), &e) != nil || len(e.Errors) == 0 || e.Errors[0].Extensions.Code == "" {
		return "error"
	}
	return e.Errors[0].Extensions.Code
}
