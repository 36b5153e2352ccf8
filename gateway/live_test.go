package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream"
	"github.com/fireboom/fireboom/upstream/demo"
)

// Live queries through the real gateway and the real demo upstream. The
// demo's counters (Stats().Operations by operation name) are the witness of
// how often the upstream was polled.

// liveConfig serves the repository's operations with liveInterval set on
// the given operations, an HMAC secret (for admin tokens) and heartbeat.
func liveConfig(interval, heartbeat string, ops ...string) string {
	var settings []string
	for _, op := range ops {
		settings = append(settings, fmt.Sprintf(`"%s": {"liveInterval": %q}`, op, interval))
	}
	return `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"auth": {"jwt": {"secret": "s3cret"}}, "subscriptions": {"heartbeat": "` + heartbeat + `"},
		"operations": {` + strings.Join(settings, ", ") + `}}`
}

func pricePolls(d *demo.Server) int64 { return d.Stats().Operations["Price"] }

// setPrice runs the admin-only stocks/SetPrice mutation with a minted
// admin token.
func setPrice(t testing.TB, g *testGateway, symbol string, price float64) {
	t.Helper()
	tok, err := auth.Mint(auth.Config{Secret: "s3cret"}, "root", []string{"admin"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"symbol":%q,"price":%v}`, symbol, price)
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/operations/stocks/SetPrice", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("setPrice: %d %s", resp.StatusCode, b)
	}
}

// Fifty live clients of one query share one poller: the upstream sees about
// one query per interval, not fifty.
func TestLiveSharedPolling(t *testing.T) {
	const clients, interval = 50, 100 * time.Millisecond
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, liveConfig(interval.String(), "1h", "stocks/Price"))
	url := g.URL + "/operations/stocks/Price?symbol=ACME&wg_live=true&wg_sse=true"

	before := pricePolls(d)
	start := time.Now()
	streams := make([]*sseStream, clients)
	firsts := map[string]int{}
	for i := range streams {
		streams[i] = openSSE(t, url)
		firsts[streams[i].next().Raw]++
	}
	if len(firsts) != 1 {
		t.Fatalf("clients got different first events: %v", firsts)
	}
	for raw := range firsts {
		want := withIDs(t, raw, "id: *\ndata: {\"data\":{\"stockPrice\":{\"symbol\":\"ACME\",\"price\":100,\"seq\":0}}}\n\n")
		if raw != want {
			t.Fatalf("first event %q, want %q", raw, want)
		}
	}
	if st := g.topics.Stats(kindLive); st.Topics != 1 || st.Clients != clients {
		t.Fatalf("pollers %+v, want 1 poller with %d clients", st, clients)
	}
	// The window has to pass in real time: it is what is measured.
	time.Sleep(time.Second)
	polls := pricePolls(d) - before
	elapsed := time.Since(start)
	bound := int64(elapsed/interval) + 2
	t.Logf("%d clients, interval %v: %d upstream queries in %v (bound %d)", clients, interval, polls, elapsed.Round(time.Millisecond), bound)
	if polls < 1 || polls > bound {
		t.Fatalf("%d upstream queries in %v at %v, want 1..%d", polls, elapsed, interval, bound)
	}
	for _, s := range streams {
		s.close()
	}
	eventually(t, 5*time.Second, "the poller stops when its last client left", func() bool {
		return g.topics.Stats(kindLive).Topics == 0
	})
}

// Nothing is pushed while the result is unchanged; a mutation that changes
// it is pushed at the next poll. Ids grow; the metrics count the polls.
func TestLivePushesOnlyChanges(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, liveConfig("50ms", "1h", "stocks/Price"))
	s := openSSE(t, g.URL+"/operations/stocks/Price?symbol=ACME&wg_live=true&wg_sse=true")
	first := s.next()
	want := withIDs(t, first.Raw, "id: *\ndata: {\"data\":{\"stockPrice\":{\"symbol\":\"ACME\",\"price\":100,\"seq\":0}}}\n\n")
	if first.Raw != want {
		t.Fatalf("first event %q, want %q", first.Raw, want)
	}
	base := pricePolls(d)
	eventually(t, 5*time.Second, "five more polls", func() bool { return pricePolls(d) >= base+5 })
	s.none(20 * time.Millisecond)

	setPrice(t, g, "ACME", 123.5)
	ev := s.next()
	want = withIDs(t, first.Raw+ev.Raw, "id: *\ndata: {\"data\":{\"stockPrice\":{\"symbol\":\"ACME\",\"price\":100,\"seq\":0}}}\n\n"+
		"id: *\ndata: {\"data\":{\"stockPrice\":{\"symbol\":\"ACME\",\"price\":123.5,\"seq\":1}}}\n\n")
	if first.Raw+ev.Raw != want {
		t.Fatalf("events %q, want %q", first.Raw+ev.Raw, want)
	}
	base = pricePolls(d)
	eventually(t, 5*time.Second, "three more polls", func() bool { return pricePolls(d) >= base+3 })
	s.none(20 * time.Millisecond)

	m := readAll(t, get(t, g.URL+"/metrics"))
	for _, line := range []string{`fireboom_live_pollers 1`, `fireboom_live_polls_total{result="changed"} 2`} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
	if !strings.Contains(m, `fireboom_live_polls_total{result="unchanged"}`) {
		t.Error("metrics lack the unchanged polls")
	}
}

// wg_json_patch=true: the full result first, then RFC 6902 patches that
// turn it into the new result; a client without the flag on the same
// poller gets full results. JSON stream mode works the same way.
func TestLiveJSONPatch(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, liveConfig("50ms", "1h", "chat/Messages"))
	for i := 1; i <= 4; i++ {
		post(t, g, "patchroom", fmt.Sprintf("message %d, long enough that a patch is worth it", i))
	}
	base := g.URL + "/operations/chat/Messages?room=patchroom&wg_live=true"
	patches := openSSE(t, base+"&wg_sse=true&wg_json_patch=true")
	lines := openLines(t, base+"&wg_json_patch=true")
	full := openSSE(t, base+"&wg_sse=true")

	state := patches.next().Data
	if !strings.HasPrefix(state, `{"data":{"messages":[`) {
		t.Fatalf("first event is not the full result: %s", state)
	}
	lineState := lines.next()
	if lineState != state || full.next().Data != state {
		t.Fatalf("first results differ:\n%s\n%s", lineState, state)
	}
	if st := g.topics.Stats(kindLive); st.Topics != 1 {
		t.Fatalf("patch and full clients of one query use %d pollers", st.Topics)
	}

	post(t, g, "patchroom", "message 5")
	want := readAll(t, get(t, g.URL+"/operations/chat/Messages?room=patchroom"))
	p := patches.next().Data
	if !strings.HasPrefix(p, `[{"op":"add","path":"/data/messages/4","value":{"id":"5","author":"anonymous","content":"message 5","createdAt":`) {
		t.Fatalf("not the expected patch: %s", p)
	}
	if lp := lines.next(); lp != p {
		t.Fatalf("JSON stream patch %s, SSE patch %s", lp, p)
	}
	if f := full.next().Data; f != want {
		t.Fatalf("full client got %s, want %s", f, want)
	}
	if len(p) >= len(want) {
		t.Fatalf("patch (%d bytes) not smaller than the result (%d)", len(p), len(want))
	}
	patch, err := jsonpatch.DecodePatch([]byte(p))
	if err != nil {
		t.Fatal(err)
	}
	next, err := patch.Apply([]byte(state))
	if err != nil {
		t.Fatal(err)
	}
	if !jsonpatch.Equal(next, []byte(want)) {
		t.Fatalf("patched state %s, want %s", next, want)
	}
}

// lineStream reads a JSON stream (one JSON value and a blank line each).
type lineStream struct {
	t     testing.TB
	lines chan string
	done  chan struct{}
	body  io.Closer
}

func openLines(t testing.TB, url string) *lineStream {
	t.Helper()
	resp := get(t, url)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &lineStream{t: t, lines: make(chan string, 64), done: make(chan struct{}), body: resp.Body}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				s.lines <- line
			}
		}
	}()
	t.Cleanup(func() { s.body.Close(); <-s.done })
	return s
}

func (s *lineStream) next() string {
	s.t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(5 * time.Second):
		s.t.Fatal("no line within 5s")
	}
	return ""
}

// Statuses decided before any stream starts, and once mode.
func TestLiveRequests(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, liveConfig("50ms", "1h", "stocks/Price", "chat/PostMessage", "chat/MyMessages"))

	resp := get(t, g.URL+"/operations/chat/Messages?room=r&wg_live=true")
	if b := readAll(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, `\"chat/Messages\": {\"liveInterval\": \"2s\"}`) {
		t.Errorf("not live: %d %s", resp.StatusCode, b)
	}
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage?wg_live=true", "application/json", strings.NewReader(`{"room":"r","content":"c"}`))
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != http.StatusBadRequest ||
		b != `{"code":"InputValidationError","message":"wg_live=true is for queries; chat/PostMessage is a mutation","errors":[{"propertyPath":"/wg_live","message":"for queries only"}]}` {
		t.Errorf("live mutation: %d %s", resp.StatusCode, b)
	}
	resp = get(t, g.URL+"/operations/stocks/Price?symbol=ACME&wg_live=maybe")
	if b := readAll(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad flag: %d %s", resp.StatusCode, b)
	}
	resp = get(t, g.URL+"/operations/chat/MyMessages?wg_live=true")
	if b := readAll(t, resp); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", resp.StatusCode, b)
	}

	resp = get(t, g.URL+"/operations/stocks/Price?symbol=ACME&wg_live=true&wg_subscribe_once=true")
	b := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" ||
		b != `{"data":{"stockPrice":{"symbol":"ACME","price":100,"seq":0}}}` {
		t.Errorf("once: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	eventually(t, 5*time.Second, "the once client's poller stops", func() bool { return g.topics.Stats(kindLive).Topics == 0 })
}

// A token that expires ends a live stream as it ends a subscription.
func TestLiveTokenExpiry(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"},
		"auth": {"jwt": {"secret": "s3cret", "leeway": "1s"}}, "subscriptions": {"heartbeat": "1h"},
		"operations": {"chat/MyMessages": {"liveInterval": "50ms"}}}`)
	s := openSSE(t, g.URL+"/operations/chat/MyMessages?wg_live=true", "Authorization", "Bearer "+mintTTL(t, "ann", 2*time.Second))
	if ev := s.next(); ev.Data != `{"data":{"myMessages":[]}}` {
		t.Fatalf("first event %q", ev.Raw)
	}
	if ev := s.next(); ev.Raw != "data: {\"errors\":[{\"message\":\"token expired\",\"extensions\":{\"code\":\"TokenExpired\"}}]}\n\n" {
		t.Fatalf("expiry event %q", ev.Raw)
	}
	if ev := s.next(); ev.Raw != "event: done\ndata: done\n\n" {
		t.Fatalf("end %q", ev.Raw)
	}
	s.ended()
}

// Resume: a client that reconnects with the id of the newest result gets
// nothing until the result changes; an upstream outage is pushed once as
// an ordinary event, the stream stays open, and recovery pushes the result.
func TestLiveResumeAndOutage(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, liveConfig("50ms", "100ms", "stocks/Price"))
	url := g.URL + "/operations/stocks/Price?symbol=ACME&wg_live=true&wg_sse=true"
	a := openSSE(t, url) // keeps the poller (and its ids) alive
	first := a.next()

	b := openSSE(t, url, "Last-Event-ID", first.ID)
	resumed := openSSE(t, url, "Last-Event-ID", "elsewhere-1")
	if ev := resumed.next(); ev.Data != first.Data {
		t.Fatalf("unknown id: got %q, want the newest result", ev.Raw)
	}
	b.none(300 * time.Millisecond) // heartbeats only: b holds the newest result
	setPrice(t, g, "ACME", 99)
	if ev := b.next(); !strings.Contains(ev.Data, `"price":99`) || ev.ID == first.ID {
		t.Fatalf("after the change: %q", ev.Raw)
	}
	a.next()

	addr := d.Addr()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	outage := `{"errors":[{"message":"the upstream could not be reached; retrying","extensions":{"code":"UpstreamUnavailable"}}]}`
	if ev := a.next(); ev.Data != outage || !ev.HasID {
		t.Fatalf("outage event %q", ev.Raw)
	}
	a.none(300 * time.Millisecond) // pushed once, and the stream goes on
	d2, err := demo.StartAt(addr, demo.Options{TickInterval: -1})
	if err != nil {
		t.Skipf("cannot restart the upstream on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = d2.Close() })
	// The restarted demo starts from its initial prices again.
	if ev := a.next(); ev.Data != `{"data":{"stockPrice":{"symbol":"ACME","price":100,"seq":0}}}` {
		t.Fatalf("after recovery %q", ev.Raw)
	}
}

// The first poll failing answers 502 before any stream starts.
func TestLiveUpstreamDown(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, liveConfig("50ms", "1h", "stocks/Price"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	resp := get(t, g.URL+"/operations/stocks/Price?symbol=ACME&wg_live=true&wg_sse=true")
	var e struct{ Code string }
	if err := json.Unmarshal([]byte(readAll(t, resp)), &e); err != nil || resp.StatusCode != http.StatusBadGateway || e.Code != "UpstreamUnavailable" {
		t.Fatalf("status %d code %q (%v)", resp.StatusCode, e.Code, err)
	}
	eventually(t, 5*time.Second, "no poller left", func() bool { return g.topics.Stats(kindLive).Topics == 0 })
}

// liveKey: the same request gives the same key whatever the header or
// variable order; any difference in what is sent upstream separates.
func TestLiveKey(t *testing.T) {
	req := func(h http.Header, vars string) string {
		return liveKey(upstream.Request{Query: "query Q { q }", OperationName: "Q", Variables: json.RawMessage(vars), Header: h}, time.Second)
	}
	a := req(http.Header{"Authorization": {"Bearer x"}, "X-A": {"1"}}, `{"a":1,"b":[1,2]}`)
	if b := req(http.Header{"X-A": {"1"}, "Authorization": {"Bearer x"}}, `{ "b":[1,2], "a":1 }`); a != b {
		t.Error("equal requests, different keys")
	}
	for name, other := range map[string]string{
		"token":     req(http.Header{"Authorization": {"Bearer y"}, "X-A": {"1"}}, `{"a":1,"b":[1,2]}`),
		"variables": req(http.Header{"Authorization": {"Bearer x"}, "X-A": {"1"}}, `{"a":1.0,"b":[1,2]}`),
		"header":    req(http.Header{"Authorization": {"Bearer x"}}, `{"a":1,"b":[1,2]}`),
	} {
		if other == a {
			t.Errorf("%s differs but the keys are equal", name)
		}
	}
}
