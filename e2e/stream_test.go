package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gosse "github.com/tmaxmax/go-sse"
)

// secureOps writes an operations folder with one guarded subscription (the
// repository's own set has none): the page must carry the token on an
// EventSource, which cannot send headers.
func secureOps(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secure"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "# A countdown for signed-in callers.\n" +
		"subscription Countdown($from: Int!) @requireAuthentication {\n  countdown(from: $from, interval: 20)\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "secure", "Countdown.graphql"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStreamToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{opsDir: secureOps(t)})
	b := openTab(t, s.URL, desktopW, desktopH, false)
	const op = "secure/Countdown"
	const path = "/operations/" + op
	st := streamSel(op)

	// Without a token the gateway refuses the stream with 401 before it
	// starts; EventSource cannot read statuses, so the page asks with fetch.
	b.open(op)
	b.fill(op, "from", "2")
	b.click(panelSel(op) + ` ` + testid("subscribe"))
	b.wait("the refused stream", `document.querySelector(`+q(st)+`)?.dataset.state === 'failed'`)
	if e := b.text(st + ` ` + testid("error-message")); !strings.HasPrefix(e, "401 Authentication required") || !strings.Contains(e, "Unauthorized:") {
		b.fatalf("stream error %q", e)
	}
	if status := b.text(st + ` ` + testid("stream-status")); status != "Refused: 401 Authentication required" {
		b.fatalf("stream-status %q", status)
	}
	if n := s.demo.Stats().SubscriptionsStarted; n != 0 {
		b.fatalf("%d upstream subscriptions started for refused streams", n)
	}
	b.click(st + ` ` + testid("stream-close"))

	// Query-parameter mode (the default): the token rides in access_token.
	b.mint("alice", "")
	b.click(panelSel(op) + ` ` + testid("tab-js"))
	if js := b.text(panelSel(op) + ` ` + testid("snippet-js")); !strings.Contains(js, `url.searchParams.set("access_token", token);`) {
		b.fatalf("EventSource snippet in query mode:\n%s", js)
	}
	b.click(panelSel(op) + ` ` + testid("subscribe"))
	b.wait("the stream's end", `document.querySelector(`+q(st)+`)?.dataset.state === 'done'`)
	if c := b.text(st + ` ` + testid("event-count")); c != "3" {
		b.fatalf("event-count %q", c)
	}
	if r, _ := s.seen.last(path); !r.SSE || !r.Query || r.Cookie || r.Header {
		b.fatalf("stream request %+v: want wg_sse and access_token only", r)
	}
	b.click(st + ` ` + testid("stream-close"))

	// Cookie mode: the page sets fb_token and the URL stays clean.
	b.click(testid("token-transport-cookie"))
	b.wait("the cookie", `document.cookie.split('; ').some((c) => c.startsWith('fb_token=ey'))`)
	if js := b.text(panelSel(op) + ` ` + testid("snippet-js")); !strings.Contains(js, "// The fb_token cookie carries the token") || strings.Contains(js, "access_token") {
		b.fatalf("EventSource snippet in cookie mode:\n%s", js)
	}
	b.click(panelSel(op) + ` ` + testid("subscribe"))
	b.wait("the stream's end", `document.querySelector(`+q(st)+`)?.dataset.state === 'done'`)
	if r, _ := s.seen.last(path); !r.SSE || r.Query || !r.Cookie || r.Header {
		b.fatalf("stream request %+v: want wg_sse and the cookie only", r)
	}

	// Back to query mode: the cookie is removed, so the choice is the real one.
	b.click(testid("token-transport-query"))
	b.wait("the cookie's removal", `!document.cookie.includes('fb_token=')`)
	// Clearing the token brings the 401 back.
	b.click(testid("token-clear"))
	b.wait("no token", `document.querySelector('[data-testid=token-state]').textContent === 'no token'`)
	b.click(st + ` ` + testid("stream-close"))
	b.click(panelSel(op) + ` ` + testid("subscribe"))
	b.wait("the refused stream", `document.querySelector(`+q(st)+`)?.dataset.state === 'failed'`)
}

func TestStatsPanel(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})

	// The stream the panel reads: SSE, one JSON sample per event, the time
	// in RFC 3339 with milliseconds (the panel divides by differences).
	resp, err := s.http.Get(s.URL + "/_/stats")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("/_/stats Content-Type %q", ct)
	}
	var line string
	for e, err := range gosse.Read(resp.Body, nil) {
		if err != nil {
			t.Fatal(err)
		}
		line = e.Data
		break
	}
	resp.Body.Close()
	var sample map[string]any
	if err := json.Unmarshal([]byte(line), &sample); err != nil {
		t.Fatalf("first /_/stats line %q: %v", line, err)
	}
	for _, k := range []string{"openStreams", "upstreamConnections", "upstreamSubscriptions", "eventsIn", "eventsOut"} {
		if _, ok := sample[k].(float64); !ok {
			t.Errorf("/_/stats sample %q lacks the number %s", line, k)
		}
	}
	if ts, _ := sample["time"].(string); !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(ts) {
		t.Errorf("/_/stats time %q: want RFC 3339 UTC with milliseconds", ts)
	}

	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.wait("the live stats", `document.querySelector('[data-testid=stats-status]').dataset.state === 'live'`)
	b.wait("a first sample", `document.querySelector('[data-testid=stats-open-streams]').textContent === '0'`)

	// A long countdown keeps events flowing while the panel samples.
	b.open("Countdown")
	b.fill("Countdown", "from", "100000")
	b.fill("Countdown", "interval", "20")
	b.click(panelSel("Countdown") + ` ` + testid("subscribe"))
	b.wait("one open stream", `document.querySelector('[data-testid=stats-open-streams]').textContent === '1'`)
	b.wait("one upstream connection and subscription",
		`document.querySelector('[data-testid=stats-upstream-connections]').textContent === '1' && document.querySelector('[data-testid=stats-upstream-subscriptions]').textContent === '1'`)
	b.wait("events per second", `['in', 'out'].every((k) => Number(document.querySelector('[data-testid=stats-events-' + k + ']').textContent) > 0)`)
	for _, id := range []string{"events-in", "events-out"} {
		v := b.text(testid("stats-" + id))
		if f, err := strconv.ParseFloat(v, 64); err != nil || f <= 0 || f > 1000 {
			b.fatalf("stats-%s = %q", id, v)
		}
	}
	// The charts are drawn: a line with at least two points.
	b.wait("the charts", `[...document.querySelectorAll('[data-testid=stats-card] .spark-line')].every((l) => l.getAttribute('points').split(' ').length >= 2)`)

	b.click(streamSel("Countdown") + ` ` + testid("stop"))
	b.wait("no open stream", `document.querySelector('[data-testid=stats-open-streams]').textContent === '0'`)
	s.waitActive(t, 0)
}
