package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestReadmeSnippet runs the README's EventSource snippet ("From a
// browser") exactly as written, in the dashboard's page as the README says
// to: it must log each countdown event with its id, then done.
func TestReadmeSnippet(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)### From a browser\n.*?```js\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no js block under \"### From a browser\"")
	}
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)
	b.wait("the dashboard", `document.querySelectorAll('[data-testid=op-item]').length > 0`)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](string(m[1])+"\nundefined")); err != nil {
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
