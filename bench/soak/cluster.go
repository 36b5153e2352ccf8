package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fireboom/fireboom/cluster"
	"github.com/fireboom/fireboom/cluster/natsd"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
)

// instance is one gateway of the -cluster soak, served on a fixed port so
// that it comes back where clients look for it.
type instance struct {
	addr string
	g    *gateway.Gateway
	srv  *http.Server
	done chan error
}

// runCluster is scenario 4 of the cluster test, for minutes: three
// gateways on one in-process NATS JetStream share the ticks; each is
// restarted (SIGTERM's sequence: streams end with a retry hint, topics are
// handed over) one at a time every restartEvery, while the clients churn
// over the three as a balancer would spread them and resume with
// Last-Event-ID. Every event must reach every client once, except inside
// a declared gap.
func runCluster(o options, up string, log *slog.Logger, stdout io.Writer) (*tally, error) {
	dir, err := os.MkdirTemp("", "fireboom-soak-cluster-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Ticks.graphql"), []byte(ticks), 0o644); err != nil {
		return nil, err
	}
	ns, err := natsd.Start(natsd.Options{StoreDir: filepath.Join(dir, "nats")})
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	cfg, err := config.Parse(fmt.Appendf(nil, `{"operationsDir": %q, "upstream": {"url": %q}, "subscriptions": {"heartbeat": "2s"},
		"cluster": {"nats": {"url": %q}, "name": "soak", "leaseTTL": "2s"}}`, dir, up, ns.URL()),
		func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	insts := make([]*instance, 3)
	for i := range insts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		insts[i] = &instance{addr: ln.Addr().String()}
		if err := insts[i].start(cfg, log, ln); err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, in := range insts {
			in.stop()
		}
	}()
	fmt.Fprintf(stdout, "soak -cluster: 3 gateways on NATS %s, each restarted every %s\n", ns.URL(), o.restartEvery*3)

	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var wg sync.WaitGroup
	restarts := 0
	if o.restartEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(o.restartEvery):
				}
				in := insts[i%len(insts)]
				in.stop()
				ln, err := listenAgain(ctx, in.addr)
				if err == nil {
					err = in.start(cfg, log, ln)
				}
				if err != nil {
					fmt.Fprintf(stdout, "restart of %s failed: %v\n", in.addr, err)
					return
				}
				restarts++
				fmt.Fprintf(stdout, "restarted the gateway at %s\n", in.addr)
			}
		}()
	}
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients, IdleConnTimeout: 30 * time.Second}
	hc := &http.Client{Transport: tr}
	t := newTally()
	for i := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{hc: hc, symbol: symbols[i%len(symbols)], maxEvents: o.maxEvents, t: t,
				rnd: rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))}
			c.pick = func() string { return "http://" + insts[c.rnd.IntN(len(insts))].addr }
			c.loop(ctx)
		}()
	}
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			t.mu.Lock()
			fmt.Fprintf(stdout, "events=%d lost=%d dups=%d gaps=%s streams=%d refused=%s\n",
				t.events, t.lost, t.dups, counts(t.gaps), t.streams, counts(t.refused))
			t.mu.Unlock()
		}
	}
	wg.Wait()
	tr.CloseIdleConnections()
	fmt.Fprintf(stdout, "gateway restarts (handoffs): %d\n", restarts)
	report(stdout, t, 0, 0) // the upstream is not restarted in this mode
	return t, nil
}

func (in *instance) start(cfg *config.Config, log *slog.Logger, ln net.Listener) error {
	eng, err := cluster.New(cluster.Config{URL: cfg.Cluster.NATS.URL, Name: cfg.Cluster.Name,
		LeaseTTL: cfg.Cluster.LeaseTTL.D(), Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: log, Engine: eng})
	if err != nil {
		ln.Close()
		_ = eng.Close()
		return err
	}
	in.g = g
	in.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	in.done = make(chan error, 1)
	srv, done := in.srv, in.done
	go func() { done <- srv.Serve(ln) }()
	return nil
}

// stop is cmd/fireboom's graceful shutdown: streams end with a retry
// hint, the listener closes, the topics are handed over.
func (in *instance) stop() {
	if in.g == nil {
		return
	}
	in.g.BeginShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = in.srv.Shutdown(ctx)
	<-in.done
	_ = in.g.Close() // closes the engine: hands its topics over
	in.g = nil
}

// listenAgain takes the address back once the old listener let it go.
func listenAgain(ctx context.Context, addr string) (net.Listener, error) {
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || ctx.Err() != nil {
			return ln, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
