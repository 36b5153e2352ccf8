package upstream

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

// gate blocks every Write on a gatedConn until release is closed, like a
// peer that stopped reading once its TCP buffers are full.
type gate struct {
	min     int           // only writes of at least min bytes wait
	entered chan struct{} // closed when a write first blocks
	once    sync.Once
	release chan struct{}
}

// newGate returns a gate for writes of min bytes or more, and the func
// that opens it (also called when the test ends, before the hub closes).
func newGate(t *testing.T, min int) (*gate, func()) {
	g := &gate{min: min, entered: make(chan struct{}), release: make(chan struct{})}
	var open sync.Once
	unblock := func() { open.Do(func() { close(g.release) }) }
	t.Cleanup(unblock)
	return g, unblock
}

type gatedConn struct {
	net.Conn
	gate atomic.Pointer[gate]
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if g := c.gate.Load(); g != nil && len(b) >= g.min {
		g.once.Do(func() { close(g.entered) })
		<-g.release
	}
	return c.Conn.Write(b)
}

// gatedDialer records every TCP connection the hub dials, in order. With
// next set, the connections dialed from then on are gated by it.
type gatedDialer struct {
	mu    sync.Mutex
	conns []*gatedConn
	next  *gate
}

func (d *gatedDialer) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			gc := &gatedConn{Conn: c}
			d.mu.Lock()
			if d.next != nil {
				gc.gate.Store(d.next)
			}
			d.conns = append(d.conns, gc)
			d.mu.Unlock()
			return gc, nil
		},
	}}
}

func (d *gatedDialer) conn(i int) *gatedConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[i]
}

// TestStalledUpstreamWriteDoesNotBlockHub: while a subscribe frame to one
// upstream connection can't be written (its peer stopped reading), the
// other connections keep delivering events, a client joining that very
// subscription gets in, and subscriptions with other identities start.
func TestStalledUpstreamWriteDoesNotBlockHub(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	var d gatedDialer
	h := newTestHub(t, HubConfig{URL: fs.URL(), HTTPClient: d.client(), KeepAlive: time.Minute, WriteTimeout: time.Minute})
	who := func(name, from string) Request {
		r := countdown
		r.Header = http.Header{"X-Who": {name}}
		r.Variables = json.RawMessage(`{"from":` + from + `}`)
		return r
	}
	subscribe(t, h, who("slow", "1"), SubscribeOptions{})
	fs.frame("subscribe", 1) // recorded before the next: the server reads each conn on its own
	fast := newReader(t, subscribe(t, h, who("fast", "1"), SubscribeOptions{}))
	ff := fs.frame("subscribe", 2)
	if fs.numConns() != 2 || ff.fc.no != 2 {
		t.Fatalf("%d conns, fast on %d", fs.numConns(), ff.fc.no)
	}

	// From now on the slow connection's writes block.
	g, unblock := newGate(t, 0)
	d.conn(0).gate.Store(g)
	stuck := make(chan error, 1)
	go func() {
		sub, err := h.Subscribe(context.Background(), who("slow", "2"), SubscribeOptions{Dedup: true})
		if err == nil {
			sub.Close()
		}
		stuck <- err
	}()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscribe frame was not written")
	}
	// A client joining the subscription being written must not hold the
	// hub while it waits (it once waited for the subscription's lock under
	// the hub's).
	joined := make(chan error, 1)
	go func() {
		sub, err := h.Subscribe(context.Background(), who("slow", "2"), SubscribeOptions{Dedup: true})
		if err == nil {
			sub.Close()
		}
		joined <- err
	}()

	// Another connection's events keep flowing...
	for i, data := range []string{`{"data":1}`, `{"data":2}`, `{"data":3}`} {
		ff.fc.next(ff.ID, data)
		if e := fast.next(); string(e.Data) != data {
			t.Fatalf("event %d: %s", i, e.Data)
		}
	}
	// ...and subscriptions with other identities start and get events.
	for i, name := range []string{"other1", "other2"} {
		r := newReader(t, subscribe(t, h, who(name, "1"), SubscribeOptions{Dedup: true}))
		f := fs.frame("subscribe", 3+i)
		f.fc.next(f.ID, `{"data":"x"}`)
		expectNext(t, r, `{"data":"x"}`)
	}
	ff.fc.next(ff.ID, `{"data":4}`)
	expectNext(t, fast, `{"data":4}`)
	// Both clients of the stalled subscription wait for its start (the
	// topic's Open), without holding anything the others need.
	select {
	case err := <-stuck:
		t.Fatalf("the stalled subscribe returned (%v) before its write could happen", err)
	case err := <-joined:
		t.Fatalf("the join returned (%v) before the subscription started", err)
	default:
	}

	// Once the upstream reads again, the subscription goes out, then
	// (its clients gone) its stop, in that order.
	unblock()
	if err := <-stuck; err != nil {
		t.Fatalf("stalled subscribe: %v", err)
	}
	if err := <-joined; err != nil {
		t.Fatalf("join: %v", err)
	}
	sf := fs.frame("subscribe", 5)
	cf := fs.frame("complete", 1)
	if sf.fc.no != 1 || cf.fc.no != 1 || cf.ID != sf.ID {
		t.Fatalf("subscribe %q on %d, complete %q on %d", sf.ID, sf.fc.no, cf.ID, cf.fc.no)
	}
}

