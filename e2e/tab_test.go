package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Viewports of the screenshots and of the phone-width checks.
const (
	desktopW, desktopH = 1280, 900
	phoneW, phoneH     = 390, 844
)

// tab is one browser tab, in a browser context of its own, on the
// dashboard of one gateway.
type tab struct {
	t    *testing.T
	ctx  context.Context // bounded: every action of the test shares it
	base string

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	allowed []string // console errors the test provokes on purpose (allowConsoleError)
}

// allowConsoleError tells the end-of-test console check that an error
// containing text is expected.
func (b *tab) allowConsoleError(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, text)
}

// expected reports whether m is an error the test provoked on purpose.
func (b *tab) expected(m chromedp.ConsoleMessage) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range b.allowed {
		if strings.Contains(m.Text, a) {
			return true
		}
	}
	return false
}

// waitTimeout bounds one wait for the page; a whole test gets a minute.
const waitTimeout = 15 * time.Second

// openTab opens the dashboard of base in a new tab at the given viewport
// (see newTab).
func openTab(t *testing.T, base string, width, height int64, mobile bool) *tab {
	t.Helper()
	b := newTab(t, base, width, height, mobile)
	b.do(chromedp.Navigate(base + "/"))
	b.wait("the operations list", `document.querySelectorAll('[data-testid=op-item]').length > 0`)
	return b
}

// newTab opens a blank tab at the given viewport. The tab closes, and its
// console is checked for uncaught exceptions, when the test ends (before
// the gateway stops: cleanups run last-in first-out).
func newTab(t *testing.T, base string, width, height int64, mobile bool) *tab {
	t.Helper()
	needBrowser(t)
	tabCtx, cancelTab := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	ctx, cancelTimeout := context.WithTimeout(tabCtx, time.Minute)
	b := &tab{t: t, ctx: ctx, base: base}

	// Console opens the tab and subscribes before the page loads; the
	// reader ends when the tab's context does.
	messages := chromedp.Console(tabCtx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		_ = chromedp.Cancel(tabCtx) // closes the tab and waits
		cancelTab()
		<-done
		for _, m := range b.consoleMessages() {
			// Network errors (401, 404 answers the tests provoke) are log
			// entries; script errors and CSP violations are not expected.
			if (m.IsException() || (m.Type == chromedp.ConsoleError && (m.Source == "" || m.Source == "security" || m.Source == "javascript"))) && !b.expected(m) {
				t.Errorf("browser console: %s (%s:%d)", m, m.URL, m.Line)
			}
		}
	})

	opts := []chromedp.EmulateViewportOption{}
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
	}
	b.do(chromedp.EmulateViewport(width, height, opts...))
	return b
}

func (b *tab) consoleMessages() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.console...)
}

// do runs actions, failing the test on an error.
func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.fatalf("%v", err)
	}
}

// fatalf fails the test with what the page shows, to make failures readable.
func (b *tab) fatalf(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 3*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText.slice(0, 3000)`))
	if err != nil {
		text = "(page unreadable: " + err.Error() + ")"
	}
	var con []string
	for _, m := range b.consoleMessages() {
		con = append(con, m.String())
	}
	b.t.Fatalf("%s\n--- page text ---\n%s\n--- console ---\n%s", fmt.Sprintf(format, args...), text, strings.Join(con, "\n"))
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript condition until it is truthy.
func (b *tab) wait(what, cond string) {
	b.t.Helper()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](cond,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		if errors.Is(err, chromedp.ErrPollingTimeout) {
			b.fatalf("%s: not within %v (%s)", what, waitTimeout, cond)
		}
		b.fatalf("%s: %v", what, err)
	}
}

// q quotes a string for JavaScript (and so for CSS attribute values).
func q(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

// Selectors of the page's stable data-testid attributes.
func testid(id string) string { return `[data-testid=` + id + `]` }

func panelSel(op string) string { return `[data-testid=op-panel][data-name=` + q(op) + `]` }

func streamSel(op string) string { return `[data-testid=stream][data-name=` + q(op) + `]` }

func inputSel(op, v string) string {
	return panelSel(op) + ` [data-testid=var-input][data-var=` + q(v) + `]`
}

// click clicks an element like a user (mouse events at its centre).
func (b *tab) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// open selects an operation from the list and waits for its panel.
func (b *tab) open(op string) {
	b.t.Helper()
	b.click(`[data-testid=op-item][data-name=` + q(op) + `]`)
	b.wait("the panel of "+op, `!!document.querySelector(`+q(panelSel(op))+`)`)
}

// typeText types text into a field like a user, replacing what it held.
func (b *tab) typeText(sel, text string) {
	b.t.Helper()
	b.do(chromedp.Focus(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+q(sel)+`).select()`),
		chromedp.SendKeys(chromedp.CSS(sel), cmp.Or(text, kb.Backspace)))
	if got := eval[string](b, `document.querySelector(`+q(sel)+`).value`); got != text {
		b.fatalf("field %s holds %q, want %q", sel, got, text)
	}
}

// fill types a value into a variable's field of an operation's panel.
func (b *tab) fill(op, v, value string) {
	b.t.Helper()
	b.typeText(inputSel(op, v), value)
}

// text returns the trimmed text content of the first match of sel ("" when none).
func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, `(document.querySelector(`+q(sel)+`)?.textContent ?? '').trim()`)
}

// screenshot saves the viewport as test-output/<name>.png at the
// repository root (and, with full, the whole page as <name>-full.png), and
// returns the viewport's PNG.
func (b *tab) screenshot(name string, full bool) []byte {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fatalf("screenshot: %v", err)
	}
	files := map[string][]byte{name + ".png": png}
	if full {
		page, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.fatalf("full screenshot: %v", err)
		}
		files[name+"-full.png"] = page
	}
	dir := filepath.Join("..", "test-output")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for file, data := range files {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			b.t.Fatal(err)
		}
		b.t.Logf("saved test-output/%s", file)
	}
	return png
}
