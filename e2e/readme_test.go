package e2e

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestReadmeSnippet runs the README's EventSource snippet ("From a
// browser") exactly as written, in the dashboard's page as the README says
// to: it must log each countdown event with its id, then done.
func TestReadmeSnippet(t *testing.T) {
	t.Parallel()
	snippet := readmeBlock(t, "From a browser", "js")
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)
	b.wait("the dashboard", `document.querySelectorAll('[data-testid=op-item]').length > 0`)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](snippet+"\nundefined")); err != nil {
		b.fatalf("running the README snippet: %v", err)
	}

	// Sub counts down 5..0, one a second.
	want := regexp.MustCompile(`^[0-9a-z]+-[0-9]+ \{"data":\{"countdown":([0-9])\}\}$`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var logged []string
		for _, c := range b.consoleMessages() {
			if c.Type == chromedp.ConsoleLog {
				logged = append(logged, c.Text)
			}
		}
		if n := len(logged); n > 0 && logged[n-1] == "done" {
			if n != 7 {
				b.fatalf("logged %q, want six events then done", logged)
			}
			for i, l := range logged[:6] {
				if sm := want.FindStringSubmatch(l); sm == nil || sm[1] != string(rune('5'-i)) {
					b.fatalf("line %d: %q, want the id then {\"data\":{\"countdown\":%d}}", i, l, 5-i)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			b.fatalf("no done logged within 20s; logged %q", logged)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The snippet closed its EventSource on done: the stream is over.
	s.waitActive(t, 0)
}

// TestReadmePage serves the README's page ("From a page of your own") from
// an origin of its own, with the gateway address swapped in, as the README
// says: allowed by cors.allowedOrigins it shows the countdown then done; a
// page on an origin that is not allowed gets nothing.
func TestReadmePage(t *testing.T) {
	t.Parallel()
	html := []byte(readmeBlock(t, "From a page of your own", "html"))
	page := func() *httptest.Server {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(html)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	allowed, other := page(), page()
	s := startStack(t, stackOptions{cors: []string{allowed.URL}})
	// The page as written, pointed at this test's gateway.
	html = bytes.ReplaceAll(html, []byte("http://127.0.0.1:9991"), []byte(s.URL))
	if !bytes.Contains(html, []byte(s.URL+"/operations/Sub?wg_sse=true")) {
		t.Fatalf("the page does not open /operations/Sub on the gateway:\n%s", html)
	}

	b := openTab(t, s.URL, desktopW, desktopH, false)
	b.do(chromedp.Navigate(allowed.URL + "/"))
	b.wait("the countdown's end", `document.getElementById('out').textContent.endsWith('done\n')`)
	lines := strings.Split(strings.TrimSuffix(eval[string](b, `document.getElementById('out').textContent`), "\n"), "\n")
	want := regexp.MustCompile(`^[0-9a-z]+-[0-9]+ \{"data":\{"countdown":([0-9])\}\}$`)
	if len(lines) != 7 {
		b.fatalf("page shows %q, want six events then done", lines)
	}
	for i, l := range lines[:6] {
		if sm := want.FindStringSubmatch(l); sm == nil || sm[1] != strconv.Itoa(5-i) {
			b.fatalf("line %d: %q", i, l)
		}
	}

	// Another origin: the browser refuses the stream (no
	// Access-Control-Allow-Origin for it) and EventSource gives up.
	b.allowConsoleError("from origin '" + other.URL + "' has been blocked by CORS policy")
	b.do(chromedp.Navigate(other.URL + "/"))
	b.wait("the refused stream to close", `es.readyState === EventSource.CLOSED`)
	if got := eval[string](b, `document.getElementById('out').textContent`); strings.Contains(got, "countdown") {
		b.fatalf("a page on another origin read the stream: %q", got)
	}
}

// readmeBlock returns the first fenced block of lang under the README
// heading "### heading".
func readmeBlock(t *testing.T, heading, lang string) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### " + regexp.QuoteMeta(heading) + "\n.*?```" + lang + "\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no %s block under %q", lang, "### "+heading)
	}
	return string(m[1])
}