// bigCountdown's subscribe frame is over 8 KB: with a gate of 4 KB it is
// the only write on a connection that blocks (the upgrade request,
// connection_init and pings are small).
func bigCountdown() Request {
	r := countdown
	r.Variables = json.RawMessage(`{"from":1,"pad":"` + strings.Repeat("x", 8<<10) + `"}`)
	return r
}

// A resubscription after a reconnect that can't be written yet (the new
// connection's peer is not reading) while the last client leaves: the
// writer completes the subscription after its subscribe frame, on the same
// connection.
func TestLastClientLeavesDuringResubscribe(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	var d gatedDialer
	h := newTestHub(t, HubConfig{URL: fs.URL(), HTTPClient: d.client(), KeepAlive: time.Minute, WriteTimeout: time.Minute})
	sub := subscribe(t, h, bigCountdown(), SubscribeOptions{})
	first := fs.frame("subscribe", 1)

	g, unblock := newGate(t, 4<<10)
	d.mu.Lock()
	d.next = g
	d.mu.Unlock()
	_ = d.conn(0).Conn.Close() // the connection drops: the hub reconnects
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the resubscription was not written")
	}
	sub.Close()
	unblock()

	again := fs.frame("subscribe", 2)
	if again.fc.no != 2 || again.ID != first.ID {
		t.Fatalf("resubscribed %q on conn %d, want %q on 2", again.ID, again.fc.no, first.ID)
	}
	c := fs.frame("complete", 1)
	if c.fc.no != 2 || c.ID != first.ID {
		t.Fatalf("complete %q on conn %d, want %q on 2", c.ID, c.fc.no, first.ID)
	}
}

// The upstream ends a subscription (an error frame) while its subscribe
// frame is still being written: the subscription ends for its client, and
// no complete is owed for it afterwards.
func TestUpstreamEndsDuringSubscribeWrite(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	var d gatedDialer
	h := newTestHub(t, HubConfig{URL: fs.URL(), HTTPClient: d.client(), KeepAlive: time.Minute, WriteTimeout: time.Minute})
	subscribe(t, h, countdown, SubscribeOptions{}) // the connection, live
	fc := fs.frame("subscribe", 1).fc

	g, unblock := newGate(t, 4<<10)
	d.conn(0).gate.Store(g)
	type result struct {
		sub *topic.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		sub, err := h.Subscribe(context.Background(), bigCountdown(), SubscribeOptions{})
		done <- result{sub, err}
	}()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscribe frame was not written")
	}
	// The id the hub is writing (the upstream would know it from the frame
	// it is receiving).
	var id string
	h.mu.RLock()
	for c := range h.all {
		for i, s := range c.ops {
			s.mu.Lock()
			if s.writing != nil {
				id = i
			}
			s.mu.Unlock()
		}
	}
	h.mu.RUnlock()
	if id == "" {
		t.Fatal("no subscription is being written")
	}
	fc.errorFrame(id, `[{"message":"no"}]`)
	unblock()
	res := <-done
	if res.err == nil {
		e := newReader(t, res.sub).next()
		res.sub.Close()
		if e.Kind != event.Error {
			t.Fatalf("the client got %v, want the upstream's error", e.Kind)
		}
	}
	if f := fs.frame("subscribe", 2); f.ID != id {
		t.Fatalf("subscribe %q, want %q", f.ID, id)
	}
	// Absence can only be checked by waiting: long enough for a complete
	// sent right after the write to arrive.
	time.Sleep(200 * time.Millisecond)
	if n := fs.count("complete"); n != 0 {
		t.Fatalf("%d complete frames for a subscription the upstream ended", n)
	}
}
