package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream/demo"
)

// expiryTTL is the lifetime of the short tokens: exp is whole seconds, so
// it lies 2-3 s ahead, time enough for one event even on a slow CI box.
const expiryTTL = 3 * time.Second

// expiryConfig uses a small leeway (the default is 5s) and no heartbeats,
// so that the stream's bytes are exactly the events and the end.
// forwardHeaders is a parameter: with Authorization forwarded, two clients
// never share an upstream subscription.
func expiryConfig(forward string) string {
	return `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "forwardHeaders": [` + forward + `]},
		"auth": {"jwt": {"secret": "s3cret", "leeway": "1s"}}, "subscriptions": {"heartbeat": "1h"}}`
}

func mintTTL(t testing.TB, sub string, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(auth.Config{Secret: "s3cret"}, sub, nil, nil, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// postChat posts through the gateway and returns the message id.
func postChat(t testing.TB, g *testGateway, room, content string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"room": room, "content": content})
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Data struct {
			PostMessage struct{ ID string } `json:"postMessage"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(readAll(t, resp)), &out); err != nil || out.Data.PostMessage.ID == "" {
		t.Fatalf("postMessage: %v %+v", err, out)
	}
	return out.Data.PostMessage.ID
}

// openAuthStream starts a stream request and returns the response once the
// headers arrived; the body is closed at the end of the test.
func openAuthStream(t testing.TB, url, token string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	return resp
}

// awaitUpstreamSubs waits until the demo holds exactly n subscriptions.
func awaitUpstreamSubs(t testing.TB, d *demo.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.WaitActive(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// An open stream whose token expires ends with the TokenExpired error
// after its events: exact bytes for SSE and the JSON stream; the upstream
// subscription is completed.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		name, query, event, end string
	}{
		{"sse", "&wg_sse=true", "id: *\ndata: %s\n\n",
			"data: {\"errors\":[{\"message\":\"token expired\",\"extensions\":{\"code\":\"TokenExpired\"}}]}\n\nevent: done\ndata: done\n\n"},
		{"json stream", "", "%s\n\n",
			"{\"errors\":[{\"message\":\"token expired\",\"extensions\":{\"code\":\"TokenExpired\"}}]}\n\n"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			d := startDemo(t, demo.Options{})
			g := newAuthGateway(t, d, expiryConfig(`"Authorization"`), nil, Options{})
			resp := openAuthStream(t, g.URL+"/operations/auth/RoomMessages?room=r"+mode.query, mintTTL(t, "alice", expiryTTL))
			awaitUpstreamSubs(t, d, 1)
			var want strings.Builder
			for _, text := range []string{"one", "two"} {
				id := postChat(t, g, "r", text)
				want.WriteString(strings.Replace(mode.event, "%s", `{"data":{"messageCreated":{"id":"`+id+`","content":"`+text+`"}}}`, 1))
			}
			want.WriteString(mode.end)
			b, err := io.ReadAll(resp.Body) // until the gateway ends the response
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			if w := withIDs(t, got, want.String()); got != w {
				t.Errorf("stream\n%q\nwant\n%q", got, w)
			}
			eventually(t, 5*time.Second, "upstream subscription completed", func() bool { return d.Stats().ActiveSubscriptions == 0 })
		})
	}
}

// A stream that shares its upstream subscription with a client whose token
// is still valid ends alone: the upstream subscription stays for the other.
func TestExpiryKeepsSharedSubscription(t *testing.T) {
	t.Parallel()
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, expiryConfig(""), nil, Options{}) // nothing forwarded: the two share
	short := openAuthStream(t, g.URL+"/operations/auth/RoomMessages?room=r&wg_sse=true", mintTTL(t, "alice", expiryTTL))
	long := openAuthStream(t, g.URL+"/operations/auth/RoomMessages?room=r&wg_sse=true", mintTTL(t, "bob", time.Hour))
	awaitUpstreamSubs(t, d, 1)
	if s := d.Stats(); s.SubscriptionsStarted != 1 {
		t.Fatalf("upstream subscriptions started: %d, want 1 shared", s.SubscriptionsStarted)
	}
	postChat(t, g, "r", "before")
	longR := bufio.NewReader(long.Body)
	readUntil(t, longR, `"before"`, 5*time.Second)
	b, err := io.ReadAll(short.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(b), "\"code\":\"TokenExpired\"}}]}\n\nevent: done\ndata: done\n\n") || !strings.Contains(string(b), `"before"`) {
		t.Fatalf("short stream %q", b)
	}
	if s := d.Stats(); s.ActiveSubscriptions != 1 {
		t.Fatalf("active upstream subscriptions after one expiry: %d, want 1", s.ActiveSubscriptions)
	}
	postChat(t, g, "r", "after")
	readUntil(t, longR, `"after"`, 5*time.Second)
	long.Body.Close()
	eventually(t, 5*time.Second, "upstream subscription completed", func() bool { return d.Stats().ActiveSubscriptions == 0 })
}

// Regression: a token accepted inside the leeway after its exp opened a
// stream that ended with TokenExpired at once. A stream ends when the
// token stops being accepted (exp + leeway), so this one runs to done.
func TestTokenInsideLeewayStreamsUntilLeewayEnds(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"auth": {"jwt": {"secret": "s3cret", "leeway": "30s"}}}`)
	token := mintTTL(t, "alice", time.Second)
	time.Sleep(1100 * time.Millisecond) // exp has passed; the leeway has not
	resp := get(t, g.URL+"/operations/Countdown?from=1&interval=1&wg_sse=true&access_token="+token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := readAll(t, resp)
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":1}}\n\nid: *\ndata: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n"); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
}
