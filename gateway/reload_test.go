package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/upstream/demo"
)

// The exact endings of a reload (README: "Hot reload").
const (
	sseChanged  = "data: {\"errors\":[{\"message\":\"operation changed\",\"extensions\":{\"code\":\"OperationReloaded\"}}]}\n\nevent: done\ndata: done\n\n"
	sseRemoved  = "data: {\"errors\":[{\"message\":\"operation removed\",\"extensions\":{\"code\":\"OperationRemoved\"}}]}\n\nevent: done\ndata: done\n\n"
	jsonChanged = "{\"errors\":[{\"message\":\"operation changed\",\"extensions\":{\"code\":\"OperationReloaded\"}}]}\n\n"
)

// sseCountdown matches SSE countdown events and heartbeats.
var sseCountdown = `(id: \S+\ndata: \{"data":\{"countdown":\d+\}\}\n\n|:\n\n)*`

// writeOp writes the operation file of name under dir.
func writeOp(t testing.TB, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name)+".graphql")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// newGatewayDir serves the operations of dir against the demo; extra adds
// config keys (",\"subscriptions\": {...}").
func newGatewayDir(t testing.TB, d *demo.Server, dir, extra string) *testGateway {
	t.Helper()
	p, _ := json.Marshal(dir)
	return newGateway(t, d, `{"operationsDir": `+string(p)+`, "upstream": {"url": "${UPSTREAM}"}`+extra+`}`)
}

// follow opens a stream that the test's cleanup closes.
func follow(t testing.TB, url string, header ...string) *bufio.Reader {
	t.Helper()
	resp := get(t, url, header...)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	return bufio.NewReader(resp.Body)
}

