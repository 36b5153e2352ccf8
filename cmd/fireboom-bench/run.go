package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/upstream/demo"
)

// runConfig holds the flags of "fireboom-bench run".
type runConfig struct {
	clients       int
	rate          float64
	hold, settle  time.Duration
	ramp          float64
	idle          bool
	distinct      int
	gatewayURL    string
	gatewayPID    int
	upstreamStats string
	gatewayBin    string
	subscriptions string
	perProc       int
	sources       int
	sub, bearer   string
	secret        string
	pprof         string
	cpuProfile    string
	memProfile    string
	jsonOut       string
	toolProfile   string
	http2         bool   // -http2: TLS gateway, HTTP/2 clients (see http2.go)
	h2Streams     int    // -http2-streams: streams per connection
	h2CA          string // the gateway certificate the workers trust
	source        string // "postgres": serve an event source instead of an upstream
	users         int
	pgURL         string
	payload       int
	cluster       bool
}

// deadline bounds the whole run: ramp, settle, hold and a margin.
func (c *runConfig) deadline() time.Duration {
	ramp := time.Duration(float64(c.clients) / c.ramp * float64(time.Second))
	return ramp + c.settle + c.hold + 3*time.Minute
}

func (c *runConfig) mode() string {
	switch {
	case c.source != "":
		return c.source
	case c.distinct > 0:
		return "distinct"
	case c.idle:
		return "idle"
	}
	return "shared"
}

// path is the request target of the mode ("{i}": the client's index).
func (c *runConfig) path() string {
	switch c.mode() {
	case "distinct":
		return "/operations/Idle?wg_sse=true&room=bench-{i}"
	case "idle":
		return "/operations/Idle?wg_sse=true"
	case "postgres":
		return "/operations/MyTicks?wg_sse=true"
	}
	return "/operations/Ticks?wg_sse=true"
}

func parseRun(args []string, stderr io.Writer) (*runConfig, error) {
	c := &runConfig{}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.clients, "clients", 1000, "SSE clients to open")
	fs.Float64Var(&c.rate, "rate", 10, "upstream events per second on the shared subscription")
	fs.DurationVar(&c.hold, "hold", 10*time.Second, "measurement period once every client is connected")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait between the last client connecting and the hold")
	fs.Float64Var(&c.ramp, "ramp", 1000, "clients connected per second (all workers together)")
	fs.BoolVar(&c.idle, "idle", false, "subscribe to a subscription that carries no events (memory test)")
	fs.IntVar(&c.distinct, "distinct", 0, "open N distinct subscriptions from one identity (sets -clients N)")
	fs.StringVar(&c.gatewayURL, "gateway", "", "target this running gateway (http://127.0.0.1:port) instead of starting one")
	fs.IntVar(&c.gatewayPID, "gateway-pid", 0, "with -gateway: its pid, for CPU and RSS from /proc (else from its /metrics)")
	fs.StringVar(&c.upstreamStats, "upstream-stats", "", "with -gateway: the /stats URL of 'fireboom-bench upstream'")
	fs.StringVar(&c.gatewayBin, "gateway-bin", "", "gateway binary to start (default: go build ./cmd/fireboom)")
	fs.StringVar(&c.subscriptions, "subscriptions", "", `JSON for the started gateway's "subscriptions" config section`)
	fs.IntVar(&c.perProc, "per-process", 9000, "most clients per worker process (open-file limit 20,000)")
	fs.IntVar(&c.sources, "sources", 16, "source addresses 127.0.0.2.. to spread the clients over (1-250)")
	fs.StringVar(&c.sub, "sub", "bench", `token subject shared by every client ("" for anonymous clients)`)
	fs.StringVar(&c.bearer, "bearer", "", "send this bearer token instead of minting one")
	fs.StringVar(&c.secret, "jwt-secret", benchSecret, "HMAC secret to mint the token with (with -gateway)")
	fs.StringVar(&c.pprof, "pprof", "", "start the gateway with FIREBOOM_PPROF=ADDR (loopback) to serve net/http/pprof")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "with -pprof: write the gateway's CPU profile over the hold to FILE")
	fs.StringVar(&c.memProfile, "memprofile", "", "with -pprof: write the gateway's heap profile after the hold to FILE")
	fs.StringVar(&c.jsonOut, "json", "", "also write the figures as JSON to FILE")
	fs.StringVar(&c.toolProfile, "toolprofile", "", "write each client worker's CPU profile over the hold to FILE.<n>")
	c.h2Flags(fs)
	fs.StringVar(&c.source, "source", "", `"postgres": the gateway serves a PostgreSQL event source alone; each tick (-rate/s) NOTIFYs once per user`)
	fs.IntVar(&c.users, "users", 100, "with -source: distinct users (token subjects, one topic each), spread over the clients")
	fs.StringVar(&c.pgURL, "pg-url", pgDefaultURL, "with -source postgres: the database to LISTEN and NOTIFY on")
	fs.IntVar(&c.payload, "payload", 200, "with -source: bytes per NOTIFY payload")
	fs.BoolVar(&c.cluster, "cluster", false, "start an in-process NATS JetStream server and run the gateway in cluster mode (one instance)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.h2Check(); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.distinct > 0 {
		if c.idle {
			return nil, errors.New("-idle and -distinct exclude each other")
		}
		c.clients = c.distinct
	}
	switch {
	case c.clients <= 0, c.ramp <= 0, c.perProc <= 0, c.perProc > 19000, c.hold <= 0:
		return nil, errors.New("-clients, -ramp, -hold and -per-process must be positive (-per-process at most 19000)")
	case c.sources < 1 || c.sources > 250:
		return nil, errors.New("-sources must be between 1 and 250")
	case (c.cpuProfile != "" || c.memProfile != "") && c.pprof == "":
		return nil, errors.New("-cpuprofile and -memprofile need -pprof ADDR")
	case c.gatewayURL == "" && (c.gatewayPID != 0 || c.upstreamStats != ""):
		return nil, errors.New("-gateway-pid and -upstream-stats go with -gateway")
	case c.source != "" && c.source != "postgres":
		return nil, fmt.Errorf("-source %q: only postgres", c.source)
	case c.source != "" && (c.idle || c.distinct > 0 || c.gatewayURL != ""):
		return nil, errors.New("-source excludes -idle, -distinct and -gateway (it starts its own gateway)")
	case c.source != "" && (c.users < 1 || c.users > c.clients || c.payload < 100 || c.payload >= 8000 || c.rate <= 0):
		return nil, errors.New("-source: -users between 1 and -clients, -payload between 100 and 7999, -rate positive")
	}
	if c.pprof != "" {
		if err := checkLoopback(c.pprof); err != nil {
			return nil, fmt.Errorf("-pprof: %w", err)
		}
	}
	return c, nil
}

