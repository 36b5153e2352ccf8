package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/internal/selfsigned"
	"github.com/fireboom/fireboom/upstream/demo"
)

// HTTP/2 (CONTRACT §11): the gateway served through Gateway.Serve, as the
// command serves it, over TLS with a certificate made for the test or over
// cleartext HTTP/2 (h2c), and read by net/http's HTTP/2 client.

// h2Gateway is a gateway served by Gateway.Serve with an HTTP/2-only client.
type h2Gateway struct {
	*testGateway
	srv    *http.Server
	served chan error    // Serve's result
	client *http.Client  // HTTP/2 only
	http1  *http.Client  // HTTP/1.1 only, to the same server
	conns  *atomic.Int64 // TCP connections accepted
	cert   *selfsigned.Cert
	files  config.TLS // the certificate files (tls mode)
	// config parses the gateway's config again, with extra appended in
	// place of the original extra (for ReloadConfig).
	config func(t *testing.T, extra string) *config.Config
}

// h2Modes are the two ways to speak HTTP/2 to the gateway.
var h2Modes = []string{"tls", "h2c"}

// newH2Gateway serves the repository's operations against d in mode ("tls"
// or "h2c"); extra is appended to the config object (`, "subscriptions":
// {...}`).
func newH2Gateway(t *testing.T, d *demo.Server, mode, extra string) *h2Gateway {
	t.Helper()
	h := &h2Gateway{conns: new(atomic.Int64), served: make(chan error, 1)}
	vars := map[string]string{"OPS": opsDir(t), "UPSTREAM": d.URL()}
	proto := `, "http2": {"cleartext": true}`
	if mode == "tls" {
		var err error
		if h.cert, err = selfsigned.New(); err != nil {
			t.Fatal(err)
		}
		if h.files.CertFile, h.files.KeyFile, err = h.cert.WriteFiles(t.TempDir(), "gateway"); err != nil {
			t.Fatal(err)
		}
		vars["CERT"], vars["KEY"] = h.files.CertFile, h.files.KeyFile
		proto = `, "tls": {"certFile": "${CERT}", "keyFile": "${KEY}"}`
	}
	h.config = func(t *testing.T, extra string) *config.Config {
		t.Helper()
		cfg, err := config.Parse([]byte(`{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}`+proto+extra+`}`),
			func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := h.config(t, extra)
	logs := &syncBuffer{}
	g, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second}
	go func() { h.served <- g.Serve(h.srv, countingListener{ln, h.conns}) }()
	h.client, h.http1 = h2Client(h.cert, true), h2Client(h.cert, false)
	h.testGateway = &testGateway{Gateway: g, URL: g.Scheme() + "://" + ln.Addr().String(), logs: logs}
	t.Cleanup(func() {
		g.BeginShutdown()
		_ = h.srv.Close()
		if err := <-h.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		_ = g.Close()
		h.client.CloseIdleConnections()
		h.http1.CloseIdleConnections()
		if t.Failed() && testing.Verbose() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return h
}

// h2Client is a client that speaks HTTP/2 only (or HTTP/1.1 only), over
// TLS trusting cert, or in cleartext when cert is nil.
func h2Client(cert *selfsigned.Cert, h2 bool) *http.Client {
	p := new(http.Protocols)
	switch {
	case !h2:
		p.SetHTTP1(true)
	case cert != nil:
		p.SetHTTP2(true)
	default:
		p.SetUnencryptedHTTP2(true)
	}
	tr := &http.Transport{Protocols: p}
	if cert != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cert.Pool()}
	}
	return &http.Client{Transport: tr}
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// open sends a GET with c and returns the response once its headers
// arrived; the body is closed at the end of the test.
func (h *h2Gateway) open(t *testing.T, c *http.Client, path string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.URL+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp
}

// open2 is open with the HTTP/2 client; it checks that HTTP/2 was spoken.
func (h *h2Gateway) open2(t *testing.T, path string) *http.Response {
	t.Helper()
	resp := h.open(t, h.client, path)
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s: served over %s, want HTTP/2", path, resp.Proto)
	}
	return resp
}

// post publishes a chat message through the gateway over HTTP/2.
func (h *h2Gateway) post(t *testing.T, room, content string) {
	t.Helper()
	resp, err := h.client.Post(h.URL+"/operations/chat/PostMessage", "application/json",
		strings.NewReader(`{"room":"`+room+`","content":"`+content+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %d %s", resp.StatusCode, b)
	}
}

// Every stream mode over HTTP/2 has the bytes it has over HTTP/1.1: SSE
// ending with done, the JSON stream, once; the stream headers, without
// HTTP/1.1's Connection: close (a connection-specific header HTTP/2
// forbids).
func TestHTTP2StreamExactBytes(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, "")
			resp := h.open2(t, "/operations/Countdown?from=2&interval=1&wg_sse=true")
			checkHeaders(t, resp, map[string]string{
				"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "",
			})
			got := readAll(t, resp)
			want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":2}}\n\n"+
				"id: *\ndata: {\"data\":{\"countdown\":1}}\n\n"+
				"id: *\ndata: {\"data\":{\"countdown\":0}}\n\n"+
				"event: done\ndata: done\n\n")
			if got != want {
				t.Errorf("SSE body:\n%q\nwant:\n%q", got, want)
			}

			resp = h.open2(t, "/operations/Countdown?from=1&interval=1")
			checkHeaders(t, resp, map[string]string{"Content-Type": "application/x-ndjson"})
			if got, want := readAll(t, resp), "{\"data\":{\"countdown\":1}}\n\n{\"data\":{\"countdown\":0}}\n\n"; got != want {
				t.Errorf("JSON stream:\n%q\nwant:\n%q", got, want)
			}

			resp = h.open2(t, "/operations/Countdown?from=3&interval=1&wg_subscribe_once=true")
			checkHeaders(t, resp, map[string]string{"Content-Type": "application/json"})
			if got, want := readAll(t, resp), `{"data":{"countdown":3}}`; got != want {
				t.Errorf("once: %q, want %q", got, want)
			}
			if n := h.conns.Load(); n != 1 {
				t.Errorf("%d connections for three requests, want 1", n)
			}
		})
	}
}

