package auth

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// secretParts are the pieces of tok that must never show up anywhere: the
// whole token and each of its segments.
func secretParts(tok string) []string {
	parts := []string{tok}
	for _, p := range strings.Split(tok, ".") {
		if len(p) >= 8 {
			parts = append(parts, p)
		}
	}
	return parts
}

func assertNoToken(t *testing.T, where, text, tok string) {
	t.Helper()
	for _, p := range secretParts(tok) {
		if strings.Contains(text, p) {
			t.Fatalf("%s contains the token: %q", where, text)
		}
	}
}

// TestErrorsNeverContainToken: every rejection's Error, Description and
// Challenge are fixed texts.
func TestErrorsNeverContainToken(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret, Issuer: "iss", Audience: "aud"})
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tokens := []string{
		hs(t, "HS256", []byte("wrong-secret-xxxxxxxxxxxxxxxxxxxxx"), claims()),
		hs(t, "HS256", []byte(testSecret), claims("iss", "iss", "aud", "aud", "exp", time.Now().Add(-time.Hour).Unix())),
		hs(t, "HS256", []byte(testSecret), claims("iss", "<script>\"evil\"</script>", "aud", "aud")),
		hs(t, "HS256", []byte(testSecret), claims("iss", "iss", "aud", "aud\r\nX-Injected: 1")),
		none,
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
		"eyJhbGciOiJIUzI1NiJ9.bm90LWpzb24tbm90LWpzb24.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
	}
	for _, tok := range tokens {
		_, err := a.Authenticate(bearer(tok))
		e, ok := err.(*Error)
		if !ok {
			t.Fatalf("token accepted or wrong error type: %v", err)
		}
		for where, text := range map[string]string{"Error()": e.Error(), "Description": e.Description, "Challenge()": e.Challenge(), "%+v": fmt.Sprintf("%+v", e), "%#v": fmt.Sprintf("%#v", e)} {
			assertNoToken(t, where, text, tok)
		}
		if c := e.Challenge(); !strings.HasPrefix(c, `Bearer error="invalid_token", error_description="`) || strings.ContainsAny(c, "\r\n") {
			t.Fatalf("challenge %q", c)
		}
	}
}

// TestLoggingNeverContainsToken logs what a gateway would log about a request
// (the URL through StripQueryToken, the identity, the error) and checks the
// token is absent from the output.
func TestLoggingNeverContainsToken(t *testing.T) {
	t.Parallel()
	a := newAuth(t, Config{Secret: testSecret, Cookie: "fb_token", QueryParam: "access_token"})
	good := hs(t, "HS256", []byte(testSecret), claims("roles", []string{"admin"}))
	bad := hs(t, "HS256", []byte(testSecret), claims("exp", time.Now().Add(-time.Hour).Unix()))
	for _, tok := range []string{good, bad} {
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
			log := slog.New(h)
			r := httptest.NewRequest(http.MethodGet, "/operations/chat/Messages?wg_sse=true&access_token="+tok+"&room=1", nil)
			id, err := a.Authenticate(r)
			if (err == nil) != (tok == good) {
				t.Fatalf("unexpected result %v", err)
			}
			log.Info("request",
				"url", StripQueryToken(r.URL, a.QueryParam()).String(),
				"identity", id,
				"err", err,
			)
			fmt.Fprintf(&buf, "%v %+v %#v %s\n", id, id, id, id)
		}
		out := buf.String()
		assertNoToken(t, "log output", out, tok)
		if !strings.Contains(out, "wg_sse=true") || !strings.Contains(out, "room=1") {
			t.Fatalf("stripped URL lost other parameters: %s", out)
		}
		if tok == good && !strings.Contains(out, "admin") {
			t.Fatalf("identity not logged: %s", out)
		}
	}
}

func TestChallengeNoToken(t *testing.T) {
	t.Parallel()
	if got := ChallengeNoToken(""); got != "Bearer" {
		t.Errorf("got %q", got)
	}
	if got := ChallengeNoToken(`fire"boom` + "\n"); got != `Bearer realm="fireboom"` {
		t.Errorf("got %q", got)
	}
	if got := newError(ReasonExpired).Challenge(); got != `Bearer error="invalid_token", error_description="token expired"` {
		t.Errorf("got %q", got)
	}
}

// Every reason has a description.
func TestReasonsDescribed(t *testing.T) {
	t.Parallel()
	for reason, d := range descriptions {
		if d == "" || quoteSafe(d) != d {
			t.Errorf("%s: description %q", reason, d)
		}
	}
}
