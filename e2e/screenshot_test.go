package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestScreenshots drives the page the way the README's picture shows it:
// two live streams beside the panel, and the gateway panel's charts after
// a few samples. It saves the desktop screenshot into test-output/, and
// with FIREBOOM_UPDATE_SCREENSHOT=1 writes it to docs/dashboard.png.
func TestScreenshots(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{tick: 250 * time.Millisecond})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.open("stocks/Prices")
	b.click(panelSel("stocks/Prices") + ` ` + testid("subscribe"))
	b.open("chat/MessageCreated")
	b.fill("chat/MessageCreated", "room", "lobby")
	b.click(panelSel("chat/MessageCreated") + ` ` + testid("subscribe"))
	b.wait("the streams to open", `[...document.querySelectorAll('[data-testid=stream]')].every((s) => ['open', 'streaming'].includes(s.dataset.state))`)
	s.waitActive(t, 2)
	for i, m := range []struct{ author, content string }{
		{"ada", "Is the gateway up?"},
		{"linus", "Streams are flowing."},
	} {
		s.post(t, "chat/PostMessage", fmt.Sprintf(`{"room":"lobby","author":%q,"content":%q}`, m.author, m.content))
		b.wait("the message", fmt.Sprintf(`document.querySelectorAll(%s).length === %d`, q(streamSel("chat/MessageCreated")+` [data-testid=event]`), i+1))
	}
	// The third from the page: post on the left, watch it arrive on the right.
	b.open("chat/PostMessage")
	b.fill("chat/PostMessage", "content", "Ship it!")
	b.fill("chat/PostMessage", "room", "lobby")
	b.fill("chat/PostMessage", "author", "grace")
	b.run("chat/PostMessage", "200 OK")
	b.wait("the message", `document.querySelectorAll(`+q(streamSel("chat/MessageCreated")+` [data-testid=event]`)+`).length === 3`)
	// A few seconds of samples, so that the charts have lines and the
	// streams' figures settle.
	b.wait("the charts", `[...document.querySelectorAll('[data-testid=stats-card] .spark-line')].every((l) => l.getAttribute('points').split(' ').length >= 5) &&
		[...document.querySelectorAll('[data-testid=stream-elapsed]')].every((e) => parseFloat(e.textContent) >= 3)`)
	b.do(chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0); document.querySelector('.ops nav').scrollTop = 0; document.activeElement?.blur()`))
	png := b.screenshot("desktop", true)
	if os.Getenv("FIREBOOM_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("updated docs/dashboard.png")
	}

}

// TestPhoneWidth runs a stream at phone width: nothing may overflow
// sideways, and the whole flow stays usable.
func TestPhoneWidth(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	p := openTab(t, s.URL, phoneW, phoneH, true)
	p.wait("the stats", `document.querySelector('[data-testid=stats-status]').dataset.state === 'live'`)
	p.checkNoOverflow()
	p.screenshot("phone", false)
	p.open("Countdown")
	p.fill("Countdown", "from", "3")
	p.click(panelSel("Countdown") + ` ` + testid("subscribe"))
	p.wait("the countdown's end", `document.querySelector(`+q(streamSel("Countdown"))+`)?.dataset.state === 'done'`)
	p.checkNoOverflow()
	p.screenshot("phone-stream", false)

	// The theme button cycles auto → light → dark, and the choice sticks.
	p.click(testid("theme-toggle"))
	p.click(testid("theme-toggle"))
	p.wait("the dark theme", `document.documentElement.dataset.theme === 'dark' && localStorage.getItem('fireboom.theme') === 'dark'`)
	p.screenshot("phone-dark", false)
}

// checkNoOverflow fails when the page is wider than the viewport.
func (b *tab) checkNoOverflow() {
	b.t.Helper()
	w := eval[[]int](b, `[document.documentElement.scrollWidth, window.innerWidth]`)
	if w[0] > w[1] {
		wide := eval[[]string](b, `[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map((e) => e.tagName + '.' + e.className + ' ' + (e.dataset.testid || ''))`)
		b.fatalf("the page is %dpx wide in a %dpx viewport; too wide: %q", w[0], w[1], wide)
	}
}

// TestKeyboard runs a subscription without the mouse: / focuses the
// filter, Enter opens the first match, Enter in a field submits.
func TestKeyboard(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.do(press('/'))
	b.wait("the filter focused", `document.activeElement === document.querySelector('[data-testid=op-filter]')`)
	b.do(chromedp.KeyEvent("countdown"))

	b.wait("one match", `document.querySelectorAll('[data-testid=op-item]').length === 1`)
	b.do(press('\r'))
	b.wait("the Countdown panel", `!!document.querySelector(`+q(panelSel("Countdown"))+`)`)
	b.do(chromedp.Focus(chromedp.CSS(inputSel("Countdown", "from"))), chromedp.KeyEvent("2"), press('\r'))
	st := streamSel("Countdown")
	b.wait("the countdown's end", `document.querySelector(`+q(st)+`)?.dataset.state === 'done'`)
	if c := b.text(st + ` ` + testid("event-count")); c != "3" {
		b.fatalf("event-count %q", c)
	}
	// The stream card's close button takes focus from the keyboard too.
	b.do(chromedp.Focus(chromedp.CSS(st+` `+testid("stream-close"))), press('\r'))
	b.wait("the card's removal", `!document.querySelector(`+q(st)+`)`)
}

// press types one key the way a keyboard does: one keyDown that carries
// the text, so that preventDefault in a keydown handler stops the
// character (chromedp's KeyEvent sends the character as a separate event,
// which a page cannot cancel), then keyUp.
func press(r rune) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		ev := kb.Encode(r)
		down, up := *ev[0], *ev[len(ev)-1]
		if len(ev) == 3 {
			down.Text, down.UnmodifiedText = ev[1].Text, ev[1].UnmodifiedText
		}
		for _, p := range []input.DispatchKeyEventParams{down, up} {
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	})
}
