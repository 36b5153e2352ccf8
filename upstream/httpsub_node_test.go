package upstream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The real GraphQL servers of these tests live in testdata/node: GraphQL
// Yoga and graphql-sse's own handler as SSE upstreams, and a multipart
// server written from Apollo's protocol document (see
// testdata/node/multipart.mjs for why). scripts/test installs their
// packages from the lock file.
const nodeDir = "../testdata/node"

// needNode skips the test when Node or the packages are missing, or fails
// it under CI, where they must be there.
func needNode(t *testing.T) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(nodeDir, "node_modules")); err != nil {
		missing = "testdata/node/node_modules is missing"
	}
	if missing == "" {
		return
	}
	msg := missing + ": run `bash scripts/test` (it installs Node and runs npm ci in testdata/node)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// nodeLine is one line a test server printed: what it saw.
type nodeLine struct {
	Event   string `json:"event"`
	Field   string `json:"field"`
	Port    int    `json:"port"`
	Message string `json:"message"`
}

// nodeServer is one running test server process.
type nodeServer struct {
	t      *testing.T
	script string
	port   int
	cmd    *exec.Cmd
	lines  chan nodeLine
	done   chan struct{} // its stdout reached EOF
	stderr lockedBuffer
	once   sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode runs `node script port` in testdata/node and waits until it
// says it listens. Cleanup kills it.
func startNode(t *testing.T, script string, port int, env ...string) *nodeServer {
	t.Helper()
	n := &nodeServer{t: t, script: script, port: port, lines: make(chan nodeLine, 256), done: make(chan struct{})}
	n.cmd = exec.Command("node", script, strconv.Itoa(port))
	n.cmd.Dir = nodeDir
	n.cmd.Env = append(os.Environ(), env...)
	n.cmd.Stderr = &n.stderr
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go n.read(out)
	t.Cleanup(n.kill)
	n.await("listening", "")
	return n
}

func (n *nodeServer) read(out io.Reader) {
	defer close(n.done)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var l nodeLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			select {
			case n.lines <- l:
			default: // nobody waits for so many lines
			}
		}
	}
}

// kill ends the process at once (SIGKILL: its connections drop without a
// word) and waits for it.
func (n *nodeServer) kill() {
	n.once.Do(func() {
		_ = n.cmd.Process.Kill()
		<-n.done
		_ = n.cmd.Wait()
	})
}

// await waits for the line {"event": event, "field": field}; other lines
// are skipped.
func (n *nodeServer) await(event, field string) {
	n.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l := <-n.lines:
			if l.Event == event && l.Field == field {
				return
			}
		case <-n.done:
			n.t.Fatalf("%s exited before %s %s; stderr:\n%s", n.script, event, field, n.stderr.String())
		case <-timeout:
			n.t.Fatalf("%s: no %s %s within 15s; stderr:\n%s", n.script, event, field, n.stderr.String())
		}
	}
}

func (n *nodeServer) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.port, path)
}

// publish sends v to every ticks subscriber and returns how many there are.
func (n *nodeServer) publish(v int) int {
	n.t.Helper()
	resp, err := http.Post(n.url("/publish?v="+strconv.Itoa(v)), "text/plain", nil)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c, err := strconv.Atoi(string(b))
	if err != nil {
		n.t.Fatalf("publish: %q", b)
	}
	return c
}

