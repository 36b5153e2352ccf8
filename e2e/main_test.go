package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/internal/selfsigned"
	"github.com/fireboom/fireboom/upstream/demo"
)

// browser is the one Chromium shared by every test of the package (each
// test opens its own tab in its own browser context, so cookies and
// storage never leak between tests). It is nil when no Chromium could be
// started, and browserErr then says why.
var (
	browser    context.Context
	browserErr error
)

// siteCert is the certificate of the tests' HTTPS gateways (see
// http2_test.go). The browser trusts it by its public key
// (--ignore-certificate-errors-spki-list), and no other certificate it
// cannot verify.
var siteCert *selfsigned.Cert

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	stop := startBrowser()
	code := m.Run()
	stop()
	if code == 0 {
		// As goleak.VerifyTestMain, but after the browser is gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	return code
}

// chromiumPath finds the browser: $FIREBOOM_CHROMIUM, "chromium" on the
// PATH, then Debian's /usr/bin/chromium.
func chromiumPath() (string, error) {
	if p := os.Getenv("FIREBOOM_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	if p, err := exec.LookPath("/usr/bin/chromium"); err == nil {
		return p, nil
	}
	return "", errors.New(`no Chromium found ($FIREBOOM_CHROMIUM, "chromium" on the PATH, /usr/bin/chromium)`)
}

// startBrowser starts the shared headless Chromium and returns the func
// that closes it and waits for its process.
func startBrowser() (stop func()) {
	path, err := chromiumPath()
	if err != nil {
		browserErr = err
		return func() {}
	}
	if siteCert, err = selfsigned.New(); err != nil {
		browserErr = err
		return func() {}
	}
	spki := sha256.Sum256(siteCert.Leaf.RawSubjectPublicKeyInfo)
	dir, err := os.MkdirTemp("", "fireboom-e2e-chromium-")
	if err != nil {
		browserErr = err
		return func() {}
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root, where the sandbox cannot start
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tabs of parallel tests must not be throttled as background tabs:
		// the dashboard's timers and streams run in all of them.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop = func() {
		tctx, tcancel := context.WithTimeout(ctx, 10*time.Second)
		_ = chromedp.Cancel(tctx) // closes the browser gracefully
		tcancel()
		cancel()
		cancelAlloc() // waits for the process
		_ = os.RemoveAll(dir)
	}
	// The first action starts the process; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		browserErr = fmt.Errorf("starting %s: %w", path, err)
		stop()
		return func() {}
	}
	browser = ctx
	return stop
}

// inCI reports whether the CI environment variable asks for strictness.
func inCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return v != "" && v != "false" && v != "0"
}

// needBrowser fails the test in CI, and skips it elsewhere, when no
// Chromium is available.
func needBrowser(t *testing.T) {
	t.Helper()
	if browser != nil {
		return
	}
	if inCI() {
		t.Fatalf("the dashboard's browser tests need Chromium in CI: %v (.ci/run installs it with apt-get)", browserErr)
	}
	t.Skipf("SKIPPED browser test: %v. Install Chromium (apt-get install chromium) or set FIREBOOM_CHROMIUM; with CI set this is a failure", browserErr)
}

// ---- the system under test -------------------------------------------------

// e2eSecret signs the tokens of these tests (dev mode mints with it).
const e2eSecret = "e2e-secret-not-for-production"

// stack is one demo upstream and one gateway, served over loopback.
type stack struct {
	demo *demo.Server
	gw   *gateway.Gateway
	URL  string
	http *http.Client
	seen *requestLog
	logs *syncBuffer
}

type stackOptions struct {
	// opsDir defaults to the repository's operations folder.
	opsDir string
	// tick is the demo's stock ticker period (default: no automatic ticks).
	tick time.Duration
	// noDev turns development mode (token minting) off.
	noDev bool
	// cors lists cors.allowedOrigins.
	cors []string
}

// startStack starts the demo and a gateway in dev mode with an HMAC secret,
// like the repository's fireboom.json but on free loopback ports.
func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	needBrowser(t) // every test here drives the page: no stack without a browser
	tick := o.tick
	if tick == 0 {
		tick = -1
	}
	d, err := demo.Start(demo.Options{TickInterval: tick})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })

	ops := o.opsDir
	if ops == "" {
		if ops, err = filepath.Abs("../operations"); err != nil {
			t.Fatal(err)
		}
	}
	cfgJSON := fmt.Sprintf(`{
		"operationsDir": %q,
		"upstream": {"url": %q},
		"auth": {"jwt": {"secret": %q}, "cookie": "fb_token"},
		"dev": %t,
		"cors": {"allowedOrigins": %s},
		"operations": {"stocks/Price": {"liveInterval": "200ms"}}
	}`, ops, d.URL(), e2eSecret, !o.noDev, jsonList(o.cors))
	cfg, err := config.Parse([]byte(cfgJSON), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	seen := &requestLog{}
	srv := httptest.NewServer(seen.wrap(g))
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		client.CloseIdleConnections()
		g.BeginShutdown() // every open stream ends (SSE: a retry hint, no done)
		srv.Close()
		_ = g.Close()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	return &stack{demo: d, gw: g, URL: srv.URL, http: client, seen: seen, logs: logs}
}

// post sends a mutation to the gateway from outside the page.
func (s *stack) post(t *testing.T, op, body string) {
	t.Helper()
	resp, err := s.http.Post(s.URL+"/operations/"+op, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d", op, resp.StatusCode)
	}
}

// waitActive waits until the demo holds n active subscriptions.
func (s *stack) waitActive(t *testing.T, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.demo.WaitActive(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// requestLog records how each request under /operations/ carried its
// token, so the tests can tell the query parameter, the cookie and the
// header apart. It never keeps the token itself.
type requestLog struct {
	mu   sync.Mutex
	list []seenRequest
}

type seenRequest struct {
	Method, Path          string
	Query, Cookie, Header bool // where a token was
	SSE, Once             bool
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/operations/") {
			q := r.URL.Query()
			_, cookieErr := r.Cookie("fb_token")
			l.mu.Lock()
			l.list = append(l.list, seenRequest{
				Method: r.Method, Path: r.URL.Path,
				Query: q.Get("access_token") != "", Cookie: cookieErr == nil,
				Header: strings.HasPrefix(r.Header.Get("Authorization"), "Bearer "),
				SSE:    q.Get("wg_sse") == "true", Once: q.Get("wg_subscribe_once") == "true",
			})
			l.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

// last returns the latest request for path.
func (l *requestLog) last(path string) (seenRequest, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.list) - 1; i >= 0; i-- {
		if l.list[i].Path == path {
			return l.list[i], true
		}
	}
	return seenRequest{}, false
}

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

// jsonList renders a string list as JSON ([] for none).
func jsonList(l []string) string {
	b, _ := json.Marshal(append([]string{}, l...))
	return string(b)
}
