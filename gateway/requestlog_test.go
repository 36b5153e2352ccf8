package gateway

import (
	"bufio"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/upstream/demo"
)

func TestLoggedTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		param, target, want string
	}{
		{"access_token", "/operations/Sub", "/operations/Sub"},
		{"access_token", "/operations/Sub?wg_sse=true&access_token=SECRET&from=3", "/operations/Sub?wg_sse=true&from=3"},
		{"access_token", "/operations/Sub?access_token=SECRET", "/operations/Sub"},
		{"access_token", "/operations/Sub?access%5Ftoken=SECRET&access_token=SECRET2", "/operations/Sub"},
		{"access_token", "/operations/Sub?from=3;access_token=SECRET;x=1&y=2", "/operations/Sub?from=3;x=1&y=2"},
		{"token", "/operations/Sub?token=SECRET&access_token=SECRET2&tokens=1", "/operations/Sub?tokens=1"},
		{"", "/operations/Sub?access_token=SECRET&from=1", "/operations/Sub?from=1"},
		{"", "/operations/a%20b?x=%41", "/operations/a%20b?x=%41"},
	} {
		u, err := url.Parse(tc.target)
		if err != nil {
			t.Fatal(err)
		}
		if got := loggedTarget(u, tc.param); got != tc.want {
			t.Errorf("loggedTarget(%q, %q) = %q, want %q", tc.target, tc.param, got, tc.want)
		}
	}
}

// secretParts are the parts of a JWT that must never be logged: its claims
// and its signature (the header is the same for every token).
func secretParts(tok string) []string {
	parts := strings.Split(tok, ".")
	return parts[1:]
}

