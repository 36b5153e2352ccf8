package sse

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fireboom/fireboom/event"
)

// flushRecorder is an in-memory ResponseWriter with Flush, safe to read while
// Serve writes. It has no write deadlines (Serve then writes without one).
type flushRecorder struct {
	mu      sync.Mutex
	header  http.Header
	code    int
	body    bytes.Buffer
	flushes int
}

func newFlushRecorder() *flushRecorder { return &flushRecorder{header: http.Header{}} }

func (f *flushRecorder) Header() http.Header { return f.header }

func (f *flushRecorder) WriteHeader(code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == 0 {
		f.code = code
	}
}

func (f *flushRecorder) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == 0 {
		f.code = http.StatusOK
	}
	return f.body.Write(p)
}

func (f *flushRecorder) Flush() {
	f.mu.Lock()
	f.flushes++
	f.mu.Unlock()
}

func (f *flushRecorder) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.body.String()
}

// serveBubble runs Serve in the current synctest bubble.
func serveBubble(t *testing.T, q *event.Queue, opt Options) (*flushRecorder, <-chan Result, context.CancelFunc) {
	ctx, cancel := context.WithCancel(t.Context())
	r := httptest.NewRequestWithContext(ctx, "GET", "/operations/x", nil)
	w := newFlushRecorder()
	done := make(chan Result, 1)
	go func() { done <- Serve(w, r, q, opt) }()
	t.Cleanup(cancel)
	return w, done, cancel
}

func expectBody(t *testing.T, w *flushRecorder, want string) {
	t.Helper()
	synctest.Wait()
	if got := w.String(); got != want {
		t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
}

func TestHeartbeatResetsOnData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		w, done, _ := serveBubble(t, q, Options{Mode: SSE}) // default 15s heartbeat
		expectBody(t, w, "")
		if w.flushes != 1 || w.code != 200 {
			t.Fatalf("headers not flushed at once: flushes=%d code=%d", w.flushes, w.code)
		}
		time.Sleep(15*time.Second - time.Nanosecond)
		expectBody(t, w, "")
		time.Sleep(time.Nanosecond)
		expectBody(t, w, ": ping\n\n") // t=15s
		time.Sleep(5 * time.Second)
		q.Push(next("1", result1)) // t=20s: the heartbeat restarts
		want := ": ping\n\nid: 1\ndata: " + result1 + "\n\n"
		expectBody(t, w, want)
		time.Sleep(14 * time.Second) // t=34s: no heartbeat at 30s
		expectBody(t, w, want)
		time.Sleep(time.Second) // t=35s
		want += ": ping\n\n"
		expectBody(t, w, want)
		time.Sleep(15 * time.Second) // t=50s
		want += ": ping\n\n"
		expectBody(t, w, want)
		q.Close(nil)
		expectBody(t, w, want+doneBytes)
		if res := <-done; res.Reason != ReasonDone {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestJSONHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		w, done, _ := serveBubble(t, q, Options{Mode: JSON, Heartbeat: time.Second})
		time.Sleep(2500 * time.Millisecond)
		expectBody(t, w, "\n\n")
		q.Close(nil)
		expectBody(t, w, "\n\n")
		<-done
	})
}

func TestOnceWritesNothingWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		w, done, _ := serveBubble(t, q, Options{Mode: Once, Heartbeat: time.Second})
		time.Sleep(time.Minute)
		synctest.Wait()
		if w.code != 0 || w.String() != "" || w.flushes != 0 {
			t.Fatalf("wrote before the first result: code=%d body=%q", w.code, w.String())
		}
		q.Push(next("1", result1))
		expectBody(t, w, result1)
		<-done
	})
}

func TestExpiryEndsStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		w, done, _ := serveBubble(t, q, Options{Mode: SSE, ExpiresAt: time.Now().Add(50 * time.Second)})
		time.Sleep(49 * time.Second)
		expectBody(t, w, ": ping\n\n: ping\n\n: ping\n\n")
		time.Sleep(time.Second)
		expectBody(t, w, ": ping\n\n: ping\n\n: ping\n\n"+expiredBytes)
		if res := <-done; res.Reason != ReasonExpired {
			t.Fatalf("result = %+v", res)
		}
		// The queue is not touched: closing it is the caller's job.
		if q.Close(nil) != true {
			t.Fatal("Serve closed the queue")
		}
	})
}

func TestExpiryJSONStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		w, done, _ := serveBubble(t, q, Options{Mode: JSON, Heartbeat: -1, ExpiresAt: time.Now().Add(time.Hour)})
		q.Push(next("1", result1))
		time.Sleep(time.Hour)
		expectBody(t, w, result1+"\n\n"+`{"errors":[{"message":"token expired","extensions":{"code":"TokenExpired"}}]}`+"\n\n")
		if res := <-done; res.Reason != ReasonExpired || res.Events != 1 {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestShutdownAndLifetimeBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		shutdown, beginShutdown := context.WithCancel(context.Background())
		defer beginShutdown()
		w, done, _ := serveBubble(t, q, Options{Mode: OnceSSE, Shutdown: shutdown, Heartbeat: -1})
		time.Sleep(time.Hour)
		beginShutdown()
		expectBody(t, w, "retry: 1000\n\n") // OnceSSE too: no done at shutdown
		if res := <-done; res.Reason != ReasonShutdown {
			t.Fatalf("result = %+v", res)
		}

		q = event.NewQueue(event.Limits{})
		w, done, _ = serveBubble(t, q, Options{Mode: SSE, MaxLifetime: 10*time.Minute + time.Second, Retry: 250 * time.Millisecond})
		time.Sleep(10*time.Minute + time.Second)
		want := strings.Repeat(": ping\n\n", 40) + "retry: 250\n\n"
		expectBody(t, w, want)
		if res := <-done; res.Reason != ReasonLifetime {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestClientGoneBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		_, done, cancel := serveBubble(t, q, Options{Mode: SSE})
		time.Sleep(time.Second)
		cancel()
		synctest.Wait()
		select {
		case res := <-done:
			if res.Reason != ReasonClientGone {
				t.Fatalf("result = %+v", res)
			}
		default:
			t.Fatal("Serve did not return at once")
		}
	})
}

func TestFlushOncePerBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		for i := range 100 {
			q.Push(next("", `{"n":`+string(rune('0'+i%10))+`}`))
		}
		w, done, _ := serveBubble(t, q, Options{Mode: SSE})
		synctest.Wait()
		if w.flushes != 2 { // headers, then the one batch
			t.Fatalf("flushes = %d, want 2", w.flushes)
		}
		q.Close(nil)
		<-done
	})
}
