package sse

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fireboom/fireboom/event"
)

// lazyStream is a detached stream served on one end of a net.Pipe in a
// synctest bubble, with fake time: a client on the other end reads, if it
// does, and keeps what it read.
type lazyStream struct {
	t       *testing.T
	s       *stream
	q       *event.Queue
	client  net.Conn
	results chan Result
	abort   func()

	mu  sync.Mutex
	raw bytes.Buffer // the chunked body, as read
}

func startLazy(t *testing.T, q *event.Queue, opt Options, read bool) *lazyStream {
	t.Helper()
	server, client := net.Pipe()
	l := &lazyStream{t: t, q: q, client: client, results: make(chan Result, 1)}
	l.s = newStream(opt)
	l.s.started = true // the headers are out
	if read {
		go l.read()
	}
	t.Cleanup(func() {
		client.Close()
		q.Close(nil)
	})
	res := l.s.takeOver(server, q, func(abort func()) func(Result) {
		l.abort = abort
		return func(res Result) { l.results <- res }
	})
	if res.Reason != ReasonDetached {
		t.Fatalf("takeOver: %+v", res)
	}
	return l
}

func (l *lazyStream) read() {
	b := make([]byte, 512)
	for {
		n, err := l.client.Read(b)
		l.mu.Lock()
		l.raw.Write(b[:n])
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// body decodes the chunked body read so far; complete says whether the
// last chunk was read.
func (l *lazyStream) body() (body string, complete bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	br := bufio.NewReader(bytes.NewReader(l.raw.Bytes()))
	var out strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return out.String(), false
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(line, "\r\n"), 16, 64)
		if err != nil {
			l.t.Fatalf("chunk size line %q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return out.String(), false
		}
		if string(b[n:]) != "\r\n" {
			l.t.Fatalf("chunk of %d bytes ends with %q", n, b[n:])
		}
		if n == 0 {
			return out.String(), true
		}
		out.Write(b[:n])
	}
}

// expect waits until the bubble is idle and checks the body so far.
func (l *lazyStream) expect(want string) {
	l.t.Helper()
	synctest.Wait()
	if got, _ := l.body(); got != want {
		l.t.Fatalf("body:\n got %q\nwant %q", got, want)
	}
}

// result waits for the stream's end and checks that its body is complete
// (the last chunk) or not.
func (l *lazyStream) result(complete bool) Result {
	l.t.Helper()
	synctest.Wait()
	select {
	case res := <-l.results:
		if _, c := l.body(); c != complete {
			l.t.Errorf("last chunk written: %v, want %v", c, complete)
		}
		return res
	default:
		l.t.Fatal("the stream did not end")
	}
	return Result{}
}

// idle checks that no writer is running.
func (l *lazyStream) idle() {
	l.t.Helper()
	synctest.Wait()
	if st := l.s.state.Load(); st != idle {
		l.t.Fatalf("state %d, want idle: a writer is still there", st)
	}
}

const (
	ping   = ": ping\n\n"
	event1 = "id: 1\ndata: " + result1 + "\n\n"
	event2 = "id: 2\ndata: " + result2 + "\n\n"
)

// An idle stream has no writer; a queued event or a heartbeat starts one,
// which stops once it wrote.
func TestLazyWriterStartsAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE}, true)
		l.idle()
		l.expect("")
		q.Push(next("1", result1))
		l.expect(event1)
		l.idle()
		time.Sleep(15 * time.Second) // the heartbeat restarts with the event
		l.expect(event1 + ping)
		l.idle()
		time.Sleep(15 * time.Second)
		l.expect(event1 + ping + ping)
		q.Close(nil)
		if res := l.result(true); res.Reason != ReasonDone || res.Events != 1 || res.Bytes != int64(len(event1+ping+ping+doneBytes)) {
			t.Fatalf("result %+v", res)
		}
		l.expect(event1 + ping + ping + doneBytes)
	})
}

// Events queued before the stream was taken over are written at once.
func TestLazyWriterQueuedBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		q.Push(next("1", result1))
		l := startLazy(t, q, Options{Mode: SSE, Heartbeat: -1}, true)
		l.expect(event1)
		l.idle()
	})
}

