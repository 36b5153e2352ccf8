package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
)

// lifecycle runs a started gateway until a signal: SIGHUP reloads, SIGINT
// and SIGTERM shut down gracefully.
type lifecycle struct {
	path   string // the config file, re-read on SIGHUP
	listen string // the -listen override, re-applied on SIGHUP
	cfg    *config.Config
	log    *slog.Logger
	level  *slog.LevelVar
	g      *gateway.Gateway
	srv    *http.Server
	ln     net.Listener
	// timeout is the current shutdownTimeout (SIGHUP may change it).
	timeout time.Duration
	// cluster is the cluster engine, nil without one: closed after the
	// gateway, it hands this instance's topics over.
	cluster shutdowner
}

// run serves until SIGINT or SIGTERM and returns nil after a graceful
// shutdown that finished within shutdownTimeout.
func (l *lifecycle) run() error {
	l.timeout = l.cfg.ShutdownTimeout.D()
	// Signals are caught before the start-up lines say we serve, so that
	// a supervisor reacting to them cannot kill the process by default
	// action.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	base := l.g.Scheme() + "://" + l.ln.Addr().String()
	served, failed := l.g.OperationCount()
	l.log.Info("fireboom serving", "url", base, "operations", served, "failed", failed)
	l.log.Info("try it: curl -N '" + base + l.g.ExamplePath() + "'")

	errc := make(chan error, 1)
	go func() { errc <- l.g.Serve(l.srv, l.ln) }() // HTTPS, HTTP/2, h2c: as the config says
	for {
		select {
		case err := <-errc:
			_ = l.g.Close()
			l.closeCluster()
			return err
		case s := <-sigs:
			if s == syscall.SIGHUP {
				l.reload()
				continue
			}
			return l.shutdown(s, sigs)
		}
	}
}

// reload re-reads the config file and the operations. Settings that can
// change while serving are applied; the others are logged as needing a
// restart. A config that does not load changes nothing but the operations.
func (l *lifecycle) reload() {
	l.log.Info("SIGHUP: reloading the config and the operations", "config", l.path)
	next, err := config.Load(l.path)
	if err != nil {
		l.log.Error("config not reloaded; keeping the running one", "err", err)
		_ = l.g.Reload() // Reload logs what it finds
		return
	}
	if l.listen != "" {
		next.Listen = l.listen
	}
	if next.Upstream.Demo && l.cfg.Upstream.Demo {
		// The running demo upstream stays; its address is not in the file.
		next.Upstream.URL, next.Upstream.SubscriptionURL = l.cfg.Upstream.URL, l.cfg.Upstream.SubscriptionURL
	}
	// The level first, so that the reload's own logs follow it.
	var lv slog.Level
	if lv.UnmarshalText([]byte(next.Log.Level)) == nil {
		l.level.Set(lv)
	}
	l.timeout = next.ShutdownTimeout.D()
	_, _ = l.g.ReloadConfig(next) // what changed, and what needs a restart, is logged by the gateway
}

// shutdown stops the server gracefully: no new connections; every stream
// ends (SSE with a retry hint and done); upstream subscriptions are
// completed and connections closed. It returns within l.timeout, early on
// a second signal, with an error when it could not finish in time.
func (l *lifecycle) shutdown(sig os.Signal, sigs <-chan os.Signal) error {
	start := time.Now()
	deadline := start.Add(l.timeout)
	l.log.Info("shutting down", "signal", sig.String(), "timeout", l.timeout.String())
	done := make(chan error, 1)
	go func() { done <- l.stop(deadline) }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			l.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond).String())
			return nil
		case <-timer.C:
			// The stop goroutine is abandoned: the process exits.
			return fmt.Errorf("shutdown did not finish within shutdownTimeout (%v); exiting", l.timeout)
		case s := <-sigs:
			if s == syscall.SIGHUP {
				continue
			}
			return fmt.Errorf("second signal (%v) during shutdown; exiting at once", s)
		}
	}
}

// stop is the graceful sequence. The HTTP side gets the deadline minus a
// reserve in which the upstream side is closed.
func (l *lifecycle) stop(deadline time.Time) error {
	if l.cluster != nil {
		l.cluster.BeginShutdown() // topics whose clients leave now are handed over
	}
	l.g.BeginShutdown() // every stream ends now; /ready answers 503
	reserve := min(l.timeout/5, 2*time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-reserve))
	defer cancel()
	// Shutdown closes the listener at once, then waits for the handlers
	// (the streams just told to end, queries in flight) to return.
	err := l.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		l.log.Warn("requests still running at the shutdown deadline; closing their connections")
		err = l.srv.Close()
	}
	// Completes every upstream subscription and closes the connections.
	if cerr := l.g.Close(); err == nil {
		err = cerr
	}
	l.closeCluster()
	return err
}

// closeCluster hands this instance's topics over to the other instances.
func (l *lifecycle) closeCluster() {
	if l.cluster != nil {
		_ = l.cluster.Close()
	}
}
