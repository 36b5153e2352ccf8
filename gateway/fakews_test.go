package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"github.com/fireboom/fireboom/config"
)

// fakeWS is a scripted graphql-transport-ws upstream for the misbehaviour
// the real demo can't produce on demand. The gateway still reads the demo's
// schema over HTTP (upstream.url); only upstream.subscriptionUrl points
// here. What a subscription gets depends on its $from variable (the
// Countdown operation):
//
//	1: one 9 MiB next frame (past the 8 MiB read limit)
//	2: a small next frame every 20ms
//	3: next frames of 1 KiB as fast as the connection takes them
type fakeWS struct {
	srv   *httptest.Server
	noAck atomic.Bool // never answer connection_init

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*websocket.Conn]struct{}
	opened atomic.Int32
	closed atomic.Int32
	subs   atomic.Int32 // subscribe frames received
	stops  atomic.Int32 // complete frames received
}

func newFakeWS(t *testing.T) *fakeWS {
	f := &fakeWS{conns: map[*websocket.Conn]struct{}{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.mu.Lock()
		for c := range f.conns {
			_ = c.CloseNow()
		}
		f.mu.Unlock()
		f.srv.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeWS) URL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/graphql" }

func (f *fakeWS) serve(w http.ResponseWriter, r *http.Request) {
	f.wg.Add(1)
	defer f.wg.Done()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return
	}
	f.opened.Add(1)
	defer f.closed.Add(1)
	f.mu.Lock()
	f.conns[ws] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, ws)
		f.mu.Unlock()
	}()
	defer ws.CloseNow()
	ctx, cancel := context.WithCancel(context.Background())
	var subs sync.WaitGroup
	defer subs.Wait()
	defer cancel()
	active := map[string]context.CancelFunc{}
	write := func(s string) { _ = ws.Write(ctx, websocket.MessageText, []byte(s)) }
	for {
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var m struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Payload struct {
				Variables struct{ From int } `json:"variables"`
			} `json:"payload"`
		}
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		switch m.Type {
		case "connection_init":
			if !f.noAck.Load() {
				write(`{"type":"connection_ack"}`)
			}
		case "ping":
			write(`{"type":"pong"}`)
		case "subscribe":
			f.subs.Add(1)
			sctx, scancel := context.WithCancel(ctx)
			active[m.ID] = scancel
			subs.Add(1)
			go func(id string, from int) {
				defer subs.Done()
				f.play(sctx, ws, id, from)
			}(m.ID, m.Payload.Variables.From)
		case "complete":
			f.stops.Add(1)
			if c := active[m.ID]; c != nil {
				c()
			}
		}
	}
}

func (f *fakeWS) play(ctx context.Context, ws *websocket.Conn, id string, from int) {
	next := func(payload string) error {
		return ws.Write(ctx, websocket.MessageText, []byte(`{"id":"`+id+`","type":"next","payload":`+payload+`}`))
	}
	switch from {
	case 1:
		_ = next(`{"data":{"countdown":"` + strings.Repeat("x", 9<<20) + `"}}`)
	case 2:
		for i := 0; ; i++ {
			if next(fmt.Sprintf(`{"data":{"countdown":%d}}`, i)) != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	case 3:
		payload := `{"data":{"countdown":"` + strings.Repeat("f", 1024) + `"}}`
		for ctx.Err() == nil {
			if next(payload) != nil {
				return
			}
		}
	}
}

// newGatewayWith builds and serves a gateway like newGateway, with
// options, extra routes (added before it serves) and a server configured
// by srv (nil: httptest's defaults).
func newGatewayWith(t *testing.T, cfgJSON string, vars map[string]string, opt Options, routes func(chi.Router), srv func(*http.Server)) *testGateway {
	t.Helper()
	if vars == nil {
		vars = map[string]string{}
	}
	vars["OPS"] = opsDir(t)
	cfg, err := config.Parse([]byte(cfgJSON), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	opt.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if opt.Engine == nil && cfg.Cluster != nil {
		opt.Engine = clusterEngine(t, cfg, opt.Logger) // as the command does; Close closes it
	}
	g, err := New(cfg, opt)
	if err != nil {
		if c, ok := opt.Engine.(io.Closer); ok {
			_ = c.Close()
		}
		t.Fatal(err)
	}
	if routes != nil {
		routes(g.router)
	}
	hs := httptest.NewUnstartedServer(g)
	if srv != nil {
		srv(hs.Config)
	}
	hs.Start()
	t.Cleanup(func() {
		g.BeginShutdown()
		hs.Close()
		_ = g.Close()
		http.DefaultClient.CloseIdleConnections()
		if t.Failed() && testing.Verbose() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return &testGateway{Gateway: g, URL: hs.URL, logs: logs}
}
