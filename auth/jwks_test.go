package auth

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

func TestJWKSAlgorithms(t *testing.T) {
	t.Parallel()
	rs := newSigner("rsa1", "rsa1", "RS256")
	ps := newSigner("rsa1", "rsa1", "PS384")
	es256 := newSigner("p256", "p256", "ES256")
	es384 := newSigner("p384", "p384", "ES384")
	es512 := newSigner("p521", "p521", "ES512")
	ed := newSigner("ed", "ed", "EdDSA")
	srv := newJWKSServer(t, rs.jwk(t), es256.jwk(t), es384.jwk(t), es512.jwk(t), ed.jwk(t))
	a := newAuth(t, Config{JWKSURL: srv.URL, Issuer: "https://idp.test"})
	c := func(kv ...any) jwt.MapClaims { return claims(append([]any{"iss", "https://idp.test"}, kv...)...) }

	wrongCurve := es256
	wrongCurve.kid = "p384" // ES256 signature, kid of the P-384 key
	rsOnEC := rs
	rsOnEC.kid = "p256"
	noKID := es384
	noKID.kid = ""
	unknown := newSigner("rsa2", "rsa2", "RS256")
	// Key confusion: HS256 keyed with the RSA public key's PEM, naming the RSA kid.
	confusion := jwt.NewWithClaims(jwt.SigningMethodHS256, c())
	confusion.Header["kid"] = "rsa1"
	confusionTok, err := confusion.SignedString(publicPEM(t, rs.public()))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"RS256", rs.sign(t, c()), ""},
		{"PS384", ps.sign(t, c()), ""},
		{"ES256", es256.sign(t, c()), ""},
		{"ES384", es384.sign(t, c()), ""},
		{"ES512", es512.sign(t, c()), ""},
		{"EdDSA", ed.sign(t, c()), ""},
		{"no kid tries fitting keys", noKID.sign(t, c()), ""},
		{"ES256 on a P-384 key", wrongCurve.sign(t, c()), ReasonBadAlgorithm},
		{"RS256 on an EC key", rsOnEC.sign(t, c()), ReasonBadAlgorithm},
		{"HS256 with RSA public key as secret", confusionTok, ReasonBadAlgorithm},
		{"unknown kid", unknown.sign(t, c()), ReasonUnknownKey},
		{"expired", rs.sign(t, c("exp", time.Now().Add(-time.Hour).Unix())), ReasonExpired},
		{"wrong issuer", rs.sign(t, c("iss", "https://evil.test")), ReasonBadIssuer},
		{"kid not a string", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c())
			tok.Header["kid"] = 7
			s, _ := tok.SignedString(rs.priv)
			return s
		}(), ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := a.Authenticate(bearer(tc.token))
			if got := reasonOf(t, err); got != tc.reason {
				t.Fatalf("reason = %q, want %q (%v)", got, tc.reason, err)
			}
		})
	}
}