// Many streams share one HTTP/2 connection, and each gets every event:
// what lets a browser page hold more than six EventSources on one origin.
func TestHTTP2ManyStreamsOneConnection(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, `, "subscriptions": {"heartbeat": "1h"}`)
			const n = 20
			readers := make([]*bufio.Reader, n)
			for i := range readers {
				readers[i] = bufio.NewReader(h.open2(t, "/operations/chat/MessageCreated?room=many&wg_sse=true").Body)
			}
			awaitUpstreamSubs(t, d, 1)
			eventually(t, 5*time.Second, "every stream registered", func() bool { return h.streams.Load() == n })
			h.post(t, "many", "hello")
			for i, r := range readers {
				if got := readUntil(t, r, "\n\n", 5*time.Second); !strings.Contains(got, `"content":"hello"`) {
					t.Errorf("stream %d: %q", i, got)
				}
			}
			if c := h.conns.Load(); c != 1 {
				t.Errorf("%d connections for %d streams and a post, want 1", c, n)
			}
		})
	}
}

// Heartbeats and the stream limits behave over HTTP/2 as over HTTP/1.1: a
// refusal is a plain status before any stream byte, and a stream the
// client cancels (RST_STREAM) gives its slot back.
func TestHTTP2HeartbeatAndLimits(t *testing.T) {
	for _, mode := range h2Modes {
		for _, lim := range []struct {
			name, setting string
			status        int
			body          string
		}{
			{"gateway", `"maxStreams": 1`, http.StatusServiceUnavailable,
				`{"code":"TooManyStreams","message":"the gateway holds as many streams as it may; try again shortly"}`},
			{"identity", `"maxStreamsPerIdentity": 1`, http.StatusTooManyRequests,
				`{"code":"TooManyStreams","message":"too many open streams for this identity (limit 1)"}`},
		} {
			t.Run(mode+"/"+lim.name, func(t *testing.T) {
				d := startDemo(t, demo.Options{})
				h := newH2Gateway(t, d, mode, `, "subscriptions": {"heartbeat": "50ms", `+lim.setting+`}`)
				quiet := "/operations/chat/MessageCreated?room=quiet&wg_sse=true"
				first := h.open2(t, quiet)
				if got := readUntil(t, bufio.NewReader(first.Body), ": ping\n\n: ping\n\n", 5*time.Second); got != ": ping\n\n: ping\n\n" {
					t.Errorf("heartbeats %q", got)
				}
				checkRefusal(t, h.open2(t, quiet), lim.status, lim.body)
				// Cancel the first stream: its slot comes back.
				first.Body.Close()
				eventually(t, 5*time.Second, "the cancelled stream ended", func() bool { return h.streams.Load() == 0 })
				again := h.open2(t, quiet)
				if again.StatusCode != http.StatusOK {
					t.Fatalf("after a cancel: status %d", again.StatusCode)
				}
				if got := readUntil(t, bufio.NewReader(again.Body), ": ping\n\n", 5*time.Second); got != ": ping\n\n" {
					t.Errorf("after a cancel: %q", got)
				}
			})
		}
	}
}

