package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/fireboom/fireboom/upstream/demo"
)

// Fan-out through the real gateway and the real demo upstream over
// loopback: deduplication, multiplexing, isolation. The upstream's own
// counters (demo Stats) are the witness. Slow consumers and limits are in
// limits_test.go, resuming and gaps in resume_test.go.

// sseEvent is one dispatched event-stream block, parsed as EventSource
// does (comments skipped; a block holding only retry: is kept so that tests
// can see the hint).
type sseEvent struct {
	ID    string
	HasID bool
	Event string // "" for message events
	Data  string
	Retry string
	Raw   string // the block's bytes, blank line included
}

// sseStream reads one SSE response on its own goroutine.
type sseStream struct {
	t      testing.TB
	resp   *http.Response
	events chan sseEvent
	done   chan struct{} // closed when the body ended or failed
	once   sync.Once
}

// openSSE opens an SSE stream and fails unless it answers 200. header holds
// pairs of name, value.
func openSSE(t testing.TB, url string, header ...string) *sseStream {
	t.Helper()
	resp := get(t, url, append([]string{"Accept", "text/event-stream"}, header...)...)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, readAll(t, resp))
	}
	return readSSE(t, resp)
}

// readSSE parses the SSE body of resp as it arrives.
func readSSE(t testing.TB, resp *http.Response) *sseStream {
	s := &sseStream{t: t, resp: resp, events: make(chan sseEvent, 4096), done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) read() {
	defer close(s.done)
	r := bufio.NewReader(s.resp.Body)
	var raw strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.HasPrefix(line, ":") && raw.Len() == 0 {
			continue // a heartbeat is not part of any event
		}
		raw.WriteString(line)
		if line != "\n" {
			continue
		}
		// A blank line ends the block: its fields as go-sse reads them.
		ev := sseEvent{Raw: raw.String()}
		raw.Reset()
		var m gosse.Message
		if m.UnmarshalText([]byte(ev.Raw)) != nil {
			continue
		}
		ev.ID, ev.HasID, ev.Event = m.ID.String(), m.ID.IsSet(), m.Type.String()
		if m.Retry > 0 {
			ev.Retry = strconv.FormatInt(m.Retry.Milliseconds(), 10)
		}
		for e, err := range gosse.Read(strings.NewReader(ev.Raw), &gosse.ReadConfig{MaxEventSize: len(ev.Raw) + 1}) {
			if err == nil {
				ev.Data = e.Data
			}
		}
		s.events <- ev
	}
}

// next returns the next event, failing if none comes within 5 s or the
// stream ends first.
func (s *sseStream) next() sseEvent {
	s.t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(5 * time.Second):
	}
	select {
	case ev := <-s.events:
		return ev
	case <-s.done:
		s.t.Fatal("stream ended while an event was expected")
	default:
		s.t.Fatal("no event within 5s")
	}
	return sseEvent{}
}

// none checks that no event arrives within d.
func (s *sseStream) none(d time.Duration) {
	s.t.Helper()
	select {
	case ev := <-s.events:
		s.t.Fatalf("unexpected event %q", ev.Raw)
	case <-time.After(d):
	}
}

// ended waits until the response body ended and every event was taken.
func (s *sseStream) ended() {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.t.Fatal("stream did not end within 5s")
	}
	select {
	case ev := <-s.events:
		s.t.Fatalf("unread event %q at the end", ev.Raw)
	default:
	}
}

// close drops the connection and waits for the reader.
func (s *sseStream) close() {
	s.once.Do(func() {
		_ = s.resp.Body.Close()
		<-s.done
	})
}

// nextMessage reads the next event and returns the chat message content
// it carries.
func (s *sseStream) nextMessage() (content, id string) {
	s.t.Helper()
	ev := s.next()
	var v struct {
		Data struct {
			MessageCreated struct{ Content string } `json:"messageCreated"`
		} `json:"data"`
	}
	if ev.Event != "" || !ev.HasID || json.Unmarshal([]byte(ev.Data), &v) != nil || v.Data.MessageCreated.Content == "" {
		s.t.Fatalf("not a message event: %q", ev.Raw)
	}
	return v.Data.MessageCreated.Content, ev.ID
}

// expectMessages reads len(want) message events and checks their contents
// in order; it returns their ids.
func (s *sseStream) expectMessages(want ...string) []string {
	s.t.Helper()
	ids := make([]string, len(want))
	for i, w := range want {
		got, id := s.nextMessage()
		if got != w {
			s.t.Fatalf("message %d: got %q, want %q (all wanted: %q)", i, got, w, want)
		}
		ids[i] = id
	}
	return ids
}