// With both a secret and a JWKS, an HS256 token keyed with a public key is
// checked against the secret only, so it still fails.
func TestKeyConfusionWithBothKeyKinds(t *testing.T) {
	t.Parallel()
	rs := newSigner("rsa1", "rsa1", "RS256")
	srv := newJWKSServer(t, rs.jwk(t))
	a := newAuth(t, Config{Secret: testSecret, JWKSURL: srv.URL})
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	tok.Header["kid"] = "rsa1"
	s, err := tok.SignedString(publicPEM(t, rs.public()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(bearer(s)); reasonOf(t, err) != ReasonBadSignature {
		t.Fatalf("confusion token: %v", err)
	}
	for _, ok := range []string{rs.sign(t, claims()), hs(t, "HS256", []byte(testSecret), claims())} {
		if _, err := a.Authenticate(bearer(ok)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestJWKSIgnoresSymmetricAndEncryptionKeys(t *testing.T) {
	t.Parallel()
	rs := newSigner("rsa1", "rsa1", "RS256")
	oct := jwkset.JWKMarshal{KTY: jwkset.KtyOct, KID: "oct", K: "c2VjcmV0"}
	enc := newSigner("rsa2", "enc", "RS256")
	encJWK := enc.jwk(t)
	encJWK.USE = jwkset.UseEnc
	srv := newJWKSServer(t, oct, encJWK, rs.jwk(t))
	a := newAuth(t, Config{JWKSURL: srv.URL}, WithUnknownKIDInterval(time.Hour))
	octTok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims())
	octTok.Header["kid"] = "oct"
	s, _ := octTok.SignedString([]byte("secret"))
	if _, err := a.Authenticate(bearer(s)); reasonOf(t, err) != ReasonBadAlgorithm {
		t.Fatalf("HS256 with a JWKS oct key: %v", err)
	}
	if _, err := a.Authenticate(bearer(enc.sign(t, claims()))); reasonOf(t, err) != ReasonUnknownKey {
		t.Fatalf("token signed with an enc key: %v", err)
	}
	if _, err := a.Authenticate(bearer(rs.sign(t, claims()))); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownKIDRotation: an unknown kid refetches at once, then at most once
// per interval, never waiting; after the rotation the new keys verify and
// the removed one no longer does.
func TestUnknownKIDRotation(t *testing.T) {
	t.Parallel()
	oldKey := newSigner("rsa1", "old-rsa", "RS256")
	newEC := newSigner("p256", "new-ec", "ES256")
	newEd := newSigner("ed", "new-ed", "EdDSA")
	newRSA := newSigner("rsa2", "new-rsa", "PS256")
	srv := newJWKSServer(t, oldKey.jwk(t))
	const interval = 300 * time.Millisecond
	a := newAuth(t, Config{JWKSURL: srv.URL}, WithUnknownKIDInterval(interval), WithRefreshInterval(time.Hour))
	auth := func(s signer) string {
		_, err := a.Authenticate(bearer(s.sign(t, claims())))
		return reasonOf(t, err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches after New = %d, want 1", n)
	}
	if got := auth(oldKey); got != "" {
		t.Fatalf("old key before rotation: %q", got)
	}
	// Before rotation: the new kid triggers one refetch, which does not know it.
	if got := auth(newEC); got != ReasonUnknownKey {
		t.Fatalf("new key before rotation: %q", got)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (one unknown-kid refetch)", n)
	}
	// Rate limited: rejected at once without a fetch.
	start := time.Now()
	if got := auth(newEd); got != ReasonUnknownKey {
		t.Fatalf("rate limited: %q", got)
	}
	if d := time.Since(start); d > interval/2 {
		t.Fatalf("rate-limited unknown kid waited %v", d)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (rate limited)", n)
	}

	srv.set(newEC.jwk(t), newEd.jwk(t), newRSA.jwk(t))
	time.Sleep(interval + 50*time.Millisecond)
	if got := auth(newEC); got != "" {
		t.Fatalf("new EC key after rotation: %q", got)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("fetches = %d, want 3", n)
	}
	for _, s := range []signer{newEd, newRSA} {
		if got := auth(s); got != "" {
			t.Fatalf("%s after rotation: %q", s.kid, got)
		}
	}
	if got := auth(oldKey); got != ReasonUnknownKey {
		t.Fatalf("removed key after rotation: %q", got)
	}
}

// Concurrent unknown kids share one refetch.
func TestUnknownKIDConcurrent(t *testing.T) {
	t.Parallel()
	k := newSigner("p256", "k", "ES256")
	srv := newJWKSServer(t)
	a := newAuth(t, Config{JWKSURL: srv.URL}, WithUnknownKIDInterval(time.Hour))
	srv.set(k.jwk(t))
	tok := k.sign(t, claims())
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 32 {
		wg.Go(func() {
			if _, err := a.Authenticate(bearer(tok)); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
}

func TestBackgroundRefresh(t *testing.T) {
	t.Parallel()
	before := newSigner("rsa1", "before", "RS256")
	after := newSigner("p384", "after", "ES384")
	srv := newJWKSServer(t, before.jwk(t))
	// The unknown-kid limiter is spent by the first miss, so only the background refresh can pick up the new key.
	a := newAuth(t, Config{JWKSURL: srv.URL}, WithRefreshInterval(100*time.Millisecond), WithUnknownKIDInterval(time.Hour))
	if _, err := a.Authenticate(bearer(after.sign(t, claims()))); reasonOf(t, err) != ReasonUnknownKey {
		t.Fatal(err)
	}
	srv.set(after.jwk(t))
	waitFor(t, func() bool {
		_, err := a.Authenticate(bearer(after.sign(t, claims())))
		return err == nil
	})
	waitFor(t, func() bool {
		_, err := a.Authenticate(bearer(before.sign(t, claims())))
		return reasonOf(t, err) == ReasonUnknownKey
	})
}

func TestJWKSUnavailableAtStart(t *testing.T) {
	t.Parallel()
	k := newSigner("ed", "k", "EdDSA")
	srv := newJWKSServer(t, k.jwk(t))
	srv.setStatus(http.StatusServiceUnavailable)
	var reported atomic.Int32
	a, err := New(t.Context(), Config{JWKSURL: srv.URL}, WithUnknownKIDInterval(time.Hour), WithRefreshErrorHandler(func(err error) {
		if errors.Is(err, ErrJWKSFetch) {
			reported.Add(1)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if reported.Load() == 0 {
		t.Fatal("start-up fetch failure not reported")
	}
	if _, err := a.Authenticate(bearer(k.sign(t, claims()))); reasonOf(t, err) != ReasonNoKeys {
		t.Fatalf("before keys: %v", err)
	}
	srv.setStatus(http.StatusOK)
	// The background retry (1s after a failure) loads the keys.
	waitFor(t, func() bool {
		_, err := a.Authenticate(bearer(k.sign(t, claims())))
		return err == nil
	})
}

func TestCloseStopsRefresh(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t)
	a, err := New(t.Context(), Config{JWKSURL: srv.URL}, WithRefreshInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// The loop must be seen running, or the test proves nothing.
	waitFor(t, func() bool { return srv.fetches.Load() >= 3 })
	a.Close()
	a.Close()
	// A request sent just before Close may still reach the server after
	// it: allow that one. A refresh loop still running would fetch about
	// twenty more times in 200 ms.
	n := srv.fetches.Load()
	time.Sleep(200 * time.Millisecond)
	if m := srv.fetches.Load(); m > n+1 {
		t.Fatalf("fetches continued after Close: %d -> %d", n, m)
	}
	var nilAuth *Authenticator
	nilAuth.Close()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
