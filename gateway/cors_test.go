package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/upstream/demo"
)

const corsApp = "https://app.example.com"

// corsRequest sends method path with Origin (unless "") and extra header
// pairs, and returns the closed response with its headers.
func corsRequest(t *testing.T, base, method, path, origin string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	return resp
}

// expectHeaders checks exact header values; "" means absent.
func expectCORSHeaders(t *testing.T, resp *http.Response, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := strings.Join(resp.Header.Values(k), ", "); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

var noCORS = map[string]string{
	"Access-Control-Allow-Origin": "", "Access-Control-Allow-Credentials": "", "Access-Control-Allow-Methods": "",
	"Access-Control-Allow-Headers": "", "Access-Control-Max-Age": "", "Access-Control-Expose-Headers": "",
}

func TestCORSExplicitOriginsWithCredentials(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "forwardHeaders": ["authorization", "X-Tenant"]},
		"auth": {"jwt": {"secret": "s3cret"}}, "cors": {"allowedOrigins": ["`+corsApp+`", "http://localhost:5173"], "allowCredentials": true}}`, map[string]string{"OPS": opsDir(t)}, Options{})

	t.Run("preflight from an allowed origin, before authentication", func(t *testing.T) {
		resp := corsRequest(t, g.URL, "OPTIONS", "/operations/chat/MyMessages", corsApp,
			"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,last-event-id")
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d, want 204", resp.StatusCode)
		}
		expectCORSHeaders(t, resp, map[string]string{
			"Access-Control-Allow-Origin":      corsApp,
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "GET, POST",
			"Access-Control-Allow-Headers":     "Authorization, Content-Type, Last-Event-ID, X-Request-Id, X-Tenant",
			"Access-Control-Max-Age":           "600",
			"Vary":                             "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			"WWW-Authenticate":                 "",
		})
	})
	t.Run("preflight from another origin", func(t *testing.T) {
		resp := corsRequest(t, g.URL, "OPTIONS", "/operations/chat/MyMessages", "https://evil.example.com", "Access-Control-Request-Method", "GET")
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d, want 204", resp.StatusCode)
		}
		expectCORSHeaders(t, resp, noCORS)
	})
	t.Run("request from an allowed origin reads the challenge", func(t *testing.T) {
		resp := corsRequest(t, g.URL, "GET", "/operations/chat/MyMessages", "http://localhost:5173")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
		expectCORSHeaders(t, resp, map[string]string{
			"Access-Control-Allow-Origin":      "http://localhost:5173",
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Expose-Headers":    "WWW-Authenticate, Retry-After, X-Request-Id",
			"Vary":                             "Origin",
			"WWW-Authenticate":                 `Bearer realm="fireboom"`,
		})
	})
	t.Run("stream from an allowed origin", func(t *testing.T) {
		resp := corsRequest(t, g.URL, "GET", "/operations/Countdown?from=0&wg_sse=true", corsApp)
		expectCORSHeaders(t, resp, map[string]string{
			"Content-Type":                "text/event-stream",
			"Access-Control-Allow-Origin": corsApp,
		})
	})
	t.Run("request from another origin", func(t *testing.T) {
		resp := corsRequest(t, g.URL, "GET", "/operations/chat/Messages?room=a", "https://app.example.com.evil.test")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
		expectCORSHeaders(t, resp, noCORS)
		expectCORSHeaders(t, resp, map[string]string{"Vary": "Origin"})
	})
	t.Run("same-origin request", func(t *testing.T) {
		resp := corsRequest(t, g.URL, "GET", "/health", "")
		expectCORSHeaders(t, resp, noCORS)
		expectCORSHeaders(t, resp, map[string]string{"Vary": "Origin"})
	})
}

func TestCORSAnyOrigin(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}},
		"cors": {"allowedOrigins": ["*"]}}`, nil, Options{})
	resp := corsRequest(t, g.URL, "OPTIONS", "/operations/stocks/SetPrice", "https://anywhere.test", "Access-Control-Request-Method", "POST")
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status %d, want 204", resp.StatusCode)
	}
	expectCORSHeaders(t, resp, map[string]string{
		"Access-Control-Allow-Origin":      "*",
		"Access-Control-Allow-Credentials": "",
		"Access-Control-Allow-Methods":     "GET, POST",
		"Access-Control-Allow-Headers":     "Authorization, Content-Type, Last-Event-ID, X-Request-Id",
	})
	resp = corsRequest(t, g.URL, "GET", "/operations/chat/Messages?room=a", "https://anywhere.test")
	expectCORSHeaders(t, resp, map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": ""})
}

// Without allowedOrigins there is no CORS at all: an OPTIONS request is an
// ordinary request (405 on an operation).
func TestCORSOff(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}}}`, nil, Options{})
	resp := corsRequest(t, g.URL, "OPTIONS", "/operations/chat/Messages", corsApp, "Access-Control-Request-Method", "GET")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("status %d, want 405", resp.StatusCode)
	}
	expectCORSHeaders(t, resp, noCORS)
	expectCORSHeaders(t, resp, map[string]string{"Vary": ""})
}

func TestCORSConfigRefusesCredentialsWithAnyOrigin(t *testing.T) {
	_, err := config.Parse([]byte(`{"upstream": {"url": "http://127.0.0.1:1/graphql"}, "cors": {"allowedOrigins": ["*"], "allowCredentials": true}}`), nil)
	if err == nil || !strings.Contains(err.Error(), "cors.allowCredentials") {
		t.Errorf("err = %v, want a cors.allowCredentials error", err)
	}
	_, err = config.Parse([]byte(`{"upstream": {"url": "http://127.0.0.1:1/graphql"}, "cors": {"allowedOrigins": ["https://app.example.com/"]}}`), nil)
	if err == nil || !strings.Contains(err.Error(), "cors.allowedOrigins[0]") {
		t.Errorf("err = %v, want a cors.allowedOrigins error", err)
	}
}
