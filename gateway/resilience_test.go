package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// The bytes a client reads when the upstream connection came back.
const (
	sseReconnectGap  = "event: gap\ndata: {\"missed\":0,\"reason\":\"reconnected\"}\n\n"
	jsonReconnectGap = "{\"errors\":[{\"message\":\"events were missed\",\"extensions\":{\"code\":\"Gap\",\"missed\":0,\"reason\":\"reconnected\"}}]}\n\n"
)

// restartDemo closes d and starts a new demo on its address once between
// returned.
func restartDemo(t *testing.T, d *demo.Server, between func()) *demo.Server {
	t.Helper()
	addr := d.Addr()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if between != nil {
		between()
	}
	d2, err := demo.StartAt(addr, demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close() })
	return d2
}

func waitUpstream(t *testing.T, d *demo.Server, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.WaitActive(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// postRoom posts a chat message through the gateway.
func postRoom(t *testing.T, g *testGateway, room, content string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"room": room, "content": content})
	resp, err := http.Post(g.URL+"/operations/chat/PostMessage", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
}

// clientStream is one open client stream read piece by piece.
type clientStream struct {
	t    *testing.T
	body io.ReadCloser
	r    *bufio.Reader
	read strings.Builder
}

func openClientStream(t *testing.T, url string) *clientStream {
	t.Helper()
	resp := get(t, url)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	return &clientStream{t: t, body: resp.Body, r: bufio.NewReader(resp.Body)}
}

func (s *clientStream) until(want string) {
	s.t.Helper()
	s.read.WriteString(readUntil(s.t, s.r, want, 10*time.Second))
}

// rest reads to the end of the stream.
func (s *clientStream) rest() {
	s.t.Helper()
	b, err := io.ReadAll(s.r)
	if err != nil {
		s.t.Fatal(err)
	}
	s.read.Write(b)
}

// text is what was read, without heartbeats.
func (s *clientStream) text(beat string) string {
	return strings.ReplaceAll(s.read.String(), beat, "")
}

// The upstream restarts (in-process, same address): the client streams stay
// open, heartbeats go on while it is away, each client is told once, ids go
// on, and events flow again.
func TestStreamsSurviveUpstreamRestart(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}, "subscriptions": {"heartbeat": "100ms"}}`)
	sse := openClientStream(t, g.URL+"/operations/chat/MessageCreated?room=r&wg_sse=true")
	nd := openClientStream(t, g.URL+"/operations/chat/MessageCreated?room=r")
	waitUpstream(t, d, 1) // one shared upstream subscription
	reg := g.reg.Load()
	postRoom(t, g, "r", "before")
	sse.until("before\"")
	sse.until("\n\n")
	nd.until("before\"")
	nd.until("\n\n")

	d = restartDemo(t, d, func() {
		sse.until(": ping\n\n") // heartbeats go on while the upstream is away
		sse.until(": ping\n\n")
		nd.until("\n") // the JSON stream's heartbeat
	})
	sse.until(sseReconnectGap)
	nd.until(jsonReconnectGap)
	waitUpstream(t, d, 1)
	postRoom(t, g, "r", "after")
	sse.until("after\"")
	sse.until("\n\n")
	nd.until("after\"")
	nd.until("\n\n")

	got := sse.text(": ping\n\n")
	msg := func(n int, content string) string {
		return `{"data":{"messageCreated":{"id":"` + string(rune('0'+n)) + `","author":"anonymous","content":"` + content + `","createdAt":"`
	}
	ids := idLine.FindAllStringSubmatch(got, -1)
	if len(ids) != 2 {
		t.Fatalf("ids in %q", got)
	}
	inc1, seq1, _ := strings.Cut(ids[0][1], "-")
	inc2, seq2, _ := strings.Cut(ids[1][1], "-")
	if inc1 != inc2 || seq1 != "1" || seq2 != "2" {
		t.Errorf("ids %s then %s: want one incarnation, seq 1 then 2", ids[0][1], ids[1][1])
	}
	// Message ids restart with the new upstream: both are 1.
	parts := strings.SplitAfter(got, "\n\n")
	if len(parts) != 4 || !strings.HasPrefix(parts[0], "id: "+ids[0][1]+"\ndata: "+msg(1, "before")) ||
		parts[1] != sseReconnectGap ||
		!strings.HasPrefix(parts[2], "id: "+ids[1][1]+"\ndata: "+msg(1, "after")) || parts[3] != "" {
		t.Errorf("SSE stream:\n%q", got)
	}
	var nds []string // the JSON stream's lines, without the blank lines and heartbeats
	for _, l := range strings.Split(nd.read.String(), "\n") {
		if l != "" {
			nds = append(nds, l+"\n\n")
		}
	}
	if len(nds) != 3 || !strings.HasPrefix(nds[0], msg(1, "before")) || nds[1] != jsonReconnectGap ||
		!strings.HasPrefix(nds[2], msg(1, "after")) {
		t.Errorf("JSON stream:\n%q", nd.read.String())
	}
	if st := g.hub.Stats(); st.Reconnects != 1 || st.Subscriptions != 1 || g.topics.Stats("").Clients != 2 {
		t.Errorf("hub stats %+v", st)
	}
	// The schema was read again; unchanged, so the operations were not
	// rebuilt.
	eventually(t, 5*time.Second, "schema re-read", func() bool {
		return strings.Contains(g.logs.String(), "upstream schema unchanged after a reconnect")
	})
	if g.reg.Load() != reg {
		t.Error("operations rebuilt for an unchanged schema")
	}
}

// The upstream never comes back: past upstream.reconnectTimeout every
// stream ends with UpstreamUnavailable and done.
func TestStreamsEndAfterReconnectTimeout(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}", "reconnectTimeout": "300ms"}}`)
	sse := openClientStream(t, g.URL+"/operations/chat/MessageCreated?room=r&wg_sse=true")
	nd := openClientStream(t, g.URL+"/operations/Countdown?from=100000&interval=1000")
	waitUpstream(t, d, 2)
	_ = d.Close()
	sse.rest()
	nd.rest()
	const msg = `{"errors":[{"message":"the upstream connection was lost and did not come back within 300ms","extensions":{"code":"UpstreamUnavailable"}}]}`
	if got, want := sse.read.String(), "data: "+msg+"\n\nevent: done\ndata: done\n\n"; !strings.HasSuffix(got, want) || strings.Contains(got, "event: gap") {
		t.Errorf("SSE stream %q\nwant it to end with %q", got, want)
	}
	if got, want := nd.read.String(), msg+"\n\n"; !strings.HasSuffix(got, want) {
		t.Errorf("JSON stream %q\nwant it to end with %q", got, want)
	}
	eventually(t, 5*time.Second, "hub released", func() bool {
		st := g.hub.Stats()
		return st.Connections == 0 && st.Subscriptions == 0 && g.topics.Stats("").Clients == 0
	})
}

