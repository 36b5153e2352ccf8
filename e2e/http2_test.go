package e2e

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/upstream/demo"
)

// CONTRACT §11: a browser page may hold many EventSource streams at once
// over HTTP/2, where HTTP/1.1 gives it six connections per origin.

// streamsPage opens ?n= EventSources on countdowns that keep going (one
// value every 100 ms from 90000+i) and counts each one's events.
const streamsPage = `<!doctype html>
<meta charset="utf-8">
<title>streams</title>
<main><pre id="out"></pre></main>
<script>
  const n = Number(new URLSearchParams(location.search).get("n"));
  window.streams = [];
  for (let i = 0; i < n; i++) {
    const s = { events: 0, es: new EventSource("/operations/Countdown?from=" + (90000 + i) + "&interval=100&wg_sse=true") };
    s.es.onmessage = () => { s.events++; };
    streams.push(s);
  }
  window.counts = () => streams.map((s) => s.events);
  setInterval(() => { document.getElementById("out").textContent = counts().join(" "); }, 100);
</script>
`

// pageStack is a gateway served as the command serves it (Gateway.Serve),
// with streamsPage on the same origin at /e2e/streams.html.
type pageStack struct {
	URL string
	gw  *gateway.Gateway
	mu  sync.Mutex
	// protos holds the protocol of each stream request, in arrival order.
	protos []string
}

func (s *pageStack) streamProtos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.protos)
}

// startPageStack serves the repository's operations against a demo
// upstream, over HTTPS (HTTP/2 and HTTP/1.1, with siteCert) when secure,
// else over plain HTTP/1.1.
func startPageStack(t *testing.T, secure bool) *pageStack {
	t.Helper()
	needBrowser(t)
	d, err := demo.Start(demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ops, err := filepath.Abs("../operations")
	if err != nil {
		t.Fatal(err)
	}
	extra := ""
	if secure {
		cert, key, err := siteCert.WriteFiles(t.TempDir(), "site")
		if err != nil {
			t.Fatal(err)
		}
		extra = fmt.Sprintf(`, "tls": {"certFile": %q, "keyFile": %q}`, cert, key)
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{"operationsDir": %q, "upstream": {"url": %q}, "auth": {"jwt": {"secret": %q}}%s}`,
		ops, d.URL(), e2eSecret, extra)), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	s := &pageStack{gw: g}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /e2e/streams.html", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(streamsPage))
	})
	mux.Handle("/", g)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/operations/Countdown") {
			s.mu.Lock()
			s.protos = append(s.protos, r.Proto)
			s.mu.Unlock()
		}
		mux.ServeHTTP(w, r)
	})}
	served := make(chan error, 1)
	go func() { served <- g.Serve(srv, ln) }()
	s.URL = g.Scheme() + "://" + ln.Addr().String()
	t.Cleanup(func() {
		g.BeginShutdown()
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		_ = g.Close()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return s
}

// Over HTTPS (HTTP/2) the page's ten EventSources all stream at once.
func TestTenStreamsOverHTTP2(t *testing.T) {
	t.Parallel()
	s := startPageStack(t, true)
	// A tab of its own, not the dashboard, whose stats stream would hold
	// a connection.
	b := newTab(t, s.URL, desktopW, desktopH, false)
	b.do(chromedp.Navigate(s.URL + "/e2e/streams.html?n=10"))
	b.wait("events on all ten streams", `counts().every((c) => c >= 3)`)
	if p := eval[string](b, `performance.getEntriesByType("navigation")[0].nextHopProtocol`); p != "h2" {
		b.fatalf("the page came over %q, want h2", p)
	}
	protos := s.streamProtos()
	if len(protos) != 10 || slices.ContainsFunc(protos, func(p string) bool { return p != "HTTP/2.0" }) {
		b.fatalf("stream requests over %q, want ten over HTTP/2.0", protos)
	}
}

// Over plain HTTP/1.1 the same page gets six streams: Chromium holds six
// connections per origin, and the seventh request waits for one of them.
// The first six stream (each gets events while the other four stay at
// none, and the gateway sees six requests, not more); when the page closes
// one, exactly one more starts.
func TestSeventhStreamStallsOverHTTP1(t *testing.T) {
	t.Parallel()
	s := startPageStack(t, false)
	// A tab of its own, not the dashboard, whose stats stream would hold
	// a connection.
	b := newTab(t, s.URL, desktopW, desktopH, false)
	b.do(chromedp.Navigate(s.URL + "/e2e/streams.html?n=10"))
	// Six streams get several events each: long enough for a seventh, had
	// it been sent, to reach the gateway and get its first.
	b.wait("events on six streams", `counts().filter((c) => c >= 5).length === 6`)
	counts := eval[[]int](b, `counts()`)
	if started := slices.IndexFunc(counts, func(c int) bool { return c == 0 }); started != 6 || slices.ContainsFunc(counts[6:], func(c int) bool { return c != 0 }) {
		b.fatalf("event counts %v: want the first six streaming and the other four at none", counts)
	}
	if protos := s.streamProtos(); len(protos) != 6 || slices.ContainsFunc(protos, func(p string) bool { return p != "HTTP/1.1" }) {
		b.fatalf("the gateway got stream requests over %q, want six over HTTP/1.1", protos)
	}

	// Closing a stream frees its connection for the seventh.
	b.do(chromedp.Evaluate[chromedp.Void](`streams[0].es.close()`))
	b.wait("the seventh stream", `streams[6].events >= 5`)
	counts = eval[[]int](b, `counts()`)
	if slices.ContainsFunc(counts[7:], func(c int) bool { return c != 0 }) {
		b.fatalf("event counts %v: want streams 8 to 10 still at none", counts)
	}
	if protos := s.streamProtos(); len(protos) != 7 {
		b.fatalf("%d stream requests after one closed, want 7", len(protos))
	}
}
