package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/topic"
)

func newTestHub(t testing.TB, cfg HubConfig) *Hub {
	t.Helper()
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 100 * time.Millisecond
	}
	if cfg.InitTimeout == 0 {
		cfg.InitTimeout = 2 * time.Second
	}
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTopics(h); _ = h.Close() })
	return h
}

var countdown = Request{
	Query:         "subscription C($from: Int!) { countdown(from: $from) }",
	OperationName: "C",
	Variables:     json.RawMessage(`{ "from": 3 }`),
}

func subscribe(t testing.TB, h *Hub, req Request, opt SubscribeOptions) *topic.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := h.Subscribe(ctx, req, opt)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(sub.Close)
	return sub
}

func expectNext(t testing.TB, r *reader, data string) *event.Event {
	t.Helper()
	e := r.next()
	if e.Kind != event.Next || string(e.Data) != data {
		t.Fatalf("got %v %s, want next %s", e.Kind, e.Data, data)
	}
	return e
}

func expectEnd(t testing.TB, r *reader, kind event.Kind, data string) {
	t.Helper()
	e := r.next()
	if e.Kind != kind || (data != "" && string(e.Data) != data) {
		t.Fatalf("got %v %s, want %v %s", e.Kind, e.Data, kind, data)
	}
}

func expectCode(t testing.TB, r *reader, code string) {
	t.Helper()
	e := r.next()
	if e.Kind != event.Error || !strings.Contains(string(e.Data), `"code":"`+code+`"`) {
		t.Fatalf("got %v %s, want error %s", e.Kind, e.Data, code)
	}
}

func TestEndToEndBothProtocols(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		protos     []string
		stop       string
	}{
		{"transport-ws", ProtocolTransportWS, []string{ProtocolTransportWS}, "complete"},
		{"graphql-ws", ProtocolGraphQLWS, []string{ProtocolGraphQLWS}, "stop"},
		{"none-echoed", ProtocolGraphQLWS, nil, "stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFake(t, tc.protos...)
			h := newTestHub(t, HubConfig{URL: fs.URL()})
			req := countdown
			req.Header = http.Header{"x-api-key": {"k1"}}
			req.InitPayload = json.RawMessage(`{"headers": {"X-Api-Key": "k1"}}`)
			sub := subscribe(t, h, req, SubscribeOptions{Dedup: true})
			r := newReader(t, sub)

			init := fs.frame("connection_init", 1)
			if string(init.Payload) != `{"headers":{"X-Api-Key":"k1"}}` {
				t.Errorf("init payload %s", init.Payload)
			}
			if got := fs.headers[0].Get("X-Api-Key"); got != "k1" {
				t.Errorf("upgrade header X-Api-Key = %q", got)
			}
			startType := map[string]string{ProtocolTransportWS: "subscribe", ProtocolGraphQLWS: "start"}[tc.want]
			f := fs.frame(startType, 1)
			if string(f.Payload) != `{"query":"subscription C($from: Int!) { countdown(from: $from) }","variables":{"from":3},"operationName":"C"}` {
				t.Errorf("subscribe payload %s", f.Payload)
			}
			f.fc.next(f.ID, `{"data": {"countdown": 3}}`)
			f.fc.next(f.ID, `{"data": {"countdown": 2}}`)
			e1 := expectNext(t, r, `{"data":{"countdown":3}}`)
			e2 := expectNext(t, r, `{"data":{"countdown":2}}`)
			if e1.ID == "" || e1.ID == e2.ID || !strings.HasSuffix(e1.ID, "-1") || !strings.HasSuffix(e2.ID, "-2") {
				t.Errorf("ids %q %q", e1.ID, e2.ID)
			}
			f.fc.complete(f.ID)
			expectEnd(t, r, event.Done, "")
			// Nothing left to carry: the connection closes after IdleTimeout.
			waitFor(t, "idle close", func() bool { return fs.openConns() == 0 && h.Stats().Connections == 0 })
			if tc.want == ProtocolGraphQLWS && fs.count("connection_terminate") != 1 {
				t.Error("no connection_terminate before close")
			}
			if fs.count("stop")+fs.count("complete") != 0 {
				t.Error("stop/complete sent for a subscription the upstream completed")
			}
			if st := h.Stats(); st.Subscriptions != 0 || topicStats(h).Clients != 0 || st.EventsIn != 2 || topicStats(h).EventsOut != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestErrorFrame(t *testing.T) {
	for _, tc := range []struct {
		proto, payload, want string
	}{
		{ProtocolTransportWS, `[{"message":"boom", "path":["countdown"]}]`, `{"errors":[{"message":"boom","path":["countdown"]}]}`},
		{ProtocolGraphQLWS, `{"message":"boom"}`, `{"errors":[{"message":"boom"}]}`},
		{ProtocolGraphQLWS, `[{"message":"a"},{"message":"b"}]`, `{"errors":[{"message":"a"},{"message":"b"}]}`},
		{ProtocolGraphQLWS, `{"errors":[{"message":"x"}]}`, `{"errors":[{"message":"x"}]}`},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			fs := newFake(t, tc.proto)
			h := newTestHub(t, HubConfig{URL: fs.URL()})
			r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{Dedup: true}))
			f := fs.frame(map[string]string{ProtocolTransportWS: "subscribe", ProtocolGraphQLWS: "start"}[tc.proto], 1)
			f.fc.next(f.ID, `{"data":{"countdown":1}}`)
			f.fc.errorFrame(f.ID, tc.payload)
			expectNext(t, r, `{"data":{"countdown":1}}`)
			expectEnd(t, r, event.Error, tc.want)
			r.none()
			waitFor(t, "subscription removed", func() bool { return h.Stats().Subscriptions == 0 })
		})
	}
}

