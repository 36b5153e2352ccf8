package gateway

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/source/sourcetest"
	"github.com/fireboom/fireboom/upstream/demo"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// drops the event-source tests' database.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { sourcetest.DropDB() }))
}

// startDemo starts the real demo upstream for one test.
func startDemo(t testing.TB, opts demo.Options) *demo.Server {
	t.Helper()
	if opts.TickInterval == 0 {
		opts.TickInterval = -1 // no automatic ticks unless a test asks
	}
	d, err := demo.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// testGateway is a gateway served over loopback by httptest.
type testGateway struct {
	*Gateway
	URL  string
	logs *syncBuffer
}

// opsDir is the repository's own operations folder: the tests serve the
// demo set a user sees.
func opsDir(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../operations")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// newGateway builds a gateway for cfgJSON (a fireboom.json text in which
// ${UPSTREAM} names the demo's URL and ${OPS} the operations folder) and
// serves it.
func newGateway(t testing.TB, d *demo.Server, cfgJSON string) *testGateway {
	t.Helper()
	vars := map[string]string{"OPS": opsDir(t)}
	if d != nil {
		vars["UPSTREAM"] = d.URL()
	}
	cfg, err := config.Parse([]byte(cfgJSON), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(func() {
		g.BeginShutdown()
		srv.Close()
		_ = g.Close()
		http.DefaultClient.CloseIdleConnections()
		if t.Failed() && testing.Verbose() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return &testGateway{Gateway: g, URL: srv.URL, logs: logs}
}

// defaultConfig serves the repository's operations against the demo.
const defaultConfig = `{"operationsDir": "${OPS}", "upstream": {"url": "${UPSTREAM}"}}`

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// get performs a GET with optional headers (pairs of name, value).
func get(t testing.TB, url string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// readAll reads a whole response body and closes it.
func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readUntil reads a stream until its text contains want, or fails after
// the timeout. It returns what was read.
func readUntil(t testing.TB, r *bufio.Reader, want string, timeout time.Duration) string {
	t.Helper()
	var sb strings.Builder
	done := make(chan error, 1)
	go func() {
		for !strings.Contains(sb.String(), want) {
			b, err := r.ReadByte()
			if err != nil {
				done <- err
				return
			}
			sb.WriteByte(b)
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stream ended before %q: %v; read %q", want, err, sb.String())
		}
	case <-time.After(timeout):
		t.Fatalf("no %q within %v", want, timeout) // the reader goroutine ends when the test closes the body
	}
	return sb.String()
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v", what, timeout)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
