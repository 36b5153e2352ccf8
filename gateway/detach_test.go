package gateway

import (
	"bufio"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// A stream outlives its handler (sse.Options.Detach): its request log line
// is written when the stream ends, with the bytes the stream wrote, not
// when the handler returned.
func TestDetachedStreamLogsAtItsEnd(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	resp := get(t, g.URL+"/operations/Countdown?from=2&interval=300&wg_sse=true")
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	head := readUntil(t, br, `"countdown":2}}`+"\n\n", 5*time.Second)
	line := regexp.MustCompile(`msg=request .*path="?/operations/Countdown[^ ]* status=200 .*bytes=(\d+)`)
	if line.MatchString(g.logs.String()) {
		t.Fatal("the request was logged while its stream is open")
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	body := head + string(rest)
	if !strings.HasSuffix(body, `"countdown":0}}`+"\n\nevent: done\ndata: done\n\n") {
		t.Fatalf("body %q", body)
	}
	eventually(t, 5*time.Second, "the request logged at the stream's end", func() bool {
		m := line.FindStringSubmatch(g.logs.String())
		return m != nil && m[1] == strconv.Itoa(len(body))
	})
	eventually(t, 5*time.Second, "the stream counted as ended", func() bool { return g.streams.Load() == 0 })
}

// Close does not wait a whole write timeout for a detached stream whose
// client stopped reading: after streamGrace it cuts the connection.
func TestCloseCutsStuckDetachedStream(t *testing.T) {
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, configWith("", `, "subscriptions": {"queueEvents": 2, "writeTimeout": "1m"}`))
	g, _, readers := slowClient(t, d, g, "stuck")
	// Fill the socket buffers until the never-reading client's writer
	// blocks and its queue overflows behind it.
	for sent := 1; g.topics.Stats("").Cut == 0; sent++ {
		if sent > 100 {
			t.Fatal("100 messages of 64 KB and the client that never reads was not cut off")
		}
		post(t, g, "stuck", bigMessage(sent))
		for _, r := range readers {
			r.nextMessage() // the readers keep up
		}
	}
	closed := make(chan struct{})
	go func() {
		_ = g.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // the stuck write's deadline is a minute away
		t.Fatal("Close waited for the stuck stream's write deadline")
	}
}

// Idle HTTP/1.1 streams hold no goroutine of their own, and a client that
// leaves is noticed at once (by the gateway's sse.Watcher), not at the
// next heartbeat 15 s later.
func TestIdleStreamsHoldNoGoroutine(t *testing.T) {
	const n = 40
	d := startDemo(t, demo.Options{})
	g := newGateway(t, d, defaultConfig)
	first, err := dialStream(g, "/operations/chat/MessageCreated?wg_sse=true&room=idle")
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()
	waitActive(t, d, 1)
	eventually(t, 5*time.Second, "the first stream counted", func() bool { return g.streams.Load() == 1 })
	before := settledGoroutines()
	streams := make([]*rawStream, 0, n)
	for range n {
		s, err := dialStream(g, "/operations/chat/MessageCreated?wg_sse=true&room=idle")
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		streams = append(streams, s)
	}
	eventually(t, 5*time.Second, "the streams counted", func() bool { return g.streams.Load() == n+1 })
	if after := settledGoroutines(); after > before+10 { // slack for net/http goroutines still ending
		t.Fatalf("%d goroutines with 1 idle stream, %d with %d", before, after, n+1)
	}
	gone := metricValue(t, g.URL, `fireboom_stream_ends_total{reason="client-gone"}`)
	for _, s := range streams {
		s.close()
	}
	eventually(t, 5*time.Second, "the clients' leaving noticed", func() bool {
		return g.streams.Load() == 1 && metricValue(t, g.URL, `fireboom_stream_ends_total{reason="client-gone"}`) == gone+n
	})
}

// settledGoroutines counts goroutines once their number stopped changing
// (net/http's connection goroutines end after their handler returned).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for range 100 {
		time.Sleep(10 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return m
		}
		n = m
	}
	return n
}
