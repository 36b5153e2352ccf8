package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestAuthenticateHMAC(t *testing.T) {
	t.Parallel()
	// The parallel subtests may run seconds after now on a loaded machine:
	// validate at now, so that "within leeway" stays within it.
	now := time.Now()
	a := newAuth(t, Config{Secret: testSecret, Issuer: "https://issuer.test", Audience: "fireboom"}, WithClock(func() time.Time { return now }))
	ok := func(kv ...any) jwt.MapClaims {
		return claims(append([]any{"iss", "https://issuer.test", "aud", "fireboom"}, kv...)...)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, ok()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := hs(t, "HS256", []byte(testSecret), ok())
	parts := strings.Split(valid, ".")
	crit := jwt.NewWithClaims(jwt.SigningMethodHS256, ok())
	crit.Header["crit"] = []string{"exp"}
	critTok, _ := crit.SignedString([]byte(testSecret))
	unknownAlg := "eyJhbGciOiJYWDI1NiIsInR5cCI6IkpXVCJ9." + parts[1] + "." + parts[2] // {"alg":"XX256","typ":"JWT"}
	noAlg := "eyJ0eXAiOiJKV1QifQ." + parts[1] + "." + parts[2]                        // {"typ":"JWT"}

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"valid HS256", valid, ""},
		{"valid HS384", hs(t, "HS384", []byte(testSecret), ok()), ""},
		{"valid HS512", hs(t, "HS512", []byte(testSecret), ok()), ""},
		{"aud array containing ours", hs(t, "HS256", []byte(testSecret), ok("aud", []string{"other", "fireboom"})), ""},
		{"expired within leeway", hs(t, "HS256", []byte(testSecret), ok("exp", now.Add(-2*time.Second).Unix())), ""},
		{"not garbage but one segment", "abc", ReasonMalformed},
		{"three garbage segments", "a.b.c", ReasonMalformed},
		{"bad characters", "a.b.c d", ReasonMalformed},
		{"too large", strings.Repeat("a", MaxTokenBytes+1), ReasonMalformed},
		{"payload tampered", parts[0] + "." + strings.Split(hs(t, "HS256", []byte(testSecret), ok("sub", "admin")), ".")[1] + "." + parts[2], ReasonBadSignature},
		{"other secret", hs(t, "HS256", []byte("another-secret-0123456789abcdef"), ok()), ReasonBadSignature},
		{"expired", hs(t, "HS256", []byte(testSecret), ok("exp", now.Add(-time.Minute).Unix())), ReasonExpired},
		{"not yet valid", hs(t, "HS256", []byte(testSecret), ok("nbf", now.Add(time.Minute).Unix())), ReasonNotYetValid},
		{"nbf within leeway", hs(t, "HS256", []byte(testSecret), ok("nbf", now.Add(2*time.Second).Unix())), ""},
		{"missing exp", hs(t, "HS256", []byte(testSecret), ok("exp", nil)), ReasonMissingExp},
		{"exp of wrong type", hs(t, "HS256", []byte(testSecret), ok("exp", "tomorrow")), ReasonInvalidClaims},
		{"wrong issuer", hs(t, "HS256", []byte(testSecret), ok("iss", "https://evil.test")), ReasonBadIssuer},
		{"missing issuer", hs(t, "HS256", []byte(testSecret), ok("iss", nil)), ReasonBadIssuer},
		{"wrong audience", hs(t, "HS256", []byte(testSecret), ok("aud", "someone-else")), ReasonBadAudience},
		{"missing audience", hs(t, "HS256", []byte(testSecret), ok("aud", nil)), ReasonBadAudience},
		{"alg none", none, ReasonBadAlgorithm},
		{"alg none without signature dot", strings.TrimSuffix(none, "."), ReasonMalformed},
		{"unknown alg", unknownAlg, ReasonBadAlgorithm},
		{"no alg", noAlg, ReasonMalformed},
		{"RS256 without jwks", newSigner("rsa1", "k1", "RS256").sign(t, ok()), ReasonBadAlgorithm},
		{"crit header", critTok, ReasonMalformed},
		{"expired with bad signature reports signature", hs(t, "HS256", []byte("x"), ok("exp", now.Add(-time.Hour).Unix())), ReasonBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, err := a.Authenticate(bearer(tc.token))
			if got := reasonOf(t, err); got != tc.reason {
				t.Fatalf("reason = %q, want %q (err %v)", got, tc.reason, err)
			}
			if tc.reason != "" {
				if id != nil {
					t.Fatal("identity returned with an error")
				}
				if !errors.Is(err, ErrInvalidToken) {
					t.Fatal("error does not wrap ErrInvalidToken")
				}
				return
			}
			if id.Subject != "user-1" || id.Token != tc.token || id.Source != SourceHeader || id.ExpiresAt.IsZero() {
				t.Fatalf("identity = %v token match %v", id, id.Token == tc.token)
			}
		})
	}
}

