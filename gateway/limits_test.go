package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream/demo"
)

// Slow consumers and stream limits, through the real gateway and demo
// upstream.

// rawStream is an HTTP/1.1 request on a bare TCP connection: the test
// decides when, and whether, the response body is read.
type rawStream struct {
	conn net.Conn
	resp *http.Response
	once sync.Once
}

// rawRequest sends GET path from the local address local ("" for any) with
// header pairs, and reads the response head.
func rawRequest(g *testGateway, local, path string, header ...string) (*rawStream, error) {
	u, err := url.Parse(g.URL)
	if err != nil {
		return nil, err
	}
	dialer := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := dialer.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), req)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawStream{conn: conn, resp: resp}, nil
}

// dialStream opens a stream that must answer 200.
func dialStream(g *testGateway, path string, header ...string) (*rawStream, error) {
	s, err := rawRequest(g, "", path, header...)
	if err != nil {
		return nil, err
	}
	if s.resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(s.resp.Body, 1000))
		s.close()
		return nil, fmt.Errorf("GET %s: %d %s", path, s.resp.StatusCode, b)
	}
	return s, nil
}

func (s *rawStream) close() { s.once.Do(func() { _ = s.conn.Close() }) }

// refused checks that a request is turned away with status, a
// Retry-After, and a JSON error body: nothing of a stream.
func refused(t *testing.T, s *rawStream, status int, what string) {
	t.Helper()
	defer s.close()
	_ = s.conn.SetDeadline(time.Now().Add(5 * time.Second))
	body, err := io.ReadAll(s.resp.Body)
	if err != nil {
		t.Fatalf("%s: reading the refusal: %v", what, err)
	}
	if s.resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d (body %s)", what, s.resp.StatusCode, status, body)
	}
	if ra := s.resp.Header.Get("Retry-After"); ra != "5" {
		t.Errorf("%s: Retry-After %q, want \"5\"", what, ra)
	}
	if ct := s.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	var e struct{ Code, Message string }
	if json.Unmarshal(body, &e) != nil || e.Code != "TooManyStreams" || e.Message == "" {
		t.Errorf("%s: body %s", what, body)
	}
}

func mustRaw(t *testing.T, g *testGateway, local, path string, header ...string) *rawStream {
	t.Helper()
	s, err := rawRequest(g, local, path, header...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

func mustOK(t *testing.T, s *rawStream, what string) {
	t.Helper()
	if s.resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(s.resp.Body, 1000))
		t.Fatalf("%s: status %d %s", what, s.resp.StatusCode, b)
	}
}

const limitsSecret = "limits-test-secret"

// token mints a bearer token for sub; claims may make two tokens of one
// subject differ.
func token(t testing.TB, sub string, claims ...map[string]any) string {
	t.Helper()
	var c map[string]any
	if len(claims) > 0 {
		c = claims[0]
	}
	tok, err := auth.Mint(auth.Config{Secret: limitsSecret}, sub, nil, c, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func TestMaxStreams(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"maxStreams": 2}`))
	path := "/operations/chat/MessageCreated?wg_sse=true&room=limits"
	a := mustRaw(t, g, "", path)
	mustOK(t, a, "first stream")
	mustOK(t, mustRaw(t, g, "", "/operations/Countdown?wg_sse=true&from=1000&interval=60000"), "second stream")
	waitActive(t, d, 2)
	started := d.Stats().SubscriptionsStarted
	refused(t, mustRaw(t, g, "", path), http.StatusServiceUnavailable, "third stream")
	refused(t, mustRaw(t, g, "127.0.0.2", path), http.StatusServiceUnavailable, "third stream, other client")
	if n := d.Stats().SubscriptionsStarted; n != started {
		t.Errorf("a refused stream reached the upstream (%d subscriptions started, was %d)", n, started)
	}
	// An ended stream frees its slot.
	a.close()
	eventually(t, 5*time.Second, "slot released", func() bool {
		s := mustRaw(t, g, "", path)
		defer s.close()
		return s.resp.StatusCode == http.StatusOK
	})
}

// The dashboard's stats stream holds a connection like any stream: it
// counts against maxStreams and the per-IP limit, so a public endpoint
// cannot be used to hold more connections than the limits allow.
func TestStatsStreamCounts(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"maxStreams": 2, "maxStreamsPerIdentity": 1}`))
	stats := mustRaw(t, g, "127.0.0.1", "/_/stats")
	mustOK(t, stats, "stats stream")
	refused(t, mustRaw(t, g, "127.0.0.1", "/_/stats"), http.StatusTooManyRequests, "second stats stream, same IP")
	refused(t, mustRaw(t, g, "127.0.0.1", "/operations/Countdown?wg_sse=true&from=100&interval=60000"), http.StatusTooManyRequests, "stream, same IP")
	mustOK(t, mustRaw(t, g, "127.0.0.2", "/operations/Countdown?wg_sse=true&from=100&interval=60000"), "stream, other IP")
	refused(t, mustRaw(t, g, "127.0.0.3", "/_/stats"), http.StatusServiceUnavailable, "stats stream, gateway full")
	stats.close()
	eventually(t, 5*time.Second, "the stats stream's slot released", func() bool {
		s := mustRaw(t, g, "127.0.0.3", "/_/stats")
		defer s.close()
		return s.resp.StatusCode == http.StatusOK
	})
}

