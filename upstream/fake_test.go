package upstream

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recv is one frame the fake server received.
type recv struct {
	fc      *fakeConn
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// fakeServer is a scripted GraphQL WebSocket server for the cases a real
// one can't produce on demand (never acks, silence, huge frames, crashes)
// and for recording exactly what the hub sent.
type fakeServer struct {
	t      testing.TB
	srv    *httptest.Server
	protos []string    // offered back by Accept; nil echoes none
	noAck  atomic.Bool // never answer connection_init
	silent atomic.Bool // never answer pings
	// connError answers connection_init with connection_error (legacy).
	connError string

	mu      sync.Mutex
	frames  []recv
	headers []http.Header
	conns   []*fakeConn
	wg      sync.WaitGroup
}

type fakeConn struct {
	fs     *fakeServer
	no     int
	ws     *websocket.Conn
	proto  string
	closed chan struct{}
}

func newFake(t testing.TB, protos ...string) *fakeServer {
	fs := &fakeServer{t: t, protos: protos}
	fs.srv = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fakeServer) URL() string { return "ws" + strings.TrimPrefix(fs.srv.URL, "http") }

func (fs *fakeServer) Close() {
	fs.mu.Lock()
	conns := append([]*fakeConn(nil), fs.conns...)
	fs.mu.Unlock()
	for _, fc := range conns {
		_ = fc.ws.CloseNow()
	}
	fs.srv.Close()
	fs.wg.Wait()
}

func (fs *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.wg.Add(1)
	defer fs.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: fs.protos})
	if err != nil {
		return
	}
	ws.SetReadLimit(-1)
	fs.mu.Lock()
	fc := &fakeConn{fs: fs, no: len(fs.conns) + 1, ws: ws, proto: ws.Subprotocol(), closed: make(chan struct{})}
	fs.conns = append(fs.conns, fc)
	fs.headers = append(fs.headers, r.Header.Clone())
	fs.mu.Unlock()
	defer close(fc.closed)
	defer ws.CloseNow()
	for {
		_, b, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		var f recv
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		f.fc = fc
		fs.mu.Lock()
		fs.frames = append(fs.frames, f)
		fs.mu.Unlock()
		switch f.Type {
		case "connection_init":
			switch {
			case fs.connError != "":
				fc.send(`{"type":"connection_error","payload":` + fs.connError + `}`)
			case !fs.noAck.Load():
				fc.send(`{"type":"connection_ack"}`)
			}
		case "ping":
			if !fs.silent.Load() {
				fc.send(`{"type":"pong"}`)
			}
		case "connection_terminate":
			_ = ws.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

func (fc *fakeConn) send(s string) {
	_ = fc.ws.Write(context.Background(), websocket.MessageText, []byte(s))
}

func (fc *fakeConn) next(id, payload string) {
	typ := "next"
	if fc.proto != ProtocolTransportWS {
		typ = "data"
	}
	fc.send(`{"id":"` + id + `","type":"` + typ + `","payload":` + payload + `}`)
}

func (fc *fakeConn) complete(id string) { fc.send(`{"id":"` + id + `","type":"complete"}`) }

func (fc *fakeConn) errorFrame(id, payload string) {
	fc.send(`{"id":"` + id + `","type":"error","payload":` + payload + `}`)
}

// count reports how many frames of type typ arrived.
func (fs *fakeServer) count(typ string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 0
	for _, f := range fs.frames {
		if f.Type == typ {
			n++
		}
	}
	return n
}

func (fs *fakeServer) numConns() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.conns)
}

func (fs *fakeServer) openConns() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 0
	for _, fc := range fs.conns {
		select {
		case <-fc.closed:
		default:
			n++
		}
	}
	return n
}

// frame waits for the n-th (1-based) frame of type typ.
func (fs *fakeServer) frame(typ string, n int) recv {
	fs.t.Helper()
	var got recv
	waitFor(fs.t, "frame "+typ, func() bool {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		k := 0
		for _, f := range fs.frames {
			if f.Type == typ {
				k++
				if k == n {
					got = f
					return true
				}
			}
		}
		return false
	})
	return got
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// reader takes events from a queue one at a time.
type reader struct {
	t   testing.TB
	q   *event.Queue
	buf []*event.Event
}

func newReader(t testing.TB, sub *topic.Client) *reader { return &reader{t: t, q: sub.Queue()} }

func (r *reader) next() *event.Event {
	r.t.Helper()
	timeout := time.After(5 * time.Second)
	for len(r.buf) == 0 {
		r.buf = r.q.Take(r.buf)
		if len(r.buf) > 0 {
			break
		}
		select {
		case <-r.q.Ready():
		case <-timeout:
			r.t.Fatal("timed out waiting for an event")
		}
	}
	e := r.buf[0]
	r.buf = r.buf[1:]
	return e
}

// none checks that no event arrives for a short while.
func (r *reader) none() {
	r.t.Helper()
	time.Sleep(30 * time.Millisecond)
	r.buf = r.q.Take(r.buf)
	if len(r.buf) > 0 {
		r.t.Fatalf("unexpected event %v %s", r.buf[0].Kind, r.buf[0].Data)
	}
}
