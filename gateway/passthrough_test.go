package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fireboom/fireboom/upstream/demo"
)

// CONTRACT §11, token pass-through: without auth.jwt an operation that
// needs a verified token is a load error naming the directive (the
// repository's own chat/MyMessages and stocks/SetPrice here), logged as
// file:line:col: message, and answers 404; the rest is served.
func TestPassThroughRefusesOperationsNeedingTokens(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	if served, failed := g.OperationCount(); served != 7 || failed != 2 {
		t.Errorf("%d served, %d failed; want 7 and 2", served, failed)
	}
	const why = " needs a verified token, but auth.jwt has no secret or jwksUrl: without one the gateway checks no token and only passes tokens upstream"
	for _, line := range []string{
		filepath.Join(opsDir(t), "chat", "MyMessages.graphql") + ":2:36: @fromClaim" + why,
		filepath.Join(opsDir(t), "stocks", "SetPrice.graphql") + ":2:54: @rbac" + why,
	} {
		if !strings.Contains(g.logs.String(), `level=ERROR msg="operation not served" problem="`+line+`"`) {
			t.Errorf("the logs lack %q:\n%s", line, g.logs.String())
		}
	}
	for _, path := range []string{"/operations/chat/MyMessages", "/operations/stocks/SetPrice"} {
		resp := get(t, g.URL+path)
		if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"code":"NotFound"`) {
			t.Errorf("%s: %d %s, want 404 NotFound", path, resp.StatusCode, body)
		}
	}
	if index := readAll(t, get(t, g.URL+"/operations")); strings.Contains(index, "MyMessages") || strings.Contains(index, "SetPrice") {
		t.Errorf("the index lists an operation that did not load: %s", index)
	}
}

// The upstream accepts one opaque token only, in connection_init: it, not
// the gateway, decides.
const passThroughToken = "opaque-token-42"

// passThroughConfig forwards Authorization and X-Tenant and has a token
// cookie, but no auth.jwt.
const passThroughConfig = `{"operationsDir": "${OPS}",
	"upstream": {"url": "${UPSTREAM}", "forwardHeaders": ["Authorization", "X-Tenant"]},
	"auth": {"cookie": "` + testCookie + `"}, "subscriptions": {"heartbeat": "1h"}}`

// CONTRACT §11: with no auth.jwt no token is checked. What the client
// sends in a forwarded header reaches the upstream unchanged (an opaque
// token, an expired JWT, another scheme), on the HTTP request, the
// WebSocket upgrade and in connection_init; a token from the cookie or the
// query parameter goes as Authorization: Bearer, as it does when tokens are
// verified. The upstream decides: it refuses a subscription whose token it
// does not accept, and the gateway answers 502, never 401.
func TestTokenPassThroughReachesUpstream(t *testing.T) {
	rec := &requestRecorder{}
	d := startDemo(t, demo.Options{OnRequest: rec.record, InitFunc: func(p map[string]any) error {
		if p["authToken"] != passThroughToken {
			return errors.New("token refused by the upstream")
		}
		return nil
	}})
	g := newGateway(t, d, passThroughConfig)
	expired := signJWT(t, jwt.SigningMethodHS256, []byte("any key"), "", jwt.MapClaims{"sub": "x", "exp": time.Now().Add(-time.Hour).Unix()})
	for _, tc := range []struct {
		name, header, cookie, query string
		upstream                    string // the Authorization the upstream sees
		initToken                   string // the authToken of connection_init
		stream                      int    // status of the subscription
	}{
		{"opaque bearer", "Bearer " + passThroughToken, "", "", "Bearer " + passThroughToken, passThroughToken, 200},
		{"odd spacing kept", "bearer   " + passThroughToken, "", "", "bearer   " + passThroughToken, passThroughToken, 200},
		{"expired JWT", "Bearer " + expired, "", "", "Bearer " + expired, expired, 502},
		{"other scheme", "Basic dXNlcjpwYXNz", "", "", "Basic dXNlcjpwYXNz", "", 502},
		// A header the client sent is never replaced by a cookie's token.
		{"other scheme beside a cookie", "Basic dXNlcjpwYXNz", passThroughToken, "", "Basic dXNlcjpwYXNz", "", 502},
		{"cookie", "", passThroughToken, "", "Bearer " + passThroughToken, passThroughToken, 200},
		{"query parameter", "", "", passThroughToken, "Bearer " + passThroughToken, passThroughToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tenant := "t-" + strings.ReplaceAll(tc.name, " ", "-") // a connection of its own
			send := func(path string) *http.Response {
				if tc.query != "" {
					path += "&access_token=" + tc.query
				}
				req, _ := http.NewRequest(http.MethodGet, g.URL+path, nil)
				req.Header.Set("X-Tenant", tenant)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				if tc.cookie != "" {
					req.AddCookie(&http.Cookie{Name: testCookie, Value: tc.cookie})
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			check := func(r seenRequest) {
				t.Helper()
				if got := r.header.Values("Authorization"); len(got) != 1 || got[0] != tc.upstream {
					t.Errorf("upstream Authorization %q, want %q", got, tc.upstream)
				}
				if r.header.Get("X-Tenant") != tenant || r.header.Get("Cookie") != "" || r.query != "" {
					t.Errorf("upstream X-Tenant %q, Cookie %q, query %q", r.header.Get("X-Tenant"), r.header.Get("Cookie"), r.query)
				}
			}
			expectServed(t, send("/operations/chat/Messages?room=pass"), `"messages"`)
			check(rec.last(t, false))

			resp := send("/operations/Countdown?from=0&interval=1&wg_sse=true")
			body := readAll(t, resp)
			check(rec.last(t, true))
			switch tc.stream {
			case 200:
				if resp.StatusCode != 200 || !strings.HasSuffix(body, "data: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n") {
					t.Errorf("stream: %d %q", resp.StatusCode, body)
				}
			default:
				if resp.StatusCode != tc.stream || !strings.Contains(body, `"code":"UpstreamUnavailable"`) {
					t.Errorf("stream refused by the upstream: %d %s, want %d UpstreamUnavailable", resp.StatusCode, body, tc.stream)
				}
			}
			inits := d.Stats().InitPayloads
			want := map[string]any{"headers": map[string]any{"Authorization": tc.upstream, "X-Tenant": tenant}}
			if tc.initToken != "" {
				want["authToken"] = tc.initToken
			}
			if got := inits[len(inits)-1]; !reflect.DeepEqual(got, want) {
				t.Errorf("connection_init payload %v, want %v", got, want)
			}
		})
	}
	if strings.Contains(g.logs.String(), passThroughToken) {
		t.Errorf("a token reached the log:\n%s", g.logs.String())
	}
}

// A token passed through from the cookie is guarded against cross-site
// form posts as a verified one is: a cookie-carrying POST must be JSON.
func TestPassThroughCookiePostMustBeJSON(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, passThroughConfig)
	post := func(contentType string) *http.Response {
		body, _ := json.Marshal(map[string]string{"room": "csrf", "content": "hi"})
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/operations/chat/PostMessage", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", contentType)
		req.AddCookie(&http.Cookie{Name: testCookie, Value: passThroughToken})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("text/plain")
	if body := readAll(t, resp); resp.StatusCode != http.StatusForbidden ||
		body != `{"code":"Forbidden","message":"a POST authenticated by cookie must send Content-Type: application/json"}` {
		t.Errorf("form-like post: %d %s", resp.StatusCode, body)
	}
	expectServed(t, post("application/json"), `"postMessage"`)
}
