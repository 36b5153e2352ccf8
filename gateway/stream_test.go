package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// protocols runs a test against a demo upstream speaking each subprotocol.
func protocols(t *testing.T, f func(t *testing.T, d *demo.Server, g *testGateway)) {
	for _, p := range []string{demo.ProtocolTransportWS, demo.ProtocolGraphQLWS} {
		t.Run(p, func(t *testing.T) {
			d := startDemo(t, demo.Options{Protocols: []string{p}})
			f(t, d, newGateway(t, d, defaultConfig))
		})
	}
}

var idLine = regexp.MustCompile(`(?m)^id: ([0-9a-z]+-[0-9a-z]+)$`)

// withIDs replaces each "id: *" placeholder of want by the ids the stream
// carried, in order, after checking that they are distinct.
func withIDs(t *testing.T, got, want string) string {
	t.Helper()
	ids := idLine.FindAllStringSubmatch(got, -1)
	seen := map[string]bool{}
	for _, m := range ids {
		if seen[m[1]] {
			t.Errorf("id %s repeated", m[1])
		}
		seen[m[1]] = true
	}
	for _, m := range ids {
		want = strings.Replace(want, "id: *\n", "id: "+m[1]+"\n", 1)
	}
	return want
}

func checkHeaders(t *testing.T, resp *http.Response, want map[string]string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: got %q, want %q", k, got, v)
		}
	}
}

func TestSSEStreamExactBytes(t *testing.T) {
	protocols(t, func(t *testing.T, d *demo.Server, g *testGateway) {
		resp := get(t, g.URL+"/operations/Countdown?from=2&interval=1&wg_sse=true")
		checkHeaders(t, resp, map[string]string{
			"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
		})
		got := readAll(t, resp)
		want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":2}}\n\n"+
			"id: *\ndata: {\"data\":{\"countdown\":1}}\n\n"+
			"id: *\ndata: {\"data\":{\"countdown\":0}}\n\n"+
			"event: done\ndata: done\n\n")
		if got != want {
			t.Errorf("body:\n%q\nwant:\n%q", got, want)
		}
	})
}

// A bare ?wg_sse (how Cosmo and WunderGraph clients write it) means
// wg_sse=true.
func TestSSEChosenByBareFlag(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/operations/Countdown?from=0&interval=1&wg_sse")
	checkHeaders(t, resp, map[string]string{"Content-Type": "text/event-stream"})
	got := readAll(t, resp)
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n"); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestSSEChosenByAcceptHeader(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/operations/Countdown?from=0&interval=1", "Accept", "text/event-stream")
	checkHeaders(t, resp, map[string]string{"Content-Type": "text/event-stream"})
	got := readAll(t, resp)
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n"); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}

func TestJSONStreamExactBytes(t *testing.T) {
	protocols(t, func(t *testing.T, d *demo.Server, g *testGateway) {
		resp := get(t, g.URL+"/operations/Countdown?from=2&interval=1")
		checkHeaders(t, resp, map[string]string{
			"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
		})
		got := readAll(t, resp)
		want := "{\"data\":{\"countdown\":2}}\n\n{\"data\":{\"countdown\":1}}\n\n{\"data\":{\"countdown\":0}}\n\n"
		if got != want {
			t.Errorf("body %q, want %q", got, want)
		}
	})
}

func TestSubscribeOnceExactBytes(t *testing.T) {
	protocols(t, func(t *testing.T, d *demo.Server, g *testGateway) {
		// interval=60000: the countdown would not end by itself for minutes.
		resp := get(t, g.URL+"/operations/Countdown?from=3&interval=60000&wg_subscribe_once=true")
		checkHeaders(t, resp, map[string]string{"Content-Type": "application/json"})
		if got := readAll(t, resp); got != `{"data":{"countdown":3}}` {
			t.Errorf("body %q", got)
		}
		// The upstream subscription is completed after the one result.
		eventually(t, 5*time.Second, "upstream subscription completed", func() bool { return d.Stats().ActiveSubscriptions == 0 })

		resp = get(t, g.URL+"/operations/Countdown?from=3&interval=1&wg_subscribe_once=true&wg_sse=true")
		checkHeaders(t, resp, map[string]string{"Content-Type": "text/event-stream"})
		got := readAll(t, resp)
		if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":3}}\n\nevent: done\ndata: done\n\n"); got != want {
			t.Errorf("once+sse body %q, want %q", got, want)
		}
	})
}

