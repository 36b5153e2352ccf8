package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// start starts a server and closes it at the end of the test.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type gqlResponse struct {
	Data   json.RawMessage  `json:"data"`
	Errors []map[string]any `json:"errors"`
}

// post sends one GraphQL request over HTTP and decodes the answer.
func post(t *testing.T, s *Server, query string, vars map[string]any) gqlResponse {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodPost, s.URL(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test", "http")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	return out
}

// frame is a message of either WebSocket protocol.
type frame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsClient is a minimal GraphQL WebSocket client speaking whatever protocol
// the server picked.
type wsClient struct {
	t    *testing.T
	ctx  context.Context
	c    *websocket.Conn
	resp *http.Response
	// keep frames that the test wants to see instead of skipping them
	keepAlive bool
}

func dial(t *testing.T, s *Server, protocols ...string) *wsClient {
	t.Helper()
	ctx := testCtx(t)
	c, resp, err := websocket.Dial(ctx, s.WebSocketURL(), &websocket.DialOptions{
		Subprotocols: protocols,
		HTTPHeader:   http.Header{"X-Test": {"ws"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, ctx: ctx, c: c, resp: resp}
}

func (w *wsClient) protocol() string { return w.c.Subprotocol() }

func (w *wsClient) send(f frame) {
	w.t.Helper()
	b, _ := json.Marshal(f)
	if err := w.c.Write(w.ctx, websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next frame; keep-alives are skipped (and pings answered)
// unless keepAlive is set. The error is the connection's end.
func (w *wsClient) read() (frame, error) {
	for {
		_, b, err := w.c.Read(w.ctx)
		if err != nil {
			return frame{}, err
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			w.t.Fatalf("bad frame %s: %v", b, err)
		}
		if !w.keepAlive {
			switch f.Type {
			case "ka", "pong":
				continue
			case "ping":
				w.send(frame{Type: "pong"})
				continue
			}
		}
		return f, nil
	}
}

func (w *wsClient) expect(typ string) frame {
	w.t.Helper()
	f, err := w.read()
	if err != nil {
		w.t.Fatalf("want %q frame: %v", typ, err)
	}
	if f.Type != typ {
		w.t.Fatalf("want %q frame, got %q %s", typ, f.Type, f.Payload)
	}
	return f
}

// init sends connection_init and waits for the ack.
func (w *wsClient) init(payload any) {
	w.t.Helper()
	var p json.RawMessage
	if payload != nil {
		p, _ = json.Marshal(payload)
	}
	w.send(frame{Type: "connection_init", Payload: p})
	w.expect("connection_ack")
}

// subscribe starts operation id in the connection's protocol.
func (w *wsClient) subscribe(id, query string, vars map[string]any) {
	w.t.Helper()
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	typ := "subscribe"
	if w.protocol() == ProtocolGraphQLWS {
		typ = "start"
	}
	w.send(frame{Type: typ, ID: id, Payload: p})
}

// stop ends operation id in the connection's protocol.
func (w *wsClient) stop(id string) {
	typ := "complete"
	if w.protocol() == ProtocolGraphQLWS {
		typ = "stop"
	}
	w.send(frame{Type: typ, ID: id})
}

// next expects a result frame ("next" or "data") for id and returns its data.
func (w *wsClient) next(id string) json.RawMessage {
	w.t.Helper()
	typ := "next"
	if w.protocol() == ProtocolGraphQLWS {
		typ = "data"
	}
	f := w.expect(typ)
	if f.ID != id {
		w.t.Fatalf("frame for %q, want %q", f.ID, id)
	}
	var r gqlResponse
	if err := json.Unmarshal(f.Payload, &r); err != nil || r.Errors != nil {
		w.t.Fatalf("payload %s: %v", f.Payload, err)
	}
	return r.Data
}