// runBench is "fireboom-bench run".
func runBench(args []string, stdout, stderr io.Writer) error {
	c, err := parseRun(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	ctx, cancel := context.WithTimeout(context.Background(), c.deadline())
	defer cancel()
	ctx, stopSig := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSig()

	hc := &http.Client{Timeout: 5 * time.Minute}
	probe := &gatewayProbe{hc: hc}
	var stats statsFunc
	var gw *gatewayProc
	var src *sourceRun
	switch {
	case c.source != "":
		src = newSourceRun()
		gw, err = startGateway(ctx, c, src, "", "", logf)
		if err != nil {
			return err
		}
		defer gw.stop()
		probe.base, probe.pid = gw.base, gw.pid()
		n, err := startNotifier(ctx, c.pgURL, src.channel, c.users, c.rate, c.payload)
		if err != nil {
			return err
		}
		defer n.stop()
		logf("gateway pid %d at %s, PostgreSQL source on channel %s: %d NOTIFYs (%d bytes) per tick, %g ticks/s",
			gw.pid(), gw.base, src.channel, c.users, c.payload, c.rate)
	case c.gatewayURL == "":
		up, err := startUpstream("127.0.0.1:0", c.rate)
		if err != nil {
			return err
		}
		defer up.close()
		stats = func(context.Context) (demo.Stats, error) { return up.d.Stats(), nil }
		var natsURL string
		if c.cluster {
			stop, url, err := startNATS()
			if err != nil {
				return err
			}
			defer stop()
			natsURL = url
			logf("cluster mode: NATS JetStream in the tool's process at %s", url)
		}
		gw, err = startGateway(ctx, c, nil, up.url(), natsURL, logf)
		if err != nil {
			return err
		}
		defer gw.stop()
		probe.base, probe.pid = gw.base, gw.pid()
		logf("gateway pid %d at %s, demo upstream at %s ticking %g/s", gw.pid(), gw.base, up.url(), c.rate)
	default:
		u, err := url.Parse(c.gatewayURL)
		if err != nil || u.Scheme != "http" {
			return fmt.Errorf("-gateway: expected http://host:port, got %q", c.gatewayURL)
		}
		if err := checkLoopback(u.Host); err != nil {
			return err
		}
		probe.base, probe.pid = strings.TrimSuffix(c.gatewayURL, "/"), c.gatewayPID
		if c.upstreamStats != "" {
			stats = remoteStats(hc, c.upstreamStats)
		}
	}
	bearer := c.bearer
	if bearer == "" && c.sub != "" && src == nil { // -source: the workers mint one token per user
		bearer, err = auth.Mint(auth.Config{Secret: c.secret}, c.sub, nil, nil, c.deadline()+time.Hour)
		if err != nil {
			return err
		}
	}

	var logTail func() string
	if gw != nil {
		logTail = gw.logTail
	}
	r, err := measure(ctx, c, probe, stats, bearer, logTail, logf)
	if r != nil && src != nil {
		r.SourceConnections, _ = countListeners(ctx, c.pgURL, src.app)
	}
	if r != nil {
		r.print(stdout)
		if c.jsonOut != "" {
			if werr := r.writeJSON(c.jsonOut); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

// measure runs the phases: baseline, ramp, settle, hold, report.
// logTail, when set, reads the gateway's recent warnings.
func measure(ctx context.Context, c *runConfig, probe *gatewayProbe, stats statsFunc, bearer string, logTail func() string, logf func(string, ...any)) (*report, error) {
	r := &report{Mode: c.mode(), Clients: c.clients, Rate: c.rate, Hold: c.hold.String(), Command: strings.Join(os.Args, " ")}
	if c.source != "" {
		r.Users, r.PayloadBytes = c.users, c.payload
	}
	if !r.streaming() {
		r.Rate = 0
	}
	// Baseline: the gateway serving, no client yet. The machine's load
	// meanwhile shows what else runs beside the benchmark.
	mcb := machineCPU()
	time.Sleep(time.Second)
	r.MachineIdleLoadPercent = machineCPU().busySince(mcb)
	base, err := probe.sample(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the gateway's baseline: %w", err)
	}
	r.BaselineRSS = base.rss

	addr := hostPort(probe.base)
	ws, err := startWorkers(ctx, c, addr, c.path(), bearer)
	if err != nil {
		return nil, err
	}
	defer stopWorkers(ws)
	logf("%d clients in %d worker process(es), ramp %g/s, mode %s", c.clients, len(ws), c.ramp, r.Mode)

	// Ramp: until every client connected, failed or ended.
	rampStart := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		conn, failed, ended, exited := progressOf(ws)
		s, _ := probe.sample(ctx)
		r.MaxRSS = max(r.MaxRSS, s.rss)
		logf("ramp %4.0fs: %d connected, %d failed, %d ended; gateway RSS %s",
			time.Since(rampStart).Seconds(), conn, failed, ended, mb(s.rss))
		if conn+failed+ended >= int64(c.clients) {
			break
		}
		if exited > 0 {
			return r, errors.New("a client worker exited during the ramp")
		}
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("ramp: %w", ctx.Err())
		case <-tick.C:
		}
	}
	r.RampSeconds = time.Since(rampStart).Seconds()
	select {
	case <-ctx.Done():
		return r, ctx.Err()
	case <-time.After(c.settle):
	}

	// Hold.
	m0, err := probe.metrics(ctx)
	if err != nil {
		return r, err
	}
	s0, err := probe.sample(ctx)
	if err != nil {
		return r, err
	}
	w0 := workerCPU(ws)
	mc0 := machineCPU()
	for _, w := range ws {
		w.send("hold")
	}
	t0 := time.Now()
	profDone := make(chan error, 1)
	if c.cpuProfile != "" {
		go func() {
			profDone <- fetchProfile(ctx, c.pprof, "profile?seconds="+fmt.Sprint(int(c.hold.Seconds())), c.cpuProfile)
		}()
	} else {
		profDone <- nil
	}
	holdEnd := time.NewTimer(c.hold)
	defer holdEnd.Stop()
hold:
	for {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-holdEnd.C:
			break hold
		case <-tick.C:
		}
		s, _ := probe.sample(ctx)
		r.MaxRSS = max(r.MaxRSS, s.rss)
		conn, _, ended, _ := progressOf(ws)
		logf("hold %4.0fs: %d connected, %d ended; gateway RSS %s", time.Since(t0).Seconds(), conn, ended, mb(s.rss))
	}
	reports, rerr := collectReports(ws, 20*time.Second)
	held := time.Since(t0)
	if logTail != nil {
		r.GatewayLog = logTail() // before the clients leave, which logs too
	}
	s1, err := probe.sample(ctx)
	if err != nil {
		return r, err
	}
	w1 := workerCPU(ws)
	mc1 := machineCPU()
	m1, err := probe.metrics(ctx)
	if err != nil {
		return r, err
	}
	if rerr != nil {
		return r, rerr
	}
	if err := <-profDone; err != nil {
		logf("cpu profile: %v", err)
	}
	if c.memProfile != "" {
		if err := fetchProfile(ctx, c.pprof, "heap?gc=1", c.memProfile); err != nil { // live objects only
			logf("heap profile: %v", err)
		}
	}
	r.fill(reports, held, s0, s1, m0, m1)
	r.ToolCPUSeconds = (w1 - w0).Seconds()
	r.MachineCPUPercent = mc1.busySince(mc0)
	if stats != nil {
		st, err := stats(ctx)
		if err != nil {
			logf("upstream stats: %v", err)
		} else {
			r.UpstreamSubscriptions = st.ActiveSubscriptions
			r.UpstreamByField = st.ActiveByField
			r.UpstreamConnections = st.WebSocketsOpen
		}
	} else {
		r.UpstreamSubscriptions, r.UpstreamConnections = -1, -1
	}
	return r, nil
}

// fetchProfile saves /debug/pprof/<what> from the gateway's pprof server.
func fetchProfile(ctx context.Context, addr, what, file string) error {
	b, code, err := get(ctx, &http.Client{Timeout: 10 * time.Minute}, "http://"+addr+"/debug/pprof/"+what)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("pprof %s: status %d: %s", what, code, b)
	}
	return os.WriteFile(file, b, 0o644)
}

// workerCPU sums the client workers' CPU time.
func workerCPU(ws []*workerProc) time.Duration {
	var d time.Duration
	for _, w := range ws {
		if s, err := readProc(w.pid()); err == nil {
			d += s.cpu
		}
	}
	return d
}