// Work that arrives while the writer writes (here: while it reports an
// event) is done before it stops: the writer passes again.
func TestLazyWriterWorkWhileWriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		var once sync.Once
		opt := Options{Mode: SSE, Heartbeat: -1, OnEvent: func(*event.Event) {
			once.Do(func() {
				q.Push(next("2", result2)) // the writer holds wmu: queued, and it is woken
			})
		}}
		l := startLazy(t, q, opt, true)
		q.Push(next("1", result1))
		l.expect(event1 + event2)
		l.idle()
	})
}

// Work that arrives just as the writer stops: whichever way the race goes,
// it is written, once, in order, and no writer is left behind. Over real
// connections, without fake time, many times.
func TestLazyWriterRace(t *testing.T) {
	const streams, events = 8, 500
	w := NewWatcher()
	defer w.Close()
	q := make([]*event.Queue, streams)
	for i := range q {
		q[i] = event.NewQueue(event.Limits{MaxEvents: events + 1})
	}
	var wg sync.WaitGroup
	var bodies sync.WaitGroup
	for i := range streams {
		hh := newDetachHarness(t, q[i], Options{Heartbeat: -1, Watcher: w}, true)
		resp := hh.get(t.Context(), "?wg_sse=true")
		hh.handlerResult()
		bodies.Add(1)
		go func() {
			defer bodies.Done()
			var want strings.Builder
			for j := range events {
				fmt.Fprintf(&want, "id: %d\ndata: {}\n\n", j)
			}
			want.WriteString(doneBytes)
			got, err := io.ReadAll(resp.Body)
			if err != nil || string(got) != want.String() {
				t.Errorf("stream %d: %v; %d bytes, want %d", i, err, len(got), want.Len())
			}
			if res := hh.result(); res.Reason != ReasonDone || res.Events != events {
				t.Errorf("stream %d: %+v", i, res)
			}
		}()
	}
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range events {
				q[i].Push(next(strconv.Itoa(j), "{}"))
				if j%7 == 0 {
					runtime.Gosched()
				}
			}
			q[i].Close(nil)
		}()
	}
	wg.Wait()
	bodies.Wait()
}

func TestLazyExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE, ExpiresAt: time.Now().Add(40 * time.Second)}, true)
		time.Sleep(39 * time.Second)
		l.expect(ping + ping)
		l.idle()
		time.Sleep(time.Second)
		if res := l.result(true); res.Reason != ReasonExpired {
			t.Fatalf("result %+v", res)
		}
		l.expect(ping + ping + expiredBytes)
	})
}

// A token that expired while the stream was being set up ends it at once.
func TestLazyExpiredAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: JSON, ExpiresAt: time.Now()}, true)
		if res := l.result(true); res.Reason != ReasonExpired {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestLazyLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE, Heartbeat: -1, MaxLifetime: time.Hour, Retry: 250 * time.Millisecond}, true)
		q.Push(next("1", result1))
		time.Sleep(time.Hour - time.Nanosecond)
		l.expect(event1)
		l.idle()
		time.Sleep(time.Nanosecond)
		if res := l.result(true); res.Reason != ReasonLifetime || res.Events != 1 {
			t.Fatalf("result %+v", res)
		}
		l.expect(event1 + "retry: 250\n\n")
	})
}

func TestLazyShutdown(t *testing.T) {
	for _, mode := range []Mode{SSE, JSON} {
		t.Run(modeLabel(mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, beginShutdown := context.WithCancel(context.Background())
				defer beginShutdown()
				q := event.NewQueue(event.Limits{})
				l := startLazy(t, q, Options{Mode: mode, Shutdown: ctx, Retry: 1500 * time.Millisecond}, true)
				time.Sleep(time.Minute + time.Second)
				l.idle()
				beginShutdown()
				if res := l.result(true); res.Reason != ReasonShutdown {
					t.Fatalf("result %+v", res)
				}
				want := strings.Repeat(ping, 4) + "retry: 1500\n\n"
				if mode == JSON {
					want = strings.Repeat("\n", 4) + string(jsonShutdown)
				}
				l.expect(want)
			})
		})
	}
}