// checkRefusal checks a stream refusal: status, Retry-After and the exact
// JSON body, with no stream byte.
func checkRefusal(t *testing.T, resp *http.Response, status int, body string) {
	t.Helper()
	got := readAll(t, resp)
	if resp.StatusCode != status || got != body {
		t.Errorf("status %d body %s, want %d %s", resp.StatusCode, got, status, body)
	}
	if ra, ct := resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"); ra != "5" || ct != "application/json" {
		t.Errorf("Retry-After %q Content-Type %q", ra, ct)
	}
}

// Shutdown over HTTP/2: each open stream ends as it does over HTTP/1.1
// (an SSE stream with the retry hint alone, as its HTTP/1.1 twin on the
// same server; a JSON stream with the
// ShuttingDown line; a once request waiting for its result with 503), and
// http.Server.Shutdown, which sends GOAWAY, returns once they have.
func TestHTTP2Shutdown(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, `, "subscriptions": {"heartbeat": "1h"}`)
			room := "/operations/chat/MessageCreated?room=bye"
			sse2 := bufio.NewReader(h.open2(t, room+"&wg_sse=true").Body)
			sse1resp := h.open(t, h.http1, room+"&wg_sse=true")
			if sse1resp.ProtoMajor != 1 {
				t.Fatalf("the HTTP/1.1 client spoke %s", sse1resp.Proto)
			}
			sse1 := bufio.NewReader(sse1resp.Body)
			json2 := bufio.NewReader(h.open2(t, room).Body)
			awaitUpstreamSubs(t, d, 1)
			h.post(t, room[len("/operations/chat/MessageCreated?room="):], "before")
			var seen [3]string
			for i, r := range []*bufio.Reader{sse2, sse1, json2} {
				seen[i] = readUntil(t, r, "\n\n", 5*time.Second)
			}
			// A once request on a quiet room waits for a result.
			onceDone := make(chan *http.Response, 1)
			go func() {
				resp, err := h.client.Get(h.URL + "/operations/chat/MessageCreated?room=quiet&wg_subscribe_once=true")
				if err != nil {
					t.Error(err)
				}
				onceDone <- resp
			}()
			eventually(t, 5*time.Second, "four streams open", func() bool { return h.streams.Load() == 4 })

			h.BeginShutdown()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopped := make(chan error, 1)
			go func() { stopped <- h.srv.Shutdown(ctx) }()
			rest := func(r *bufio.Reader) string {
				b, err := io.ReadAll(r)
				if err != nil {
					t.Errorf("reading to the end: %v", err)
				}
				return string(b)
			}
			end2, end1 := rest(sse2), rest(sse1)
			if end2 != "retry: 1000\n\n" || end1 != end2 {
				t.Errorf("SSE ending over HTTP/2 %q, over HTTP/1.1 %q: want the retry hint alone, no done (CONTRACT §8)", end2, end1)
			}
			if got, want := rest(json2), `{"errors":[{"message":"the gateway is shutting down; reconnect","extensions":{"code":"ShuttingDown"}}]}`+"\n\n"; got != want {
				t.Errorf("JSON stream ending %q, want %q", got, want)
			}
			if resp := <-onceDone; resp != nil {
				if resp.ProtoMajor != 2 {
					t.Errorf("once served over %s", resp.Proto)
				}
				if body := readAll(t, resp); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
					body != `{"code":"Unavailable","message":"the server ended the request before a result; retry"}` {
					t.Errorf("once at shutdown: %d, Retry-After %q, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
			}
			select {
			case err := <-stopped:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Shutdown did not return after the streams ended")
			}
			if _, err := h.client.Get(h.URL + "/health"); err == nil {
				t.Error("a request after Shutdown was served")
			}
		})
	}
}

// subscriptions.maxLifetime ends an HTTP/2 stream as it ends an HTTP/1.1
// one: SSE with the retry hint alone (no done), the JSON stream with the
// StreamLifetime line.
func TestHTTP2Lifetime(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, `, "subscriptions": {"heartbeat": "1h", "maxLifetime": "200ms"}`)
			if got := readAll(t, h.open2(t, "/operations/chat/MessageCreated?room=r&wg_sse=true")); got != "retry: 1000\n\n" {
				t.Errorf("SSE: %q", got)
			}
			want := `{"errors":[{"message":"the stream reached subscriptions.maxLifetime; reconnect","extensions":{"code":"StreamLifetime"}}]}` + "\n\n"
			if got := readAll(t, h.open2(t, "/operations/chat/MessageCreated?room=r")); got != want {
				t.Errorf("JSON stream: %q, want %q", got, want)
			}
		})
	}
}

