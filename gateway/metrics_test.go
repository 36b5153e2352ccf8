package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream/demo"
)

// metricValue reads one series' value from /metrics (0 when absent, as
// for a labelled counter never incremented).
func metricValue(t testing.TB, base, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(metricsText(t, base))
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// Every series docs/reference.md lists appears on /metrics once exercised, with
// the labels it documents.
func TestMetricsAfterUse(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"auth": {"jwt": {"secret": "metrics-secret"}}, "subscriptions": {"maxStreams": 1}}`)

	stream := get(t, g.URL+"/operations/Countdown?from=100000&interval=20&wg_sse=true")
	defer stream.Body.Close()
	readUntil(t, bufio.NewReader(stream.Body), "countdown", 5*time.Second)
	if st := statusOf(t, g.URL+"/operations/Sub"); st != http.StatusServiceUnavailable {
		t.Errorf("second stream: %d, want 503 (maxStreams 1)", st)
	}
	if st := statusOf(t, g.URL+"/operations/chat/Messages?room=m"); st != 200 {
		t.Errorf("query: %d", st)
	}
	post, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(`{"room":"m","content":"c"}`))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, post)
	user, err := auth.Mint(AuthConfig(g.cfg), "u", []string{"user"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, auth string
		status     int
	}{
		{"/operations/chat/MyMessages", "", 401},
		{"/operations/chat/MyMessages", "Bearer not-a-jwt", 401},
	} {
		resp := get(t, g.URL+c.path, "Authorization", c.auth)
		if readAll(t, resp); resp.StatusCode != c.status {
			t.Errorf("%s with %q: %d", c.path, c.auth, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/operations/stocks/SetPrice", strings.NewReader(`{"symbol":"X","price":1}`))
	req.Header.Set("Authorization", "Bearer "+user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if readAll(t, resp); resp.StatusCode != 403 {
		t.Errorf("SetPrice as user: %d", resp.StatusCode)
	}
	_ = g.Reload()

	m := metricsText(t, g.URL)
	for _, want := range []string{
		`fireboom_open_streams{mode="sse",operation="Countdown"} 1`,
		`fireboom_streams_rejected_total{limit="gateway"} 1`,
		`fireboom_upstream_connections 1`,
		`fireboom_upstream_subscriptions 1`,
		`fireboom_upstream_events_total [1-9]`,
		`fireboom_events_out_total [1-9]`,
		`fireboom_slow_consumer_cutoffs_total 0`,
		`fireboom_slow_consumer_drops_total 0`,
		`fireboom_upstream_reconnects_total 0`,
		`fireboom_live_pollers 0`,
		`fireboom_auth_failures_total{reason="missing"} 1`,
		`fireboom_auth_failures_total{reason="malformed"} 1`,
		`fireboom_auth_failures_total{reason="forbidden"} 1`,
		`fireboom_upstream_request_duration_seconds_bucket{kind="query",operation="chat/Messages",le="\+Inf"} 1`,
		`fireboom_upstream_request_duration_seconds_count{kind="mutation",operation="chat/PostMessage"} 1`,
		`fireboom_reloads_total{result="ok"} 1`,
		`fireboom_operations{state="served"} [1-9]`,
		`fireboom_operations{state="failed"} 0`,
		`go_goroutines [1-9]`,
		`process_resident_memory_bytes \S+`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(m) {
			t.Errorf("/metrics has no line matching %s", want)
		}
	}
	// The stream's end is counted by reason, and it is no longer open.
	stream.Body.Close()
	// Whether the server notices through the request context or a failed
	// write is a race: either reason is right.
	eventually(t, 5*time.Second, "stream end counted", func() bool {
		return metricValue(t, g.URL, `fireboom_stream_ends_total{reason="client-gone"}`)+
			metricValue(t, g.URL, `fireboom_stream_ends_total{reason="write-failed"}`) == 1 &&
			metricValue(t, g.URL, `fireboom_open_streams{mode="sse",operation="Countdown"}`) == 0
	})
}

// smallBuffers makes a loopback connection's kernel buffers small, so that
// a client that stops reading blocks the gateway's writes after a few KiB.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A client that stops reading is cut off (disconnect) or loses its oldest
// events (drop-oldest); both are counted.
func TestMetricsSlowConsumer(t *testing.T) {
	for policy, series := range map[string]string{
		"disconnect":  "fireboom_slow_consumer_cutoffs_total",
		"drop-oldest": "fireboom_slow_consumer_drops_total",
	} {
		t.Run(policy, func(t *testing.T) {
			d := startDemo(t, demo.Options{})
			g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
				"subscriptions": {"queueEvents": 2, "slowConsumer": "`+policy+`"}}`)
			srv := httptest.NewUnstartedServer(g)
			srv.Listener = smallBuffers{srv.Listener}
			srv.Start()
			t.Cleanup(srv.Close)

			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			fmt.Fprintf(c, "GET /operations/chat/MessageCreated?room=slow&wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n")
			head, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
				t.Fatalf("stream: %q %v", head, err)
			}
			eventually(t, 5*time.Second, "subscribed", func() bool { return d.Stats().ActiveSubscriptions == 1 })
			// The client reads no more: big messages fill the socket, then
			// the client's queue.
			content := strings.Repeat("x", 64<<10)
			for i := 0; metricValue(t, g.URL, series) < 1; i++ {
				if i == 200 {
					t.Fatalf("%s still 0 after %d messages of 64 KiB", series, i)
				}
				resp, err := http.Post(d.URL(), "application/json", strings.NewReader(
					`{"query":"mutation { postMessage(room: \"slow\", content: \"`+content+`\") { id } }"}`))
				if err != nil {
					t.Fatal(err)
				}
				readAll(t, resp)
			}
		})
	}
}

