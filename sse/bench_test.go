package sse

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"

	"github.com/fireboom/fireboom/event"
)

var benchEvent = &event.Event{
	Kind: event.Next,
	ID:   "7f3a9c:123456",
	Data: []byte(`{"data":{"messageCreated":{"id":"123456","content":"hello, world","author":{"id":"42","name":"Ada"}}}}`),
}

// pushPaced pushes n events, pausing while the reader is behind so the
// queue's Disconnect policy never cuts the benchmark short.
func pushPaced(q *event.Queue, n int) {
	for range n {
		for q.Len() >= 512 {
			runtime.Gosched()
		}
		q.Push(benchEvent)
	}
}

func reportPerEvent(b *testing.B, events int, before *runtime.MemStats) {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(events), "allocs/event")
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkServeSSE streams b.N events to one real HTTP client over
// loopback. One op is one delivered event; allocations count every goroutine
// (producer, Serve, net/http server and client).
func BenchmarkServeSSE(b *testing.B) {
	q := event.NewQueue(event.Limits{})
	results := make(chan Result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		results <- Serve(w, r, q, Options{Mode: SSE, Heartbeat: -1})
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "?wg_sse=true")
	if err != nil {
		b.Fatal(err)
	}
	read := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		read <- n
	}()
	// Warm up the buffers and the queue's slice.
	pushPaced(q, 2048)

	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	pushPaced(q, b.N)
	q.Close(nil)
	res := <-results
	<-read
	b.StopTimer()
	reportPerEvent(b, b.N, &before)
	if res.Reason != ReasonDone || res.Events != b.N+2048 {
		b.Fatalf("result = %+v", res)
	}
}

type discardFlusher struct{ h http.Header }

func (d *discardFlusher) Header() http.Header         { return d.h }
func (d *discardFlusher) WriteHeader(int)             {}
func (d *discardFlusher) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardFlusher) Flush()                      {}

// BenchmarkServeSSEFanout delivers every event to 1,000 concurrent streams,
// each writing to a discarding ResponseWriter: the cost of Serve itself
// (queue hand-off, framing, flush) for many clients. One op is one
// delivered event (one event to one client).
func BenchmarkServeSSEFanout(b *testing.B) {
	const clients = 1000
	queues := make([]*event.Queue, clients)
	var wg sync.WaitGroup
	r := httptest.NewRequest("GET", "/operations/x?wg_sse=true", nil)
	for i := range queues {
		q := event.NewQueue(event.Limits{})
		queues[i] = q
		wg.Go(func() {
			Serve(&discardFlusher{h: http.Header{}}, r, q, Options{Mode: SSE, Heartbeat: -1})
		})
	}
	rounds := max(b.N/clients, 1)
	slow := func() bool {
		for _, q := range queues {
			if q.Len() >= 256 {
				return true
			}
		}
		return false
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range rounds {
		if i%64 == 0 {
			for slow() {
				runtime.Gosched()
			}
		}
		for _, q := range queues {
			q.Push(benchEvent)
		}
	}
	for _, q := range queues {
		q.Close(nil)
	}
	wg.Wait()
	b.StopTimer()
	reportPerEvent(b, rounds*clients, &before)
}

// BenchmarkServeSSELoopbackFanout fans each event out to 500 real HTTP
// clients over loopback, one round of pushes at a time, so that batches stay
// small as with a live upstream: the realistic per-delivery cost including
// syscalls. One op is one delivered event.
func BenchmarkServeSSELoopbackFanout(b *testing.B) {
	const clients = 500
	queues := make(chan *event.Queue, clients)
	var served sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := event.NewQueue(event.Limits{})
		queues <- q
		Serve(w, r, q, Options{Mode: SSE, Heartbeat: -1})
		served.Done()
	}))
	srv.Start()
	defer srv.Close()
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var readers sync.WaitGroup
	served.Add(clients)
	qs := make([]*event.Queue, 0, clients)
	for range clients {
		resp, err := client.Get(srv.URL + "?wg_sse=true")
		if err != nil {
			b.Fatal(err)
		}
		qs = append(qs, <-queues)
		readers.Go(func() {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	rounds := max(b.N/clients, 1)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for range rounds {
		for _, q := range qs {
			for q.Len() >= 256 {
				runtime.Gosched()
			}
			q.Push(benchEvent)
		}
	}
	for _, q := range qs {
		q.Close(nil)
	}
	served.Wait()
	readers.Wait()
	b.StopTimer()
	reportPerEvent(b, rounds*clients, &before)
}