func TestMaxStreamsPerIdentity(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith(`, "forwardHeaders": ["Authorization"]`,
		`, "auth": {"jwt": {"secret": "`+limitsSecret+`"}}, "subscriptions": {"maxStreamsPerIdentity": 2}`))
	path := "/operations/chat/MessageCreated?wg_sse=true&room=limits"
	alice, bob := token(t, "alice"), token(t, "bob")
	a1 := mustRaw(t, g, "", path, "Authorization", alice)
	mustOK(t, a1, "alice 1")
	// Another token of the same subject counts as the same identity.
	alice2 := token(t, "alice", map[string]any{"session": 2})
	if alice2 == alice {
		t.Fatal("tokens do not differ")
	}
	mustOK(t, mustRaw(t, g, "", path, "Authorization", alice2), "alice 2")
	refused(t, mustRaw(t, g, "", path, "Authorization", alice), http.StatusTooManyRequests, "alice 3")
	refused(t, mustRaw(t, g, "127.0.0.3", path, "Authorization", alice), http.StatusTooManyRequests, "alice 3 from another address")
	mustOK(t, mustRaw(t, g, "", path, "Authorization", bob), "bob 1")

	// Anonymous clients count per client IP.
	mustOK(t, mustRaw(t, g, "127.0.0.1", path), "anonymous 1")
	mustOK(t, mustRaw(t, g, "127.0.0.1", path), "anonymous 2")
	refused(t, mustRaw(t, g, "127.0.0.1", path), http.StatusTooManyRequests, "anonymous 3")
	mustOK(t, mustRaw(t, g, "127.0.0.2", path), "anonymous from 127.0.0.2")

	a1.close()
	eventually(t, 5*time.Second, "alice's slot released", func() bool {
		s := mustRaw(t, g, "", path, "Authorization", alice)
		defer s.close()
		return s.resp.StatusCode == http.StatusOK
	})
}