// post publishes a chat message through the gateway.
func post(t testing.TB, g *testGateway, room, content string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"room": room, "content": content})
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %d %s", resp.StatusCode, b)
	}
}

// postN publishes messages named prefix+from ... prefix+to.
func postN(t testing.TB, g *testGateway, room, prefix string, from, to int) []string {
	t.Helper()
	var out []string
	for i := from; i <= to; i++ {
		c := fmt.Sprintf("%s%d", prefix, i)
		post(t, g, room, c)
		out = append(out, c)
	}
	return out
}

func roomURL(g *testGateway, room string) string {
	return g.URL + "/operations/chat/MessageCreated?wg_sse=true&room=" + room
}

// waitActive waits until the demo holds exactly n subscriptions.
func waitActive(t testing.TB, d *demo.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.WaitActive(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// configWith is defaultConfig with more upstream settings (up, starting
// with a comma) and more top-level settings (extra, likewise).
func configWith(up, extra string) string {
	return `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"` + up + `}` + extra + `}`
}

func TestDedupOneUpstreamSubscription(t *testing.T) {
	const n = 5
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	streams := make([]*sseStream, n)
	for i := range streams {
		streams[i] = openSSE(t, roomURL(g, "dedup"))
	}
	waitActive(t, d, 1)
	if st := d.Stats(); st.SubscriptionsStarted != 1 || st.ActiveSubscriptions != 1 || st.WebSocketsOpen != 1 {
		t.Fatalf("%d identical streams: upstream started %d, active %d, websockets %d; want 1, 1, 1",
			n, st.SubscriptionsStarted, st.ActiveSubscriptions, st.WebSocketsOpen)
	}
	want := postN(t, g, "dedup", "m", 1, 3)
	first := streams[0].expectMessages(want...)
	for _, s := range streams[1:] {
		if ids := s.expectMessages(want...); strings.Join(ids, " ") != strings.Join(first, " ") {
			t.Errorf("ids differ between clients of one subscription: %q vs %q", ids, first)
		}
	}
	// A late joiner gets every event from the moment it joined, and only
	// those.
	late := openSSE(t, roomURL(g, "dedup"))
	want = postN(t, g, "dedup", "m", 4, 5)
	late.expectMessages(want...)
	for _, s := range streams {
		s.expectMessages(want...)
	}
	if st := d.Stats(); st.SubscriptionsStarted != 1 {
		t.Errorf("upstream subscriptions started: %d", st.SubscriptionsStarted)
	}
	// A different variable is a different upstream subscription on the
	// same connection.
	openSSE(t, roomURL(g, "other"))
	waitActive(t, d, 2)
	if st := d.Stats(); st.SubscriptionsStarted != 2 || st.WebSocketsOpen != 1 {
		t.Errorf("other room: started %d, websockets %d", st.SubscriptionsStarted, st.WebSocketsOpen)
	}
}

func TestDedupOptOut(t *testing.T) {
	const n = 4
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "operations": {"chat/MessageCreated": {"dedup": false}}`))
	streams := make([]*sseStream, n)
	for i := range streams {
		streams[i] = openSSE(t, roomURL(g, "solo"))
	}
	waitActive(t, d, n)
	if st := d.Stats(); st.SubscriptionsStarted != n || st.ActiveSubscriptions != n || st.WebSocketsOpen != 1 {
		t.Fatalf(`"dedup": false: upstream started %d, active %d, websockets %d; want %d, %d, 1`,
			st.SubscriptionsStarted, st.ActiveSubscriptions, st.WebSocketsOpen, n, n)
	}
	want := postN(t, g, "solo", "m", 1, 2)
	ids := map[string]bool{}
	for _, s := range streams {
		for _, id := range s.expectMessages(want...) {
			ids[id] = true
		}
	}
	if len(ids) != 2*n {
		t.Errorf("separate subscriptions share ids: %d distinct of %d", len(ids), 2*n)
	}
}

func TestReplayLastGivesLateJoinerTheLatestEvent(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "operations": {"chat/MessageCreated": {"replayLast": true}}`))
	a := openSSE(t, roomURL(g, "state"))
	waitActive(t, d, 1) // the upstream subscribed (it does so after the gateway wrote subscribe)
	postN(t, g, "state", "m", 1, 2)
	aIDs := a.expectMessages("m1", "m2")
	b := openSSE(t, roomURL(g, "state"))
	bIDs := b.expectMessages("m2")
	if bIDs[0] != aIDs[1] {
		t.Errorf("replayed event id %q, the original was %q", bIDs[0], aIDs[1])
	}
	postN(t, g, "state", "m", 3, 3)
	a.expectMessages("m3")
	b.expectMessages("m3")
	b.none(50 * time.Millisecond)
	if st := d.Stats(); st.SubscriptionsStarted != 1 {
		t.Errorf("upstream subscriptions started: %d", st.SubscriptionsStarted)
	}

	// Without replayLast a joiner waits for the next event.
	g2 := newGateway(t, d, defaultConfig)
	c := openSSE(t, roomURL(g2, "plain"))
	waitActive(t, d, 2)
	post(t, g2, "plain", "p1")
	c.expectMessages("p1")
	late := openSSE(t, roomURL(g2, "plain"))
	late.none(100 * time.Millisecond)
}