func TestClientCloseCompletesUpstreamThenIdleClose(t *testing.T) {
	for _, proto := range []string{ProtocolTransportWS, ProtocolGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			fs := newFake(t, proto)
			h := newTestHub(t, HubConfig{URL: fs.URL(), IdleTimeout: 200 * time.Millisecond})
			sub := subscribe(t, h, countdown, SubscribeOptions{Dedup: true})
			start := map[string]string{ProtocolTransportWS: "subscribe", ProtocolGraphQLWS: "start"}[proto]
			stop := map[string]string{ProtocolTransportWS: "complete", ProtocolGraphQLWS: "stop"}[proto]
			f := fs.frame(start, 1)
			t0 := time.Now()
			sub.Close()
			sub.Close() // safe twice
			got := fs.frame(stop, 1)
			if got.ID != f.ID || time.Since(t0) > time.Second {
				t.Fatalf("stop for %q after %v", got.ID, time.Since(t0))
			}
			waitFor(t, "idle close", func() bool { return fs.openConns() == 0 })
			if d := time.Since(t0); d < 150*time.Millisecond || d > 5*time.Second {
				t.Errorf("idle close after %v", d)
			}
			// The server may see the close before the hub's reader has
			// finished the connection.
			waitFor(t, "hub stats back to zero", func() bool {
				st := h.Stats()
				return st.Connections == 0 && st.Subscriptions == 0 && topicStats(h).Clients == 0
			})
			if e := newReader(t, sub).next(); e.Kind != event.Done {
				t.Errorf("closed subscription queue ends with %v", e.Kind)
			}
		})
	}
}

func TestNewSubscriptionCancelsIdleClose(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), IdleTimeout: 150 * time.Millisecond})
	subscribe(t, h, countdown, SubscribeOptions{}).Close()
	sub := subscribe(t, h, countdown, SubscribeOptions{})
	time.Sleep(300 * time.Millisecond)
	if fs.numConns() != 1 || fs.openConns() != 1 {
		t.Fatalf("conns %d open %d", fs.numConns(), fs.openConns())
	}
	f := fs.frame("subscribe", 2)
	f.fc.next(f.ID, `{"data":1}`)
	expectNext(t, newReader(t, sub), `{"data":1}`)
}

func TestAckTimeout(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	fs.noAck.Store(true)
	h := newTestHub(t, HubConfig{URL: fs.URL(), InitTimeout: 150 * time.Millisecond})
	t0 := time.Now()
	_, err := h.Subscribe(context.Background(), countdown, SubscribeOptions{Dedup: true})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "connection_ack") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	if fs.count("subscribe") != 0 {
		t.Error("subscribe sent before connection_ack")
	}
	waitFor(t, "connection gone", func() bool { return h.Stats().Connections == 0 && topicStats(h).Clients == 0 })
}

