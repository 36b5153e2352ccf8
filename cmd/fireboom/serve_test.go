//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fireboom/fireboom/upstream/demo"
)

// proc is a fireboom process started by a test.
type proc struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	url  string
	done chan error // receives cmd.Wait's result
}

var servingURL = regexp.MustCompile(`fireboom serving.*?(https?://127\.0\.0\.1:\d+)`)

// startFireboom runs `fireboom serve -config <dir>/fireboom.json` in a
// child process and waits until it serves.
func startFireboom(t *testing.T, dir string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "-config", filepath.Join(dir, "fireboom.json"))
	// GORACE: a race-enabled binary otherwise sleeps 1s at exit, which
	// would blur the shutdown timing.
	cmd.Env = append(os.Environ(), "FIREBOOM_TEST_MAIN=1", "GORACE=atexit_sleep_ms=0")
	p := &proc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.logs
	cmd.Stdout = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("fireboom output:\n%s", p.logs.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		// "try it" is the last start-up line.
		if out := p.logs.String(); strings.Contains(out, "try it: curl") {
			m := servingURL.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no serving line:\n%s", out)
			}
			p.url = m[1]
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("fireboom exited before serving: %v\n%s", err, p.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("fireboom not serving after 20s:\n%s", p.logs.String())
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("fireboom still running after %v", timeout)
		return -1
	}
}

func (p *proc) signal(t *testing.T, s os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		t.Fatal(err)
	}
}

// streamFrom opens a stream and returns its reader; the caller reads it to
// the end.
func streamFrom(t *testing.T, url string) (*http.Response, *bufio.Reader) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return resp, bufio.NewReader(resp.Body)
}

// readUntil reads r until the text read contains want.
func readUntil(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	var sb strings.Builder
	for !strings.Contains(sb.String(), want) {
		b, err := r.ReadByte()
		if err != nil {
			t.Fatalf("stream ended before %q: %v; read %q", want, err, sb.String())
		}
		sb.WriteByte(b)
	}
	return sb.String()
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jsonLogs decodes the JSON log lines of out.
func jsonLogs(t *testing.T, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		lines = append(lines, m)
	}
	return lines
}

func findLog(lines []map[string]any, msg string) map[string]any {
	for _, l := range lines {
		if m, _ := l["msg"].(string); strings.HasPrefix(m, msg) {
			return l
		}
	}
	return nil
}

