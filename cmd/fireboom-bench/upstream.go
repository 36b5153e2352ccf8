package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// tickInterval turns a rate (events/s) into the demo's TickInterval.
func tickInterval(rate float64) time.Duration {
	if rate <= 0 {
		return -1 // no ticks
	}
	return time.Duration(float64(time.Second) / rate)
}

// benchUpstream is the demo upstream served with its counters at /stats.
type benchUpstream struct {
	d   *demo.Server
	srv *http.Server
	ln  net.Listener
	wg  chan struct{} // closed when Serve returned
}

// startUpstream serves the demo on addr: GraphQL at /graphql, its Stats as
// JSON at /stats.
func startUpstream(addr string, rate float64) (*benchUpstream, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	d, err := demo.New(demo.Options{TickInterval: tickInterval(rate)})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", d.Handler())
	mux.HandleFunc("/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.Stats())
	})
	u := &benchUpstream{d: d, ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, wg: make(chan struct{})}
	go func() {
		defer close(u.wg)
		_ = u.srv.Serve(ln)
	}()
	return u, nil
}

func (u *benchUpstream) url() string { return "http://" + u.ln.Addr().String() + "/graphql" }

func (u *benchUpstream) close() {
	// The demo first: it ends its WebSockets, which net/http no longer
	// tracks once they are hijacked.
	_ = u.d.Close()
	_ = u.srv.Close()
	<-u.wg
}

// statsFunc reads the upstream's counters.
type statsFunc func(ctx context.Context) (demo.Stats, error)

// remoteStats reads /stats of a "fireboom-bench upstream" process.
func remoteStats(hc *http.Client, url string) statsFunc {
	return func(ctx context.Context) (demo.Stats, error) {
		var st demo.Stats
		b, code, err := get(ctx, hc, url)
		if err != nil {
			return st, err
		}
		if code != http.StatusOK {
			return st, fmt.Errorf("GET %s: status %d", url, code)
		}
		return st, json.Unmarshal(b, &st)
	}
}

// runUpstream is "fireboom-bench upstream": the demo upstream alone, for a
// gateway started by hand (run -gateway URL -upstream-stats URL/stats).
func runUpstream(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4000", "loopback address to serve")
	rate := fs.Float64("rate", 10, "stock ticks per second (0: none)")
	duration := fs.Duration("duration", 30*time.Minute, "exit after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	u, err := startUpstream(*listen, *rate)
	if err != nil {
		return err
	}
	defer u.close()
	fmt.Fprintf(stderr, "demo upstream at %s ticking %g/s, counters at http://%s/stats; exits in %s\n",
		u.url(), *rate, u.ln.Addr(), *duration)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(*duration):
	case <-u.wg:
		return errors.New("upstream server stopped")
	}
	return nil
}