// Behind a load balancer every client has the balancer's address: with
// trustedProxies, anonymous clients count per X-Forwarded-For address
// instead, and a client talking to the gateway directly cannot choose its
// address by sending the header.
func TestMaxStreamsPerIdentityBehindProxy(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "trustedProxies": ["127.0.0.1"], "subscriptions": {"maxStreamsPerIdentity": 1}`))
	path := "/operations/chat/MessageCreated?wg_sse=true&room=proxied"
	mustOK(t, mustRaw(t, g, "127.0.0.1", path, "X-Forwarded-For", "198.51.100.1"), "client 1 via the balancer")
	refused(t, mustRaw(t, g, "127.0.0.1", path, "X-Forwarded-For", "198.51.100.1"), http.StatusTooManyRequests, "client 1 again")
	refused(t, mustRaw(t, g, "127.0.0.1", path, "X-Forwarded-For", "203.0.113.7, 198.51.100.1"), http.StatusTooManyRequests, "client 1 forging a hop")
	mustOK(t, mustRaw(t, g, "127.0.0.1", path, "X-Forwarded-For", "198.51.100.2"), "client 2 via the balancer")

	// 127.0.0.2 is not a trusted proxy: its header is ignored.
	mustOK(t, mustRaw(t, g, "127.0.0.2", path, "X-Forwarded-For", "198.51.100.3"), "direct client")
	refused(t, mustRaw(t, g, "127.0.0.2", path, "X-Forwarded-For", "198.51.100.4"), http.StatusTooManyRequests, "direct client spoofing")

	// The request log names the client, not the balancer.
	eventually(t, 5*time.Second, "refused requests logged with the client address", func() bool {
		logs := g.logs.String()
		return regexp.MustCompile(`status=429 .* client=198\.51\.100\.1\n`).MatchString(logs) &&
			regexp.MustCompile(`status=429 .* client=127\.0\.0\.2\n`).MatchString(logs)
	})
}

func TestUpstreamMaxConnections(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith(`, "forwardHeaders": ["Authorization"], "maxConnections": 1`,
		`, "auth": {"jwt": {"secret": "`+limitsSecret+`"}}`))
	alice, bob := token(t, "alice"), token(t, "bob")
	a := mustRaw(t, g, "", "/operations/chat/MessageCreated?wg_sse=true&room=one", "Authorization", alice)
	mustOK(t, a, "alice")
	// The same identity multiplexes on its connection.
	a2 := mustRaw(t, g, "", "/operations/chat/MessageCreated?wg_sse=true&room=two", "Authorization", alice)
	mustOK(t, a2, "alice, second subscription")
	// Another identity needs a connection of its own: refused.
	refused(t, mustRaw(t, g, "", "/operations/chat/MessageCreated?wg_sse=true&room=one", "Authorization", bob),
		http.StatusServiceUnavailable, "bob")
	if st := d.Stats(); st.WebSocketsTotal != 1 {
		t.Errorf("upstream connections opened: %d", st.WebSocketsTotal)
	}
	// When alice's streams end, her connection goes and bob gets one.
	a.close()
	a2.close()
	eventually(t, 5*time.Second, "upstream connection released", func() bool {
		s := mustRaw(t, g, "", "/operations/chat/MessageCreated?wg_sse=true&room=one", "Authorization", bob)
		defer s.close()
		return s.resp.StatusCode == http.StatusOK
	})
}

// bigMessage is chat content of about 64 KB whose first word is its name.
func bigMessage(i int) string {
	return fmt.Sprintf("m%d %s", i, strings.Repeat("x", 64<<10))
}

// name is the first word of a bigMessage.
func name(content string) string {
	n, _, _ := strings.Cut(content, " ")
	return n
}

// metric reads one sample of the gateway's /metrics.
func metric(t *testing.T, g *testGateway, series string) string {
	t.Helper()
	for _, line := range strings.Split(readAll(t, get(t, g.URL+"/metrics")), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

// smallSendBuffers shrinks the gateway's send buffer on every accepted
// connection, so that a client that stops reading blocks the gateway's
// writer after its own receive buffer (128 KB by default on Linux) and a
// few KB more, instead of after megabytes of autotuned buffers. (A small
// SO_RCVBUF on the client would not do: set after connect, it leaves the
// sender crawling on zero-window probes even once the client reads.)
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// slowClient serves g again with small send buffers, and opens there a
// stream from a client that never reads its body, next to three clients
// that read. It returns the gateway at its new address.
func slowClient(t *testing.T, d *demo.Server, g *testGateway, room string) (*testGateway, *rawStream, []*sseStream) {
	t.Helper()
	srv := httptest.NewUnstartedServer(g.Gateway)
	srv.Listener = smallSendBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(func() {
		g.BeginShutdown()
		srv.Close()
	})
	g = &testGateway{Gateway: g.Gateway, URL: srv.URL, logs: g.logs}
	slow, err := rawRequest(g, "", "/operations/chat/MessageCreated?wg_sse=true&room="+room)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slow.close)
	mustOK(t, slow, "slow client")
	readers := make([]*sseStream, 3)
	for i := range readers {
		readers[i] = openSSE(t, roomURL(g, room))
	}
	waitActive(t, d, 1)
	return g, slow, readers
}

// A client that never reads is cut off (policy disconnect) without
// holding up the others, and the cut-off is counted and logged.
func TestSlowConsumerDisconnect(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"queueEvents": 2, "writeTimeout": "5s"}`))
	g, slow, readers := slowClient(t, d, g, "slow")
	// Fill the socket buffers until the gateway's writer blocks and the
	// slow client's queue overflows. Every reader keeps up meanwhile.
	sent := 0
	for g.topics.Stats("").Cut == 0 {
		if strings.Contains(g.logs.String(), "reason=write-failed") {
			t.Fatal("the write timed out before the queue overflowed (machine too slow for a 5s write timeout?)")
		}
		if sent == 100 {
			t.Fatal("100 messages of 64 KB and the client that never reads was not cut off")
		}
		sent++
		post(t, g, "slow", bigMessage(sent))
		for _, r := range readers {
			if c, _ := r.nextMessage(); name(c) != fmt.Sprintf("m%d", sent) {
				t.Fatalf("reader got %s, want m%d", name(c), sent)
			}
		}
	}
	t.Logf("cut off after %d messages (~%d MB)", sent, sent*64>>10)
	// Life goes on for the others. (They read each message before the
	// next is posted: with queues of 2, readers left behind by five 64 KB
	// messages on a loaded machine could be cut off too.)
	for i := sent + 1; i <= sent+5; i++ {
		post(t, g, "slow", bigMessage(i))
		for _, r := range readers {
			if c, _ := r.nextMessage(); name(c) != fmt.Sprintf("m%d", i) {
				t.Fatalf("reader got %s, want m%d", name(c), i)
			}
		}
	}
	if v := metric(t, g, "fireboom_slow_consumer_cutoffs_total"); v != "1" {
		t.Errorf("fireboom_slow_consumer_cutoffs_total = %q, want 1", v)
	}
	// The stream ends (its write fails at the write deadline when the
	// client reads nothing at all) and the end is logged as a cut-off.
	eventually(t, 10*time.Second, "slow-consumer log line", func() bool {
		return strings.Contains(g.logs.String(), "level=WARN msg=\"stream ended\" operation=chat/MessageCreated mode=sse reason=slow-consumer")
	})
	if v := metric(t, g, `fireboom_stream_ends_total{reason="slow-consumer"}`); v != "1" {
		t.Errorf(`fireboom_stream_ends_total{reason="slow-consumer"} = %q, want 1`, v)
	}
	// The connection is closed: reading it ends.
	_ = slow.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, slow.resp.Body); err == nil {
		// A clean end is fine too; a timeout is not.
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the slow client's connection stayed open")
	}
	if n := d.Stats().ActiveSubscriptions; n != 1 {
		t.Errorf("upstream subscriptions: %d", n)
	}
}