// nodeUpstreams are the real servers, each with the errors it reports its
// own way.
var nodeUpstreams = []struct {
	name, script, protocol string
	errors                 []nodeErrorCase
}{
	{"yoga", "yoga.mjs", ProtocolSSE, []nodeErrorCase{
		// Yoga reports every error inside the stream, as the graphql-sse
		// protocol asks: a result with errors, then complete.
		{"source throws", "subscription { failing }", []string{`next {"data":{"failing":1}}`,
			`next {"errors":[{"message":"boom","locations":[{"line":1,"column":1}]}]}`, "done"}},
		{"does not parse", "subscription { ", []string{
			`next {"errors":[{"message":"Syntax Error: Expected Name, found <EOF>.","locations":[{"line":1,"column":16}],"extensions":{"code":"GRAPHQL_PARSE_FAILED"}}]}`, "done"}},
	}},
	{"graphql-sse", "graphql-sse.mjs", ProtocolSSE, []nodeErrorCase{
		// graphql-sse answers a document that does not parse with 400 and
		// a JSON body, before any stream; validation errors come in it.
		{"does not parse", "subscription { ", []string{
			`error {"errors":[{"message":"Syntax Error: Expected Name, found <EOF>."}]}`}},
		{"does not validate", "subscription { nope }", []string{
			`next {"errors":[{"message":"Cannot query field \"nope\" on type \"Subscription\".","locations":[{"line":1,"column":16}]}]}`, "done"}},
	}},
	{"multipart", "multipart.mjs", ProtocolMultipart, []nodeErrorCase{
		{"source throws", "subscription { failing }", []string{`next {"data":{"failing":1}}`,
			`error {"errors":[{"message":"boom"}]}`}},
		{"does not validate", "subscription { nope }", []string{
			`error {"errors":[{"message":"Cannot query field \"nope\" on type \"Subscription\".","locations":[{"line":1,"column":16}]}]}`}},
	}},
}

type nodeErrorCase struct {
	name, query string
	want        []string
}

func TestHTTPSubNodeServers(t *testing.T) {
	needNode(t)
	for _, u := range nodeUpstreams {
		t.Run(u.name, func(t *testing.T) {
			srv := startNode(t, u.script, freePort(t))
			cfg := HTTPSubConfig{URL: srv.url("/graphql"), Protocol: u.protocol, Header: http.Header{"X-Api-Key": {"k"}}}

			t.Run("emits until stopped", func(t *testing.T) {
				sink, stop := openSub(t, cfg, Request{Query: "subscription { ticks }"})
				srv.await("subscribe", "ticks")
				if n := srv.publish(1); n != 1 {
					t.Fatalf("%d subscribers", n)
				}
				srv.publish(2)
				sink.expect(`next {"data":{"ticks":1}}`, `next {"data":{"ticks":2}}`)
				stop()
				srv.await("end", "ticks") // the server saw the request end
				sink.quiet()
			})
			t.Run("completes", func(t *testing.T) {
				sink, _ := openSub(t, cfg, Request{Query: "subscription($from: Int!) { countdown(from: $from) }",
					Variables: json.RawMessage(`{"from":3}`)})
				sink.expect(`next {"data":{"countdown":3}}`, `next {"data":{"countdown":2}}`,
					`next {"data":{"countdown":1}}`, "done")
			})
			t.Run("headers", func(t *testing.T) {
				sink, _ := openSub(t, cfg, Request{Query: "subscription { whoami { authorization apiKey } }",
					Header: http.Header{"Authorization": {"Bearer t0k"}}})
				sink.expect(`next {"data":{"whoami":{"authorization":"Bearer t0k","apiKey":"k"}}}`, "done")
			})
			for _, tc := range u.errors {
				t.Run(tc.name, func(t *testing.T) {
					sink, _ := openSub(t, cfg, Request{Query: tc.query})
					sink.expect(tc.want...)
				})
			}
		})
	}
}

// The server is killed mid-stream and started again on the same port: the
// subscription is requested again, the sink told once, and it goes on.
func TestHTTPSubNodeRestart(t *testing.T) {
	needNode(t)
	for _, u := range nodeUpstreams {
		t.Run(u.name, func(t *testing.T) {
			port := freePort(t)
			srv := startNode(t, u.script, port)
			sink, stop := openSub(t, HTTPSubConfig{URL: srv.url("/graphql"), Protocol: u.protocol},
				Request{Query: "subscription { ticks }"})
			srv.await("subscribe", "ticks")
			srv.publish(1)
			sink.expect(`next {"data":{"ticks":1}}`)
			srv.kill()
			srv = startNode(t, u.script, port)
			srv.await("subscribe", "ticks")
			sink.expect("gap reconnected")
			if n := srv.publish(2); n != 1 {
				t.Fatalf("%d subscribers after the restart", n)
			}
			sink.expect(`next {"data":{"ticks":2}}`)
			stop()
			srv.await("end", "ticks")
			sink.quiet()
		})
	}
}
