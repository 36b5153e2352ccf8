package gateway

import (
	"bufio"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// seenRequest is what the demo upstream saw of one HTTP request.
type seenRequest struct {
	upgrade bool
	query   string
	header  http.Header
}

// requestRecorder keeps the requests the demo upstream receives.
type requestRecorder struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (r *requestRecorder) record(req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, seenRequest{
		upgrade: strings.EqualFold(req.Header.Get("Upgrade"), "websocket"),
		query:   req.URL.RawQuery,
		header:  req.Header.Clone(),
	})
}

// last returns the most recent request of the kind asked for.
func (r *requestRecorder) last(t testing.TB, upgrade bool) seenRequest {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.seen) - 1; i >= 0; i-- {
		if r.seen[i].upgrade == upgrade {
			return r.seen[i]
		}
	}
	t.Fatalf("the upstream saw no request (upgrade=%v)", upgrade)
	return seenRequest{}
}

const forwardConfig = `{"operationsDir": "${OPS}",
	"upstream": {"url": "${UPSTREAM}", "headers": {"X-Api-Key": "static"}, "forwardHeaders": ["Authorization", "X-Tenant"]},
	"auth": {"jwt": {"secret": "s3cret"}, "cookie": "` + testCookie + `"}, "subscriptions": {"heartbeat": "1h"}}`

// CONTRACT §6: the forwarded headers reach the upstream on the HTTP
// request, on the WebSocket upgrade and in connection_init ("headers" and
// "authToken"), whichever way the client sent its token; a cookie or query
// token goes upstream as Authorization: Bearer, and neither the cookie nor
// the query parameter is passed on.
func TestIdentityForwardedUpstream(t *testing.T) {
	rec := &requestRecorder{}
	d := startDemo(t, demo.Options{OnRequest: rec.record})
	g := newAuthGateway(t, d, forwardConfig, nil, Options{})
	tok := mintTTL(t, "alice", time.Hour)
	for i, src := range []tokenSource{viaHeader, viaCookie, viaQuery} {
		t.Run(string(src), func(t *testing.T) {
			tenant := "t-" + string(src) // a new upstream connection per source
			send := func(path string) *http.Response {
				if src == viaQuery {
					sep := "?"
					if strings.Contains(path, "?") {
						sep = "&"
					}
					path += sep + "access_token=" + tok
				}
				req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
				req.Header.Set("X-Tenant", tenant)
				req.Header.Set("X-Other", "not forwarded")
				switch src {
				case viaHeader:
					req.Header.Set("Authorization", "Bearer "+tok)
				case viaCookie:
					req.AddCookie(&http.Cookie{Name: testCookie, Value: tok})
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			check := func(r seenRequest) {
				t.Helper()
				for k, v := range map[string]string{"Authorization": "Bearer " + tok, "X-Api-Key": "static", "X-Tenant": tenant} {
					if got := r.header.Get(k); got != v {
						t.Errorf("upstream %s: %q, want %q", k, got, v)
					}
				}
				if r.header.Get("Cookie") != "" || r.header.Get("X-Other") != "" || r.query != "" {
					t.Errorf("upstream got cookie %q, X-Other %q, query %q", r.header.Get("Cookie"), r.header.Get("X-Other"), r.query)
				}
			}
			expectServed(t, send("/operations/chat/MyMessages"), `"myMessages"`)
			check(rec.last(t, false))

			expectServed(t, send("/operations/auth/Guarded?wg_sse=true"), "event: done")
			check(rec.last(t, true))
			inits := d.Stats().InitPayloads
			if len(inits) != i+1 {
				t.Fatalf("%d connection_init payloads, want %d", len(inits), i+1)
			}
			want := map[string]any{"headers": map[string]any{"Authorization": "Bearer " + tok, "X-Api-Key": "static", "X-Tenant": tenant}, "authToken": tok}
			if got := inits[i]; !reflect.DeepEqual(got, want) {
				t.Errorf("connection_init payload %v, want %v", got, want)
			}
		})
	}
}

var authEventID = regexp.MustCompile(`(?m)^id: (.+)$`)

// Two clients whose forwarded headers differ never share an upstream
// connection or subscription, and each receives every event once, from its
// own subscription; a third with the same headers as the first shares the
// first one's.
func TestForwardedHeadersSeparateUpstream(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, forwardConfig, nil, Options{})
	open := func(tenant string) *bufio.Reader {
		req, _ := http.NewRequest(http.MethodGet, g.URL+"/operations/chat/MessageCreated?room=shared&wg_sse=true", nil)
		req.Header.Set("X-Tenant", tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return bufio.NewReader(resp.Body)
	}
	a, b, c := open("a"), open("b"), open("a")
	awaitUpstreamSubs(t, d, 2)
	if s := d.Stats(); s.WebSocketsOpen != 2 || s.SubscriptionsStarted != 2 {
		t.Fatalf("upstream: %d connections, %d subscriptions; want 2 and 2", s.WebSocketsOpen, s.SubscriptionsStarted)
	}
	postChat(t, g, "shared", "m1")
	postChat(t, g, "shared", "end")
	got := map[string]string{}
	for name, r := range map[string]*bufio.Reader{"a": a, "b": b, "c": c} {
		got[name] = readUntil(t, r, `"end"`, 5*time.Second)
		if n := strings.Count(got[name], `"m1"`); n != 1 {
			t.Errorf("client %s got m1 %d times:\n%s", name, n, got[name])
		}
	}
	ia, ib, ic := authEventID.FindStringSubmatch(got["a"]), authEventID.FindStringSubmatch(got["b"]), authEventID.FindStringSubmatch(got["c"])
	switch {
	case ia == nil || ib == nil || ic == nil:
		t.Errorf("events without ids: %q", got)
	case ia[1] == ib[1]:
		t.Errorf("a and b got event %s from one upstream subscription", ia[1])
	case ia[1] != ic[1]:
		t.Errorf("a and c (same headers) got events %s and %s: not shared", ia[1], ic[1])
	}
}

// With @fromClaim the subscription's variables come from the token: a
// client never sees events meant for another identity.
func TestFromClaimSubscriptionIsolated(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, forwardConfig, nil, Options{})
	alice := bufio.NewReader(openAuthStream(t, g.URL+"/operations/auth/MyRoom?wg_sse=true", mintTTL(t, "alice", time.Hour)).Body)
	bob := bufio.NewReader(openAuthStream(t, g.URL+"/operations/auth/MyRoom?wg_sse=true", mintTTL(t, "bob", time.Hour)).Body)
	awaitUpstreamSubs(t, d, 2)
	postChat(t, g, "bob", "for bob")
	postChat(t, g, "alice", "for alice")
	postChat(t, g, "bob", "end")
	postChat(t, g, "alice", "end")
	if got := readUntil(t, alice, `"end"`, 5*time.Second); strings.Contains(got, "for bob") || !strings.Contains(got, "for alice") {
		t.Errorf("alice's stream:\n%s", got)
	}
	if got := readUntil(t, bob, `"end"`, 5*time.Second); strings.Contains(got, "for alice") || !strings.Contains(got, "for bob") {
		t.Errorf("bob's stream:\n%s", got)
	}
}