// A stream set up after shutdown began ends at once.
func TestLazyShutdownBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, beginShutdown := context.WithCancel(context.Background())
		beginShutdown()
		l := startLazy(t, event.NewQueue(event.Limits{}), Options{Mode: SSE, Shutdown: ctx}, true)
		if res := l.result(true); res.Reason != ReasonShutdown {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestLazyClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := startLazy(t, event.NewQueue(event.Limits{}), Options{Mode: SSE}, true)
		time.Sleep(time.Minute + time.Second)
		l.idle()
		l.client.Close()
		if res := l.result(false); res.Reason != ReasonClientGone || res.Err != ErrClientGone {
			t.Fatalf("result %+v", res)
		}
	})
}

func TestLazyAbortWhileIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE, Heartbeat: -1}, true)
		q.Push(next("1", result1))
		l.expect(event1)
		l.idle()
		l.abort()
		if res := l.result(false); res.Reason != ReasonClientGone || res.Events != 1 {
			t.Fatalf("result %+v", res)
		}
		l.abort() // again, after the end: nothing
	})
}

// abort cuts a write that blocks on a client that stopped reading, long
// before its deadline.
func TestLazyAbortWhileWriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE, Heartbeat: -1, WriteTimeout: time.Hour}, false)
		q.Push(next("1", result1))
		synctest.Wait() // the writer blocks: nobody reads
		if st := l.s.state.Load(); st != running {
			t.Fatalf("state %d, want running", st)
		}
		time.Sleep(time.Minute)
		l.abort()
		if res := l.result(false); res.Reason != ReasonWriteFailed {
			t.Fatalf("result %+v", res)
		}
	})
}

// A write that blocks past the write timeout ends the stream.
func TestLazyWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE, Heartbeat: -1, WriteTimeout: 10 * time.Second}, false)
		q.Push(next("1", result1))
		time.Sleep(10*time.Second - time.Nanosecond)
		synctest.Wait()
		select {
		case res := <-l.results:
			t.Fatalf("ended before the write timeout: %+v", res)
		default:
		}
		time.Sleep(time.Nanosecond)
		if res := l.result(false); res.Reason != ReasonWriteFailed {
			t.Fatalf("result %+v", res)
		}
	})
}

// A writer that panics ends its stream only, with ReasonPanic.
func TestLazyPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := event.NewQueue(event.Limits{})
		l := startLazy(t, q, Options{Mode: SSE, Heartbeat: -1, OnEvent: func(*event.Event) { panic("boom") }}, true)
		q.Push(next("1", result1))
		res := l.result(false)
		if res.Reason != ReasonPanic || res.Err == nil || !strings.Contains(res.Err.Error(), "boom") {
			t.Fatalf("result %+v", res)
		}
		if _, err := l.client.Write([]byte("x")); err == nil {
			t.Fatal("the connection is still open")
		}
	})
}

// Idle detached streams watched by a Watcher hold no goroutine.
func TestDetachedIdleStreamsHoldNoGoroutine(t *testing.T) {
	w := NewWatcher()
	defer w.Close()
	var mu sync.Mutex
	var queues []*event.Queue
	var streams sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		q := event.NewQueue(event.Limits{})
		mu.Lock()
		queues = append(queues, q)
		mu.Unlock()
		Serve(rw, r, q, Options{Mode: SSE, Heartbeat: -1, Watcher: w, Detach: func(func()) func(Result) {
			streams.Add(1)
			return func(Result) { streams.Done() }
		}})
	}))
	defer func() {
		srv.Close()
		for _, q := range queues {
			q.Close(nil)
		}
		streams.Wait()
	}()
	dial := func() {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_, _ = io.WriteString(conn, "GET /?wg_sse=true HTTP/1.1\r\nHost: x\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
			t.Fatal(err)
		}
	}
	dial()
	before := settledGoroutines()
	for range 50 {
		dial()
	}
	if after := settledGoroutines(); after > before+10 { // slack for net/http goroutines still ending
		t.Fatalf("%d goroutines with 1 idle stream, %d with 51", before, after)
	}
}

// settledGoroutines counts goroutines once their number stopped falling
// (net/http's connection goroutines end after the handler returned).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(5 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return m
		}
		n = m
	}
	return n
}

func modeLabel(m Mode) string {
	if m == SSE {
		return "sse"
	}
	return "json"
}
