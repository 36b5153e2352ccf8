package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/go-chi/chi/v5"

	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream"
	"github.com/fireboom/fireboom/upstream/demo"
)

// Attacks tried against the gateway, each with what it must answer. The
// real demo upstream serves everything it can; fakeWS (fakews_test.go)
// plays the upstreams that misbehave.

// sendRaw sends request bytes as they are (no client-side cleaning of
// paths or headers) and returns the status and body.
func sendRaw(t *testing.T, base, req string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Code string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not a JSON error: %q", body)
	}
	return e.Code
}

func TestHardeningOversizedVariables(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGatewayWith(t, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "limits": {"maxBodyBytes": 4096}}`,
		map[string]string{"UPSTREAM": d.URL()}, Options{}, nil,
		func(s *http.Server) { s.MaxHeaderBytes = 64 << 10 }) // as cmd/fireboom serves
	before := d.Stats().HTTPRequests

	// A body past limits.maxBodyBytes: 413, whether it declares its length
	// or streams it chunked.
	big := `{"room":"r","content":"` + strings.Repeat("a", 8192) + `"}`
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 413 || errorCode(t, body) != "PayloadTooLarge" {
		t.Errorf("declared length: %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(g.URL+"/operations/chat/PostMessage", "application/json", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 413 {
		t.Errorf("chunked: %d %s", resp.StatusCode, body)
	}
	// A query string past the server's header limit: 431 before any handler.
	resp = get(t, g.URL+"/operations/chat/Messages?room="+strings.Repeat("a", 100<<10))
	if body := readAll(t, resp); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("huge query string: %d %s", resp.StatusCode, body)
	}
	if n := d.Stats().HTTPRequests - before; n != 0 {
		t.Errorf("%d oversized requests reached the upstream", n)
	}
}

// A body that never fully arrives: the handler that reads it gives up
// after the body timeout with 408, and every other answer (an error, a
// route that reads no body) comes within that timeout too, instead of
// net/http waiting for the body as long as the client likes; a declared
// length past the limit is refused before anything is read.
func TestHardeningSlowBody(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGatewayWith(t, defaultConfig, map[string]string{"UPSTREAM": d.URL()}, Options{BodyTimeout: 300 * time.Millisecond}, nil, nil)
	before := d.Stats().HTTPRequests
	host := strings.TrimPrefix(g.URL, "http://")
	send := func(method, path string, length int, body string) (int, string) {
		t.Helper()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hang fails here
		fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", method, path, length, body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	for _, tc := range []struct {
		method, path string
		length       int
		body         string
		status       int
		code         string
	}{
		{"POST", "/operations/chat/PostMessage", 50, `{"room":`, 408, "RequestTimeout"},
		{"POST", "/operations/chat/PostMessage", 99999999, `{}`, 413, "PayloadTooLarge"},
		{"POST", "/operations/chat/Nope", 50, `{`, 404, "NotFound"},
		{"POST", "/operations/chat/PostMessage?x=1", 50, `{`, 400, "InputValidationError"},
		{"POST", "/operations/chat/Messages", 50, `{`, 405, "MethodNotAllowed"},
		{"GET", "/operations/Countdown?from=1", 50, `{`, 400, "InputValidationError"},
		{"POST", "/health", 50, `{`, 404, ""}, // a route that reads no body
	} {
		status, body := send(tc.method, tc.path, tc.length, tc.body)
		if status != tc.status || (tc.code != "" && errorCode(t, body) != tc.code) {
			t.Errorf("%s %s with %d of %d bytes: %d %s, want %d %s", tc.method, tc.path, len(tc.body), tc.length, status, body, tc.status, tc.code)
		}
	}
	if status, body := send("POST", "/operations/chat/PostMessage", 50, `{"room":`); body != `{"code":"RequestTimeout","message":"the request body did not arrive in time"}` {
		t.Errorf("408 body: %d %s", status, body)
	}
	if n := d.Stats().HTTPRequests - before; n != 0 {
		t.Errorf("%d requests reached the upstream", n)
	}
}

func TestHardeningDeeplyNestedJSON(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	for _, depth := range []int{65, 10_000, 200_000} {
		deep := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		deepObj := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
		for _, tc := range []struct{ name, method, path, body string }{
			{"wg_variables", "GET", "/operations/chat/Messages?wg_variables=" + url.QueryEscape(`{"room":"r","filter":`+deepObj+`}`), ""},
			{"input object parameter", "GET", "/operations/chat/Messages?room=r&filter=" + url.QueryEscape(deepObj), ""},
			{"list parameter", "GET", "/operations/stocks/Prices?symbols=" + url.QueryEscape(deep), ""},
			{"POST body", "POST", "/operations/chat/PostMessage", `{"room":"r","content":"x","author":` + deep + `}`},
			{"POST body object", "POST", "/operations/chat/PostMessage", deepObj},
		} {
			req, _ := http.NewRequest(tc.method, g.URL+tc.path, strings.NewReader(tc.body))
			if tc.method == "POST" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			// 400 for what the gateway reads; 413 past the body limit and
			// 431 past the server's header limit, before any parsing.
			if resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge && tc.method == "GET" {
				continue
			}
			want := map[int]string{400: "InputValidationError", 413: "PayloadTooLarge"}[resp.StatusCode]
			if want == "" || errorCode(t, body) != want {
				t.Errorf("%s, depth %d: %d %.200s", tc.name, depth, resp.StatusCode, body)
			}
		}
	}
	if st := d.Stats(); st.Operations["Messages"]+st.Operations["PostMessage"] != 0 {
		t.Errorf("nested input reached the upstream: %v", st.Operations)
	}
}

func TestHardeningInvalidUTF8(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	// In a POST body and in query parameters: replaced by U+FFFD (as
	// encoding/json does), never passed on as invalid bytes.
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader("{\"room\":\"u\",\"content\":\"a\xffb\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `"content":"a\ufffdb"`) && !strings.Contains(body, "\"content\":\"a\uFFFDb\"") {
		t.Errorf("POST: %d %s", resp.StatusCode, body)
	}
	for _, path := range []string{
		"/operations/chat/Messages?room=u%ff",
		"/operations/chat/Messages?wg_variables=" + url.QueryEscape("{\"room\":\"u\xff\"}"),
		"/operations/%ff%fe",
		"/operations/chat/Messages?room=u&%ff=1",
	} {
		resp := get(t, g.URL+path)
		body := readAll(t, resp)
		if resp.StatusCode >= 500 || !utf8.ValidString(body) || !json.Valid([]byte(body)) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp = get(t, g.URL+"/operations/chat/Messages?room=u")
	if body := readAll(t, resp); !strings.Contains(body, "a\uFFFDb") {
		t.Errorf("stored content %s", body)
	}
}

func TestHardeningPathTraversal(t *testing.T) {
	d := startDemo(t, demo.Options{})
	// A secret file right outside the operations folder.
	dir := t.TempDir()
	ops := filepath.Join(dir, "operations")
	if err := os.CopyFS(ops, os.DirFS(opsDir(t))); err != nil {
		t.Fatal(err)
	}
	const secret = "TOP-SECRET-VALUE"
	for _, f := range []string{"fireboom.json", "secret.graphql", "operations/../leak.graphql"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(`query Leak { serverTime } # `+secret), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := newGatewayWith(t, `{"operationsDir": "${DIR}", "upstream": {"url": "${UPSTREAM}"}}`,
		map[string]string{"UPSTREAM": d.URL(), "DIR": ops}, Options{}, nil, nil)
	for _, path := range []string{
		"/operations/../fireboom.json",
		"/operations/../secret",
		"/operations/..%2fsecret",
		"/operations/..%2Fsecret",
		"/operations/%2e%2e/secret",
		"/operations/%2e%2e%2fsecret",
		"/operations/..%5csecret",
		"/operations/chat/../../secret",
		"/operations/chat/..%2f..%2fsecret",
		"/operations//../secret",
		"/operations/%2e%2e/%2e%2e/etc/passwd",
		"/operations/" + strings.Repeat("../", 20) + "etc/passwd",
		"/operations/leak",
		"/operations/../leak",
	} {
		status, body := sendRaw(t, g.URL, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(body, secret) || strings.Contains(body, "root:") {
			t.Errorf("%s leaked a file: %d %s", path, status, body)
		}
		if status != http.StatusNotFound && status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", path, status, body)
		}
	}
	// Outside /operations the dashboard's embedded files are all there is.
	for _, path := range []string{"/../fireboom.json", "/%2e%2e/fireboom.json", "/assets/../../fireboom.json", "/assets/..%2f..%2ffireboom.json"} {
		status, body := sendRaw(t, g.URL, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if strings.Contains(body, secret) {
			t.Errorf("%s leaked a file: %d", path, status)
		}
	}
	if n := d.Stats().Operations["Leak"]; n != 0 {
		t.Errorf("an operation outside the folder ran %d times", n)
	}
}

func TestHardeningHeaderInjection(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	d := startDemo(t, demo.Options{OnRequest: func(r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
	}})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "forwardHeaders": ["X-Tenant"]}}`)
	for _, tc := range []struct {
		name, header string
		status       int    // 0: anything but 5xx
		tenant       string // what the upstream may see, "" for nothing
	}{
		{"bare CR", "X-Tenant: a\rX-Evil: 1\r\n", 400, ""},
		{"NUL", "X-Tenant: a\x00X-Evil: 1\r\n", 400, ""},
		{"obs-fold", "X-Tenant: a\r\n X-Evil: 1\r\n", 0, "a X-Evil: 1"},
		{"bare LF", "X-Tenant: a\nX-Evil: 1\r\n", 0, "a"},
		{"encoded", "X-Tenant: a%0d%0aX-Evil: 1\r\n", 0, "a%0d%0aX-Evil: 1"},
	} {
		for _, path := range []string{"/operations/chat/Messages?room=r", "/operations/Countdown?from=0&interval=1"} {
			mu.Lock()
			seen = nil
			mu.Unlock()
			inits := len(d.Stats().InitPayloads)
			status, body := sendRaw(t, g.URL, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+tc.header+"Connection: close\r\n\r\n")
			if (tc.status != 0 && status != tc.status) || status >= 500 {
				t.Errorf("%s %s: %d %s", tc.name, path, status, body)
			}
			mu.Lock()
			for _, h := range seen {
				if h.Get("X-Evil") != "" {
					t.Errorf("%s: X-Evil reached the upstream", tc.name)
				}
				for _, v := range h.Values("X-Tenant") {
					if strings.ContainsAny(v, "\r\n\x00") || (tc.tenant != "" && v != tc.tenant && v != strings.TrimSpace(tc.tenant)) {
						t.Errorf("%s: upstream X-Tenant %q", tc.name, v)
					}
				}
			}
			mu.Unlock()
			for _, p := range d.Stats().InitPayloads[min(inits, len(d.Stats().InitPayloads)):] {
				if b, _ := json.Marshal(p); bytes.Contains(b, []byte("X-Evil\":")) || bytes.ContainsAny(b, "\r\n") {
					t.Errorf("%s: connection_init %s", tc.name, b)
				}
			}
		}
	}
}

// A result larger than the upstream read limit ends that stream with a
// clear error; another subscription on the same upstream connection keeps
// flowing.
func TestHardeningHugeUpstreamFrame(t *testing.T) {
	d := startDemo(t, demo.Options{})
	f := newFakeWS(t)
	g := newGatewayWith(t, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "subscriptionUrl": "${WS}"}}`,
		map[string]string{"UPSTREAM": d.URL(), "WS": f.URL()}, Options{}, nil, nil)
	steady := openClientStream(t, g.URL+"/operations/Countdown?from=2&wg_sse=true")
	steady.until("\n\n")
	huge := openClientStream(t, g.URL+"/operations/Countdown?from=1&wg_sse=true")
	huge.rest()
	const want = "data: {\"errors\":[{\"message\":\"the upstream sent a frame larger than the gateway accepts\",\"extensions\":{\"code\":\"UpstreamFrameTooLarge\"}}]}\n\nevent: done\ndata: done\n\n"
	if got := huge.read.String(); got != want {
		t.Errorf("huge stream %q, want %q", got, want)
	}
	n := strings.Count(steady.read.String(), "id: ")
	steady.until("id: ")
	steady.until("id: ")
	if strings.Count(steady.read.String(), "id: ") < n+2 || f.opened.Load() != 1 {
		t.Errorf("steady stream after the huge frame: %q, %d upstream connections", steady.read.String(), f.opened.Load())
	}
	eventually(t, 5*time.Second, "the huge subscription completed upstream", func() bool { return f.stops.Load() == 1 })
}

// An upstream that accepts the WebSocket but never acknowledges it: 502
// after the init timeout, and nothing is left behind.
func TestHardeningUpstreamNeverAcks(t *testing.T) {
	d := startDemo(t, demo.Options{})
	f := newFakeWS(t)
	f.noAck.Store(true)
	g := newGatewayWith(t, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "subscriptionUrl": "${WS}"}}`,
		map[string]string{"UPSTREAM": d.URL(), "WS": f.URL()},
		Options{TuneHub: func(c *upstream.HubConfig) { c.InitTimeout = 300 * time.Millisecond }}, nil, nil)
	for range 3 {
		resp := get(t, g.URL+"/operations/Countdown?from=2&wg_sse=true")
		if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway || errorCode(t, body) != "UpstreamUnavailable" {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	}
	if !strings.Contains(g.logs.String(), "no connection_ack within 300ms") {
		t.Errorf("logs: %s", g.logs.String())
	}
	eventually(t, 5*time.Second, "upstream connections released", func() bool {
		st := g.hub.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && g.topics.Stats("").Clients == 0 && f.closed.Load() == f.opened.Load()
	})
	if f.subs.Load() != 0 {
		t.Errorf("%d subscribe frames sent before connection_ack", f.subs.Load())
	}
}

// An upstream that floods one subscription, faster than any client can
// read. The gateway stays responsive and its memory is bounded by the
// client queues; clients are handled by the slow-consumer policy:
// "disconnect" cuts a client whose queue overflows (and the upstream
// subscription is completed once no client is left), "drop-oldest" keeps
// a reading client streaming with gaps while one that does not read at all
// ends at the write timeout.
func TestHardeningUpstreamFloods(t *testing.T) {
	for _, policy := range []string{"disconnect", "drop-oldest"} {
		t.Run(policy, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			f := newFakeWS(t)
			g := newGatewayWith(t, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "subscriptionUrl": "${WS}"},
				"subscriptions": {"queueEvents": 64, "writeTimeout": "1s", "slowConsumer": "`+policy+`"}}`,
				map[string]string{"UPSTREAM": d.URL(), "WS": f.URL()},
				Options{TuneTopics: func(c *topic.Config) { c.ResumeHold = 200 * time.Millisecond }}, nil, nil)
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			// A client that reads all the time, but slower than the flood
			// comes (the gateway writes as fast as loopback takes it),
			// counting what it gets.
			resp := get(t, g.URL+"/operations/Countdown?from=3&wg_sse=true")
			var events, gaps atomic.Int64
			var read sync.WaitGroup
			read.Add(1)
			go func() {
				defer read.Done()
				for e, err := range gosse.Read(throttled{resp.Body}, nil) {
					switch {
					case err != nil:
						return
					case e.Type == "gap":
						gaps.Add(1)
					case e.Type == "":
						events.Add(1)
					}
				}
			}()
			defer read.Wait()
			defer resp.Body.Close()
			eventually(t, 10*time.Second, "first events", func() bool { return events.Load() > 0 })
			// Another client asks, then never reads.
			u, _ := url.Parse(g.URL)
			idle, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			_ = idle.(*net.TCPConn).SetReadBuffer(4096)
			_, _ = io.WriteString(idle, "GET /operations/Countdown?from=3&wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n")

			if policy == "disconnect" {
				eventually(t, 20*time.Second, "a client cut off", func() bool { return g.topics.Stats("").Cut >= 1 })
			} else {
				eventually(t, 20*time.Second, "the idle client's stream ended by the write timeout", func() bool {
					return strings.Contains(g.logs.String(), "reason=write-failed")
				})
				// The reading client goes on through the flood, told of what
				// it missed.
				n := events.Load()
				eventually(t, 20*time.Second, "the reading client goes on", func() bool { return events.Load() > n+1000 && gaps.Load() > 0 })
				if st := g.topics.Stats(""); st.Dropped == 0 || st.Cut != 0 {
					t.Errorf("stats %+v", st)
				}
			}
			for range 3 { // responsive during the flood
				resp := get(t, g.URL+"/health")
				if body := readAll(t, resp); resp.StatusCode != 200 {
					t.Errorf("health during the flood: %d %s", resp.StatusCode, body)
				}
			}
			runtime.GC()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			st, ts := g.hub.Stats(), g.topics.Stats("")
			grew := int64(after.HeapInuse) - int64(before.HeapInuse)
			t.Logf("flood of %d events (~%d MiB): %d out, %d cut, %d dropped; reader got %d events, %d gaps; heap in use grew %d KiB",
				st.EventsIn, st.EventsIn>>10, ts.EventsOut, ts.Cut, ts.Dropped, events.Load(), gaps.Load(), grew>>10)
			// What may be held: 64 events of ~1 KiB per client queue, the
			// replay ring (256 events), buffers.
			if grew > 32<<20 {
				t.Errorf("heap in use grew %d MiB during the flood", grew>>20)
			}
			resp.Body.Close()
			idle.Close()
			eventually(t, 10*time.Second, "the flooding subscription completed upstream", func() bool { return f.stops.Load() >= 1 })
		})
	}
}

