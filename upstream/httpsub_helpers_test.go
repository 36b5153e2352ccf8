package upstream

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
)

// recSink records what a source writes into it, one line per call:
// "next <json>", "gap <reason>", "done", "error <json>". It fails the test
// on any call after End or after the source was stopped.
type recSink struct {
	t       testing.TB
	mu      sync.Mutex
	lines   []string
	ended   bool
	stopped bool
	ch      chan string
}

func newRecSink(t testing.TB) *recSink {
	return &recSink{t: t, ch: make(chan string, 1024)}
}

func (r *recSink) add(line string, end bool) {
	r.mu.Lock()
	if r.ended || r.stopped {
		r.t.Errorf("sink written after End or stop: %s", line)
	}
	r.ended = r.ended || end
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	r.ch <- line
}

func (r *recSink) Next(data []byte)  { r.add("next "+string(data), false) }
func (r *recSink) Gap(reason string) { r.add("gap "+reason, false) }
func (r *recSink) End(final *event.Event) {
	switch final.Kind {
	case event.Done:
		r.add("done", true)
	case event.Error:
		r.add("error "+string(final.Data), true)
	default:
		r.add("end of kind "+final.Kind.String(), true)
	}
}

// stop marks the source stopped: nothing may be written after it.
func (r *recSink) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// expect waits for the next len(want) lines and compares them exactly.
func (r *recSink) expect(want ...string) {
	r.t.Helper()
	got := make([]string, 0, len(want))
	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	for len(got) < len(want) {
		select {
		case l := <-r.ch:
			got = append(got, l)
		case <-timeout.C:
			r.t.Fatalf("sink: got %q, still waiting for %q", got, want[len(got):])
		}
	}
	if !slices.Equal(got, want) {
		r.t.Fatalf("sink:\n got  %q\n want %q", got, want)
	}
}

// quiet fails when anything more was written so far.
func (r *recSink) quiet() {
	r.t.Helper()
	select {
	case l := <-r.ch:
		r.t.Fatalf("sink: unexpected %q", l)
	default:
	}
}

// openSub opens an HTTP subscription into a new recSink; the returned stop
// stops it and marks the sink stopped. Cleanup stops it too.
func openSub(t testing.TB, cfg HTTPSubConfig, req Request) (*recSink, func()) {
	t.Helper()
	sink := newRecSink(t)
	stop, err := NewHTTPSubscription(cfg, req).Open(context.Background(), sink)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	stopAll := func() {
		stop()
		sink.stop()
	}
	t.Cleanup(stopAll)
	return sink, stopAll
}

// seenReq is one subscription request as a subServer received it.
type seenReq struct {
	n      int
	header http.Header
	body   string
	proto  int
}

// subServer is a scripted HTTP subscription upstream: it records every
// request, tells when each one's context ended (the client closed it or
// the handler returned), and answers the n-th request (from 0) with h.
type subServer struct {
	*httptest.Server
	count atomic.Int32
	reqs  chan seenReq
	ended chan int
}

func newSubServer(t testing.TB, h func(n int, w http.ResponseWriter, r *http.Request)) *subServer {
	s := &subServer{reqs: make(chan seenReq, 64), ended: make(chan int, 64)}
	s.Server = httptest.NewUnstartedServer(s.handler(h))
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *subServer) handler(h func(n int, w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.count.Add(1)) - 1
		b, _ := io.ReadAll(r.Body)
		s.reqs <- seenReq{n: n, header: r.Header.Clone(), body: string(b), proto: r.ProtoMajor}
		context.AfterFunc(r.Context(), func() { s.ended <- n })
		h(n, w, r)
	})
}

// request returns the next request the server received.
func (s *subServer) request(t testing.TB) seenReq {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("no request reached the upstream")
	}
	return seenReq{}
}

// waitEnded waits until request n's context ended.
func (s *subServer) waitEnded(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-s.ended:
			if m == n {
				return
			}
		case <-timeout:
			t.Fatalf("request %d did not end upstream", n)
		}
	}
}

// head answers 200 with contentType and flushes the headers.
func head(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// send writes s and flushes it.
func send(w http.ResponseWriter, s string) {
	_, _ = io.WriteString(w, s)
	w.(http.Flusher).Flush()
}

// pump sends each chunk from chunks until it is closed or the client went
// away.
func pump(w http.ResponseWriter, r *http.Request, chunks <-chan string) {
	for {
		select {
		case c, ok := <-chunks:
			if !ok {
				return
			}
			send(w, c)
		case <-r.Context().Done():
			return
		}
	}
}

const (
	sseType       = "text/event-stream"
	multipartType = `multipart/mixed;boundary="graphql";subscriptionSpec="1.0"`
)

// testSubReq is the request most tests send.
var testSubReq = Request{Query: "subscription { n }"}
