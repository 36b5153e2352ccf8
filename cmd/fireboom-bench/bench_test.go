package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseUTC(t *testing.T) {
	for _, s := range []string{
		"2025-01-02T03:04:05Z",
		"2025-01-02T03:04:05.1Z",
		"2025-12-31T23:59:59.123456789Z",
		"2024-02-29T00:00:00.000001Z",
	} {
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseUTC([]byte(s + `"}`))
		if !ok || !got.Equal(want) {
			t.Errorf("parseUTC(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "2025-01-02 03:04:05Z", "2025-01-02T03:04:05+01:00", "2025-01-02T03:04:05.5"} {
		if _, ok := parseUTC([]byte(s)); ok {
			t.Errorf("parseUTC(%q) accepted", s)
		}
	}
}

func TestHistogram(t *testing.T) {
	for us := uint64(0); us < 1<<20; us = us*9/8 + 1 {
		i := histIndex(us)
		if up := histUpper(i); us > up || (i > 0 && us <= histUpper(i-1)) {
			t.Fatalf("%d µs in bucket %d, which ends at %d (previous ends at %d)", us, i, up, histUpper(i-1))
		}
	}
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	b, m := h.snapshot()
	var l latencies
	l.add(b, m)
	check := func(q float64, want time.Duration) {
		t.Helper()
		got := l.quantile(q)
		if got < want || got > want+want/25 { // buckets are at most ~3% wide
			t.Errorf("q%.2f = %v, want %v (+3%%)", q, got, want)
		}
	}
	check(0.5, 500*time.Millisecond)
	check(0.99, 990*time.Millisecond)
	if l.max != time.Second || l.quantile(1) != time.Second {
		t.Errorf("max = %v, q1 = %v", l.max, l.quantile(1))
	}
}

// TestParseStream feeds the exact bytes a gateway writes (framed as one
// HTTP/1.1 chunked response, split at awkward places) through a client.
func TestParseStream(t *testing.T) {
	pub := time.Now().Add(-5 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	ev := func(seq int) string {
		return fmt.Sprintf("id: abc-%d\ndata: {\"data\":{\"stockPricesChanged\":{\"symbol\":\"ACME\",\"price\":1.5,\"seq\":%d,\"publishedAt\":%q}}}\n\n", seq, seq, pub)
	}
	stream := ": ping\n\n" + ev(1) + ev(2) + ev(5) + ev(5) + "event: gap\ndata: {\"missed\":3}\n\n" + ev(6) +
		"data: {\"errors\":[{\"message\":\"slow\",\"extensions\":{\"code\":\"SlowConsumer\"}}]}\n\nevent: done\ndata: done\n\n"
	w := &worker{failures: map[string]int64{}, endings: map[string]int64{}}
	w.startHold()
	reason := w.read(io.MultiReader(strings.NewReader(stream[:7]), strings.NewReader(stream[7:100]), strings.NewReader(stream[100:])))
	if reason != "done" {
		t.Errorf("reason = %q", reason)
	}
	r := w.report()
	if r.Events != 5 || r.Lost != 2 || r.Dups != 1 || r.Gaps != 1 || r.Errors != 1 || r.SlowCut != 1 || r.Done != 1 || r.BadData != 0 {
		t.Errorf("report = %+v", r)
	}
	var l latencies
	l.add(r.Hist, r.MaxNS)
	if q := l.quantile(0.5); q < 5*time.Millisecond || q > time.Minute {
		t.Errorf("p50 = %v", q)
	}
}

// TestWorkerAgainstServer runs a worker's client against a real HTTP
// server that streams chunked SSE, from a 127.0.0.x source address.
func TestWorkerAgainstServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("room") != "bench-7" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		for seq := 1; seq <= 3; seq++ {
			pub := time.Now().UTC().Format(time.RFC3339Nano)
			fmt.Fprintf(w, "id: x-%d\ndata: {\"data\":{\"t\":{\"seq\":%d,\"publishedAt\":%q}}}\n\n", seq, seq, pub)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "event: done\ndata: done\n\n")
	}))
	defer srv.Close()
	w := &worker{
		cfg:      workerConfig{addr: strings.TrimPrefix(srv.URL, "http://"), path: "/x?room=bench-{i}", bearer: "tok", n: 1, sources: 4},
		failures: map[string]int64{}, endings: map[string]int64{},
	}
	w.startHold()
	w.client(context.Background(), 7)
	r := w.report()
	if r.Failed != 0 || r.Ended != 1 || r.Endings["done"] != 1 || r.Events != 3 || r.Lost != 0 {
		t.Errorf("report = %+v", r)
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(strings.NewReader("# HELP x\ngo_goroutines 12\nfireboom_open_streams{operation=\"a\",mode=\"sse\"} 2\nfireboom_open_streams{operation=\"b\",mode=\"sse\"} 3\nprocess_cpu_seconds_total 1.5e+00\n"))
	if err != nil || m["go_goroutines"] != 12 || m["fireboom_open_streams"] != 5 || m["process_cpu_seconds_total"] != 1.5 {
		t.Errorf("metrics = %v, %v", m, err)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "localhost:80": true, "[::1]:9": true, "10.0.0.1:80": false, "example.com:80": false, "x": false} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
}