func TestLastClientLeavingCompletesUpstream(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	a := openSSE(t, roomURL(g, "leave"))
	b := openSSE(t, roomURL(g, "leave"))
	waitActive(t, d, 1)
	a.close()
	eventually(t, 5*time.Second, "first client detached", func() bool { return g.topics.Stats("").Clients == 1 })
	if n := d.Stats().ActiveSubscriptions; n != 1 {
		t.Fatalf("first client leaving: %d active upstream subscriptions, want 1", n)
	}
	post(t, g, "leave", "still here")
	b.expectMessages("still here")
	b.close()
	left := time.Now()
	eventually(t, time.Second, "upstream subscription completed", func() bool { return d.Stats().ActiveSubscriptions == 0 })
	t.Logf("completed upstream %v after the last client left", time.Since(left))
}

func TestMultiplexingOneConnectionPerIdentity(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	for _, room := range []string{"a", "b", "c"} {
		openSSE(t, roomURL(g, room))
	}
	openSSE(t, g.URL+"/operations/Countdown?wg_sse=true&from=1000&interval=60000")
	waitActive(t, d, 4)
	if st := d.Stats(); st.ActiveSubscriptions != 4 || st.WebSocketsOpen != 1 || st.WebSocketsTotal != 1 {
		t.Fatalf("4 subscriptions, one identity: active %d, websockets open %d (total %d); want 4, 1, 1",
			st.ActiveSubscriptions, st.WebSocketsOpen, st.WebSocketsTotal)
	}

	d2 := startDemo(t, demo.Options{})
	g2 := newGateway(t, d2, configWith(`, "maxOperationsPerConnection": 2`, ""))
	for _, room := range []string{"a", "b", "c"} {
		openSSE(t, roomURL(g2, room))
	}
	waitActive(t, d2, 3)
	if st := d2.Stats(); st.ActiveSubscriptions != 3 || st.WebSocketsOpen != 2 {
		t.Fatalf("maxOperationsPerConnection 2, 3 subscriptions: active %d, websockets %d; want 3, 2",
			st.ActiveSubscriptions, st.WebSocketsOpen)
	}
}

// The 1,000 distinct subscriptions of one identity ride on at most 10
// upstream connections (maxOperationsPerConnection defaults to 100). The
// streams are raw HTTP/1.1 connections that read only the response head,
// so that the test holds no goroutine per stream.
func TestThousandSubscriptionsOnTenConnections(t *testing.T) {
	const n, workers = 1000, 50
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	conns := make([]*rawStream, n)
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				s, err := dialStream(g, fmt.Sprintf("/operations/Countdown?wg_sse=true&interval=60000&from=%d", 1000+i))
				if err != nil {
					errs <- err
					return
				}
				conns[i] = s
			}
		})
	}
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.close()
			}
		}
	})
	start := time.Now()
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d streams open after %v", n, time.Since(start))
	waitActive(t, d, n)
	st := d.Stats()
	t.Logf("%d streams: upstream subscriptions %d, websockets %d", n, st.ActiveSubscriptions, st.WebSocketsOpen)
	if st.ActiveSubscriptions != n || st.SubscriptionsStarted != n {
		t.Errorf("upstream subscriptions: active %d, started %d; want %d", st.ActiveSubscriptions, st.SubscriptionsStarted, n)
	}
	if st.WebSocketsOpen > 10 || st.WebSocketsTotal > 10 {
		t.Errorf("%d distinct subscriptions of one identity on %d upstream connections (%d ever); want at most 10",
			n, st.WebSocketsOpen, st.WebSocketsTotal)
	}
	for _, c := range conns {
		c.close()
	}
	eventually(t, 10*time.Second, "every upstream subscription completed", func() bool { return d.Stats().ActiveSubscriptions == 0 })
	t.Logf("all completed after %v", time.Since(start))
}