// The whole life of a fireboom process: start-up log lines (JSON), a
// working curl line, then SIGTERM: every stream ends (SSE with the retry
// hint and done), the upstream subscriptions are completed, and the
// process exits 0 within shutdownTimeout.
func TestStartAndSIGTERM(t *testing.T) {
	d, err := demo.Start(demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	writeFile(t, dir, "fireboom.json", `{"listen": "127.0.0.1:0", "operationsDir": "ops", "shutdownTimeout": "5s",
		"upstream": {"url": "`+d.URL()+`"}, "log": {"format": "json"}}`)
	writeFile(t, dir, "ops/Countdown.graphql", "subscription Countdown($from: Int!, $interval: Int = 100) { countdown(from: $from, interval: $interval) }\n")
	writeFile(t, dir, "ops/Sub.graphql", "subscription Sub($from: Int! = 5) { countdown(from: $from, interval: 1000) }\n")
	broken := writeFile(t, dir, "ops/Broken.graphql", "query Broken { nope }\n")
	p := startFireboom(t, dir)

	logs := jsonLogs(t, p.logs.String())
	if l := findLog(logs, "fireboom serving"); l == nil || l["url"] != p.url || l["operations"] != 2.0 || l["failed"] != 1.0 {
		t.Errorf("serving line: %v", l)
	}
	if l := findLog(logs, "operation not served"); l == nil || l["problem"] != broken+`:1:16: Cannot query field "nope" on type "Query".` {
		t.Errorf("problem line: %v", l)
	}
	try := findLog(logs, "try it: ")
	if try == nil || try["msg"] != "try it: curl -N '"+p.url+"/operations/Sub?wg_sse=true'" {
		t.Fatalf("curl line: %v", try)
	}
	// The curl line works: it streams.
	_, sub := streamFrom(t, p.url+"/operations/Sub?wg_sse=true")
	subSeen := readUntil(t, sub, "\n\n")

	_, sse := streamFrom(t, p.url+"/operations/Countdown?from=100000&interval=20&wg_sse=true")
	sseSeen := readUntil(t, sse, "countdown")
	_, js := streamFrom(t, p.url+"/operations/Countdown?from=100000&interval=20")
	jsSeen := readUntil(t, js, "countdown")
	// Sub, and Countdown shared by both of its streams.
	eventually(t, 5*time.Second, "upstream subscriptions", func() bool { return d.Stats().ActiveSubscriptions == 2 })

	p.signal(t, syscall.SIGTERM)
	sent := time.Now()
	ending := "retry: 1000\n\n" // no done: EventSource reconnects elsewhere (CONTRACT §8)
	events := `(id: \S+\ndata: \{"data":\{"countdown":\d+\}\}\n\n|: ping\n\n)*`
	for name, c := range map[string]struct {
		seen string
		r    *bufio.Reader
		want string
	}{
		"SSE":  {sseSeen, sse, `^` + events + regexp.QuoteMeta(ending) + `$`},
		"Sub":  {subSeen, sub, `^` + events + regexp.QuoteMeta(ending) + `$`},
		"JSON": {jsSeen, js, `^(\{"data":\{"countdown":\d+\}\}\n\n|\n)*` + regexp.QuoteMeta(`{"errors":[{"message":"the gateway is shutting down; reconnect","extensions":{"code":"ShuttingDown"}}]}`+"\n\n") + `$`},
	} {
		rest, err := io.ReadAll(c.r)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if got := c.seen + string(rest); !regexp.MustCompile(c.want).MatchString(got) {
			t.Errorf("%s stream at shutdown:\n%q\nwant %s", name, got[max(0, len(got)-300):], c.want)
		}
	}
	if code := p.wait(t, 5*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	took := time.Since(sent)
	t.Logf("SIGTERM to exit: %v", took)
	if took > 5*time.Second {
		t.Errorf("shutdown took %v, more than shutdownTimeout (5s)", took)
	}
	// The upstream saw every subscription completed and every connection
	// closed.
	eventually(t, 2*time.Second, "upstream subscriptions completed", func() bool {
		st := d.Stats()
		return st.ActiveSubscriptions == 0 && st.WebSocketsOpen == 0
	})
	logs = jsonLogs(t, p.logs.String())
	if l := findLog(logs, "shutting down"); l == nil || l["signal"] != "terminated" || l["timeout"] != "5s" {
		t.Errorf("shutdown line: %v", l)
	}
	if findLog(logs, "stopped") == nil {
		t.Error("no stopped line")
	}
	if _, err := http.Get(p.url + "/health"); err == nil {
		t.Error("still accepting connections after exit")
	}
}

// A request that never finishes (the upstream hangs) does not hold the
// process past shutdownTimeout.
func TestShutdownTimeoutBoundsHangingRequests(t *testing.T) {
	hang, hanging := make(chan struct{}), make(chan struct{}, 1)
	d, err := demo.Start(demo.Options{TickInterval: -1, OnRequest: func(r *http.Request) {
		if r.Header.Get("X-Hang") != "" {
			hanging <- struct{}{}
			<-hang
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	defer close(hang)
	dir := t.TempDir()
	writeFile(t, dir, "fireboom.json", `{"listen": "127.0.0.1:0", "operationsDir": "ops", "shutdownTimeout": "1s",
		"upstream": {"url": "`+d.URL()+`", "forwardHeaders": ["X-Hang"]}}`)
	writeFile(t, dir, "ops/Time.graphql", "query Time { serverTime }\n")
	p := startFireboom(t, dir)

	req, _ := http.NewRequest(http.MethodGet, p.url+"/operations/Time", nil)
	req.Header.Set("X-Hang", "1")
	got := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		got <- err
	}()
	select {
	case <-hanging:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
	p.signal(t, syscall.SIGTERM)
	sent := time.Now()
	code := p.wait(t, 5*time.Second)
	took := time.Since(sent)
	t.Logf("SIGTERM to exit with a hanging request: %v (exit %d)", took, code)
	if took > 2*time.Second { // 1s, plus slack for process teardown
		t.Errorf("exit took %v with shutdownTimeout 1s", took)
	}
	if code != 0 {
		t.Errorf("exit code %d", code)
	}
	if err := <-got; err == nil {
		t.Error("the hanging request got an answer")
	}
	if !strings.Contains(p.logs.String(), "requests still running at the shutdown deadline") {
		t.Errorf("logs do not say requests were cut:\n%s", p.logs.String())
	}
}

// SIGHUP reloads the config where safe (here the log level and the
// heartbeat), names the settings that need a restart, and reloads the
// operations; a config that does not load changes nothing.
func TestSIGHUP(t *testing.T) {
	d, err := demo.Start(demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dir := t.TempDir()
	cfg := `{"listen": "127.0.0.1:0", "operationsDir": "ops", "upstream": {"url": "` + d.URL() + `"}`
	writeFile(t, dir, "fireboom.json", cfg+`}`)
	writeFile(t, dir, "ops/Time.graphql", "query Time { serverTime }\n")
	p := startFireboom(t, dir)

	// Heartbeat, level: reloadable. Listen, upstream timeout: restart.
	writeFile(t, dir, "fireboom.json", strings.Replace(cfg, `"127.0.0.1:0"`, `"127.0.0.1:1"`, 1)+
		`, "subscriptions": {"heartbeat": "20ms"}, "log": {"level": "debug"}, "upstream": {"url": "`+d.URL()+`", "timeout": "1m"}}`)
	p.signal(t, syscall.SIGHUP)
	eventually(t, 5*time.Second, "operations reloaded", func() bool {
		return strings.Contains(p.logs.String(), `level=DEBUG msg="operations reloaded" served=1 failed=0`)
	})
	out := p.logs.String()
	for _, want := range []string{
		`level=INFO msg="config reloaded" changed="[log.level subscriptions.heartbeat]"`,
		`level=WARN msg="changed settings need a restart to take effect" settings="[listen upstream.timeout]"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	// The new heartbeat applies to new streams.
	writeFile(t, dir, "ops/Beat.graphql", "subscription Beat { messageCreated(room: \"quiet\") { id } }\n")
	eventually(t, 5*time.Second, "Beat served", func() bool {
		resp, err := http.Get(p.url + "/operations/Beat?wg_subscribe_once=true&wg_sse=true")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return false
		}
		b := make([]byte, 16)
		_, err = io.ReadFull(resp.Body, b)
		return err == nil && string(b) == ": ping\n\n: ping\n\n"
	})

	// A broken config: logged, nothing else changes.
	writeFile(t, dir, "fireboom.json", `{"listen": 1}`)
	p.signal(t, syscall.SIGHUP)
	eventually(t, 5*time.Second, "bad config logged", func() bool {
		return strings.Contains(p.logs.String(), `msg="config not reloaded; keeping the running one"`)
	})
	if resp, err := http.Get(p.url + "/operations/Time"); err != nil || resp.StatusCode != 200 {
		t.Errorf("after a bad config: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