// No token value reaches the log, whether sent in the header, a cookie or
// the query parameter, accepted or refused, on queries, mutations and
// streams, at debug level; and every request is logged once with its
// status and id.
func TestTokenNeverLogged(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "forwardHeaders": ["Authorization"]},
		"auth": {"jwt": {"secret": "s3cret"}, "cookie": "`+testCookie+`"}}`, nil, Options{})
	off := newAuthGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"auth": {"jwt": {"secret": "s3cret"}, "queryParam": ""}}`, nil, Options{})
	admin, err := auth.Mint(auth.Config{Secret: "s3cret"}, "alice", []string{"admin"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	user, err := auth.Mint(auth.Config{Secret: "s3cret"}, "bob", []string{"user"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired := signJWT(t, jwt.SigningMethodHS256, []byte("s3cret"), "", jwt.MapClaims{"sub": "carol", "exp": time.Now().Add(-time.Hour).Unix()})
	forged := signJWT(t, jwt.SigningMethodHS256, []byte("wrong"), "", jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()})

	type call struct {
		g                  *testGateway
		method, path, body string
		src                tokenSource
		tok                string
		status             int
	}
	calls := []call{}
	for _, src := range []tokenSource{viaHeader, viaCookie, viaQuery} {
		calls = append(calls,
			call{g, "GET", "/operations/chat/MyMessages", "", src, admin, 200},
			call{g, "GET", "/operations/chat/MyMessages", "", src, expired, 401},
			call{g, "GET", "/operations/auth/Guarded?wg_sse=true", "", src, forged, 401},
			call{g, "GET", "/operations/auth/Guarded?wg_sse=true", "", src, admin, 200},
			call{g, "GET", "/operations/auth/Guarded", "", src, admin, 200},
			call{g, "GET", "/operations/auth/Guarded?wg_subscribe_once=true", "", src, admin, 200},
			call{g, "POST", "/operations/stocks/SetPrice", `{"symbol":"LOG","price":2}`, src, user, 403},
			call{g, "POST", "/operations/stocks/SetPrice", `{"symbol":"LOG","price":2}`, src, admin, 200},
		)
	}
	calls = append(calls,
		call{g, "GET", "/operations/chat/Messages?room=a;access_token=" + user, "", viaHeader, "", 400},
		call{g, "GET", "/operations/chat/Messages?room=a&access_token=" + user + "&access_token=" + admin, "", viaHeader, "", 401},
		call{off, "GET", "/operations/chat/Messages?room=a", "", viaQuery, admin, 400},
		call{off, "GET", "/operations/chat/MyMessages", "", viaQuery, admin, 401},
	)
	for i, c := range calls {
		resp := authRequest(t, c.g.URL, c.method, c.path, c.body, c.src, c.tok)
		body := readAll(t, resp)
		if resp.StatusCode != c.status {
			t.Errorf("call %d %s %s via %s: status %d, want %d: %s", i, c.method, c.path, c.src, resp.StatusCode, c.status, body)
		}
	}
	// A request is logged when its answer is complete; the server may
	// still be finishing the last ones.
	want := map[*testGateway]int{}
	for _, c := range calls {
		want[c.g]++
	}
	for gw, n := range want {
		eventually(t, 5*time.Second, "every request logged", func() bool { return strings.Count(gw.logs.String(), "msg=request ") == n })
	}
	logs := g.logs.String() + off.logs.String()
	for _, tok := range []string{admin, user, expired, forged} {
		for _, part := range secretParts(tok) {
			if strings.Contains(logs, part) {
				t.Fatalf("a token reached the log:\n%s", logs)
			}
		}
	}
	for _, line := range []string{
		`method=GET path=/operations/chat/MyMessages status=401 `,
		`method=GET path="/operations/auth/Guarded?wg_sse=true" status=200 `,
		`method=POST path=/operations/stocks/SetPrice status=403 `,
		`method=GET path="/operations/chat/Messages?room=a" status=400 `,
	} {
		if !strings.Contains(logs, line) {
			t.Errorf("no log line with %q in\n%s", line, logs)
		}
	}
}

// X-Request-Id is honoured when sane, generated otherwise, and returned;
// the log line carries it.
func TestRequestID(t *testing.T) {
	g := newAuthGateway(t, startDemo(t, demo.Options{}), `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "auth": {"jwt": {"secret": "s3cret"}}}`, nil, Options{})
	generated := regexp.MustCompile(`^[A-Z2-7]{26}$`)
	for _, tc := range []struct{ sent, want string }{
		{"req-42.a:b/c+d=", "req-42.a:b/c+d="},
		{"", ""},
		{"has space", ""},
		{strings.Repeat("x", 129), ""},
	} {
		resp := get(t, g.URL+"/health", "X-Request-Id", tc.sent)
		readAll(t, resp)
		got := resp.Header.Get("X-Request-Id")
		if tc.want != "" && got != tc.want || tc.want == "" && !generated.MatchString(got) {
			t.Errorf("sent %q, got %q", tc.sent, got)
		}
		eventually(t, 5*time.Second, "request logged", func() bool { return strings.Contains(g.logs.String(), got) })
	}
}

// The logging writer keeps http.ResponseController working (write
// deadlines and flushes for streams), and reports flush errors.
func TestLoggingWriterUnwraps(t *testing.T) {
	p := "access_token"
	logs := &syncBuffer{}
	g := &Gateway{cfg: &config.Config{Auth: config.Auth{QueryParam: &p}}, log: slog.New(slog.NewTextHandler(logs, nil))}
	release := make(chan struct{})
	errs := make(chan error, 3)
	srv := httptest.NewServer(g.requestLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		_, _ = w.Write([]byte("first\n"))
		errs <- rc.Flush()
		<-release // the client must see "first" while the handler still runs
		_, _ = w.Write([]byte("second\n"))
		w.(http.Flusher).Flush()
		errs <- nil
	})))
	defer srv.Close()
	resp := get(t, srv.URL+"/stream?access_token=SECRET")
	br := bufio.NewReader(resp.Body)
	readUntil(t, br, "first\n", 5*time.Second)
	close(release)
	readUntil(t, br, "second\n", 5*time.Second)
	resp.Body.Close()
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("response controller through the logging writer: %v", err)
		}
	}
	eventually(t, 5*time.Second, "request logged", func() bool { return strings.Contains(logs.String(), "path=/stream status=200 ") })
	if l := logs.String(); strings.Contains(l, "SECRET") || !strings.Contains(l, "bytes=13") {
		t.Errorf("log %q", l)
	}
}
