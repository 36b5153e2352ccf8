package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// A client of an event stream that reconnects with Last-Event-ID gets the
// events it missed from the topic's replay, then live ones, each once.
func TestEventSourceResume(t *testing.T) {
	e := natsEvEnv(t)
	g := evGateway(t, e, evOptions{})
	path := g.URL + "/operations/orders/UserOrders?userId=u1&wg_sse=true"
	keeper := evStream(t, path) // keeps the topic running while the other is away
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	away := bufio.NewReader(resp.Body)
	e.publish(t, `{"id":1,"userId":"u1","status":"a"}`)
	first := frames(t, away, 1)
	cancel()
	resp.Body.Close()
	eventually(t, 10*time.Second, "the client to leave", func() bool { return g.topics.Stats(kindSource).Clients == 1 })
	e.publish(t, `{"id":2,"userId":"u1","status":"b"}`)
	e.publish(t, `{"id":3,"userId":"u1","status":"c"}`)
	all := frames(t, keeper, 3)

	id := regexp.MustCompile(`(?m)^id: (\S+)$`).FindStringSubmatch(first)[1]
	back := evStream(t, path, "Last-Event-ID", id)
	e.publish(t, `{"id":4,"userId":"u1","status":"d"}`)
	got := frames(t, back, 3)
	want := all[len(first):] + frames(t, keeper, 1)
	if got != want {
		t.Errorf("resumed:\n%q\nwant\n%q", got, want)
	}
	if n := g.topics.Stats(kindSource).Topics; n != 1 {
		t.Errorf("%d topics, want 1", n)
	}
}

// A source lost for longer than upstream.reconnectTimeout ends its streams
// with UpstreamUnavailable (SSE: then done), and /ready says so.
func TestEventSourceLostPastTimeout(t *testing.T) {
	e := natsEvEnv(t)
	g := evGateway(t, e, evOptions{extra: `"upstream": {"reconnectTimeout": "300ms"}, `})
	sse := evStream(t, g.URL+"/operations/orders/UserOrders?userId=u1&wg_sse=true")
	ndjson := evStream(t, g.URL+"/operations/orders/UserOrders?userId=u1")
	srv := e.natsServer()
	srv.Shutdown()
	srv.WaitForShutdown()
	msg := `{"errors":[{"message":"the event source ` + e.name + ` was lost and did not come back within 300ms","extensions":{"code":"UpstreamUnavailable"}}]}`
	if got, want := readToEnd(t, sse), "data: "+msg+"\n\nevent: done\ndata: done\n\n"; got != want {
		t.Errorf("SSE:\n%q\nwant\n%q", got, want)
	}
	if got := readToEnd(t, ndjson); got != msg+"\n\n" {
		t.Errorf("JSON stream:\n%q", got)
	}
	resp := get(t, g.URL+"/ready")
	if body := readAll(t, resp); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ready: %d %s", resp.StatusCode, body)
	}
}

// readToEnd reads a stream to its end (within 10s).
func readToEnd(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(r)
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("reading to the end: %v; read %q", res.err, res.b)
		}
		return string(res.b)
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end within 10s") // the reader ends when the test closes the body
	}
	return ""
}
