package sse

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
)

// Regression: over HTTP/2 a write deadline resets the stream when it fires,
// written to or not, so a stream idle for longer than WriteTimeout was cut
// (INTERNAL_ERROR) before its first heartbeat. It must outlive several
// write timeouts, write its heartbeats, then its events and done.
func TestHTTP2IdleLongerThanWriteTimeout(t *testing.T) {
	q := event.NewQueue(event.Limits{})
	results := make(chan Result, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results <- Serve(w, r, q, Options{Mode: SSE, WriteTimeout: 50 * time.Millisecond, Heartbeat: 150 * time.Millisecond})
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("served over %s", resp.Proto)
	}
	br := bufio.NewReader(resp.Body)
	got := make([]byte, len(": ping\n\n: ping\n\n"))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != ": ping\n\n: ping\n\n" {
		t.Fatalf("heartbeats %q, %v", got, err)
	}
	q.Push(next("a-1", result1))
	q.Close(event.DoneEvent)
	rest, err := io.ReadAll(br)
	if want := "id: a-1\ndata: " + result1 + "\n\n" + doneBytes; err != nil || string(rest) != want {
		t.Errorf("then %q, %v; want %q", rest, err, want)
	}
	if res := <-results; res.Reason != ReasonDone {
		t.Errorf("reason %q, err %v", res.Reason, res.Err)
	}
}