// schemaProxy fronts the demo. After drop() its introspection answers no
// longer list Subscription.countdown, as if the upstream came back as a new
// version; everything else (WebSockets too) passes through.
type schemaProxy struct {
	srv     *httptest.Server
	dropped atomic.Bool
}

func newSchemaProxy(t *testing.T, target string) *schemaProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &schemaProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if !p.dropped.Load() || resp.Request.Method != http.MethodPost {
			return nil
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(`"__schema"`)) {
			b = dropField(t, b, "Subscription", "countdown")
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Del("Content-Length")
		return nil
	}
	p.srv = httptest.NewServer(rp)
	t.Cleanup(p.srv.Close)
	return p
}

// dropField removes a field from a type of an introspection result.
func dropField(t *testing.T, b []byte, typeName, field string) []byte {
	var res map[string]any
	if err := json.Unmarshal(b, &res); err != nil {
		t.Error(err)
		return b
	}
	types := res["data"].(map[string]any)["__schema"].(map[string]any)["types"].([]any)
	for _, ty := range types {
		m := ty.(map[string]any)
		if m["name"] != typeName {
			continue
		}
		var keep []any
		for _, f := range m["fields"].([]any) {
			if f.(map[string]any)["name"] != field {
				keep = append(keep, f)
			}
		}
		m["fields"] = keep
	}
	out, _ := json.Marshal(res)
	return out
}

// After a reconnect the gateway reads the upstream schema again: streams of
// an operation that no longer validates end with OperationInvalid and done,
// the others go on.
func TestReconnectReintrospects(t *testing.T) {
	d := startDemo(t, demo.Options{})
	p := newSchemaProxy(t, "http://"+d.Addr())
	g := newGateway(t, nil, `{"operationsDir": "${OPS}", "upstream": {"url": "`+p.srv.URL+`/graphql"}}`)
	gone := openClientStream(t, g.URL+"/operations/Countdown?from=100000&interval=20&wg_sse=true")
	kept := openClientStream(t, g.URL+"/operations/chat/MessageCreated?room=r&wg_sse=true")
	waitUpstream(t, d, 2)
	gone.until("\n\n")
	p.dropped.Store(true)
	d = restartDemo(t, d, nil)
	gone.until(sseReconnectGap)
	kept.until(sseReconnectGap)
	gone.rest()
	const ending = "data: {\"errors\":[{\"message\":\"operation no longer valid against the upstream schema\",\"extensions\":{\"code\":\"OperationInvalid\"}}]}\n\nevent: done\ndata: done\n\n"
	if got := gone.read.String(); !strings.HasSuffix(got, ending) || strings.Count(got, "event: gap") != 1 {
		t.Errorf("Countdown stream %q", got)
	}
	waitUpstream(t, d, 1)
	postRoom(t, g, "r", "still here")
	kept.until("still here")
	resp := get(t, g.URL+"/operations/Countdown?from=1")
	if body := readAll(t, resp); resp.StatusCode != http.StatusNotFound {
		t.Errorf("Countdown after the new schema: %d %s", resp.StatusCode, body)
	}
}
