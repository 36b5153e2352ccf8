package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/upstream/demo"
)

// ticks is the one operation the clients stream.
const ticks = `subscription Ticks($symbol: String!) {
  stockPricesChanged(symbols: [$symbol]) { symbol price seq }
}
`

var symbols = []string{"ACME", "GLOBEX", "INITECH", "UMBRELLA"}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type options struct {
	duration, restartEvery, tick time.Duration
	maxAway                      time.Duration
	clients, maxEvents           int
	logLevel                     string
	cluster                      bool
}

func run(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the churn runs")
	fs.DurationVar(&o.restartEvery, "restart-every", time.Minute, "upstream restart period (0: never)")
	fs.DurationVar(&o.maxAway, "max-away", 3*time.Second, "a restarted upstream stays away a random 100ms..max-away")
	fs.DurationVar(&o.tick, "tick", 20*time.Millisecond, "demo ticker period (each tick is one event per symbol)")
	fs.IntVar(&o.clients, "clients", 50, "concurrent churning SSE clients")
	fs.IntVar(&o.maxEvents, "max-events", 200, "a client reads 1..max-events events per connection")
	fs.StringVar(&o.logLevel, "log", "error", "gateway log level (debug, info, warn, error), to stderr")
	fs.BoolVar(&o.cluster, "cluster", false, "three gateways in a cluster on an in-process NATS, restarted one at a time every -restart-every (the upstream is not restarted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// The upstream.
	demoOpts := demo.Options{TickInterval: o.tick}
	up, err := demo.Start(demoOpts)
	if err != nil {
		return err
	}
	ups := &upstreamBox{d: up}
	defer func() { _ = ups.get().Close() }()
	if o.cluster {
		t, err := runCluster(o, up.URL(), log, stdout)
		if err != nil {
			return err
		}
		if t.lost > 0 || t.dups > 0 {
			return fmt.Errorf("%d events lost outside declared gaps, %d duplicates", t.lost, t.dups)
		}
		return nil
	}

	// The gateway, served as cmd/fireboom serves it.
	dir, err := os.MkdirTemp("", "fireboom-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Ticks.graphql"), []byte(ticks), 0o644); err != nil {
		return err
	}
	cfg, err := config.Parse(fmt.Appendf(nil, `{"operationsDir": %q, "upstream": {"url": %q}, "subscriptions": {"heartbeat": "2s"}}`,
		dir, up.URL()), func(string) (string, bool) { return "", false })
	if err != nil {
		return err
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: log})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = g.Close()
		return err
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	startG, startRSS := runtime.NumGoroutine(), rss()
	fmt.Fprintf(stdout, "soak: duration=%s clients=%d restart-every=%s tick=%s max-events=%d\n",
		o.duration, o.clients, o.restartEvery, o.tick, o.maxEvents)
	fmt.Fprintf(stdout, "start: goroutines=%d rss=%s\n", startG, mib(startRSS))

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var wg sync.WaitGroup
	restarts := 0
	if o.restartEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			restarts = restarter(ctx, ups, demoOpts, o.restartEvery, o.maxAway, stdout)
		}()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients, IdleConnTimeout: 30 * time.Second}
	hc := &http.Client{Transport: tr}
	tally := newTally()
	for i := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{hc: hc, base: base, symbol: symbols[i%len(symbols)], maxEvents: o.maxEvents, t: tally,
				rnd: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
			c.loop(ctx)
		}()
	}
	progress(ctx, stdout, tally, g)
	wg.Wait()
	tr.CloseIdleConnections()

	// Let idle upstream connections and kept subscriptions go before the
	// end figures.
	time.Sleep(7 * time.Second)
	runtime.GC()
	endG, endRSS := runtime.NumGoroutine(), rss()
	st := g.HubStats()
	report(stdout, tally, restarts, st.Reconnects)
	fmt.Fprintf(stdout, "end: goroutines=%d rss=%s (hub: %d connections, %d subscriptions, %d clients)\n",
		endG, mib(endRSS), st.Connections, st.Subscriptions, g.TopicStats().Clients)

	g.BeginShutdown()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	<-served
	_ = g.Close()
	if tally.lost > 0 || tally.dups > 0 {
		return fmt.Errorf("%d events lost outside declared gaps, %d duplicates", tally.lost, tally.dups)
	}
	return nil
}

// upstreamBox holds the current demo server across restarts.
type upstreamBox struct {
	mu sync.Mutex
	d  *demo.Server
}

func (b *upstreamBox) get() *demo.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.d
}

// restarter closes the upstream and starts it again on the same address
// every period; it returns how many restarts it did.
func restarter(ctx context.Context, ups *upstreamBox, opts demo.Options, period, maxAway time.Duration, out io.Writer) int {
	n := 0
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
		ups.mu.Lock()
		addr := ups.d.Addr()
		_ = ups.d.Close()
		away := 100 * time.Millisecond
		if maxAway > away {
			away += rand.N(maxAway - away)
		}
		time.Sleep(away)
		var err error
		for i := 0; i < 50; i++ { // the port may take a moment to be free
			var d *demo.Server
			if d, err = demo.StartAt(addr, opts); err == nil {
				ups.d = d
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		ups.mu.Unlock()
		if err != nil {
			fmt.Fprintf(out, "restart failed: %v\n", err)
			return n
		}
		n++
		fmt.Fprintf(out, "upstream restarted (%d), away %s\n", n, away.Round(time.Millisecond))
	}
}

// progress prints a line every minute until ctx ends.
func progress(ctx context.Context, out io.Writer, t *tally, g *gateway.Gateway) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.mu.Lock()
			fmt.Fprintf(out, "%s: streams=%d events=%d gaps=%d lost=%d goroutines=%d rss=%s reconnects=%d\n",
				time.Since(start).Round(time.Second), t.streams, t.events, t.gapTotal(), t.lost,
				runtime.NumGoroutine(), mib(rss()), g.HubStats().Reconnects)
			t.mu.Unlock()
		}
	}
}

func report(out io.Writer, t *tally, restarts int, reconnects int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(out, "upstream restarts: %d (upstream reconnects by the gateway: %d)\n", restarts, reconnects)
	fmt.Fprintf(out, "streams served: %d (resumed with Last-Event-ID: %d, new: %d)\n", t.streams, t.resumed, t.streams-t.resumed)
	fmt.Fprintf(out, "events received: %d\n", t.events)
	fmt.Fprintf(out, "gaps declared: %d %s\n", t.gapTotal(), counts(t.gaps))
	fmt.Fprintf(out, "events lost outside declared gaps: %d (undeclared discontinuities: %d)\n", t.lost, t.breaks)
	fmt.Fprintf(out, "duplicate or out-of-order events: %d\n", t.dups)
	fmt.Fprintf(out, "streams ended by the gateway: %d %s\n", t.endTotal(), counts(t.ends))
	fmt.Fprintf(out, "requests refused: %d %s; connect errors: %d\n", t.refusedTotal(), counts(t.refused), t.connErrs)
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "()"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// rss is the process's resident set size in bytes (Linux; 0 elsewhere).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