func TestConnectionErrorBeforeAck(t *testing.T) {
	fs := newFake(t, ProtocolGraphQLWS)
	fs.connError = `{"message":"bad token"}`
	h := newTestHub(t, HubConfig{URL: fs.URL()})
	_, err := h.Subscribe(context.Background(), countdown, SubscribeOptions{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "bad token") {
		t.Fatalf("err = %v", err)
	}
}

func TestDialFailure(t *testing.T) {
	fs := newFake(t)
	u := fs.URL()
	fs.Close()
	h := newTestHub(t, HubConfig{URL: u})
	_, err := h.Subscribe(context.Background(), countdown, SubscribeOptions{})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestSubscribeContextCancel(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	fs.noAck.Store(true)
	h := newTestHub(t, HubConfig{URL: fs.URL(), InitTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := h.Subscribe(ctx, countdown, SubscribeOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// The start, bounded by the same deadline, gives up too (on the topic
	// layer's goroutine, a moment after the client).
	waitFor(t, "the start given up", func() bool { return topicStats(h).Clients == 0 && h.Stats().Subscriptions == 0 })
}

// With reconnects off, a lost connection ends its streams at once (see
// reconnect_test.go for the default).
func TestConnectionLost(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), ReconnectTimeout: -1})
	r1 := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	other := countdown
	other.Variables = json.RawMessage(`{"from":9}`)
	r2 := newReader(t, subscribe(t, h, other, SubscribeOptions{}))
	f := fs.frame("subscribe", 2)
	_ = f.fc.ws.CloseNow() // the server crashes
	expectCode(t, r1, "UpstreamUnavailable")
	expectCode(t, r2, "UpstreamUnavailable")
	waitFor(t, "cleanup", func() bool {
		st := h.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && topicStats(h).Clients == 0
	})
	// The next subscribe dials again.
	subscribe(t, h, countdown, SubscribeOptions{})
	if fs.numConns() != 2 {
		t.Errorf("conns %d", fs.numConns())
	}
}

func TestOversizedFrame(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), MaxFrameBytes: 1024})
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	f := fs.frame("subscribe", 1)
	f.fc.next(f.ID, `{"data":"small"}`)
	f.fc.next(f.ID, `{"data":"`+strings.Repeat("x", 2000)+`"}`)
	expectNext(t, r, `{"data":"small"}`)
	expectCode(t, r, "UpstreamFrameTooLarge")
}

func TestKeepAlive(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), KeepAlive: 40 * time.Millisecond, ReconnectTimeout: -1})
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	f := fs.frame("ping", 3) // we ping, the server pongs, all is well
	f.fc.send(`{"type":"ping"}`)
	fs.frame("pong", 1) // we answered the server's ping
	r.none()
	fs.silent.Store(true) // stop answering pings: the connection is dead
	expectCode(t, r, "UpstreamUnavailable")
}

func TestLegacyKeepAliveTimeout(t *testing.T) {
	fs := newFake(t, ProtocolGraphQLWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), KeepAlive: 40 * time.Millisecond, ReconnectTimeout: -1})
	r := newReader(t, subscribe(t, h, countdown, SubscribeOptions{}))
	f := fs.frame("start", 1)
	// Silent legacy server that never sent "ka": stays up.
	time.Sleep(150 * time.Millisecond)
	r.none()
	f.fc.send(`{"type":"ka"}`)
	time.Sleep(10 * time.Millisecond)
	f.fc.send(`{"type":"ka"}`)
	// Then silence: dead after max(2×KeepAlive, 3×ka gap).
	expectCode(t, r, "UpstreamUnavailable")
}

func TestHubClose(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h, err := NewHub(HubConfig{URL: fs.URL()})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := h.Subscribe(context.Background(), countdown, SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fs.frame("subscribe", 1)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	expectEnd(t, newReader(t, sub), event.Done, "")
	fs.frame("complete", 1)
	waitFor(t, "closed", func() bool { return fs.openConns() == 0 })
	if _, err := h.Subscribe(context.Background(), countdown, SubscribeOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("after close: %v", err)
	}
	sub.Close()
	_ = h.Close()
}

// At MaxConnections, an idle connection makes room for another identity
// at once instead of after IdleTimeout.
func TestMaxConnectionsEvictsIdle(t *testing.T) {
	fs := newFake(t, ProtocolTransportWS)
	h := newTestHub(t, HubConfig{URL: fs.URL(), MaxConnections: 1, IdleTimeout: time.Hour})
	a := subscribe(t, h, countdown, SubscribeOptions{})
	fs.frame("subscribe", 1)
	other := countdown
	other.Header = http.Header{"Authorization": {"Bearer x"}}
	if _, err := h.Subscribe(context.Background(), other, SubscribeOptions{}); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("busy connection: err = %v", err)
	}
	a.Close()
	waitFor(t, "released", func() bool { return h.Stats().Subscriptions == 0 })
	subscribe(t, h, other, SubscribeOptions{})
	fs.frame("subscribe", 2)
	waitFor(t, "idle connection closed", func() bool { return fs.openConns() == 1 && h.Stats().Connections == 1 })
}