// isolationGateway serves the demo chat plus a subscription whose room is
// the caller's token subject, with forwarded Authorization and an HMAC
// secret.
func isolationGateway(t *testing.T, d *demo.Server) *testGateway {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "chat"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"MessageCreated.graphql", "PostMessage.graphql"} {
		b, err := os.ReadFile(filepath.Join(opsDir(t), "chat", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "chat", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	my := `subscription MyRoom($room: String! @fromClaim(name: SUB)) {
  messageCreated(room: $room) { id author content createdAt }
}
`
	if err := os.WriteFile(filepath.Join(dir, "MyRoom.graphql"), []byte(my), 0o644); err != nil {
		t.Fatal(err)
	}
	ops, _ := json.Marshal(dir)
	return newGateway(t, d, `{"operationsDir": `+string(ops)+`, "upstream": {"url": "${UPSTREAM}", "forwardHeaders": ["Authorization"]},
		"auth": {"jwt": {"secret": "`+limitsSecret+`"}}}`)
}

// Clients whose forwarded Authorization differs never share an upstream
// subscription or connection, nor each other's replay ring; a claim-filled
// variable keeps their events apart.
func TestIsolationAcrossIdentities(t *testing.T) {
	var mu sync.Mutex
	upgrades := map[string]int{} // Authorization of each WebSocket upgrade
	d := startDemo(t, demo.Options{OnRequest: func(r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			mu.Lock()
			upgrades[r.Header.Get("Authorization")]++
			mu.Unlock()
		}
	}})
	g := isolationGateway(t, d)
	alice, bob := token(t, "alice"), token(t, "bob")
	url := g.URL + "/operations/chat/MessageCreated?wg_sse=true&room=lobby"
	a := openSSE(t, url, "Authorization", alice)
	a2 := openSSE(t, url, "Authorization", alice)
	b := openSSE(t, url, "Authorization", bob)
	anon := openSSE(t, url)
	waitActive(t, d, 3)
	if st := d.Stats(); st.SubscriptionsStarted != 3 || st.WebSocketsOpen != 3 {
		t.Fatalf("3 identities: upstream subscriptions %d, websockets %d; want 3, 3", st.SubscriptionsStarted, st.WebSocketsOpen)
	}
	mu.Lock()
	if len(upgrades) != 3 || upgrades[alice] != 1 || upgrades[bob] != 1 || upgrades[""] != 1 {
		t.Errorf("upgrades by Authorization: %v", upgrades)
	}
	mu.Unlock()
	for _, p := range d.Stats().InitPayloads {
		tok, _ := p["authToken"].(string)
		hdrs, _ := p["headers"].(map[string]any)
		if auth, _ := hdrs["Authorization"].(string); tok != "" && auth != "Bearer "+tok {
			t.Errorf("init payload mixes identities: %v", p)
		}
	}
	post(t, g, "lobby", "m1")
	incs := map[string]string{}
	for who, s := range map[string]*sseStream{"alice": a, "alice2": a2, "bob": b, "anonymous": anon} {
		incs[who] = incarnation(s.expectMessages("m1")[0])
	}
	if incs["alice"] != incs["alice2"] || len(map[string]bool{incs["alice"]: true, incs["bob"]: true, incs["anonymous"]: true}) != 3 {
		t.Errorf("incarnations %v: alice's two streams share one, the identities none", incs)
	}
	// Bob's id on Alice's stream replays nothing of Bob's ring.
	post(t, g, "lobby", "m2")
	bobIDs := b.expectMessages("m2")
	aliceIDs := a.expectMessages("m2")
	a2.expectMessages("m2")
	anon.expectMessages("m2")
	x := openSSE(t, url, "Authorization", alice, "Last-Event-ID", bobIDs[0])
	if ev := x.next(); ev.Event != "gap" || ev.ID != aliceIDs[0] || !strings.Contains(ev.Data, `"reason":"restarted"`) {
		t.Fatalf("alice resuming with bob's id: %q", ev.Raw)
	}
	x.none(50 * time.Millisecond)

	// A variable filled from the token: each identity sees only its room.
	ma := openSSE(t, g.URL+"/operations/MyRoom?wg_sse=true", "Authorization", alice)
	mb := openSSE(t, g.URL+"/operations/MyRoom?wg_sse=true", "Authorization", bob)
	waitActive(t, d, 5)
	post(t, g, "bob", "for bob")
	mb.expectMessages("for bob")
	post(t, g, "alice", "for alice")
	ma.expectMessages("for alice") // not "for bob" first
	mb.none(50 * time.Millisecond)
	// The client can't pick the room itself.
	resp := get(t, g.URL+"/operations/MyRoom?wg_sse=true&room=bob", "Authorization", alice)
	if body := readAll(t, resp); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("client-set claim variable: %d %s", resp.StatusCode, body)
	}
}
