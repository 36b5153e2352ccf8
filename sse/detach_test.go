package sse

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
)

// detachHarness serves Serve with Options.Detach over real HTTP/1.1: the
// handler's own result goes to served, the detached rest's to results.
type detachHarness struct {
	*harness
	served chan Result
	aborts chan func()
}

func newDetachHarness(t *testing.T, q *event.Queue, opt Options, accept bool) *detachHarness {
	t.Helper()
	var wg sync.WaitGroup
	h := &detachHarness{harness: &harness{t: t, results: make(chan Result, 1)}, served: make(chan Result, 1), aborts: make(chan func(), 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := ModeOf(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o := opt
		o.Mode = m
		o.Detach = func(abort func()) func(Result) {
			if !accept {
				return nil
			}
			h.aborts <- abort
			wg.Add(1)
			return func(res Result) {
				defer wg.Done()
				h.results <- res
			}
		}
		h.served <- Serve(w, r, q, o)
	}))
	tr := &http.Transport{}
	h.client = &http.Client{Transport: tr}
	h.url = srv.URL
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
		q.Close(nil) // ends a stream a test left open
		wg.Wait()
	})
	return h
}

func (h *detachHarness) handlerResult() Result {
	h.t.Helper()
	select {
	case r := <-h.served:
		return r
	case <-time.After(5 * time.Second):
		h.t.Fatal("the handler did not return")
	}
	return Result{}
}

func TestDetachedSSE(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	h := newDetachHarness(t, q, Options{}, true)
	resp := h.get(t.Context(), "?wg_sse=true")
	checkHeaders(t, resp, http.StatusOK, sseHeaders)
	if !resp.Close {
		t.Error("no Connection: close: the client would pool a connection that the stream's end closes")
	}
	// The handler returns as soon as the headers are out.
	if res := h.handlerResult(); res.Reason != ReasonDetached {
		t.Fatalf("handler result = %+v", res)
	}
	q.Push(next("1", result1))
	q.Push(next("2", result2))
	q.Close(nil)
	want := "id: 1\ndata: " + result1 + "\n\nid: 2\ndata: " + result2 + "\n\n" + doneBytes
	if got := readAll(t, resp.Body); got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
	res := h.result()
	if res.Reason != ReasonDone || res.Events != 2 || res.Bytes != int64(len(want)) {
		t.Errorf("result = %+v, want done, 2 events, %d bytes", res, len(want))
	}
}

// TestDetachedWire reads the raw bytes: a chunked HTTP/1.1 body whose last
// chunk is there, then the server closes the connection.
func TestDetachedWire(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	h := newDetachHarness(t, q, Options{Heartbeat: -1}, true)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET /operations/x HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" {
		t.Fatalf("transfer encoding %v", te)
	}
	h.handlerResult()
	q.Push(next("1", result1))
	q.Close(nil)
	// The chunked body, decoded by hand from the raw bytes.
	body, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		t.Fatalf("chunked body: %v (read %q)", err, body)
	}
	if want := result1 + "\n\n"; string(body) != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	// Nothing after the last chunk but the trailer's end, then EOF.
	rest, _ := io.ReadAll(br)
	if string(rest) != "\r\n" {
		t.Fatalf("after the last chunk: %q", rest)
	}
	if res := h.result(); res.Reason != ReasonDone {
		t.Errorf("result = %+v", res)
	}
}

