package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/upstream/demo"
)

// Test-only operations, written beside copies of the demo operations the
// auth tests use (the repository's folder stays as users see it).
var authTestOps = map[string]string{
	"auth/Guarded.graphql":        "subscription Guarded @requireAuthentication {\n  countdown(from: 0, interval: 1)\n}\n",
	"auth/AdminCountdown.graphql": "subscription AdminCountdown @rbac(requireMatchAny: [admin]) {\n  countdown(from: 0, interval: 1)\n}\n",
	"auth/AdminTime.graphql":      "query AdminTime @rbac(requireMatchAll: [admin]) {\n  serverTime\n}\n",
	"auth/RoomMessages.graphql":   "subscription RoomMessages($room: String!) @requireAuthentication {\n  messageCreated(room: $room) { id content }\n}\n",
	"auth/MyRoom.graphql":         "subscription MyRoom($room: String! @fromClaim(name: SUB)) {\n  messageCreated(room: $room) { id content }\n}\n",
	"auth/TenantMessages.graphql": "query TenantMessages($room: String! @fromClaim(name: \"org.tenant\")) {\n  messages(room: $room) { content }\n}\n",
}

// authOpsDir is a temporary operations folder: the demo operations below
// plus authTestOps.
func authOpsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	files := maps.Clone(authTestOps)
	for _, name := range []string{"chat/MyMessages.graphql", "chat/PostMessage.graphql", "chat/Messages.graphql", "chat/MessageCreated.graphql", "stocks/SetPrice.graphql"} {
		b, err := os.ReadFile(filepath.Join(opsDir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// newAuthGateway is newGateway with extra ${NAME} values and Options. The
// operations folder is authOpsDir unless vars names OPS.
func newAuthGateway(t testing.TB, d *demo.Server, cfgJSON string, vars map[string]string, opt Options) *testGateway {
	t.Helper()
	all := map[string]string{"OPS": authOpsDir(t)}
	if d != nil {
		all["UPSTREAM"] = d.URL()
	}
	maps.Copy(all, vars)
	cfg, err := config.Parse([]byte(cfgJSON), func(k string) (string, bool) { v, ok := all[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if served, failed := g.OperationCount(); failed != 0 || served == 0 {
		t.Fatalf("operations: %d served, %d failed", served, failed)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.BeginShutdown()
		srv.Close()
		_ = g.Close()
		http.DefaultClient.CloseIdleConnections()
		if t.Failed() && testing.Verbose() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return &testGateway{Gateway: g, URL: srv.URL, logs: logs}
}

// The identity provider of the JWKS tests.
const (
	testIssuer   = "https://idp.test"
	testAudience = "fireboom-test"
)

var testRSAKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// rotatingJWKS is a real JWKS endpoint whose key set a test replaces.
type rotatingJWKS struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []jwkset.JWKMarshal
	fetches atomic.Int32
}

func newRotatingJWKS(t testing.TB) *rotatingJWKS {
	s := &rotatingJWKS{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		set := jwkset.JWKSMarshal{Keys: s.keys}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

// publish replaces the served keys by the public halves of keys, by kid.
func (s *rotatingJWKS) publish(t testing.TB, keys map[string]*rsa.PrivateKey) {
	t.Helper()
	var set []jwkset.JWKMarshal
	for kid, k := range keys {
		j, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set = append(set, j.Marshal())
	}
	s.mu.Lock()
	s.keys = set
	s.mu.Unlock()
}

// idpClaims are valid claims for the test issuer, overridden by kv pairs
// (a nil value deletes the claim).
func idpClaims(kv ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": "alice", "iss": testIssuer, "aud": testAudience, "roles": []string{"admin"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// signJWT signs claims with method and key, naming kid ("" = no kid).
func signJWT(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenSource is one of the three ways a client sends a token.
type tokenSource string

const (
	viaHeader tokenSource = "header"
	viaCookie tokenSource = "cookie"
	viaQuery  tokenSource = "query"
)

// testCookie is the auth.cookie of the auth tests.
const testCookie = "fb_token"

// authRequest sends method path (with body for POST) carrying tok via src;
// tok "" sends none.
func authRequest(t testing.TB, base, method, path, body string, src tokenSource, tok string) *http.Response {
	t.Helper()
	if tok != "" && src == viaQuery {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "access_token=" + url.QueryEscape(tok)
	}
	var rd io.Reader
	if method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		switch src {
		case viaHeader:
			req.Header.Set("Authorization", "Bearer "+tok)
		case viaCookie:
			req.AddCookie(&http.Cookie{Name: testCookie, Value: tok})
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// authTarget is one kind of endpoint in one stream mode.
type authTarget struct {
	name, method, path, body string
	ok                       string // a text in the body of a successful answer
}

// authTargets: a query, a mutation and a subscription in every stream mode.
var authTargets = []authTarget{
	{"query", "GET", "/operations/chat/MyMessages", "", `{"data":{"myMessages":[]}}`},
	{"mutation", "POST", "/operations/stocks/SetPrice", `{"symbol":"AUTH","price":1}`, `"setPrice":{"symbol":"AUTH"`},
	{"sse", "GET", "/operations/auth/Guarded?wg_sse=true", "", "data: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n"},
	{"json stream", "GET", "/operations/auth/Guarded", "", "{\"data\":{\"countdown\":0}}\n\n"},
	{"once", "GET", "/operations/auth/Guarded?wg_subscribe_once=true", "", `{"data":{"countdown":0}}`},
	{"once sse", "GET", "/operations/auth/Guarded?wg_subscribe_once=true&wg_sse=true", "", "data: {\"data\":{\"countdown\":0}}\n\nevent: done\ndata: done\n\n"},
}

// expectRejected checks a plain error answer: status, WWW-Authenticate
// (exact; "" = none), the JSON body {"code","message"} and nothing else,
// so not a single stream byte was written.
func expectRejected(t testing.TB, resp *http.Response, status int, challenge, code string) {
	t.Helper()
	body := readAll(t, resp)
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d (body %q)", resp.StatusCode, status, body)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate %q, want %q", got, challenge)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q: a stream was started", ct)
	}
	var e map[string]string
	dec := json.NewDecoder(strings.NewReader(body))
	if err := dec.Decode(&e); err != nil || dec.More() || e["code"] != code || e["message"] == "" || len(e) != 2 {
		t.Errorf("body %q, want exactly {\"code\":%q,\"message\":...}", body, code)
	}
}

// expectServed checks a successful answer.
func expectServed(t testing.TB, resp *http.Response, want string) {
	t.Helper()
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("status %d body %q, want 200 with %q", resp.StatusCode, body, want)
	}
}

func challengeFor(description string) string {
	return `Bearer error="invalid_token", error_description="` + description + `"`
}

// Every token case against a query, a mutation and a subscription in each
// stream mode, with the token in the header, the cookie and the query
// parameter, verified against a real JWKS endpoint that rotates its key:
// 401 with the right challenge and no stream byte, and nothing reaches the
// upstream.
func TestTokenCasesEveryEndpointAndMode(t *testing.T) {
	keys := testRSAKeys()
	oldKey, newKey := keys[0], keys[1]
	jwks := newRotatingJWKS(t)
	jwks.publish(t, map[string]*rsa.PrivateKey{"k1": oldKey})
	d := startDemo(t, demo.Options{})
	// The unknown-kid refetch limit (30s by default) is lifted so that the
	// rotation below is seen at once; its rate limiting is tested in auth.
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "forwardHeaders": ["Authorization"]},
		"auth": {"jwt": {"jwksUrl": "${JWKS}", "issuer": "`+testIssuer+`", "audience": "`+testAudience+`", "leeway": "1s"}, "cookie": "`+testCookie+`"},
		"subscriptions": {"heartbeat": "1h"}}`,
		map[string]string{"JWKS": jwks.URL}, Options{AuthOptions: []auth.Option{auth.WithUnknownKIDInterval(time.Nanosecond)}})

	pubPEM, err := x509.MarshalPKIXPublicKey(&oldKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	confusionKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubPEM})
	cases := []struct {
		name, token, description string
	}{
		{"malformed", "not-a-jwt", "token is malformed"},
		{"expired", signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims("exp", time.Now().Add(-time.Hour).Unix())), "token expired"},
		{"not yet valid", signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims("nbf", time.Now().Add(time.Hour).Unix())), "token is not valid yet"},
		{"bad signature", signJWT(t, jwt.SigningMethodRS256, newKey, "k1", idpClaims()), "token signature is invalid"},
		{"alg none", signJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", idpClaims()), "token algorithm is not accepted"},
		{"HS256 keyed with the RSA public key", signJWT(t, jwt.SigningMethodHS256, confusionKey, "k1", idpClaims()), "token algorithm is not accepted"},
		{"wrong iss", signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims("iss", "https://evil.test")), "token issuer is not accepted"},
		{"wrong aud", signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims("aud", "someone-else")), "token audience is not accepted"},
		{"no exp", signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims("exp", nil)), "token has no expiry"},
		{"unknown kid before rotation", signJWT(t, jwt.SigningMethodRS256, newKey, "k2", idpClaims()), "token signing key is unknown"},
	}
	sources := []tokenSource{viaHeader, viaCookie, viaQuery}
	before := d.Stats()
	for _, tg := range authTargets {
		t.Run("missing/"+tg.name, func(t *testing.T) {
			expectRejected(t, authRequest(t, g.URL, tg.method, tg.path, tg.body, viaHeader, ""), 401, `Bearer realm="fireboom"`, "Unauthorized")
		})
	}
	for _, src := range sources {
		for _, tc := range cases {
			for _, tg := range authTargets {
				t.Run(string(src)+"/"+tc.name+"/"+tg.name, func(t *testing.T) {
					expectRejected(t, authRequest(t, g.URL, tg.method, tg.path, tg.body, src, tc.token), 401, challengeFor(tc.description), "Unauthorized")
				})
			}
		}
	}
	after := d.Stats()
	if after.SubscriptionsStarted != before.SubscriptionsStarted || after.WebSocketsTotal != before.WebSocketsTotal ||
		after.Fields["myMessages"] != 0 || after.Fields["setPrice"] != 0 {
		t.Errorf("rejected requests reached the upstream: before %+v, after %+v", before, after)
	}

	// The old key works everywhere, from every source; roles decide 403.
	valid := signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims())
	user := signJWT(t, jwt.SigningMethodRS256, oldKey, "k1", idpClaims("roles", []string{"user"}))
	for _, src := range sources {
		for _, tg := range authTargets {
			t.Run(string(src)+"/valid/"+tg.name, func(t *testing.T) {
				expectServed(t, authRequest(t, g.URL, tg.method, tg.path, tg.body, src, valid), tg.ok)
			})
		}
		for _, path := range []string{"/operations/auth/AdminTime", "/operations/auth/AdminCountdown?wg_sse=true",
			"/operations/auth/AdminCountdown", "/operations/auth/AdminCountdown?wg_subscribe_once=true"} {
			t.Run(string(src)+"/roles not enough/"+path, func(t *testing.T) {
				expectRejected(t, authRequest(t, g.URL, "GET", path, "", src, user), 403, "", "Forbidden")
			})
		}
		t.Run(string(src)+"/roles not enough/mutation", func(t *testing.T) {
			expectRejected(t, authRequest(t, g.URL, "POST", "/operations/stocks/SetPrice", `{"symbol":"A","price":1}`, src, user), 403, "", "Forbidden")
		})
	}

	// The identity provider rotates to k2 and retires k1: the first k2
	// token refetches the set and passes; k1 is now the unknown kid.
	fetches := jwks.fetches.Load()
	jwks.publish(t, map[string]*rsa.PrivateKey{"k2": newKey})
	rotated := signJWT(t, jwt.SigningMethodRS256, newKey, "k2", idpClaims())
	for _, src := range sources {
		for _, tg := range authTargets {
			t.Run(string(src)+"/new key after rotation/"+tg.name, func(t *testing.T) {
				expectServed(t, authRequest(t, g.URL, tg.method, tg.path, tg.body, src, rotated), tg.ok)
			})
			t.Run(string(src)+"/unknown kid after rotation/"+tg.name, func(t *testing.T) {
				expectRejected(t, authRequest(t, g.URL, tg.method, tg.path, tg.body, src, valid), 401, challengeFor("token signing key is unknown"), "Unauthorized")
			})
		}
	}
	if jwks.fetches.Load() == fetches {
		t.Error("the rotation was accepted without fetching the JWKS again")
	}
}

// A required @fromClaim claim that the token lacks is a 401 with
// invalid_token: the token is valid but carries no usable identity for
// this operation. Claims are injected from SUB and from a dotted path.
func TestFromClaim(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}}}`, nil, Options{})
	mint := func(sub string, claims map[string]any) string {
		tok, err := auth.Mint(auth.Config{Secret: "s3cret"}, sub, nil, claims, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, m := range []string{`{"room":"acme","content":"for alice","author":"alice"}`, `{"room":"acme","content":"for bob","author":"bob"}`} {
		resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(m))
		if err != nil {
			t.Fatal(err)
		}
		expectServed(t, resp, "postMessage")
	}
	expectServed(t, authRequest(t, g.URL, "GET", "/operations/chat/MyMessages", "", viaHeader, mint("alice", nil)),
		`{"data":{"myMessages":[{"id":"1","room":"acme","content":"for alice"}]}}`)
	expectServed(t, authRequest(t, g.URL, "GET", "/operations/auth/TenantMessages", "", viaHeader, mint("carol", map[string]any{"org": map[string]any{"tenant": "acme"}})),
		`{"data":{"messages":[{"content":"for alice"},{"content":"for bob"}]}}`)
	missing := challengeFor("the token lacks a claim this operation needs")
	expectRejected(t, authRequest(t, g.URL, "GET", "/operations/chat/MyMessages", "", viaHeader, mint("", nil)), 401, missing, "Unauthorized")
	expectRejected(t, authRequest(t, g.URL, "GET", "/operations/auth/TenantMessages", "", viaHeader, mint("carol", nil)), 401, missing, "Unauthorized")
	expectRejected(t, authRequest(t, g.URL, "GET", "/operations/auth/TenantMessages", "", viaHeader,
		mint("carol", map[string]any{"org": map[string]any{"tenant": 7}})), 401, missing, "Unauthorized")
	expectRejected(t, authRequest(t, g.URL, "GET", "/operations/auth/MyRoom?wg_sse=true", "", viaQuery, mint("", nil)), 401, missing, "Unauthorized")
}

// auth.queryParam: renamed, the new name carries the token and the old one
// is an unknown variable; "" turns it off, so access_token is an unknown
// variable (400) on a public operation and no token (401) on a guarded one.
func TestQueryParamSetting(t *testing.T) {
	d := startDemo(t, demo.Options{})
	tok, err := auth.Mint(auth.Config{Secret: "s3cret"}, "alice", nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	unknown := func(t *testing.T, resp *http.Response, param string) {
		t.Helper()
		e := decodeError(t, resp)
		if resp.StatusCode != 400 || e.Code != "InputValidationError" || len(e.Errors) != 1 || e.Errors[0].PropertyPath != "/"+param {
			t.Errorf("status %d body %+v, want 400 for /%s", resp.StatusCode, e, param)
		}
	}
	t.Run("renamed", func(t *testing.T) {
		g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}, "queryParam": "token"}}`, nil, Options{})
		expectServed(t, get(t, g.URL+"/operations/chat/MyMessages?token="+tok), `{"data":{"myMessages":[]}}`)
		expectServed(t, get(t, g.URL+"/operations/auth/Guarded?wg_sse=true&token="+tok), "event: done")
		unknown(t, get(t, g.URL+"/operations/chat/Messages?room=a&access_token="+tok), "access_token")
	})
	t.Run("off", func(t *testing.T) {
		g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}, "queryParam": ""}}`, nil, Options{})
		unknown(t, get(t, g.URL+"/operations/chat/Messages?room=a&access_token="+tok), "access_token")
		expectRejected(t, get(t, g.URL+"/operations/chat/MyMessages?access_token="+tok), 401, `Bearer realm="fireboom"`, "Unauthorized")
		expectRejected(t, get(t, g.URL+"/operations/auth/Guarded?wg_sse=true&access_token="+tok), 401, `Bearer realm="fireboom"`, "Unauthorized")
		expectServed(t, authRequest(t, g.URL, "GET", "/operations/chat/MyMessages", "", viaHeader, tok), `{"data":{"myMessages":[]}}`)
	})
}

// A browser attaches cookies to a cross-site form post (text/plain can
// carry a JSON-looking body), so a POST authenticated by cookie must be
// application/json, which needs a CORS preflight. Header tokens cannot be
// sent cross-site without one, so they are not restricted.
func TestCookiePostNeedsJSON(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}, "cookie": "`+testCookie+`"}}`, nil, Options{})
	tok := mintTTL(t, "alice", time.Hour)
	forged := `{"room":"csrf","content":"=x"}` // what <form enctype="text/plain"> can send
	for _, tc := range []struct {
		contentType string
		src         tokenSource
		status      int
	}{
		{"text/plain", viaCookie, 403},
		{"application/x-www-form-urlencoded", viaCookie, 403},
		{"", viaCookie, 403},
		{"application/json; charset=utf-8", viaCookie, 200},
		{"text/plain", viaHeader, 200},
	} {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/operations/chat/PostMessage", strings.NewReader(forged))
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		if tc.src == viaCookie {
			req.AddCookie(&http.Cookie{Name: testCookie, Value: tok})
		} else {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if tc.status == 403 {
			expectRejected(t, resp, 403, "", "Forbidden")
		} else {
			expectServed(t, resp, `"postMessage"`)
		}
	}
	if n := d.Stats().Fields["postMessage"]; n != 2 {
		t.Errorf("the upstream ran %d mutations, want 2", n)
	}
}