// A client that stops reading one HTTP/2 stream is cut off as a slow
// consumer (its stream's flow-control window fills, the write times out
// while its queue overflows) and another stream on the same connection
// keeps every event.
func TestHTTP2SlowConsumerBesideFastOne(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, `, "subscriptions": {"heartbeat": "1h", "queueEvents": 2, "writeTimeout": "3s"}`)
			// A small per-stream window, so that the unread stream blocks
			// the gateway's writer after a few messages.
			c := h2Client(h.cert, true)
			c.Transport.(*http.Transport).HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10}
			defer c.CloseIdleConnections()
			before := h.conns.Load()
			path := "/operations/chat/MessageCreated?room=slow&wg_sse=true"
			h.open(t, c, path) // never read
			fast := readSSE(t, h.open(t, c, path))
			if n := h.conns.Load() - before; n != 1 {
				t.Fatalf("the two streams took %d connections, want 1", n)
			}
			awaitUpstreamSubs(t, d, 1)
			sent := 0
			for h.topics.Stats("").Cut == 0 {
				if sent == 100 {
					t.Fatal("100 messages of 64 KB and the stream that is never read was not cut off")
				}
				sent++
				h.post(t, "slow", bigMessage(sent))
				if got, _ := fast.nextMessage(); name(got) != name(bigMessage(sent)) {
					t.Fatalf("fast stream got %s, want %s", name(got), name(bigMessage(sent)))
				}
			}
			t.Logf("cut off after %d messages", sent)
			for i := sent + 1; i <= sent+3; i++ {
				h.post(t, "slow", bigMessage(i))
				if got, _ := fast.nextMessage(); name(got) != name(bigMessage(i)) {
					t.Fatalf("fast stream got %s, want %s", name(got), name(bigMessage(i)))
				}
			}
			eventually(t, 10*time.Second, "the slow stream ended as a slow consumer", func() bool {
				return strings.Contains(h.logs.String(), `msg="stream ended" operation=chat/MessageCreated mode=sse reason=slow-consumer`)
			})
		})
	}
}

// HTTP/1.1 stays available: over TLS to a client that offers only
// http/1.1 in ALPN, and in cleartext to a client that asks to upgrade to
// h2c (RFC 7540 §3.2, which RFC 9113 deprecates and net/http does not
// implement: the request is answered over HTTP/1.1, never with 101). The
// stream is the detached HTTP/1.1 one, with Connection: close.
func TestHTTP2ServerStillSpeaksHTTP1(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, "")
			req, _ := http.NewRequest(http.MethodGet, h.URL+"/operations/Countdown?from=1&interval=1&wg_sse=true", nil)
			if mode == "h2c" {
				req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
				req.Header.Set("Upgrade", "h2c")
				req.Header.Set("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
			}
			resp, err := h.http1.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Proto != "HTTP/1.1" || !resp.Close { // Close: the response said Connection: close
				t.Errorf("served over %s, Connection: close %v", resp.Proto, resp.Close)
			}
			checkHeaders(t, resp, map[string]string{"Content-Type": "text/event-stream", "Upgrade": ""})
			got := readAll(t, resp)
			want := withIDs(t, got, "id: *\ndata: {\"data\":{\"countdown\":1}}\n\n"+
				"id: *\ndata: {\"data\":{\"countdown\":0}}\n\n"+
				"event: done\ndata: done\n\n")
			if got != want {
				t.Errorf("body:\n%q\nwant:\n%q", got, want)
			}
		})
	}
}

// Regression: over HTTP/2 a write deadline is a timer that resets the
// stream when it fires, written to or not (over HTTP/1.1 it only fails a
// write in progress). A stream that stayed idle longer than
// subscriptions.writeTimeout, by default 10s against a 15s heartbeat, was
// cut with INTERNAL_ERROR. Here the heartbeats are three write timeouts
// apart: the stream must carry two of them and then an event.
func TestHTTP2IdleStreamOutlivesWriteTimeout(t *testing.T) {
	for _, mode := range h2Modes {
		t.Run(mode, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			h := newH2Gateway(t, d, mode, `, "subscriptions": {"heartbeat": "300ms", "writeTimeout": "100ms"}`)
			r := bufio.NewReader(h.open2(t, "/operations/chat/MessageCreated?room=idle&wg_sse=true").Body)
			if got := readUntil(t, r, ": ping\n\n: ping\n\n", 5*time.Second); got != ": ping\n\n: ping\n\n" {
				t.Fatalf("heartbeats: %q", got)
			}
			h.post(t, "idle", "still here")
			if got := readUntil(t, r, "\n\n", 5*time.Second); !strings.Contains(got, `"content":"still here"`) {
				t.Errorf("after idling: %q", got)
			}
		})
	}
}
