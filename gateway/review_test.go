package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/fireboom/fireboom/upstream/demo"
)

// Regression: HEAD on a subscription opened an upstream subscription and
// sent a stream body, which a HEAD response must not have.
func TestHeadOnlyForPlainQueries(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"operations": {"chat/Messages": {"liveInterval": "1s"}}}`)
	for _, path := range []string{"/operations/Countdown?from=1", "/operations/chat/Messages?room=a&wg_live=true"} {
		resp, err := http.Head(g.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
			t.Errorf("HEAD %s: %d, Allow %q", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if n := d.Stats().SubscriptionsStarted; n != 0 {
		t.Errorf("HEAD started %d upstream subscriptions", n)
	}
	resp, err := http.Head(g.URL + "/operations/chat/Messages?room=a")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD on a query: %d", resp.StatusCode)
	}
}

// Regression: a POST ignored its query string, so an unknown parameter was
// silently dropped.
func TestPostRejectsUnknownQueryParameters(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage?room=zzz", "application/json", strings.NewReader(`{"room":"a","content":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e := decodeError(t, resp); resp.StatusCode != 400 || e.Code != "InputValidationError" || len(e.Errors) != 1 || e.Errors[0].PropertyPath != "/room" {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}

// Regression: any web page could mint a dev token (text/plain POSTs need
// no preflight). Only same-origin JSON requests may.
func TestMintTokenOnlyForSameOriginJSON(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "dev": true,
		"auth": {"jwt": {"secret": "s3cret"}}}`)
	body := `{"sub":"mallory","roles":["admin"]}`
	for _, tc := range []struct {
		name   string
		header []string
		status int
	}{
		{"text/plain", []string{"Content-Type", "text/plain"}, 403},
		{"other origin", []string{"Content-Type", "application/json", "Origin", "http://evil.example"}, 403},
		{"cross-site fetch", []string{"Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"}, 403},
		{"same origin", []string{"Content-Type", "application/json", "Origin", g.URL, "Sec-Fetch-Site", "same-origin"}, 200},
		{"curl", []string{"Content-Type", "application/json"}, 200},
	} {
		req, _ := http.NewRequest(http.MethodPost, g.URL+"/_/token", strings.NewReader(body))
		for i := 0; i < len(tc.header); i += 2 {
			req.Header.Set(tc.header[i], tc.header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := readAll(t, resp)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, got)
		}
		if tc.status == 200 && !strings.HasPrefix(got, `{"token":"`) {
			t.Errorf("%s: %s", tc.name, got)
		}
	}
}

// Regression: a panic after the response began appended a 500 JSON body
// to it. The response is cut instead.
func TestPanicAfterResponseStartedIsCut(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGatewayWith(t, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}}`,
		map[string]string{"UPSTREAM": d.URL()}, Options{}, func(r chi.Router) {
			r.Get("/_test/late-panic", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, "partial")
				http.NewResponseController(w).Flush()
				panic("late")
			})
		}, nil)
	resp := get(t, g.URL+"/_test/late-panic")
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || strings.Contains(string(b), "InternalServerError") {
		t.Errorf("body %q, err %v: want a cut response without a JSON error", b, err)
	}
}

// A subscription asked for while the gateway closes its hub is a 503, not
// a 502 blaming the upstream.
func TestClosedHubAnswers503(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	_ = g.hub.Close()
	resp := get(t, g.URL+"/operations/Countdown?from=1&wg_sse=true")
	if e := decodeError(t, resp); resp.StatusCode != 503 || e.Code != "Unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d %+v", resp.StatusCode, e)
	}
}

// A typo in an "operations" key of fireboom.json is reported, not ignored.
func TestUnknownOperationSettingsWarn(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"operations": {"chat/Mesages": {"liveInterval": "1s"}, "Countdown": {"liveInterval": "1s"}, "chat/Messages": {"liveInterval": "1s"}}}`)
	logs := g.logs.String()
	for _, want := range []string{
		`msg="fireboom.json names no served operation" key=operations.chat/Mesages`,
		`msg="liveInterval applies to queries only" key=operations.Countdown.liveInterval`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "key=operations.chat/Messages") {
		t.Error("a valid key was reported")
	}
}