// A client cut off while it was not reading, which then reads what it was
// sent, gets its queued events, the SlowConsumer error and a retry hint
// (no done); reconnecting with Last-Event-ID, as EventSource does, it
// resumes without loss.
func TestSlowConsumerCutThenResume(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"queueEvents": 2}`))
	g, slow, readers := slowClient(t, d, g, "cut")
	sent := 0
	for g.topics.Stats("").Cut == 0 {
		if sent == 100 {
			t.Fatal("100 messages of 64 KB and the client that never reads was not cut off")
		}
		sent++
		post(t, g, "cut", bigMessage(sent))
		for _, r := range readers {
			r.nextMessage()
		}
	}
	for range 2 { // published after the cut-off
		sent++
		post(t, g, "cut", bigMessage(sent))
		for _, r := range readers {
			r.nextMessage()
		}
	}
	// The client reads again: its stream ends with the error and the hint.
	_ = slow.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(slow.resp.Body)
	var got []string
	lastID := ""
	for {
		block, err := readBlock(br)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if strings.HasPrefix(block, "data: {\"errors\"") {
			want := `data: {"errors":[{"message":"the client did not read fast enough; reconnect with Last-Event-ID to resume","extensions":{"code":"SlowConsumer"}}]}` + "\n\n"
			if block != want {
				t.Fatalf("error event %q, want %q", block, want)
			}
			break
		}
		var v struct {
			Data struct {
				MessageCreated struct{ Content string } `json:"messageCreated"`
			} `json:"data"`
		}
		id, data, _ := strings.Cut(strings.TrimPrefix(block, "id: "), "\ndata: ")
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("block %.200q: %v", block, err)
		}
		got = append(got, name(v.Data.MessageCreated.Content))
		lastID = id
	}
	if rest, _ := io.ReadAll(br); string(rest) != "retry: 1000\n\n" {
		t.Fatalf("after the error: %q, want the retry hint and the end", rest)
	}
	// Reconnect with the last id it got: the rest, then live events.
	r := openSSE(t, roomURL(g, "cut"), "Last-Event-ID", lastID)
	for range sent - len(got) {
		c, _ := r.nextMessage()
		got = append(got, name(c))
	}
	sent++
	post(t, g, "cut", bigMessage(sent))
	c, _ := r.nextMessage()
	got = append(got, name(c))
	for i, n := range got {
		if n != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("messages across the cut-off: %v", got)
		}
	}
	if len(got) != sent {
		t.Fatalf("%d messages of %d: %v", len(got), sent, got)
	}
	if st := d.Stats(); st.SubscriptionsStarted != 1 {
		t.Errorf("upstream subscriptions started: %d", st.SubscriptionsStarted)
	}
}

// With drop-oldest the slow client loses its oldest queued events and is
// told so with one gap event; the others lose nothing.
func TestSlowConsumerDropOldest(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"queueEvents": 4, "slowConsumer": "drop-oldest"}`))
	g, slow, readers := slowClient(t, d, g, "drop")
	ids := map[string]string{} // message name → event id, from a reader
	sent := 0
	publish := func() {
		sent++
		post(t, g, "drop", bigMessage(sent))
		for i, r := range readers {
			c, id := r.nextMessage()
			if name(c) != fmt.Sprintf("m%d", sent) {
				t.Fatalf("reader got %s, want m%d", name(c), sent)
			}
			if i == 0 {
				ids[name(c)] = id
			}
		}
	}
	for g.topics.Stats("").Dropped == 0 {
		if sent == 100 {
			t.Fatal("100 messages of 64 KB and nothing was dropped for the client that never reads")
		}
		publish()
	}
	for range 3 {
		publish()
	}
	// Now the slow client reads: a contiguous run from m1, one gap naming
	// what it missed, then a contiguous run to the newest message.
	_ = slow.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(slow.resp.Body)
	var got []string // message names, and "gap"
	var gapRaw string
	for len(got) == 0 || got[len(got)-1] != fmt.Sprintf("m%d", sent) {
		block, err := readBlock(br)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		switch {
		case strings.Contains(block, "event: gap\n"):
			got = append(got, "gap")
			gapRaw = block
		case strings.Contains(block, `"messageCreated"`):
			var v struct {
				Data struct {
					MessageCreated struct{ Content string } `json:"messageCreated"`
				} `json:"data"`
			}
			_, data, _ := strings.Cut(block, "\ndata: ")
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatalf("block %.200q: %v", block, err)
			}
			got = append(got, name(v.Data.MessageCreated.Content))
		}
	}
	gap := -1
	for i, n := range got {
		if n == "gap" {
			if gap >= 0 {
				t.Fatalf("two gaps: %v", got)
			}
			gap = i
		}
	}
	if gap < 0 {
		t.Fatalf("no gap: %v", got)
	}
	for i := range gap {
		if got[i] != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("before the gap: %v", got)
		}
	}
	resume := 0
	fmt.Sscanf(got[gap+1], "m%d", &resume)
	for i, n := range got[gap+1:] {
		if n != fmt.Sprintf("m%d", resume+i) {
			t.Fatalf("after the gap: %v", got)
		}
	}
	missed := resume - 1 - gap
	lastMissed := ids[fmt.Sprintf("m%d", resume-1)]
	want := fmt.Sprintf("id: %s\nevent: gap\ndata: {\"missed\":%d,\"lastEventId\":\"%s\",\"reason\":\"slow-consumer\"}\n\n", lastMissed, missed, lastMissed)
	if gapRaw != want {
		t.Errorf("gap event %q, want %q", gapRaw, want)
	}
	t.Logf("slow client: %d delivered, gap of %d, %d delivered", gap, missed, len(got)-gap-1)
	if v := metric(t, g, "fireboom_slow_consumer_cutoffs_total"); v != "0" {
		t.Errorf("cut-offs under drop-oldest: %s", v)
	}
}

// readBlock reads one event-stream block (up to a blank line), skipping
// heartbeats.
func readBlock(br *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return sb.String(), err
		}
		if line == "\n" {
			if sb.Len() == 0 {
				continue
			}
			sb.WriteString(line)
			return sb.String(), nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		sb.WriteString(line)
	}
}