// readRest reads a stream to its end.
func readRest(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var countdownValue = regexp.MustCompile(`"countdown":(\d+)`)

// consecutive checks that the countdown values in s never skip or restart,
// and returns how many there are.
func consecutive(t *testing.T, s string) int {
	t.Helper()
	ms := countdownValue.FindAllStringSubmatch(s, -1)
	for i := 1; i < len(ms); i++ {
		prev, _ := strconv.Atoi(ms[i-1][1])
		cur, _ := strconv.Atoi(ms[i][1])
		if cur != prev-1 {
			t.Fatalf("countdown went from %d to %d: the stream was interrupted", prev, cur)
		}
	}
	return len(ms)
}

func statusOf(t testing.TB, url string) int {
	t.Helper()
	resp := get(t, url)
	readAll(t, resp)
	return resp.StatusCode
}

// Hot reload through the file watcher: a new file is served, a changed
// subscription's streams end with OperationReloaded (SSE and JSON), a
// broken change keeps the last good version, a removed file answers 404
// and ends its streams, new folders are watched; the streams of the
// untouched operation flow on, on the same upstream subscription.
func TestHotReload(t *testing.T) {
	d := startDemo(t, demo.Options{})
	dir := t.TempDir()
	writeOp(t, dir, "A", "subscription A { countdown(from: 100000, interval: 20) }\n")
	writeOp(t, dir, "sub/B", "subscription B { countdown(from: 100000, interval: 20) }\n")
	g := newGatewayDir(t, d, dir, "")

	a := follow(t, g.URL+"/operations/A?wg_sse=true")
	aJSON := follow(t, g.URL+"/operations/A")
	b := follow(t, g.URL+"/operations/sub/B?wg_sse=true")
	aSeen := readUntil(t, a, "countdown", 5*time.Second)
	aJSONSeen := readUntil(t, aJSON, "countdown", 5*time.Second)
	bSeen := readUntil(t, b, "countdown", 5*time.Second)
	started := d.Stats().SubscriptionsStarted
	bID := idLine.FindStringSubmatch(bSeen)[1]
	bIncarnation := bID[:strings.LastIndexByte(bID, '-')]

	// A new file is served.
	writeOp(t, dir, "C", "query C { serverTime }\n")
	eventually(t, 5*time.Second, "new operation served", func() bool { return statusOf(t, g.URL+"/operations/C") == 200 })

	// A changed subscription: its streams end, in both modes.
	writeOp(t, dir, "A", "subscription A { countdown(from: 100000, interval: 25) }\n")
	got := aSeen + readRest(t, a)
	if !regexp.MustCompile(`^` + sseCountdown + regexp.QuoteMeta(sseChanged) + `$`).MatchString(got) {
		t.Errorf("SSE stream of the changed operation:\n%q\nwant events then %q", got, sseChanged)
	}
	got = aJSONSeen + readRest(t, aJSON)
	if !regexp.MustCompile(`^(\{"data":\{"countdown":\d+\}\}\n\n|\n)*` + regexp.QuoteMeta(jsonChanged) + `$`).MatchString(got) {
		t.Errorf("JSON stream of the changed operation:\n%q\nwant results then %q", got, jsonChanged)
	}
	// The new version is served.
	eventually(t, 5*time.Second, "changed operation served", func() bool {
		return g.reg.Load().endpoints["A"].Query != "" && strings.Contains(g.reg.Load().endpoints["A"].Query, "25")
	})

	// A change that does not compile keeps the last good version.
	writeOp(t, dir, "sub/B", "subscription B { countdown(from: 100000, interval: 20) \n")
	problem := filepath.Join(dir, "sub", "B.graphql") + ":2:1: "
	eventually(t, 5*time.Second, "broken change logged", func() bool { return strings.Contains(g.logs.String(), problem) })
	if !strings.Contains(g.logs.String(), "operation change not applied; serving the last good version") {
		t.Errorf("logs do not say the last good version is kept:\n%s", g.logs.String())
	}
	if s := statusOf(t, g.URL+"/operations/sub/B?wg_subscribe_once=true"); s != 200 {
		t.Errorf("broken B answers %d; want its last good version (200)", s)
	}

	// The untouched stream flowed all along on the same upstream
	// subscription: no new incarnation, no skipped or repeated value.
	bSeen += readUntil(t, b, "\n\n", 5*time.Second)
	for consecutive(t, bSeen) < 5 {
		bSeen += readUntil(t, b, "\n\n", 5*time.Second)
	}
	if id := idLine.FindAllStringSubmatch(bSeen, -1); !strings.HasPrefix(id[len(id)-1][1], bIncarnation+"-") {
		t.Errorf("B's events changed incarnation (%s, then %s): its upstream subscription was restarted", bID, id[len(id)-1][1])
	}
	// One upstream subscription more: the once request for B above.
	if n := d.Stats().SubscriptionsStarted; n > started+1 {
		t.Errorf("upstream subscriptions started: %d, then %d", started, n)
	}

	// A removed file: 404, and its streams end.
	if err := os.Remove(filepath.Join(dir, "sub", "B.graphql")); err != nil {
		t.Fatal(err)
	}
	got = bSeen + readRest(t, b)
	if !regexp.MustCompile(`^` + sseCountdown + regexp.QuoteMeta(sseRemoved) + `$`).MatchString(got) {
		t.Errorf("stream of the removed operation ends with %q", got[max(0, len(got)-200):])
	}
	consecutive(t, got)
	if s := statusOf(t, g.URL+"/operations/sub/B"); s != 404 {
		t.Errorf("removed operation answers %d, want 404", s)
	}

	// A new folder is watched, so a later change inside it is seen.
	writeOp(t, dir, "new/deep/D", "query D { serverTime }\n")
	eventually(t, 5*time.Second, "operation in a new folder served", func() bool { return statusOf(t, g.URL+"/operations/new/deep/D") == 200 })
	writeOp(t, dir, "new/deep/D", "query D { rooms { name } }\n")
	eventually(t, 5*time.Second, "change in a new folder seen", func() bool {
		resp := get(t, g.URL+"/operations/new/deep/D")
		return strings.Contains(readAll(t, resp), `"rooms"`)
	})

	for series, least := range map[string]float64{
		`fireboom_reloads_total{result="ok"}`: 1, `fireboom_reloads_total{result="failed"}`: 1,
		`fireboom_stream_ends_total{reason="reloaded"}`: 2, `fireboom_stream_ends_total{reason="removed"}`: 1,
	} {
		if v := metricValue(t, g.URL, series); v < least {
			t.Errorf("%s = %v, want at least %v", series, v, least)
		}
	}
}

// A stream whose request resolved the endpoint just before a reload
// replaced it ends as if it had been open during the reload.
func TestTrackAfterReloadEndsAtOnce(t *testing.T) {
	d := startDemo(t, demo.Options{})
	dir := t.TempDir()
	writeOp(t, dir, "A", "subscription A { countdown(from: 3) }\n")
	writeOp(t, dir, "B", "subscription B { countdown(from: 3) }\n")
	writeOp(t, dir, "C", "subscription C { countdown(from: 3) }\n")
	g := newGatewayDir(t, d, dir, "")
	oldA, oldB, oldC := g.reg.Load().endpoints["A"], g.reg.Load().endpoints["B"], g.reg.Load().endpoints["C"]
	writeOp(t, dir, "A", "subscription A { countdown(from: 4) }\n")
	// Comments and layout are not part of an operation's meaning.
	writeOp(t, dir, "C", "# now with a comment\nsubscription C {\n  countdown(from: 3)\n}\n")
	if err := os.Remove(filepath.Join(dir, "B.graphql")); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ep     *endpoint
		want   *event.Event
		reason string
	}{{oldA, endChanged, reasonReloaded}, {oldB, endRemoved, reasonRemoved}} {
		q := event.NewQueue(event.Limits{})
		ts := g.track(c.ep, q)
		if got := q.Take(nil); len(got) != 1 || got[0] != c.want {
			t.Errorf("%s: queue holds %v, want the %s ending", c.ep.Name, got, c.reason)
		}
		if by := g.untrack(ts); by != c.reason {
			t.Errorf("%s: ended by %q, want %q", c.ep.Name, by, c.reason)
		}
	}
	// The current endpoint, and one whose file changed only in layout, are
	// tracked normally.
	for _, ep := range []*endpoint{g.reg.Load().endpoints["A"], oldC} {
		q := event.NewQueue(event.Limits{})
		ts := g.track(ep, q)
		if q.Len() != 0 {
			t.Errorf("%s: a stream of the current version was ended", ep.Name)
		}
		if by := g.untrack(ts); by != "" {
			t.Errorf("%s: ended by %q", ep.Name, by)
		}
	}
}

