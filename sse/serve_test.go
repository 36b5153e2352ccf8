package sse

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
)

const (
	doneBytes    = "event: done\ndata: done\n\n"
	expiredBytes = `data: {"errors":[{"message":"token expired","extensions":{"code":"TokenExpired"}}]}` + "\n\nevent: done\ndata: done\n\n"
	result1      = `{"data":{"messageCreated":{"id":"7","content":"hi"}}}`
	result2      = `{"data":{"messageCreated":{"id":"8","content":"ho"}}}`
)

func next(id, data string) *event.Event {
	return &event.Event{Kind: event.Next, ID: id, Data: []byte(data)}
}

// harness is a real HTTP server whose handler runs Serve on q, with the mode
// chosen by ModeOf, and a real client.
type harness struct {
	t       *testing.T
	url     string
	client  *http.Client
	results chan Result
}

func newHarness(t *testing.T, q *event.Queue, opt Options) *harness {
	t.Helper()
	h := &harness{t: t, results: make(chan Result, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := ModeOf(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o := opt
		o.Mode = m
		h.results <- Serve(w, r, q, o)
	}))
	tr := &http.Transport{}
	h.client = &http.Client{Transport: tr}
	h.url = srv.URL
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return h
}

func (h *harness) get(ctx context.Context, query string, hdr ...string) *http.Response {
	h.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", h.url+"/operations/chat/Messages"+query, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (h *harness) result() Result {
	h.t.Helper()
	select {
	case r := <-h.results:
		return r
	case <-time.After(5 * time.Second):
		h.t.Fatal("Serve did not return")
	}
	return Result{}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkHeaders(t *testing.T, resp *http.Response, status int, want map[string]string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d", resp.StatusCode, status)
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

var (
	sseHeaders  = map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Content-Length": ""}
	jsonHeaders = map[string]string{"Content-Type": "application/x-ndjson", "Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Content-Length": ""}
)

func TestSSEEventsAndDone(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	var seen []event.Kind
	h := newHarness(t, q, Options{OnEvent: func(e *event.Event) { seen = append(seen, e.Kind) }})
	resp := h.get(t.Context(), "?wg_sse=true")
	// Headers arrive before any event: they are flushed at once.
	checkHeaders(t, resp, 200, sseHeaders)

	q.Push(next("s1:1", result1))
	q.Push(next("", result2))
	q.Push(event.NewGap(event.GapData{Missed: 2, LastEventID: "s1:3", Reason: "slow-consumer"}))
	q.Push(next("s1:4", "{\"a\":\n1}"))
	q.Close(event.DoneEvent)

	want := "id: s1:1\ndata: " + result1 + "\n\n" +
		"data: " + result2 + "\n\n" +
		"id: s1:3\nevent: gap\ndata: {\"missed\":2,\"lastEventId\":\"s1:3\",\"reason\":\"slow-consumer\"}\n\n" +
		"id: s1:4\ndata: {\"a\":\ndata: 1}\n\n" +
		doneBytes
	if got := readAll(t, resp.Body); got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
	res := h.result()
	if res.Reason != ReasonDone || res.Events != 3 || res.Err != nil {
		t.Fatalf("result = %+v", res)
	}
	if len(seen) != 5 || seen[4] != event.Done {
		t.Fatalf("OnEvent saw %v", seen)
	}
}

func TestSSEByAcceptHeader(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	h := newHarness(t, q, Options{})
	resp := h.get(t.Context(), "", "Accept", "text/event-stream")
	checkHeaders(t, resp, 200, sseHeaders)
	q.Push(next("1", result1))
	q.Close(nil)
	if got, want := readAll(t, resp.Body), "id: 1\ndata: "+result1+"\n\n"+doneBytes; got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
	h.result()
}

func TestSSEErrorEnding(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	h := newHarness(t, q, Options{})
	resp := h.get(t.Context(), "?wg_sse=true")
	q.Push(next("1", result1))
	q.Push(&event.Event{Kind: event.Error, Data: []byte(`{"errors":[{"message":"boom"}]}`)})
	want := "id: 1\ndata: " + result1 + "\n\n" + `data: {"errors":[{"message":"boom"}]}` + "\n\n" + doneBytes
	if got := readAll(t, resp.Body); got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
	if res := h.result(); res.Reason != ReasonError || res.Events != 1 {
		t.Fatalf("result = %+v", res)
	}
}

func TestSSESlowConsumerCut(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{MaxEvents: 1})
	q.Push(next("1", result1))
	if r := q.Push(next("2", result2)); r != event.Cut {
		t.Fatalf("push = %d, want Cut", r)
	}
	h := newHarness(t, q, Options{})
	resp := h.get(t.Context(), "?wg_sse=true")
	want := "id: 1\ndata: " + result1 + "\n\n" +
		`data: {"errors":[{"message":"the client did not read fast enough; reconnect with Last-Event-ID to resume","extensions":{"code":"SlowConsumer"}}]}` + "\n\nretry: 1000\n\n"
	if got := readAll(t, resp.Body); got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
	if res := h.result(); res.Reason != ReasonSlowConsumer {
		t.Fatalf("result = %+v", res)
	}
}

// Regression: an upstream error that merely carries the code SlowConsumer
// was framed as a cut-off (retry, no done), so browsers reconnected forever.
// Only the queue's own cut-off is resumable.
func TestSSEUpstreamErrorNamedSlowConsumerEndsWithDone(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	q.Push(event.NewError("SlowConsumer", "from upstream"))
	h := newHarness(t, q, Options{})
	resp := h.get(t.Context(), "?wg_sse=true")
	want := `data: {"errors":[{"message":"from upstream","extensions":{"code":"SlowConsumer"}}]}` + "\n\n" + doneBytes
	if got := readAll(t, resp.Body); got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
	if res := h.result(); res.Reason != ReasonError {
		t.Fatalf("result = %+v", res)
	}
}

func TestJSONStream(t *testing.T) {
	t.Parallel()
	t.Run("done", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		h := newHarness(t, q, Options{})
		resp := h.get(t.Context(), "")
		checkHeaders(t, resp, 200, jsonHeaders)
		q.Push(next("1", result1))
		q.Push(event.NewGap(event.GapData{Missed: 1, Reason: "restarted"}))
		q.Push(next("2", result2))
		q.Close(nil)
		want := result1 + "\n\n" +
			`{"errors":[{"message":"events were missed","extensions":{"code":"Gap","missed":1,"reason":"restarted"}}]}` + "\n\n" +
			result2 + "\n\n"
		if got := readAll(t, resp.Body); got != want {
			t.Fatalf("body:\n got %q\nwant %q", got, want)
		}
		if res := h.result(); res.Reason != ReasonDone || res.Events != 2 {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		h := newHarness(t, q, Options{})
		resp := h.get(t.Context(), "?wg_sse=false")
		checkHeaders(t, resp, 200, jsonHeaders)
		q.Push(next("1", result1))
		q.Close(event.NewError("Boom", "bad"))
		want := result1 + "\n\n" + `{"errors":[{"message":"bad","extensions":{"code":"Boom"}}]}` + "\n\n"
		if got := readAll(t, resp.Body); got != want {
			t.Fatalf("body:\n got %q\nwant %q", got, want)
		}
		if res := h.result(); res.Reason != ReasonError {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestHeartbeatOverLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ query, beat, end string }{
		{"?wg_sse=true", ": ping\n\n", doneBytes},
		{"", "\n", ""},
	} {
		q := event.NewQueue(event.Limits{})
		h := newHarness(t, q, Options{Heartbeat: 5 * time.Millisecond})
		resp := h.get(t.Context(), tc.query)
		br := bufio.NewReader(resp.Body)
		buf := make([]byte, len(tc.beat)*2)
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != tc.beat+tc.beat {
			t.Fatalf("heartbeats = %q, %v", buf, err)
		}
		q.Close(nil)
		body := readAll(t, br)
		if !regexp.MustCompile(`^(` + regexp.QuoteMeta(tc.beat) + `)*` + regexp.QuoteMeta(tc.end) + `$`).MatchString(body) {
			t.Fatalf("rest of body = %q", body)
		}
		h.result()
	}
}

func TestExpiryOverLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ query, want string }{
		{"?wg_sse=true", "id: 1\ndata: " + result1 + "\n\n" + expiredBytes},
		{"", result1 + "\n\n" + `{"errors":[{"message":"token expired","extensions":{"code":"TokenExpired"}}]}` + "\n\n"},
	} {
		q := event.NewQueue(event.Limits{})
		q.Push(next("1", result1))
		// ExpiresAt is fixed before the request is even sent: a handler
		// starting after it would expire before delivering the queued event.
		h := newHarness(t, q, Options{Heartbeat: -1, ExpiresAt: time.Now().Add(time.Second)})
		resp := h.get(t.Context(), tc.query)
		if got := readAll(t, resp.Body); got != tc.want {
			t.Fatalf("body:\n got %q\nwant %q", got, tc.want)
		}
		if res := h.result(); res.Reason != ReasonExpired || res.Events != 1 {
			t.Fatalf("result = %+v", res)
		}
	}
}

func TestAlreadyExpired(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	q.Push(next("1", result1)) // must not be delivered
	h := newHarness(t, q, Options{ExpiresAt: time.Now().Add(-time.Second)})
	resp := h.get(t.Context(), "?wg_sse=true")
	checkHeaders(t, resp, 200, sseHeaders)
	if got := readAll(t, resp.Body); got != expiredBytes {
		t.Fatalf("body = %q", got)
	}
	if res := h.result(); res.Reason != ReasonExpired || res.Events != 0 {
		t.Fatalf("result = %+v", res)
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ query, want string }{
		{"?wg_sse=true", "id: 1\ndata: " + result1 + "\n\nretry: 1500\n\n"}, // no done: EventSource comes back (CONTRACT §8)
		{"", result1 + "\n\n" + `{"errors":[{"message":"the gateway is shutting down; reconnect","extensions":{"code":"ShuttingDown"}}]}` + "\n\n"},
	} {
		q := event.NewQueue(event.Limits{})
		shutdown, beginShutdown := context.WithCancel(context.Background())
		defer beginShutdown()
		h := newHarness(t, q, Options{Shutdown: shutdown, Retry: 1500 * time.Millisecond})
		resp := h.get(t.Context(), tc.query)
		// Queued events are still delivered before the end.
		q.Push(next("1", result1))
		beginShutdown()
		if got := readAll(t, resp.Body); got != tc.want {
			t.Fatalf("body:\n got %q\nwant %q", got, tc.want)
		}
		if res := h.result(); res.Reason != ReasonShutdown {
			t.Fatalf("result = %+v", res)
		}
	}
}

func TestLifetime(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	h := newHarness(t, q, Options{MaxLifetime: 50 * time.Millisecond, Heartbeat: -1})
	resp := h.get(t.Context(), "?wg_sse=true")
	if got := readAll(t, resp.Body); got != "retry: 1000\n\n" {
		t.Fatalf("body = %q", got)
	}
	if res := h.result(); res.Reason != ReasonLifetime {
		t.Fatalf("result = %+v", res)
	}
}

// Regression: a JSON stream cut by maxLifetime ended like an upstream
// completion, so the client could not tell it should reconnect.
func TestLifetimeJSONStreamSaysSo(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	h := newHarness(t, q, Options{MaxLifetime: 50 * time.Millisecond, Heartbeat: -1})
	resp := h.get(t.Context(), "")
	want := `{"errors":[{"message":"the stream reached subscriptions.maxLifetime; reconnect","extensions":{"code":"StreamLifetime"}}]}` + "\n\n"
	if got := readAll(t, resp.Body); got != want {
		t.Fatalf("body = %q", got)
	}
}

func TestOnce(t *testing.T) {
	t.Parallel()
	onceJSON := map[string]string{"Content-Type": "application/json", "Cache-Control": "", "X-Accel-Buffering": ""}
	t.Run("result", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		h := newHarness(t, q, Options{})
		go func() {
			time.Sleep(20 * time.Millisecond)
			q.Push(event.NewGap(event.GapData{Reason: "restarted"})) // not a result: skipped
			q.Push(next("1", result1))
			q.Push(next("2", result2))
		}()
		resp := h.get(t.Context(), "?wg_subscribe_once=true")
		checkHeaders(t, resp, 200, onceJSON)
		if resp.ContentLength != int64(len(result1)) {
			t.Errorf("Content-Length = %d", resp.ContentLength)
		}
		if got := readAll(t, resp.Body); got != result1 {
			t.Fatalf("body = %q", got)
		}
		if res := h.result(); res.Reason != ReasonDone || res.Events != 1 {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("done first", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		q.Close(nil)
		h := newHarness(t, q, Options{})
		resp := h.get(t.Context(), "?wg_subscribe_once=true")
		checkHeaders(t, resp, 204, map[string]string{"Content-Type": ""})
		if got := readAll(t, resp.Body); got != "" {
			t.Fatalf("body = %q", got)
		}
		if res := h.result(); res.Reason != ReasonDone || res.Events != 0 {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("error first", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		q.Close(event.NewError("Boom", "bad"))
		h := newHarness(t, q, Options{})
		resp := h.get(t.Context(), "?wg_subscribe_once=true")
		checkHeaders(t, resp, 200, onceJSON)
		if got := readAll(t, resp.Body); got != `{"errors":[{"message":"bad","extensions":{"code":"Boom"}}]}` {
			t.Fatalf("body = %q", got)
		}
		if res := h.result(); res.Reason != ReasonError {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		h := newHarness(t, q, Options{ExpiresAt: time.Now().Add(30 * time.Millisecond)})
		resp := h.get(t.Context(), "?wg_subscribe_once=true")
		checkHeaders(t, resp, 200, onceJSON)
		if got := readAll(t, resp.Body); got != `{"errors":[{"message":"token expired","extensions":{"code":"TokenExpired"}}]}` {
			t.Fatalf("body = %q", got)
		}
		if res := h.result(); res.Reason != ReasonExpired {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		shutdown, beginShutdown := context.WithCancel(context.Background())
		defer beginShutdown()
		h := newHarness(t, q, Options{Shutdown: shutdown, Retry: 1500 * time.Millisecond})
		go func() {
			time.Sleep(20 * time.Millisecond)
			beginShutdown()
		}()
		resp := h.get(t.Context(), "?wg_subscribe_once=true")
		checkHeaders(t, resp, 503, map[string]string{"Content-Type": "application/json", "Retry-After": "2"})
		if got := readAll(t, resp.Body); got != `{"code":"Unavailable","message":"the server ended the request before a result; retry"}` {
			t.Fatalf("body = %q", got)
		}
		if res := h.result(); res.Reason != ReasonShutdown {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("sse", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		h := newHarness(t, q, Options{})
		resp := h.get(t.Context(), "?wg_subscribe_once=true&wg_sse=true")
		checkHeaders(t, resp, 200, sseHeaders)
		q.Push(next("s:1", result1))
		q.Push(next("s:2", result2))
		if got, want := readAll(t, resp.Body), "id: s:1\ndata: "+result1+"\n\n"+doneBytes; got != want {
			t.Fatalf("body:\n got %q\nwant %q", got, want)
		}
		if res := h.result(); res.Reason != ReasonDone || res.Events != 1 {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("sse done first", func(t *testing.T) {
		t.Parallel()
		q := event.NewQueue(event.Limits{})
		q.Close(nil)
		h := newHarness(t, q, Options{})
		resp := h.get(t.Context(), "?wg_subscribe_once=true", "Accept", "text/event-stream")
		checkHeaders(t, resp, 200, sseHeaders)
		if got := readAll(t, resp.Body); got != doneBytes {
			t.Fatalf("body = %q", got)
		}
		h.result()
	})
}

func TestClientGone(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{})
	h := newHarness(t, q, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	resp := h.get(ctx, "?wg_sse=true")
	checkHeaders(t, resp, 200, sseHeaders)
	start := time.Now()
	cancel()
	res := h.result()
	if res.Reason != ReasonClientGone || res.Err == nil {
		t.Fatalf("result = %+v", res)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Serve took %v to notice", d)
	}
}

func TestClientGoneBeforeServe(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	w := httptest.NewRecorder()
	res := Serve(w, r, event.NewQueue(event.Limits{}), Options{Mode: SSE})
	if res.Reason != ReasonClientGone || w.Body.Len() != 0 {
		t.Fatalf("result = %+v, body %q", res, w.Body.String())
	}
}

// A client that never reads must not hold Serve forever: the write deadline
// ends the stream once the socket buffers are full.
func TestNeverReadingClient(t *testing.T) {
	t.Parallel()
	q := event.NewQueue(event.Limits{MaxEvents: 1 << 20, MaxBytes: 1 << 30})
	h := newHarness(t, q, Options{WriteTimeout: 200 * time.Millisecond, Heartbeat: -1})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	if _, err := io.WriteString(conn, "GET /x?wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	big := next("1", `"`+strings.Repeat("x", 64<<10)+`"`)
	stop := make(chan struct{})
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if q.Len() < 64 {
				q.Push(big)
			} else {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var res Result
	select {
	case res = <-h.results:
	case <-time.After(20 * time.Second):
		t.Fatal("Serve blocked on a client that never reads")
	}
	close(stop)
	<-pushed
	if res.Reason != ReasonWriteFailed || !errors.Is(res.Err, ErrWriteFailed) {
		t.Fatalf("result = %+v", res)
	}
	var ne net.Error
	if !errors.As(res.Err, &ne) || !ne.Timeout() {
		t.Logf("write error is not a timeout: %v", res.Err)
	}
}

// The write deadline Serve leaves behind must not break the next request on
// a kept-alive connection (net/http clears it after the handler returns).
func TestDeadlineClearedForKeepAlive(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := event.NewQueue(event.Limits{})
		q.Push(next("1", result1))
		Serve(w, r, q, Options{Mode: Once, WriteTimeout: 50 * time.Millisecond})
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var conns []string
	for range 2 {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			conns = append(conns, i.Conn.LocalAddr().String())
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, resp.Body); got != result1 {
			t.Fatalf("body = %q", got)
		}
		resp.Body.Close()
		time.Sleep(150 * time.Millisecond) // past the stream's write deadline
	}
	if len(conns) != 2 || conns[0] != conns[1] {
		t.Fatalf("connection not reused (%v); the test proves nothing", conns)
	}
}
