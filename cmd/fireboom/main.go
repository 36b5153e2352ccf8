package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
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
	case "openapi":
		err = openAPI(args, stdout, stderr)
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
  fireboom token   [-config fireboom.json] -sub ID [-roles a,b] [-claim k=v]... [-ttl 1h]
  fireboom openapi [-config fireboom.json] [-server URL]`

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

// newLogger builds the log/slog logger of cfg.Log: text or JSON lines on
// w. The level is a LevelVar so that SIGHUP can change it.
func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(cfg.Log.Level)) // validated by config
	level.Set(lv)
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), level
	}
	return slog.New(slog.NewTextHandler(w, opts)), level
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
	log, level := newLogger(cfg, stderr)
	stopPprof, err := startPprof(log)
	if err != nil {
		return err
	}
	defer stopPprof()
	if cfg.Upstream.Demo {
		log.Info("demo upstream started", "url", cfg.Upstream.URL)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	eng, err := startCluster(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	opt := gateway.Options{Logger: log}
	var cl shutdowner
	if eng != nil {
		opt.Engine, cl = eng, eng
	}
	g, err := gateway.New(cfg, opt)
	if err != nil {
		ln.Close()
		if eng != nil {
			_ = eng.Close()
		}
		return err
	}
	srv := &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	l := &lifecycle{path: *path, listen: *listen, cfg: cfg, log: log, level: level, g: g, srv: srv, ln: ln, cluster: cl}
	return l.run()
}