// /ready answers 503 while the upstream is down, 200 when it is up, and
// 503 once a shutdown began; /health stays 200.
func TestReadyFollowsUpstream(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/ready")
	if body := readAll(t, resp); resp.StatusCode != 200 || !strings.HasPrefix(body, `{"operations":`) {
		t.Errorf("ready: %d %s", resp.StatusCode, body)
	}
	// Probes within readyTTL of the first reuse its answer.
	queries := d.Stats().Operations["Ready"]
	for range 5 {
		if resp := get(t, g.URL+"/ready"); readAll(t, resp) == "" || resp.StatusCode != 200 {
			t.Fatalf("ready again: %d", resp.StatusCode)
		}
	}
	// (One, should a slow machine take longer than readyTTL for them.)
	if n := d.Stats().Operations["Ready"]; n > queries+1 {
		t.Errorf("%d upstream queries for 5 probes right after the first, want at most 1", n-queries)
	}
	_ = d.Close()
	// Within readyTTL of the last probe.
	eventually(t, 5*time.Second, "ready with the upstream down", func() bool {
		resp := get(t, g.URL+"/ready")
		body := readAll(t, resp)
		return resp.StatusCode == 503 && body == `{"reason":"the upstream is unreachable","status":"unavailable"}`
	})
	if resp := get(t, g.URL+"/health"); readAll(t, resp) != `{"status":"ok"}` || resp.StatusCode != 200 {
		t.Errorf("health: %d", resp.StatusCode)
	}
	g.BeginShutdown()
	resp = get(t, g.URL+"/ready")
	if body := readAll(t, resp); resp.StatusCode != 503 || body != `{"reason":"shutting down","status":"unavailable"}` {
		t.Errorf("ready while shutting down: %d %s", resp.StatusCode, body)
	}
}

// An upstream restart is counted in fireboom_upstream_reconnects_total
// once the hub re-established the connection.
func TestMetricsUpstreamReconnect(t *testing.T) {
	d := startDemo(t, demo.Options{})
	addr := d.Addr()
	g := newGateway(t, d, defaultConfig)
	follow(t, g.URL+"/operations/chat/MessageCreated?room=r&wg_sse=true")
	eventually(t, 5*time.Second, "subscribed", func() bool { return d.Stats().ActiveSubscriptions == 1 })
	_ = d.Close()
	d2, err := demo.StartAt(addr, demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close() })
	eventually(t, 10*time.Second, "reconnect counted", func() bool {
		return metricValue(t, g.URL, "fireboom_upstream_reconnects_total") >= 1
	})
}
