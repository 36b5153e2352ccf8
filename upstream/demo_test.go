package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/upstream/demo"
)

func startDemo(t *testing.T, opts demo.Options) *demo.Server {
	t.Helper()
	if opts.TickInterval == 0 {
		opts.TickInterval = -1
	}
	srv, err := demo.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func TestDemoCountdownBothProtocols(t *testing.T) {
	for _, proto := range []string{demo.ProtocolTransportWS, demo.ProtocolGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			var mu sync.Mutex
			var seen http.Header
			srv := startDemo(t, demo.Options{Protocols: []string{proto}, OnRequest: func(r *http.Request) {
				mu.Lock()
				seen = r.Header.Clone()
				mu.Unlock()
			}})
			h := newTestHub(t, HubConfig{URL: srv.WebSocketURL()})
			req := Request{
				Query:       "subscription($n: Int!) { countdown(from: $n, interval: 1) }",
				Variables:   json.RawMessage(`{"n": 3}`),
				Header:      http.Header{"X-Api-Key": {"secret"}},
				InitPayload: json.RawMessage(`{"authToken":"t"}`),
			}
			r := newReader(t, subscribe(t, h, req, SubscribeOptions{Dedup: true}))
			for i := 3; i >= 0; i-- {
				expectNext(t, r, fmt.Sprintf(`{"data":{"countdown":%d}}`, i))
			}
			expectEnd(t, r, event.Done, "")
			mu.Lock()
			if seen.Get("X-Api-Key") != "secret" {
				t.Errorf("upgrade headers %v", seen)
			}
			mu.Unlock()
			if p := srv.Stats().InitPayloads; len(p) != 1 || p[0]["authToken"] != "t" {
				t.Errorf("init payloads %v", p)
			}
			waitFor(t, "idle close", func() bool { return srv.Stats().WebSocketsOpen == 0 && h.Stats().Connections == 0 })
		})
	}
}

func TestDemoDedupAndClientClose(t *testing.T) {
	for _, proto := range []string{demo.ProtocolTransportWS, demo.ProtocolGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			srv := startDemo(t, demo.Options{Protocols: []string{proto}})
			h := newTestHub(t, HubConfig{URL: srv.WebSocketURL()})
			req := Request{Query: `subscription { messageCreated(room: "r") { id content } }`}
			a := subscribe(t, h, req, SubscribeOptions{Dedup: true})
			b := subscribe(t, h, req, SubscribeOptions{Dedup: true})
			waitFor(t, "server subscription", func() bool { return srv.Stats().ActiveSubscriptions == 1 })
			c := NewClient(srv.URL(), nil, nil)
			body, status, err := c.Do(context.Background(), Request{
				Query: `mutation { postMessage(room: "r", content: "hi") { id } }`,
			})
			if err != nil || status != 200 {
				t.Fatalf("post: %d %v %s", status, err, body)
			}
			ea := newReader(t, a).next()
			eb := newReader(t, b).next()
			if ea != eb || ea.Kind != event.Next || string(ea.Data) != `{"data":{"messageCreated":{"id":"1","content":"hi"}}}` {
				t.Fatalf("events %s / %s", ea.Data, eb.Data)
			}
			if st := srv.Stats(); st.SubscriptionsStarted != 1 {
				t.Errorf("server started %d subscriptions", st.SubscriptionsStarted)
			}
			a.Close()
			b.Close()
			t0 := time.Now()
			waitFor(t, "upstream complete", func() bool { return srv.Stats().ActiveSubscriptions == 0 })
			if d := time.Since(t0); d > time.Second {
				t.Errorf("upstream completed after %v", d)
			}
			waitFor(t, "idle close", func() bool { return srv.Stats().WebSocketsOpen == 0 })
		})
	}
}

func TestDemoBothOffered(t *testing.T) {
	srv := startDemo(t, demo.Options{})
	h := newTestHub(t, HubConfig{URL: srv.WebSocketURL()})
	r := newReader(t, subscribe(t, h, Request{Query: "subscription { countdown(from: 1, interval: 1) }"}, SubscribeOptions{}))
	expectNext(t, r, `{"data":{"countdown":1}}`)
	expectNext(t, r, `{"data":{"countdown":0}}`)
	expectEnd(t, r, event.Done, "")
}

func TestDemoRejectedSubscription(t *testing.T) {
	srv := startDemo(t, demo.Options{Protocols: []string{demo.ProtocolTransportWS}})
	h := newTestHub(t, HubConfig{URL: srv.WebSocketURL()})
	r := newReader(t, subscribe(t, h, Request{Query: "subscription { countdown(from: -1) }"}, SubscribeOptions{}))
	e := r.next()
	if e.Kind != event.Error || !contains(e.Data, `{"errors":[{"message":`) {
		t.Fatalf("got %v %s", e.Kind, e.Data)
	}
}

func TestDemoInitRejected(t *testing.T) {
	for _, proto := range []string{demo.ProtocolTransportWS, demo.ProtocolGraphQLWS} {
		t.Run(proto, func(t *testing.T) {
			srv := startDemo(t, demo.Options{Protocols: []string{proto}, InitFunc: func(map[string]any) error {
				return fmt.Errorf("no token")
			}})
			h := newTestHub(t, HubConfig{URL: srv.WebSocketURL()})
			_, err := h.Subscribe(context.Background(), Request{Query: "subscription { countdown(from: 1) }"}, SubscribeOptions{})
			if err == nil || !errorsIs(err, ErrUnavailable) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