// A panicking handler answers 500 and takes no other stream down.
func TestHardeningPanicRecovered(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGatewayWith(t, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}}`,
		map[string]string{"UPSTREAM": d.URL()}, Options{}, func(r chi.Router) {
			r.Get("/_test/panic", func(http.ResponseWriter, *http.Request) { panic("injected") })
		}, nil)
	s := openClientStream(t, g.URL+"/operations/Countdown?from=5&interval=50&wg_sse=true")
	s.until("\n\n")
	for range 3 {
		resp := get(t, g.URL+"/_test/panic")
		if body := readAll(t, resp); resp.StatusCode != 500 || errorCode(t, body) != "InternalServerError" {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	}
	s.rest()
	for i := 5; i >= 0; i-- {
		if !strings.Contains(s.read.String(), fmt.Sprintf(`{"countdown":%d}`, i)) {
			t.Errorf("stream lost %d: %q", i, s.read.String())
		}
	}
	if !strings.HasSuffix(s.read.String(), "event: done\ndata: done\n\n") {
		t.Errorf("stream %q", s.read.String())
	}
	if !strings.Contains(g.logs.String(), "handler panicked") {
		t.Error("the panic was not logged")
	}
}

// throttled reads at most 4 KiB a millisecond: a client slower than the
// gateway can write.
type throttled struct{ r io.Reader }

func (t throttled) Read(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return t.r.Read(p[:min(len(p), 4<<10)])
}