// A detached stream notices its client leaving, through a Watcher or with
// a reader goroutine.
func TestDetachedClientGone(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(watchName(watch), func(t *testing.T) {
			q := event.NewQueue(event.Limits{})
			h := newDetachHarness(t, q, watchOptions(t, Options{}, watch), true)
			ctx, cancel := context.WithCancel(t.Context())
			resp := h.get(ctx, "?wg_sse=true")
			h.handlerResult()
			q.Push(next("1", result1))
			br := bufio.NewReader(resp.Body)
			if line, err := br.ReadString('\n'); err != nil || line != "id: 1\n" {
				t.Fatalf("first line %q, %v", line, err)
			}
			cancel() // the client goes away
			if res := h.result(); res.Reason != ReasonClientGone || res.Events != 1 || res.Err != ErrClientGone {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

// A client that keeps sending on its stream's connection is cut off.
func TestDetachedClientSendsTooMuch(t *testing.T) {
	for _, watch := range []bool{true, false} {
		t.Run(watchName(watch), func(t *testing.T) {
			q := event.NewQueue(event.Limits{})
			h := newDetachHarness(t, q, watchOptions(t, Options{Heartbeat: -1}, watch), true)
			conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, "GET /operations/x?wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n")
			h.handlerResult()
			// Up to maxClientBytes is read and dropped.
			_, _ = conn.Write(make([]byte, maxClientBytes))
			q.Push(next("1", result1))
			br := bufio.NewReader(conn)
			if _, err := http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
			if line, err := br.ReadString('\n'); err != nil || !strings.Contains(readChunkLine(t, br, line), "id: 1") {
				t.Fatalf("the stream did not go on: %q, %v", line, err)
			}
			_, _ = conn.Write([]byte("x"))
			if res := h.result(); res.Reason != ReasonClientGone || res.Err != ErrClientGone {
				t.Errorf("result = %+v", res)
			}
		})
	}
}

// readChunkLine reads the chunk whose size line is line.
func readChunkLine(t *testing.T, br *bufio.Reader, line string) string {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(line), 16, 32)
	if err != nil {
		t.Fatalf("chunk size %q", line)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func watchName(watch bool) string {
	if watch {
		return "watcher"
	}
	return "reader"
}

// watchOptions gives opt a Watcher, closed when the test ends, if watch.
func watchOptions(t *testing.T, opt Options, watch bool) Options {
	if watch {
		w := NewWatcher()
		t.Cleanup(func() { _ = w.Close() })
		opt.Watcher = w
	}
	return opt
}

func TestDetachedShutdownAndHeartbeat(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	shutdown, beginShutdown := context.WithCancel(context.Background())
	defer beginShutdown()
	h := newDetachHarness(t, q, Options{Heartbeat: 20 * time.Millisecond, Shutdown: shutdown, Retry: 1500 * time.Millisecond}, true)
	resp := h.get(t.Context(), "?wg_sse=true")
	h.handlerResult()
	br := bufio.NewReader(resp.Body)
	for _, want := range []string{": ping\n", "\n", ": ping\n", "\n"} { // two heartbeats
		if line, err := br.ReadString('\n'); err != nil || line != want {
			t.Fatalf("line %q, %v; want %q", line, err, want)
		}
	}
	beginShutdown()
	rest := readAll(t, br)
	if rest != "retry: 1500\n\n" {
		t.Fatalf("end %q", rest)
	}
	if res := h.result(); res.Reason != ReasonShutdown {
		t.Errorf("result = %+v", res)
	}
}

// When Detach declines, Serve serves the rest itself on the taken-over
// connection and returns the final result.
func TestDetachDeclined(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	h := newDetachHarness(t, q, Options{}, false)
	q.Push(next("1", result1))
	q.Close(nil)
	resp := h.get(t.Context(), "")
	checkHeaders(t, resp, http.StatusOK, jsonHeaders)
	if got, want := readAll(t, resp.Body), result1+"\n\n"; got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	if res := h.handlerResult(); res.Reason != ReasonDone || res.Events != 1 {
		t.Errorf("handler result = %+v", res)
	}
}

// Once answers one plain response: it is never detached.
func TestOnceNotDetached(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	h := newDetachHarness(t, q, Options{}, true)
	q.Push(next("1", result1))
	resp := h.get(t.Context(), "?wg_subscribe_once=true")
	checkHeaders(t, resp, http.StatusOK, map[string]string{"Content-Type": "application/json"})
	if got := readAll(t, resp.Body); got != result1 {
		t.Fatalf("body %q", got)
	}
	if res := h.handlerResult(); res.Reason != ReasonDone {
		t.Errorf("handler result = %+v", res)
	}
}

// A client that stops reading is cut by the write deadline, detached too.
func TestDetachedWriteTimeout(t *testing.T) {
	q := event.NewQueue(event.Limits{MaxEvents: 1 << 20, MaxBytes: 1 << 30})
	h := newDetachHarness(t, q, Options{WriteTimeout: 200 * time.Millisecond, Heartbeat: -1}, true)
	openNonReading(t, h)
	h.handlerResult()
	big := next("1", `"`+strings.Repeat("x", 64<<10)+`"`)
	for i := 0; i < 200; i++ {
		q.Push(big)
	}
	if res := h.result(); res.Reason != ReasonWriteFailed {
		t.Errorf("result = %+v", res)
	}
}

// abort cuts a stream whose write is blocked on a client that stopped
// reading, long before the write deadline.
func TestDetachedAbort(t *testing.T) {
	q := event.NewQueue(event.Limits{MaxEvents: 1 << 20, MaxBytes: 1 << 30})
	h := newDetachHarness(t, q, Options{WriteTimeout: time.Minute, Heartbeat: -1}, true)
	openNonReading(t, h)
	h.handlerResult()
	abort := <-h.aborts
	big := next("1", `"`+strings.Repeat("x", 64<<10)+`"`)
	for range 200 { // 13 MB: far more than the socket buffers hold
		q.Push(big)
	}
	time.Sleep(100 * time.Millisecond) // let the writer block (no condition to poll)
	abort()
	// The write deadline is a minute away: a result now is the abort's.
	if res := h.result(); res.Reason != ReasonWriteFailed {
		t.Errorf("result %+v", res)
	}
}

// BenchmarkLoopbackTick delivers one event at a time to 200 real HTTP/1.1
// clients over loopback and waits until every client has read it, as a
// ticking upstream does: one write per delivery, no batching. It compares
// streams served in the handler with detached ones. One op is one delivered
// event; the time includes the clients' reads.
//
//	go test -run '^$' -bench LoopbackTick -benchmem ./sse
func BenchmarkLoopbackTick(b *testing.B) {
	for _, mode := range []string{"handler", "detached"} {
		b.Run(mode, func(b *testing.B) { benchTick(b, mode == "detached") })
	}
}

func benchTick(b *testing.B, detach bool) {
	const clients = 200
	queues := make(chan *event.Queue, clients)
	var streams sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := event.NewQueue(event.Limits{})
		opt := Options{Mode: SSE, Heartbeat: -1}
		if detach {
			opt.Detach = func(func()) func(Result) {
				streams.Add(1)
				return func(Result) { streams.Done() }
			}
		}
		queues <- q
		Serve(w, r, q, opt)
	}))
	defer srv.Close()
	var read sync.WaitGroup // one Done per event read
	var readers sync.WaitGroup
	qs := make([]*event.Queue, 0, clients)
	for range clients {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.WriteString(conn, "GET /?wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n")
		qs = append(qs, <-queues)
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer conn.Close()
			br := bufio.NewReader(conn)
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) > 6 && string(line[:6]) == "data: " {
					if string(line) == "data: done\n" {
						return
					}
					read.Done()
				}
			}
		}()
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	rounds := max(b.N/clients, 1)
	for range rounds {
		read.Add(clients)
		for _, q := range qs {
			q.Push(benchEvent)
		}
		read.Wait()
	}
	b.StopTimer()
	reportPerEvent(b, rounds*clients, &before)
	for _, q := range qs {
		q.Close(nil)
	}
	readers.Wait()
	streams.Wait()
}

// openNonReading opens a stream on h from a client with a small receive
// buffer that never reads; the connection closes when the test ends.
func openNonReading(t *testing.T, h *detachHarness) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	_, _ = io.WriteString(conn, "GET /operations/x?wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n")
}
