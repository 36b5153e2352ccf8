package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/upstream/demo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches the subcommands; it returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args, stderr)
	case "check":
		return check(args, stdout, stderr)
	case "token":
		err = token(args, stdout)
	case "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "fireboom:", err)
		return 1
	}
	return 0
}

const usage = `usage:
  fireboom [serve] [-config fireboom.json] [-listen ADDR]
  fireboom check   [-config fireboom.json]
  fireboom token   [-config fireboom.json] -sub ID [-roles a,b] [-claim k=v]... [-ttl 1h]`

// loadConfig reads the config and, for "upstream": {"demo": true}, starts
// the embedded demo server and points the config at it. The returned stop
// function closes the demo.
func loadConfig(path string) (*config.Config, func(), error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Upstream.Demo {
		return cfg, func() {}, nil
	}
	d, err := demo.Start(demo.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the demo upstream: %w", err)
	}
	cfg.Upstream.URL = d.URL()
	cfg.Upstream.SubscriptionURL = config.WebSocketURL(d.URL())
	return cfg, func() { _ = d.Close() }, nil
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "fireboom.json", "config file")
	listen := fs.String("listen", "", "address to serve (overrides the config's listen)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, stopDemo, err := loadConfig(*path)
	if err != nil {
		return err
	}
	defer stopDemo()
	if *listen != "" {
		cfg.Listen = *listen
	}
	log := newLogger(cfg, stderr)
	if cfg.Upstream.Demo {
		log.Info("demo upstream started", "url", cfg.Upstream.URL)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	g, err := gateway.New(cfg, gateway.Options{Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	base := "http://" + ln.Addr().String()
	served, failed := g.OperationCount()
	log.Info("fireboom serving", "url", base, "operations", served, "failed", failed)
	log.Info("try it: curl -N '" + base + "/operations/Sub?wg_sse=true'")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err := <-errc:
		_ = g.Close()
		return err
	case s := <-sig:
		log.Info("shutting down", "signal", s.String(), "timeout", cfg.ShutdownTimeout.D().String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.D())
	defer cancel()
	g.BeginShutdown()
	err = srv.Shutdown(ctx)
	if cerr := g.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