func TestNoToken(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {Secret: testSecret, Cookie: "fb_token", QueryParam: "access_token"}} {
		a := newAuth(t, cfg)
		r := httptest.NewRequest(http.MethodGet, "/operations/x?other=1", nil)
		r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		id, err := a.Authenticate(r)
		if id != nil || err != nil {
			t.Fatalf("cfg %+v: got (%v, %v), want (nil, nil)", cfg.Cookie, id, err)
		}
	}
}

// Without keys no token is checked (CONTRACT §11, token pass-through):
// Authenticate sees every request as anonymous, even one whose token no key
// could ever verify; Unchecked finds the token for the upstream; Verify,
// asked directly, still says it cannot.
func TestNotConfiguredPassesTokensThrough(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{QueryParam: "access_token", Cookie: "tok"})
	if a.Configured() {
		t.Fatal("Configured() = true without secret or jwks")
	}
	tok := hs(t, "HS256", []byte(testSecret), claims())
	for name, r := range map[string]*http.Request{
		"valid elsewhere": bearer(tok),
		"not a JWT":       bearer("not-a-jwt"),
		"malformed":       bearer("a b c"),
	} {
		if id, err := a.Authenticate(r); id != nil || err != nil {
			t.Errorf("%s: Authenticate = (%v, %v), want (nil, nil)", name, id, err)
		}
	}
	cookie := httptest.NewRequest(http.MethodGet, "/", nil)
	cookie.AddCookie(&http.Cookie{Name: "tok", Value: tok})
	for name, tc := range map[string]struct {
		r   *http.Request
		tok string
		src Source
	}{
		"header": {bearer(tok), tok, SourceHeader},
		"cookie": {cookie, tok, SourceCookie},
		"query":  {httptest.NewRequest(http.MethodGet, "/?access_token="+tok, nil), tok, SourceQuery},
		"none":   {httptest.NewRequest(http.MethodGet, "/", nil), "", SourceNone},
		"odd":    {httptest.NewRequest(http.MethodGet, "/?access_token=%22x%22", nil), "", SourceNone},
	} {
		if got, src := a.Unchecked(tc.r); got != tc.tok || src != tc.src {
			t.Errorf("%s: Unchecked = (%q, %v), want (%q, %v)", name, got, src, tc.tok, tc.src)
		}
	}
	if _, err := a.Verify(context.Background(), tok); reasonOf(t, err) != ReasonNotConfigured {
		t.Fatalf("Verify: %v, want reason %q", err, ReasonNotConfigured)
	}
}

func TestLeewayConfig(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tok := hs(t, "HS256", []byte(testSecret), claims("exp", now.Add(-20*time.Second).Unix()))
	for _, tc := range []struct {
		leeway time.Duration
		reason string
	}{{0, ReasonExpired}, {-1, ReasonExpired}, {time.Minute, ""}} {
		a := newAuth(t, Config{Secret: testSecret, Leeway: tc.leeway})
		_, err := a.Authenticate(bearer(tok))
		if got := reasonOf(t, err); got != tc.reason {
			t.Errorf("leeway %v: reason %q, want %q", tc.leeway, got, tc.reason)
		}
	}
	// A negative leeway means none: a token one second past exp fails.
	fixed := time.Unix(1_700_000_000, 0)
	tok = hs(t, "HS256", []byte(testSecret), jwt.MapClaims{"exp": fixed.Unix()})
	strict := newAuth(t, Config{Secret: testSecret, Leeway: -1}, WithClock(func() time.Time { return fixed.Add(time.Second) }))
	if _, err := strict.Authenticate(bearer(tok)); reasonOf(t, err) != ReasonExpired {
		t.Fatalf("no-leeway: %v", err)
	}
	lenient := newAuth(t, Config{Secret: testSecret}, WithClock(func() time.Time { return fixed.Add(time.Second) }))
	if _, err := lenient.Authenticate(bearer(tok)); err != nil {
		t.Fatalf("default leeway: %v", err)
	}
}

