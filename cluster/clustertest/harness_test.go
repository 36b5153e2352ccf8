package clustertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fireboom/fireboom/cluster/natsd"
)

// freePort reserves a loopback port and frees it for a process to take.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// repoRoot is the repository's folder (the test runs in cluster/clustertest).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildGateway builds ./cmd/fireboom into dir.
func buildGateway(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "fireboom")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/fireboom")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/fireboom: %v\n%s", err, out)
	}
	return bin
}

// nats is the cluster's NATS server, which the test stops and starts.
type nats struct {
	t    *testing.T
	port int
	dir  string
	s    *natsd.Server
}

func (n *nats) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *nats) start() {
	n.t.Helper()
	var err error
	for i := 0; i < 50; i++ { // the port of the server just stopped may take a moment
		if n.s, err = natsd.Start(natsd.Options{Port: n.port, StoreDir: n.dir}); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatalf("NATS did not start: %v", err)
}

func (n *nats) stop() {
	if n.s != nil {
		n.s.Shutdown()
		n.s = nil
	}
}

// gateway is one gateway process.
type gateway struct {
	t      *testing.T
	name   string
	bin    string
	config string
	port   int
	logf   string
	cmd    *exec.Cmd
	exited chan struct{}
}

func (g *gateway) base() string { return fmt.Sprintf("http://127.0.0.1:%d", g.port) }

func (g *gateway) start() {
	g.t.Helper()
	logf, err := os.OpenFile(g.logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		g.t.Fatal(err)
	}
	defer logf.Close()
	g.cmd = exec.Command(g.bin, "serve", "-config", g.config)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.exited = make(chan struct{})
	cmd, exited := g.cmd, g.exited
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
}

// waitStatus polls path until it answers status.
func (g *gateway) waitStatus(path string, status int, within time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := get(g.base() + path)
		if code == status {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("%s %s: %d %s, want %d; log:\n%s", g.name, path, code, body, status, g.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// term sends SIGTERM and waits for the exit.
func (g *gateway) term() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	g.wait()
}

// kill is kill -9.
func (g *gateway) kill() {
	_ = g.cmd.Process.Kill()
	g.wait()
}

func (g *gateway) wait() {
	select {
	case <-g.exited:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		g.t.Errorf("%s did not exit within 15s", g.name)
	}
}

func (g *gateway) tail() string {
	b, _ := os.ReadFile(g.logf)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// metric reads one unlabelled series from /metrics (-1 when absent).
func (g *gateway) metric(name string) float64 {
	resp, err := http.Get(g.base() + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func get(url string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// writeGatewayConfig writes one gateway's fireboom.json.
func writeGatewayConfig(t *testing.T, dir string, port int, upstream, natsURL string) string {
	t.Helper()
	cfg := map[string]any{
		"listen":          fmt.Sprintf("127.0.0.1:%d", port),
		"operationsDir":   filepath.Join(repoRoot(t), "operations"),
		"upstream":        map[string]any{"url": upstream},
		"auth":            map[string]any{"jwt": map[string]any{"secret": "clustertest"}},
		"shutdownTimeout": "5s",
		"log":             map[string]any{"level": "info"},
		"cluster": map[string]any{
			"nats": map[string]any{"url": natsURL}, "name": "e2e",
			"leaseTTL": leaseTTL.String(), "reconnectTimeout": "2s",
		},
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	path := filepath.Join(dir, "fireboom.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// startNginx runs nginx in front of the gateways on port.
func startNginx(t *testing.T, dir string, port int, gws []*gateway) {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Skip("nginx is not installed (bash scripts/test installs nginx-light)")
		}
		bin = "/usr/sbin/nginx"
	}
	var servers strings.Builder
	for _, g := range gws {
		fmt.Fprintf(&servers, "    server 127.0.0.1:%d max_fails=0;\n", g.port)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes 1;
daemon off;
error_log %[2]s/error.log warn;
pid %[2]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;
  upstream gateways {
%[3]s  }
  server {
    listen 127.0.0.1:%[4]d;
    location / {
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_next_upstream error timeout http_502 http_503;
    }
  }
}
`, user, dir, servers.String(), port)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path)
	out, _ := os.Create(filepath.Join(dir, "nginx.out"))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx did not start:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
