package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gosse "github.com/tmaxmax/go-sse"
)

// item is what a client received: a tick (the upstream's per-symbol
// publication number) with its id, or a gap with its reason.
type item struct {
	id   string
	tick int
	gap  string
}

// client behaves like a browser's EventSource: it reconnects after the
// server's retry hint with Last-Event-ID, stops on done or on a non-200
// answer, and records every event.
type client struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	items   []item
	conns   int    // 200 answers
	stopped string // why it stopped for good ("" while it runs)
}

// newClient opens an EventSource on url (resuming after lastID if set).
func newClient(name, url, lastID string) *client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{name: name, cancel: cancel, done: make(chan struct{})}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	sc := &gosse.Client{
		HTTPClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		Backoff:    gosse.Backoff{InitialInterval: 200 * time.Millisecond, Multiplier: 1, Jitter: 0.2},
		ResponseValidator: func(r *http.Response) error {
			if r.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", r.StatusCode)
			}
			c.mu.Lock()
			c.conns++
			c.mu.Unlock()
			return nil
		},
	}
	conn := sc.NewConnection(req)
	conn.SubscribeToAll(func(e gosse.Event) { c.event(e, cancel) })
	go func() {
		defer close(c.done)
		err := conn.Connect()
		c.mu.Lock()
		if c.stopped == "" && ctx.Err() == nil {
			c.stopped = fmt.Sprint(err)
		}
		c.mu.Unlock()
	}()
	return c
}

func (c *client) event(e gosse.Event, cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e.Type {
	case "gap":
		var g struct{ Reason string }
		_ = json.Unmarshal([]byte(e.Data), &g)
		c.items = append(c.items, item{id: e.LastEventID, gap: g.Reason})
	case "done":
		c.stopped = "done"
		cancel()
	case "", "message":
		if e.Data == "" {
			return // EventSource dispatches no event without data (a retry hint alone)
		}
		var ev struct {
			Data struct {
				StockPricesChanged struct{ Seq int }
			}
			Errors json.RawMessage
		}
		if json.Unmarshal([]byte(e.Data), &ev) != nil || ev.Errors != nil {
			c.stopped = "error event: " + e.Data
			cancel()
			return
		}
		c.items = append(c.items, item{id: e.LastEventID, tick: ev.Data.StockPricesChanged.Seq})
	}
}

// close stops the client and waits for it.
func (c *client) close() {
	c.cancel()
	<-c.done
}

func (c *client) snapshot() (items []item, conns int, stopped string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]item(nil), c.items...), c.conns, c.stopped
}

func (c *client) lastTick() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.items) - 1; i >= 0; i-- {
		if c.items[i].gap == "" {
			return c.items[i].tick
		}
	}
	return -1
}

// check is what one client's sequence shows: events, events lost outside
// a declared gap, duplicates, and the gaps by reason.
type check struct {
	events, lost, dups int
	gaps               map[string]int
}

func (k check) String() string {
	var g []string
	for r, n := range k.gaps {
		g = append(g, fmt.Sprintf("%s:%d", r, n))
	}
	return fmt.Sprintf("%d events, %d lost outside gaps, %d duplicates, gaps [%s]", k.events, k.lost, k.dups, strings.Join(g, " "))
}

func checkItems(items []item) check {
	k := check{gaps: map[string]int{}}
	last, gap := -1, false
	for _, it := range items {
		if it.gap != "" {
			k.gaps[it.gap]++
			gap = true
			continue
		}
		k.events++
		switch {
		case last < 0:
		case it.tick <= last:
			k.dups++
		case it.tick > last+1 && !gap:
			k.lost += it.tick - last - 1
		}
		if it.tick > last {
			last = it.tick
		}
		gap = false
	}
	return k
}