func TestReportPrint(t *testing.T) {
	r := &report{Mode: "shared", Clients: 2, Rate: 10, Hold: "1s", Connected: 2, UpstreamSubscriptions: 1, HeldSeconds: 1, Deliveries: 20, Expected: 20}
	var b bytes.Buffer
	r.print(&b)
	out := b.String()
	if lines := strings.Count(out, "\n"); lines < 10 || !strings.Contains(out, "100.00% of 20 expected") {
		t.Errorf("report:\n%s", out)
	}
	if thousands(1234567) != "1,234,567" || thousands(12) != "12" {
		t.Error(thousands(1234567))
	}
}

// A tick's payload is JSON of the requested size, with what the clients
// read (seq, publishedAt) and the user the filter matches.
func TestTickPayload(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	p := tickPayload(7, 42, at, 200)
	var v struct {
		UserID      string `json:"userId"`
		Seq         int64  `json:"seq"`
		PublishedAt string `json:"publishedAt"`
	}
	if err := json.Unmarshal([]byte(p), &v); err != nil || len(p) != 200 || v.UserID != "u7" || v.Seq != 42 || v.PublishedAt != "2026-01-02T03:04:05.0000006Z" {
		t.Errorf("payload %q (%d bytes): %+v %v", p, len(p), v, err)
	}
	if seq, ok := intAfter([]byte(p), `"seq":`); !ok || seq != 42 {
		t.Errorf("the clients read seq %d %v", seq, ok)
	}
	if got, ok := timeAfter([]byte(p), `"publishedAt":"`); !ok || !got.Equal(at) {
		t.Errorf("the clients read publishedAt %v %v", got, ok)
	}
}

func TestParseRunSource(t *testing.T) {
	c, err := parseRun([]string{"-source", "postgres", "-clients", "5000", "-users", "100", "-rate", "2"}, io.Discard)
	if err != nil || c.mode() != "postgres" || c.path() != "/operations/MyTicks?wg_sse=true" || c.payload != 200 || c.pgURL != pgDefaultURL {
		t.Fatalf("%+v %v", c, err)
	}
	for _, args := range [][]string{
		{"-source", "kafka"},
		{"-source", "postgres", "-idle"},
		{"-source", "postgres", "-gateway", "http://127.0.0.1:1"},
		{"-source", "postgres", "-clients", "10", "-users", "11"},
		{"-source", "postgres", "-payload", "8000"},
	} {
		if _, err := parseRun(args, io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	r := &report{Mode: "postgres", Clients: 4, Users: 2, PayloadBytes: 200, Rate: 1, Hold: "1s", Connected: 4, SourceConnections: 1,
		UpstreamSubscriptions: -1, HeldSeconds: 1, UpstreamEvents: 4, Deliveries: 8, Expected: 8}
	var b bytes.Buffer
	r.print(&b)
	if out := b.String(); !strings.Contains(out, "over 2 users, 1 ticks/s × 2 NOTIFYs of 200 bytes") || !strings.Contains(out, "1 PostgreSQL connections") ||
		!strings.Contains(out, "NOTIFYs received (hold)") || !strings.Contains(out, "100.00% of 8 expected") {
		t.Errorf("report:\n%s", out)
	}
}