func TestAlgorithmsRestriction(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret, Algorithms: []string{"HS512"}})
	if _, err := a.Authenticate(bearer(hs(t, "HS256", []byte(testSecret), claims()))); reasonOf(t, err) != ReasonBadAlgorithm {
		t.Fatalf("HS256 with only HS512 allowed: %v", err)
	}
	if _, err := a.Authenticate(bearer(hs(t, "HS512", []byte(testSecret), claims()))); err != nil {
		t.Fatalf("HS512: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{
		"rolesClaim empty segment": {Secret: "s", RolesClaim: "realm_access..roles"},
		"jwks not a url":           {JWKSURL: "not a url"},
		"jwks relative":            {JWKSURL: "/jwks.json"},
		"jwks ftp":                 {JWKSURL: "ftp://idp/jwks"},
		"RS256 without jwks":       {Secret: "s", Algorithms: []string{"RS256"}},
		"HS256 without secret":     {JWKSURL: "http://127.0.0.1:1/jwks", Algorithms: []string{"HS256"}},
		"alg none":                 {Secret: "s", Algorithms: []string{"none"}},
		"empty algorithms":         {Secret: "s", Algorithms: []string{}},
	} {
		a, err := New(t.Context(), cfg)
		if !errors.Is(err, ErrInvalidConfig) {
			a.Close()
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := New(t.Context(), Config{}, WithRefreshInterval(0)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad option: %v", err)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		rolesClaim string
		claims     jwt.MapClaims
		want       []string
	}{
		{"array", "", claims("roles", []any{"admin", "user", "admin", 7, ""}), []string{"admin", "user"}},
		{"space separated string", "", claims("roles", "admin  user\tops"), []string{"admin", "user", "ops"}},
		{"single string", "", claims("roles", "admin"), []string{"admin"}},
		{"keycloak nested", "realm_access.roles", claims("realm_access", map[string]any{"roles": []string{"offline_access", "admin"}}), []string{"offline_access", "admin"}},
		{"key containing dots", "https://example.com/roles", claims("https://example.com/roles", []string{"a"}), []string{"a"}},
		{"wrong type", "", claims("roles", 42), []string{}},
		{"missing", "", claims(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := newAuth(t, Config{Secret: testSecret, RolesClaim: tc.rolesClaim})
			id, err := a.Authenticate(bearer(hs(t, "HS256", []byte(testSecret), tc.claims)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(id.Roles, tc.want) || (tc.want == nil) != (id.Roles == nil) {
				t.Fatalf("roles = %#v, want %#v", id.Roles, tc.want)
			}
			got, ok := id.Claim("ROLES")
			if !ok || !slices.Equal(got.([]string), tc.want) {
				t.Fatalf("Claim(ROLES) = %v %v", got, ok)
			}
		})
	}
}

func TestClaim(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret})
	tok := hs(t, "HS256", []byte(testSecret), claims(
		"email", "u@example.com",
		"name", "Ursula",
		"user_id", 9007199254740993, // 2^53+1: must keep every digit
		"https://example.com/claims", map[string]any{"tenant": "acme", "a.b": "dotted"},
		"a.b", "flat",
		"a", map[string]any{"b": "nested", "c": map[string]any{"d": true}},
		"groups", []string{"g0", "g1"},
	))
	id, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want any
		ok   bool
	}{
		{"SUB", "user-1", true},
		{"sub", "user-1", true},
		{"EMAIL", "u@example.com", true},
		{"NAME", "Ursula", true},
		{"user_id", "9007199254740993", true},
		{"https://example.com/claims.tenant", "acme", true},
		{"https://example.com/claims.a.b", "dotted", true},
		{"a.b", "flat", true}, // the full key wins over the nested path
		{"a.c.d", true, true},
		{"groups.1", "g1", true},
		{"groups.2", nil, false},
		{"groups.01", nil, false},
		{"groups.-1", nil, false},
		{"a.x", nil, false},
		{"missing", nil, false},
		{"", nil, false},
		{".", nil, false},
	}
	for _, tc := range tests {
		got, ok := id.Claim(tc.path)
		if ok != tc.ok {
			t.Errorf("Claim(%q) ok = %v, want %v", tc.path, ok, tc.ok)
			continue
		}
		if ok {
			if s, isStringer := got.(interface{ String() string }); isStringer {
				got = s.String() // json.Number
			}
			if got != tc.want {
				t.Errorf("Claim(%q) = %#v, want %#v", tc.path, got, tc.want)
			}
		}
	}
	var nilID *Identity
	if _, ok := nilID.Claim("sub"); ok {
		t.Error("nil identity has claims")
	}
}