// An unreadable operations folder (removed mid-deploy) changes nothing.
func TestReloadWithoutFolderKeepsEverything(t *testing.T) {
	d := startDemo(t, demo.Options{})
	dir := t.TempDir()
	ops := filepath.Join(dir, "ops")
	writeOp(t, ops, "A", "query A { serverTime }\n")
	g := newGatewayDir(t, d, ops, "")
	if err := os.RemoveAll(ops); err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(); err == nil {
		t.Error("Reload of a missing folder reported no problem")
	}
	if s := statusOf(t, g.URL+"/operations/A"); s != 200 {
		t.Errorf("A answers %d after its folder vanished; want the last good set (200)", s)
	}
	// The folder comes back (replaced as a whole): the watcher re-adds it.
	writeOp(t, ops, "B", "query B { serverTime }\n")
	if err := g.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := statusOf(t, g.URL+"/operations/B"); s != 200 {
		t.Errorf("B answers %d", s)
	}
	if s := statusOf(t, g.URL+"/operations/A"); s != 404 {
		t.Errorf("A answers %d after the new folder dropped it", s)
	}
}

// A new upstream schema under which an operation no longer validates ends
// its streams with OperationInvalid; the others go on.
func TestSchemaChangeEndsInvalidOperations(t *testing.T) {
	d := startDemo(t, demo.Options{})
	dir := t.TempDir()
	writeOp(t, dir, "A", "subscription A { countdown(from: 100000, interval: 20) }\n")
	writeOp(t, dir, "P", "subscription P { stockPricesChanged { symbol } }\n")
	g := newGatewayDir(t, d, dir, "")
	a := follow(t, g.URL+"/operations/A?wg_sse=true")
	seen := readUntil(t, a, "countdown", 5*time.Second)
	p := follow(t, g.URL+"/operations/P?wg_sse=true")
	eventually(t, 5*time.Second, "both subscribed", func() bool { return d.Stats().ActiveSubscriptions == 2 })

	schema, err := operation.ParseSchemaSDL(strings.Replace(demo.SchemaSDL, "countdown(from:", "renamedCountdown(from:", 1))
	if err != nil {
		t.Fatal(err)
	}
	g.install(buildRegistry(dir, schema, g.settings()))
	got := seen + readRest(t, a)
	want := "data: {\"errors\":[{\"message\":\"operation no longer valid against the upstream schema\",\"extensions\":{\"code\":\"OperationInvalid\"}}]}\n\nevent: done\ndata: done\n\n"
	if !strings.HasSuffix(got, want) {
		t.Errorf("stream ends %q, want %q", got[max(0, len(got)-200):], want)
	}
	// P is untouched: a price set now still reaches it.
	post, err := http.Post(d.URL(), "application/json", strings.NewReader(`{"query":"mutation { setPrice(symbol: \"X\", price: 2) { seq } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, post)
	readUntil(t, p, `"symbol":"X"`, 5*time.Second)
}

// SIGHUP's config reload: reloadable settings apply at once, the others
// are named as needing a restart (never with their values), and
// per-operation settings that do not change an operation's meaning keep
// its streams open.
func TestReloadConfig(t *testing.T) {
	d := startDemo(t, demo.Options{})
	dir := t.TempDir()
	writeOp(t, dir, "A", "subscription A { countdown(from: 100000, interval: 20) }\n")
	g := newGatewayDir(t, d, dir, `, "auth": {"jwt": {"secret": "one"}}`)
	a := follow(t, g.URL+"/operations/A?wg_sse=true")
	seen := readUntil(t, a, "countdown", 5*time.Second)

	next := *g.cfg
	next.Listen = "127.0.0.1:1"
	next.Upstream.Timeout = config.Duration(time.Minute)
	next.Auth.JWT.Secret = "two-secret-value"
	next.Subscriptions.Heartbeat = config.Duration(time.Second)
	next.Subscriptions.MaxStreams = 1
	next.Limits.MaxBodyBytes = 10
	no := false
	next.Operations = map[string]config.Operation{"A": {Dedup: &no, ReplayLast: true}}
	restart, err := g.ReloadConfig(&next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"auth.jwt.secret", "listen", "upstream.timeout"}; !slices.Equal(restart, want) {
		t.Errorf("restart %v, want %v", restart, want)
	}
	s := g.settings()
	if s.Subscriptions.Heartbeat.D() != time.Second || s.Subscriptions.MaxStreams != 1 || s.Limits.MaxBodyBytes != 10 {
		t.Errorf("reloadable settings not applied: %+v %+v", s.Subscriptions, s.Limits)
	}
	if s.Listen != g.cfg.Listen || s.Auth.JWT.Secret != "one" {
		t.Error("a restart-only setting was applied")
	}
	if ep := g.reg.Load().endpoints["A"]; ep.dedup || !ep.replayLast {
		t.Error("per-operation settings not applied")
	}
	logs := g.logs.String()
	if !strings.Contains(logs, "changed settings need a restart") || strings.Contains(logs, "two-secret-value") {
		t.Errorf("logs:\n%s", logs)
	}
	// The new stream limit applies: the open stream counts, so a second
	// one is refused.
	if st := statusOf(t, g.URL+"/operations/A?wg_sse=true"); st != http.StatusServiceUnavailable {
		t.Errorf("second stream answered %d, want 503 (maxStreams 1)", st)
	}
	// The open stream was not ended by the settings change.
	seen += readUntil(t, a, "\n\n", 5*time.Second)
	for consecutive(t, seen) < 5 {
		seen += readUntil(t, a, "\n\n", 5*time.Second)
	}
}

// metricsText reads /metrics.
func metricsText(t testing.TB, base string) string {
	t.Helper()
	resp := get(t, base+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return readAll(t, resp)
}
