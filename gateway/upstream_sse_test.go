package gateway

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// sseUpstreamConfig subscribes over GraphQL over SSE (the demo serves it
// with gqlgen's SSE transport beside WebSocket).
const sseUpstreamConfig = `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "subscriptionProtocol": "sse", "reconnectTimeout": "10s"}}`

// The same exact bytes as over WebSocket: the transport is a source of
// the topic layer like any other.
func TestSSEUpstreamExactBytes(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, sseUpstreamConfig)
	resp := get(t, g.URL+"/operations/Countdown?from=2&interval=1&wg_sse=true")
	checkHeaders(t, resp, map[string]string{"Content-Type": "text/event-stream"})
	got := readAll(t, resp)
	want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":2}}\n\n"+
		"id: *\ndata: {\"data\":{\"countdown\":1}}\n\n"+
		"id: *\ndata: {\"data\":{\"countdown\":0}}\n\n"+
		"event: done\ndata: done\n\n")
	if got != want {
		t.Errorf("body:\n%q\nwant:\n%q", got, want)
	}
	if st := d.Stats(); st.WebSocketsTotal != 0 || st.SubscriptionsStarted != 1 {
		t.Errorf("upstream %+v: want one subscription and no WebSocket", st)
	}
}

// Two clients share one upstream request; a dropped upstream connection
// is one "reconnected" gap and the stream goes on; the last client leaving
// ends the request at the upstream.
func TestSSEUpstreamDedupReconnectAndLeave(t *testing.T) {
	d := startDemo(t, demo.Options{})
	// The upstream is reached through a proxy whose connections the test
	// cuts: a crash, not a graceful stop (the demo completes its
	// subscriptions when it stops, which is passed on as done).
	target, _ := url.Parse(d.URL())
	path := target.Path
	target.Path = ""
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		FlushInterval: -1,
	})
	t.Cleanup(proxy.Close)
	g := newGatewayWith(t, sseUpstreamConfig, map[string]string{"UPSTREAM": proxy.URL + path}, Options{}, nil, nil)
	a := openClientStream(t, g.URL+"/operations/chat/MessageCreated?room=r&wg_sse=true")
	b := openClientStream(t, g.URL+"/operations/chat/MessageCreated?room=r&wg_sse=true")
	waitUpstream(t, d, 1)
	eventually(t, 5*time.Second, "both clients on one topic", func() bool { return g.topics.Stats(kindSubscription).Clients == 2 })
	if st := d.Stats(); st.SubscriptionsStarted != 1 {
		t.Fatalf("%d upstream subscriptions for two clients", st.SubscriptionsStarted)
	}
	postRoom(t, g, "r", "before")
	a.until(`"content":"before"`)
	b.until(`"content":"before"`)

	proxy.CloseClientConnections()
	a.until(sseReconnectGap)
	b.until(sseReconnectGap)
	waitUpstream(t, d, 1)
	if st := d.Stats(); st.SubscriptionsStarted != 2 {
		t.Fatalf("%d upstream subscriptions after the reconnect, want 2", st.SubscriptionsStarted)
	}
	// Posted until it arrives: on a busy machine the reconnected stream
	// may still be settling (a post to a room nobody listens to is gone).
	stopPosting := make(chan struct{})
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		for {
			// Not postRoom: t.Fatal is for the test's own goroutine.
			if resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json",
				strings.NewReader(`{"room":"r","content":"after"}`)); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			select {
			case <-stopPosting:
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	a.until(`"content":"after"`)
	b.until(`"content":"after"`)
	close(stopPosting)
	<-posted

	a.body.Close()
	b.body.Close()
	eventually(t, 5*time.Second, "upstream request ended", func() bool { return d.Stats().ActiveSubscriptions == 0 })
	eventually(t, 5*time.Second, "topic released", func() bool { return g.topics.Stats("").Topics == 0 })
}

// A subscription the upstream refuses before it streams is a 502 before
// any stream byte, as over WebSocket.
func TestSSEUpstreamUnreachable(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, sseUpstreamConfig)
	_ = d.Close()
	resp, err := http.Get(g.URL + "/operations/Countdown?from=2&wg_sse=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(line, `"code":"UpstreamUnavailable"`) {
		t.Fatalf("%d %q", resp.StatusCode, line)
	}
}
