package e2e

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fireboom/fireboom/source/sourcetest"
)

// TestPostgresNotifyExample follows examples/postgres-notify/README.md as
// it is written, against the PostgreSQL of this machine: its shell blocks
// run in bash from the repository's root (the gateway and curl in the
// background, as in the README's second and third terminals) and curl
// must print the bytes the README shows. Only what a run on a shared
// machine needs is substituted: the built binary for `go run
// ./cmd/fireboom`, a fresh database for fireboom_example (in a copy of the
// example's folder) and a free port for 127.0.0.1:9991.
func TestPostgresNotifyExample(t *testing.T) {
	sourcetest.Need(t, "PostgreSQL", sourcetest.PGAddr)
	for _, c := range []string{"bash", "createdb", "psql", "curl", "go"} {
		sourcetest.NeedCommand(t, c)
	}
	readme, err := os.ReadFile(filepath.Join("..", "examples", "postgres-notify", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllSubmatch(readme, -1)
	shown := regexp.MustCompile("(?s)The second terminal shows[^\n]*\n\n```\n(.*?)```").FindSubmatch(readme)
	if len(blocks) != 3 || shown == nil {
		t.Fatalf("the README has %d sh blocks (want 3: the database and the gateway, the stream, the orders) and output block %v", len(blocks), shown != nil)
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	db := "fb_example_" + sourcetest.Random()
	addr := freeAddr(t)
	example := copyExample(t, filepath.Join(root, "examples", "postgres-notify"), filepath.Join(tmp, "example"), "fireboom_example", db, "127.0.0.1:9991", addr)
	bin := filepath.Join(tmp, "fireboom")
	build := exec.Command("go", "build", "-o", bin, "./cmd/fireboom")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/fireboom: %v\n%s", err, out)
	}
	subst := strings.NewReplacer("go run ./cmd/fireboom", bin, "examples/postgres-notify", example,
		"fireboom_example", db, "127.0.0.1:9991", addr)
	script := func(b []byte) string { return subst.Replace(string(b)) }
	t.Cleanup(func() { sourcetest.Psql(t, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })

	// 1. The database, the table and the trigger; 2. check (exit 0), then
	// the gateway, which serves until the test ends.
	var serve string
	for _, line := range strings.Split(script(blocks[0][1]), "\n") {
		switch {
		case strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "":
		case strings.HasPrefix(line, bin+" -config "):
			serve = line
		default:
			if out, err := bashCmd(root, line).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
		}
	}
	if serve == "" {
		t.Fatal("the README's first block does not start the gateway")
	}
	gwLog := &syncBuffer{}
	background(t, root, serve, gwLog, gwLog)
	base := "http://" + addr
	waitHTTP(t, base+"/ready", http.StatusOK)
	if !strings.Contains(gwLog.String(), "curl -N '"+base+"/operations'") {
		t.Errorf("the gateway's log has no example curl line:\n%s", gwLog.String())
	}

	// 3. alice's stream, with curl.
	// On a terminal curl shows no progress meter; piped, it writes one
	// to its standard error.
	out := &syncBuffer{}
	background(t, root, script(blocks[1][1]), out, io.Discard)
	waitFor(t, "curl's stream", func() bool {
		return strings.Contains(metrics(t, base), `fireboom_open_streams{mode="sse",operation="orders/MyOrders"} 1`)
	})
	// 4. Orders change.
	if out, err := bashCmd(root, script(blocks[2][1])).CombinedOutput(); err != nil {
		t.Fatalf("step 4: %v\n%s", err, out)
	}
	want := string(shown[1])
	waitFor(t, "curl to print the events", func() bool { return strings.Count(out.String(), "\n\n") >= strings.Count(want, "\n\n") })
	got := regexp.MustCompile(`(?m)^id: \S+$`).ReplaceAllString(out.String(), "id: ...")
	got = regexp.MustCompile(`(?m)^:.*\n\n`).ReplaceAllString(got, "") // heartbeats, if the machine was slow
	if got != want {
		t.Errorf("curl printed:\n%s\nthe README shows:\n%s", got, want)
	}

	// "What happens": the gateway's connection cut, the stream stays open
	// and gets one gap once the gateway listens again.
	cut := regexp.MustCompile("`(psql [^`]*pg_terminate_backend[^`]*)`").FindSubmatch(readme)
	if cut == nil {
		t.Fatal("the README does not say how to cut the gateway's connection")
	}
	if res := runOut(t, root, script(cut[1])); !strings.HasSuffix(res, "\n t\n(1 row)\n\n") {
		t.Errorf("%s printed %q: want one backend terminated", cut[1], res)
	}
	const gap = "event: gap\ndata: {\"missed\":0,\"reason\":\"reconnected\"}\n\n"
	waitFor(t, "the gap", func() bool { return strings.HasSuffix(out.String(), gap) })

	// No token is a 401, a userId of one's own a 400, a
	// row that does not fit is dropped and counted.
	tok := strings.TrimSpace(runOut(t, root, bin+" token -config "+example+"/fireboom.json -sub alice"))
	for path, status := range map[string]int{
		"/operations/orders/MyOrders?wg_sse=true":            http.StatusUnauthorized,
		"/operations/orders/MyOrders?wg_sse=true&userId=bob": http.StatusBadRequest,
	} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if status == http.StatusBadRequest {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, status)
		}
	}
	sourcetest.Psql(t, db, `NOTIFY orders, '{"id":9,"userId":"alice","total":1}'`)
	waitFor(t, "the bad row to be counted", func() bool {
		return strings.Contains(metrics(t, base), `fireboom_source_bad_messages_total{source="pg"} 1`)
	})
	// The stream goes on; without wg_sse the same results come as a JSON
	// stream, with wg_subscribe_once the first one alone.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(query string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/operations/orders/MyOrders"+query, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		return resp
	}
	ndjson := open("")
	if ndjson == nil {
		t.FailNow()
	}
	defer ndjson.Body.Close()
	once := make(chan *http.Response, 1)
	go func() { once <- open("?wg_subscribe_once=true") }()
	waitFor(t, "the once request", func() bool {
		return strings.Contains(metrics(t, base), `fireboom_open_streams{mode="once",operation="orders/MyOrders"} 1`)
	})
	sourcetest.Psql(t, db, `INSERT INTO orders (user_id, status) VALUES ('alice', 'new')`)
	const result = `{"data":{"orderUpdated":{"id":"3","status":"new","total":null}}}`
	r := bufio.NewReader(ndjson.Body)
	line, err := r.ReadString('\n')
	blank, _ := r.ReadString('\n')
	if err != nil || line+blank != result+"\n\n" || ndjson.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("JSON stream: %q %v %s", line+blank, err, ndjson.Header.Get("Content-Type"))
	}
	if resp := <-once; resp != nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != result {
			t.Errorf("once: %q", b)
		}
	}
	waitFor(t, "curl to print it too", func() bool { return strings.Count(out.String(), "\n\n") == 4 })
	got = regexp.MustCompile(`(?m)^id: \S+$`).ReplaceAllString(out.String(), "id: ...")
	if want += gap + "id: ...\ndata: " + result + "\n\n"; got != want {
		t.Errorf("curl's whole stream:\n%s\nwant:\n%s", got, want)
	}
}

