package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWorkerHTTP2 runs a worker's clients in HTTP/2 mode against a real
// HTTP/2 server: -http2-streams clients share a connection, each from the
// group's source address, and the streams are parsed as over HTTP/1.1.
func TestWorkerHTTP2(t *testing.T) {
	var conns atomic.Int64
	var mu sync.Mutex
	peers := map[string]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		peers[host] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		for seq := 1; seq <= 3; seq++ {
			fmt.Fprintf(w, "id: x-%d\ndata: {\"data\":{\"t\":{\"seq\":%d,\"publishedAt\":%q}}}\n\n", seq, seq, time.Now().UTC().Format(time.RFC3339Nano))
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "event: done\ndata: done\n\n")
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := workerConfig{addr: strings.TrimPrefix(srv.URL, "https://"), path: "/x?room=bench-{i}", bearer: "tok", n: 5, sources: 4}
	pool, err := (&h2WorkerOpts{ca: ca, streams: 2}).pool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.close()
	w := &worker{cfg: cfg, h2: pool, failures: map[string]int64{}, endings: map[string]int64{}}
	w.startHold()
	// Clients 0-1, 2-3 and 4 make three groups; the first of a group
	// opens its connection before the others join it.
	var wg sync.WaitGroup
	for i := range cfg.n {
		if i%2 == 0 {
			w.client(context.Background(), i)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(context.Background(), i)
		}()
	}
	wg.Wait()
	r := w.report()
	if r.Failed != 0 || r.Ended != 5 || r.Endings["done"] != 5 || r.Events != 15 || r.Lost != 0 {
		t.Errorf("report = %+v", r)
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections for 5 streams at 2 per connection, want 3", n)
	}
	if len(peers) != 3 || !peers["127.0.0.2"] || !peers["127.0.0.3"] || !peers["127.0.0.4"] {
		t.Errorf("peers %v, want a source address per connection", peers)
	}
}

func TestHTTP2Flags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-http2", "-gateway", "http://127.0.0.1:1"}, "-http2 starts its own gateway"},
		{[]string{"-http2", "-http2-streams", "251"}, "-http2-streams must be between 1 and 250"},
	} {
		if _, err := parseRun(tc.args, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.want)
		}
	}
	c, err := parseRun([]string{"-http2"}, &strings.Builder{})
	if err != nil || !c.http2 || c.h2Streams != 100 {
		t.Errorf("-http2: %+v %v", c, err)
	}
}