// An upstream error frame ends the stream: the errors object, then done
// (WunderGraph hangs here).
func TestUpstreamErrorFrameEndsStream(t *testing.T) {
	protocols(t, func(t *testing.T, d *demo.Server, g *testGateway) {
		resp := get(t, g.URL+"/operations/Countdown?from=-1&wg_sse=true")
		checkHeaders(t, resp, map[string]string{"Content-Type": "text/event-stream"})
		got := readAll(t, resp)
		re := regexp.MustCompile(`^data: \{"errors":\[\{"message":"[^"\n]*from[^\n]*\}\]\}\n\nevent: done\ndata: done\n\n$`)
		if !re.MatchString(got) {
			t.Errorf("body %q does not match %s", got, re)
		}
		resp = get(t, g.URL+"/operations/Countdown?from=-1")
		got = readAll(t, resp)
		if !regexp.MustCompile(`^\{"errors":\[\{"message":"[^\n]*\}\]\}\n\n$`).MatchString(got) {
			t.Errorf("json stream body %q", got)
		}
	})
}

// The client goes away: the upstream sees complete (graphql-transport-ws)
// or stop (graphql-ws) within a second, and the idle connection closes.
func TestClientGoneCompletesUpstream(t *testing.T) {
	protocols(t, func(t *testing.T, d *demo.Server, g *testGateway) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/operations/Countdown?from=100000&interval=20&wg_sse=true", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		readUntil(t, bufio.NewReader(resp.Body), "countdown", 5*time.Second)
		if n := d.Stats().ActiveSubscriptions; n != 1 {
			t.Fatalf("active upstream subscriptions %d, want 1", n)
		}
		cancel()
		left := time.Now()
		eventually(t, time.Second, "upstream subscription completed", func() bool { return d.Stats().ActiveSubscriptions == 0 })
		eventually(t, 5*time.Second-time.Since(left), "idle upstream connection closed", func() bool { return d.Stats().WebSocketsOpen == 0 })
	})
}

// Heartbeats keep an idle stream alive: ": ping\n\n" for SSE, "\n" for JSON.
func TestHeartbeats(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "subscriptions": {"heartbeat": "50ms"}}`)
	for mode, want := range map[string]string{"&wg_sse=true": ": ping\n\n: ping\n\n", "": "\n\n\n"} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.URL+"/operations/chat/MessageCreated?room=quiet"+mode, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := readUntil(t, bufio.NewReader(resp.Body), want, 5*time.Second)
		if strings.Trim(strings.ReplaceAll(got, ": ping", ""), "\n") != "" {
			t.Errorf("mode %q: idle stream wrote %q", mode, got)
		}
		cancel()
		resp.Body.Close()
	}
}

// A chat message posted through the gateway arrives on an open stream.
func TestMutationReachesOpenStream(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/operations/chat/MessageCreated?room=lobby&wg_sse=true")
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	eventually(t, 5*time.Second, "upstream subscribed", func() bool { return d.Stats().ActiveSubscriptions == 1 })
	post, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json",
		strings.NewReader(`{"room":"lobby","content":"hi","author":"ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, post); post.StatusCode != 200 || !strings.Contains(body, `"content":"hi"`) {
		t.Fatalf("post: %d %s", post.StatusCode, body)
	}
	got := readUntil(t, r, "\n\n", 5*time.Second)
	if !regexp.MustCompile(`^id: \S+\ndata: \{"data":\{"messageCreated":\{"id":"\d+","author":"ada","content":"hi","createdAt":"[^"]+"\}\}\}\n\n$`).MatchString(got) {
		t.Errorf("event %q", got)
	}
}

func TestStreamsOfDifferentOperationsSideBySide(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	bodies := make(chan string, 3)
	for i := range 3 {
		go func() {
			resp, err := http.Get(fmt.Sprintf("%s/operations/Countdown?from=%d&interval=1", g.URL, i))
			if err != nil {
				bodies <- err.Error()
				return
			}
			defer resp.Body.Close()
			var sb strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&sb)
			bodies <- sb.String()
		}()
	}
	for range 3 {
		got := <-bodies
		if !strings.HasSuffix(got, "{\"data\":{\"countdown\":0}}\n\n") {
			t.Errorf("body %q", got)
		}
	}
}