// bashCmd runs a script of the README in bash, from dir.
func bashCmd(dir, script string) *exec.Cmd {
	c := exec.Command("bash", "-euo", "pipefail", "-c", script)
	c.Dir = dir
	return c
}

func runOut(t *testing.T, dir, script string) string {
	t.Helper()
	b, err := bashCmd(dir, script).Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return string(b)
}

// background runs script like a second terminal, its standard output into
// stdout and its standard error into stderr, until the test ends: then its
// process group gets SIGTERM (SIGKILL after 10s) and is waited for.
func background(t *testing.T, dir, script string, stdout, stderr io.Writer) {
	t.Helper()
	c := bashCmd(dir, script)
	c.Stdout, c.Stderr = stdout, stderr
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}

// copyExample copies the example's folder to dst, replacing each pair of
// old, new strings in every file, and returns dst.
func copyExample(t *testing.T, src, dst string, oldnew ...string) string {
	t.Helper()
	r := strings.NewReplacer(oldnew...)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dst, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), []byte(r.Replace(string(b))), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHTTP polls url until it answers status.
func waitHTTP(t *testing.T, url string, status int) {
	t.Helper()
	waitFor(t, url+" to answer "+http.StatusText(status), func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == status
	})
}

func metrics(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond for up to 30s (the machine may be busy).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
