package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// operationsFS holds the bench's operations (Ticks, Idle); they are written
// to a temporary operations folder for the gateway it starts.
//
//go:embed operations/*.graphql
var operationsFS embed.FS

// benchSecret signs the bench's tokens in the gateway it starts.
const benchSecret = "fireboom-bench-secret"

// gatewayProc is a gateway process started by the tool.
type gatewayProc struct {
	cmd    *exec.Cmd
	base   string // http(s)://127.0.0.1:port
	dir    string // temporary folder: config, operations, binary, log
	exited chan struct{}
}

// freePort picks a free loopback port.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// moduleRoot finds the fireboom repository above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/fireboom/fireboom\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the fireboom repository: run from it, or pass -gateway-bin")
		}
		dir = parent
	}
}

// startGateway writes a config for the upstream at upstreamURL (or, with
// src, for a PostgreSQL event source alone), builds
// ./cmd/fireboom (unless bin is set) and starts it as its own process.
func startGateway(ctx context.Context, c *runConfig, src *sourceRun, upstreamURL, natsURL string, log func(string, ...any)) (*gatewayProc, error) {
	dir, err := os.MkdirTemp("", "fireboom-bench-")
	if err != nil {
		return nil, err
	}
	g := &gatewayProc{dir: dir, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir)
		}
	}()
	ops := filepath.Join(dir, "operations")
	if err := os.MkdirAll(ops, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := map[string]any{
		"listen":        addr,
		"operationsDir": "operations",
		"auth":          map[string]any{"jwt": map[string]any{"secret": benchSecret}},
		"log":           map[string]any{"level": "warn"},
	}
	if src != nil {
		if err := src.writeSourceFiles(dir, c, cfg); err != nil {
			return nil, err
		}
	} else {
		files, _ := fs.Glob(operationsFS, "operations/*.graphql")
		for _, f := range files {
			b, _ := operationsFS.ReadFile(f)
			if err := os.WriteFile(filepath.Join(ops, filepath.Base(f)), b, 0o644); err != nil {
				return nil, err
			}
		}
		cfg["upstream"] = map[string]any{"url": upstreamURL, "forwardHeaders": []string{"Authorization"}}
	}
	if natsURL != "" {
		cfg["cluster"] = map[string]any{"nats": map[string]any{"url": natsURL}, "name": "bench"}
	}
	if c.subscriptions != "" {
		var sub map[string]any
		if err := json.Unmarshal([]byte(c.subscriptions), &sub); err != nil {
			return nil, fmt.Errorf("-subscriptions: %w", err)
		}
		cfg["subscriptions"] = sub
	}
	scheme, err := c.h2Gateway(dir, cfg)
	if err != nil {
		return nil, err
	}
	g.base = scheme + "://" + addr
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "fireboom.json"), b, 0o644); err != nil {
		return nil, err
	}

	bin := c.gatewayBin
	if bin == "" {
		root, err := moduleRoot()
		if err != nil {
			return nil, err
		}
		bin = filepath.Join(dir, "fireboom")
		log("building ./cmd/fireboom")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/fireboom")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/fireboom: %w\n%s", err, out)
		}
	}
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	g.cmd = exec.Command(bin, "serve", "-config", filepath.Join(dir, "fireboom.json"))
	g.cmd.Dir = dir
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.Env = os.Environ()
	if c.pprof != "" {
		g.cmd.Env = append(g.cmd.Env, "FIREBOOM_PPROF="+c.pprof)
	}
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the gateway: %w", err)
	}
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
	ok = true
	if err := g.waitReady(ctx); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// waitReady polls /ready until 200 (operations loaded against the schema).
func (g *gatewayProc) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, code, err := get(ctx, hc, g.base+"/ready"); err == nil && code == http.StatusOK {
			return nil
		}
		select {
		case <-g.exited:
			return fmt.Errorf("the gateway exited at start; see %s", filepath.Join(g.dir, "gateway.log"))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the gateway was not ready within 30s; see %s", filepath.Join(g.dir, "gateway.log"))
}

func (g *gatewayProc) pid() int { return g.cmd.Process.Pid }

// stop ends the gateway (SIGTERM, then SIGKILL after 15 s) and removes its
// folder unless it failed.
func (g *gatewayProc) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	_ = os.RemoveAll(g.dir)
}

// logTail returns the last warnings and errors of the gateway's log (the
// bench starts it at level warn), for the report.
func (g *gatewayProc) logTail() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "gateway.log"))
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" && !strings.Contains(l, "FIREBOOM_PPROF") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}
