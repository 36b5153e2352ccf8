package e2e

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
	"reflect"
	"testing"
)

// listItem is one entry of the operations list as the page shows it.
type listItem struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Folder string   `json:"folder"`
	Lock   bool     `json:"lock"`
	Roles  []string `json:"roles"`
	Live   bool     `json:"live"`
}

const listItemsJS = `[...document.querySelectorAll('[data-testid=op-item]')].map((a) => ({
	name: a.dataset.name,
	kind: a.dataset.kind,
	folder: a.closest('[data-testid=op-group]').dataset.folder,
	lock: !!a.querySelector('[data-testid=lock]'),
	roles: [...a.querySelectorAll('[data-testid=roles] .role')].map((r) => r.textContent),
	live: !!a.querySelector('.kind-live'),
}))`

func TestOperationsList(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	got := eval[[]listItem](b, listItemsJS)
	// The repository's operations, grouped by folder; internal/ is never listed.
	want := []listItem{
		{Name: "Countdown", Kind: "subscription", Folder: "", Roles: []string{}},
		{Name: "Sub", Kind: "subscription", Folder: "", Roles: []string{}},
		{Name: "chat/MessageCreated", Kind: "subscription", Folder: "chat", Roles: []string{}},
		{Name: "chat/Messages", Kind: "query", Folder: "chat", Roles: []string{}},
		{Name: "chat/MyMessages", Kind: "query", Folder: "chat", Lock: true, Roles: []string{}},
		{Name: "chat/PostMessage", Kind: "mutation", Folder: "chat", Roles: []string{}},
		{Name: "stocks/Price", Kind: "query", Folder: "stocks", Roles: []string{}, Live: true},
		{Name: "stocks/Prices", Kind: "subscription", Folder: "stocks", Roles: []string{}},
		{Name: "stocks/SetPrice", Kind: "mutation", Folder: "stocks", Lock: true, Roles: []string{"admin"}},
	}
	if !reflect.DeepEqual(got, want) {
		b.fatalf("operations list:\n got %+v\nwant %+v", got, want)
	}
	if got := eval[[]string](b, `[...document.querySelectorAll('[data-testid=op-group]')].map((g) => g.dataset.folder)`); !reflect.DeepEqual(got, []string{"", "chat", "stocks"}) {
		b.fatalf("groups %q", got)
	}
	if got := eval[[]string](b, `[...document.querySelectorAll('[data-testid=op-item] [data-testid=kind]')].map((k) => k.textContent)`); !reflect.DeepEqual(got,
		[]string{"sub", "sub", "sub", "query", "query", "mutation", "query", "sub", "mutation"}) {
		b.fatalf("kind badges %q", got)
	}
	if c := b.text(testid("op-count")); c != "9" {
		b.fatalf("op-count %q", c)
	}
	// The dev badge and the mint box follow /_/info.
	b.wait("the dev badge", `!document.querySelector('[data-testid=dev-badge]').hidden && !document.querySelector('[data-testid=mint-box]').hidden`)

	// The filter box narrows the list, by name and by kind.
	b.typeText(testid("op-filter"), "stocks")
	b.wait("the filtered list", `document.querySelectorAll('[data-testid=op-item]').length === 3`)
	if c := b.text(testid("op-count")); c != "3 of 9" {
		b.fatalf("op-count after filter %q", c)
	}
	b.typeText(testid("op-filter"), "mutation")
	b.wait("the list filtered by kind", `[...document.querySelectorAll('[data-testid=op-item]')].map((a) => a.dataset.name).join() === 'chat/PostMessage,stocks/SetPrice'`)
	b.typeText(testid("op-filter"), "nothing-like-this")
	b.wait("the empty filter message", `!!document.querySelector('[data-testid=op-empty]')`)
}

func TestCountdownStream(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.open("Countdown")
	// The form comes from the real JSON Schema: from is a required Int,
	// interval a nullable Int with the declared default 100.
	if v := eval[string](b, `document.querySelector(`+q(inputSel("Countdown", "interval"))+`).value`); v != "100" {
		b.fatalf("interval field holds %q, want the default 100", v)
	}
	if r := eval[bool](b, `document.querySelector(`+q(inputSel("Countdown", "from"))+`).getAttribute('aria-required') === 'true'`); !r {
		b.fatalf("from is not marked required")
	}
	b.fill("Countdown", "from", "3")
	b.click(panelSel("Countdown") + ` ` + testid("subscribe"))

	st := streamSel("Countdown")
	b.wait("the countdown's end", `document.querySelector(`+q(st)+`)?.dataset.state === 'done'`)
	events := eval[[]string](b, `[...document.querySelectorAll(`+q(st+` [data-testid=event] .json`)+`)].map((e) => e.textContent)`)
	want := []string{`{"data":{"countdown":3}}`, `{"data":{"countdown":2}}`, `{"data":{"countdown":1}}`, `{"data":{"countdown":0}}`}
	if !reflect.DeepEqual(events, want) {
		b.fatalf("events %q, want %q", events, want)
	}
	if v := b.text(st + ` ` + testid("stream-vars")); v != "from: 3 · interval: 100" {
		b.fatalf("stream variables %q", v)
	}
	if c := b.text(st + ` ` + testid("event-count")); c != "4" {
		b.fatalf("event-count %q", c)
	}
	if n := eval[int](b, `document.querySelectorAll(`+q(st+` [data-testid=event-done]`)+`).length`); n != 1 {
		b.fatalf("%d done markers", n)
	}
	if status := b.text(st + ` ` + testid("stream-status")); status != "Done: the upstream completed" {
		b.fatalf("stream-status %q", status)
	}
	// Every event carries its SSE id.
	if ids := eval[[]string](b, `[...document.querySelectorAll(`+q(st+` [data-testid=event]`)+`)].map((e) => e.dataset.id)`); len(ids) != 4 || ids[0] == "" {
		b.fatalf("event ids %q", ids)
	}
	// The stream ended, so the stop button gave way to the close button.
	if eval[bool](b, `!document.querySelector(`+q(st+` [data-testid=stop]`)+`).hidden`) {
		b.fatalf("stop button still shown after done")
	}
	b.screenshot("countdown", false)
}

func TestSubscribeOnce(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.open("Countdown")
	b.fill("Countdown", "from", "7")
	b.fill("Countdown", "interval", "60000") // it must not end by itself before waitActive below
	b.click(panelSel("Countdown") + ` ` + testid("once"))
	res := panelSel("Countdown") + ` ` + testid("result-body")
	b.wait("the first event as the result", `!!document.querySelector(`+q(res)+`)`)
	if got := eval[string](b, `JSON.stringify(JSON.parse(document.querySelector(`+q(res)+`).textContent))`); got != `{"data":{"countdown":7}}` {
		b.fatalf("subscribe-once result %q", got)
	}
	if st := b.text(panelSel("Countdown") + ` ` + testid("result-status")); st != "200 OK" {
		b.fatalf("result-status %q", st)
	}
	if r, ok := s.seen.last("/operations/Countdown"); !ok || !r.Once || r.SSE {
		b.fatalf("request %+v: want wg_subscribe_once without wg_sse", r)
	}
	// The gateway completed the upstream subscription after the first result.
	s.waitActive(t, 0)
}

func TestMutationAppearsInStream(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.open("chat/MessageCreated")
	b.fill("chat/MessageCreated", "room", "e2e")
	b.click(panelSel("chat/MessageCreated") + ` ` + testid("subscribe"))
	st := streamSel("chat/MessageCreated")
	b.wait("the stream to open", `document.querySelector(`+q(st)+`)?.dataset.state === 'open'`)
	s.waitActive(t, 1) // the upstream subscription is in place: no message can be missed

	b.open("chat/PostMessage")
	// Required fields first, each group in the operation's declared order.
	if got := eval[[]string](b, `[...document.querySelectorAll(`+q(panelSel("chat/PostMessage")+` [data-testid=field]`)+`)].map((f) => f.dataset.var)`); !reflect.DeepEqual(got, []string{"room", "content", "author"}) {
		b.fatalf("PostMessage fields in order %q", got)
	}
	b.fill("chat/PostMessage", "room", "e2e")
	b.fill("chat/PostMessage", "content", "hello from the page")
	b.fill("chat/PostMessage", "author", "chromium")
	b.click(panelSel("chat/PostMessage") + ` ` + testid("run"))
	res := panelSel("chat/PostMessage") + ` ` + testid("result-status")
	b.wait("the mutation's answer", `!!document.querySelector(`+q(res)+`)`)
	if got := b.text(res); got != "200 OK" {
		b.fatalf("mutation status %q", got)
	}
	if r, ok := s.seen.last("/operations/chat/PostMessage"); !ok || r.Method != "POST" {
		b.fatalf("mutation request %+v", r)
	}

	b.wait("the message in the stream", `document.querySelector(`+q(st)+`)?.dataset.state === 'streaming'`)
	ev := eval[string](b, `document.querySelector(`+q(st+` [data-testid=event] .json`)+`).textContent`)
	var got struct {
		Data struct {
			MessageCreated struct {
				ID, Author, Content, CreatedAt string
			} `json:"messageCreated"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(ev), &got); err != nil {
		b.fatalf("event %q: %v", ev, err)
	}
	if m := got.Data.MessageCreated; m.Content != "hello from the page" || m.Author != "chromium" || m.ID == "" || m.CreatedAt == "" {
		b.fatalf("event %q", ev)
	}
	if c := b.text(st + ` ` + testid("event-count")); c != "1" {
		b.fatalf("event-count %q", c)
	}

	// Stop closes the EventSource; the gateway completes the upstream subscription.
	b.click(st + ` ` + testid("stop"))
	b.wait("the stopped state", `document.querySelector(`+q(st)+`).dataset.state === 'stopped'`)
	s.waitActive(t, 0)
}

func TestGuardedWithoutToken(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.open("chat/MyMessages")
	p := panelSel("chat/MyMessages")
	if note := b.text(p + ` ` + testid("auth-note")); note != "Requires a valid token." {
		b.fatalf("auth-note %q", note)
	}
	// The @fromClaim variable is filled from the token: nothing to enter.
	b.wait("no variables", `!!document.querySelector(`+q(p+` [data-testid=no-variables]`)+`)`)
	b.click(p + ` ` + testid("run"))
	b.wait("the 401 message", `document.querySelector(`+q(p+` [data-testid=error-message]`)+`)?.dataset.status === '401'`)
	msg := b.text(p + ` ` + testid("error-message"))
	for _, want := range []string{"401 Authentication required", "Unauthorized:", "This operation needs a token: paste a JWT in the Token box or mint one."} {
		if !strings.Contains(msg, want) {
			b.fatalf("401 message %q lacks %q", msg, want)
		}
	}
	if r, _ := s.seen.last("/operations/chat/MyMessages"); r.Header || r.Query || r.Cookie {
		b.fatalf("a token was sent without one set: %+v", r)
	}

	b.open("stocks/SetPrice")
	p = panelSel("stocks/SetPrice")
	if note := b.text(p + ` ` + testid("auth-note")); note != "Requires a token whose roles satisfy: needs any of admin." {
		b.fatalf("auth-note %q", note)
	}
	b.fill("stocks/SetPrice", "symbol", "ACME")
	b.fill("stocks/SetPrice", "price", "12.5")
	b.click(p + ` ` + testid("run"))
	b.wait("the 401 message", `document.querySelector(`+q(p+` [data-testid=error-message]`)+`)?.dataset.status === '401'`)
}

func TestMintTokenAndRunGuarded(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.mint("alice", "admin")
	if sum := b.text(testid("token-summary")); !strings.HasPrefix(sum, "sub alice · roles admin · expires in ") {
		b.fatalf("token-summary %q", sum)
	}

	b.open("chat/PostMessage")
	b.fill("chat/PostMessage", "room", "lobby")
	b.fill("chat/PostMessage", "content", "written by alice")
	b.fill("chat/PostMessage", "author", "alice")
	b.run("chat/PostMessage", "200 OK")

	b.open("chat/MyMessages")
	b.run("chat/MyMessages", "200 OK")
	if body := b.text(panelSel("chat/MyMessages") + ` ` + testid("result-body")); !strings.Contains(body, `"content": "written by alice"`) {
		b.fatalf("MyMessages answered %s", body)
	}
	// fetch sends the token as a header, never in the URL.
	if r, _ := s.seen.last("/operations/chat/MyMessages"); !r.Header || r.Query || r.Cookie {
		b.fatalf("MyMessages request %+v: want the Authorization header only", r)
	}

	b.open("stocks/SetPrice")
	b.fill("stocks/SetPrice", "symbol", "ACME")
	b.fill("stocks/SetPrice", "price", "12.5")
	b.run("stocks/SetPrice", "200 OK")
	if body := b.text(panelSel("stocks/SetPrice") + ` ` + testid("result-body")); !strings.Contains(body, `"price": 12.5`) {
		b.fatalf("SetPrice answered %s", body)
	}

	// A valid token whose roles are not enough: 403.
	b.mint("bob", "viewer")
	b.open("stocks/SetPrice")
	b.run("stocks/SetPrice", "403 Forbidden")
	msg := b.text(panelSel("stocks/SetPrice") + ` ` + testid("error-message"))
	if !strings.Contains(msg, "403 Forbidden: your roles are not enough") || !strings.Contains(msg, "(needs any of admin)") {
		b.fatalf("403 message %q", msg)
	}
}

// mint opens the mint box, mints a token for sub with roles and waits
// until the page uses it.
func (b *tab) mint(sub, roles string) {
	b.t.Helper()
	if !eval[bool](b, `document.querySelector('[data-testid=mint-box]').open`) {
		b.click(testid("mint-toggle"))
	}
	b.typeText(testid("mint-sub"), sub)
	b.typeText(testid("mint-roles"), roles)
	b.click(testid("mint-submit"))
	b.wait("the minted token", `document.querySelector('[data-testid=token-state]').textContent === `+q(sub))
}

// run clicks the run button of op and waits for the answer's status line.
func (b *tab) run(op, wantStatus string) {
	b.t.Helper()
	p := panelSel(op)
	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(` + q(p+` [data-testid=result]`) + `).replaceChildren()`))
	b.click(p + ` ` + testid("run"))
	b.wait("the answer of "+op, `!!document.querySelector(`+q(p+` [data-testid=result-status]`)+`)`)
	if got := b.text(p + ` ` + testid("result-status")); got != wantStatus {
		b.fatalf("%s answered %q, want %q", op, got, wantStatus)
	}
}

func TestNoDevMode(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{noDev: true})
	b := openTab(t, s.URL, desktopW, desktopH, false)

	b.wait("the stats", `document.querySelector('[data-testid=stats-status]').dataset.state === 'live'`)
	if eval[bool](b, `!document.querySelector('[data-testid=mint-box]').hidden || !document.querySelector('[data-testid=dev-badge]').hidden`) {
		b.fatalf("the mint box or the dev badge shows outside development mode")
	}
	// The minting endpoint does not exist at all.
	resp, err := s.http.Post(s.URL+"/_/token", "application/json", strings.NewReader(`{"sub":"mallory"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("POST /_/token without dev mode: status %d, want 404", resp.StatusCode)
	}
	// The 401 hint does not offer minting.
	b.open("chat/MyMessages")
	b.click(panelSel("chat/MyMessages") + ` ` + testid("run"))
	b.wait("the 401 message", `document.querySelector(`+q(panelSel("chat/MyMessages")+` [data-testid=error-message]`)+`)?.dataset.status === '401'`)
	if msg := b.text(panelSel("chat/MyMessages") + ` ` + testid("error-message")); !strings.HasSuffix(msg, "paste a JWT in the Token box.") {
		b.fatalf("401 message %q", msg)
	}
}

// formField describes one generated field of a panel's form.
type formField struct {
	Var     string   `json:"var"`
	Tag     string   `json:"tag"`
	Type    string   `json:"type"`
	Label   string   `json:"label"`
	Value   string   `json:"value"`
	Options []string `json:"options"`
}

const formFieldsJS = `[...document.querySelectorAll(%s)].map((f) => {
	const i = f.querySelector('[data-testid=var-input]');
	return {var: f.dataset.var, tag: i.tagName.toLowerCase(), type: i.type, value: i.value,
		label: f.querySelector('.var-type').textContent,
		options: [...(i.options || [])].map((o) => o.textContent)};
})`

// TestVariablesForm checks the form generated from the real index's JSON
// Schema ($defs/$ref, nullable types, enums with null, defaults) and the
// 400 message for a variable the gateway rejects.
func TestVariablesForm(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)
	const op = "chat/Messages"
	b.open(op)
	got := eval[[]formField](b, fmt.Sprintf(formFieldsJS, q(panelSel(op)+` [data-testid=field]`)))
	want := []formField{
		{Var: "room", Tag: "input", Type: "text", Label: "String!", Options: []string{}},
		{Var: "sort", Tag: "select", Type: "select-one", Label: "Sort", Value: `"OLDEST"`, Options: []string{"— not set —", "NEWEST", "OLDEST"}},
		{Var: "filter", Tag: "textarea", Type: "textarea", Label: "MessageFilter", Options: []string{}},
		{Var: "limit", Tag: "input", Type: "number", Label: "Int", Options: []string{}},
	}
	if !reflect.DeepEqual(got, want) {
		b.fatalf("form fields:\n got %+v\nwant %+v", got, want)
	}
	if ph := eval[string](b, `document.querySelector(`+q(inputSel(op, "filter"))+`).placeholder`); ph != `{"author":"","contains":""}` {
		b.fatalf("filter placeholder %q", ph)
	}

	// Malformed JSON is caught in the page, before any request.
	b.fill(op, "room", "lobby")
	b.fill(op, "filter", `{"author": ada}`)
	b.click(panelSel(op) + ` ` + testid("run"))
	b.wait("the JSON error", `!document.querySelector(`+q(panelSel(op)+` [data-var=filter] [data-testid=field-error]`)+`).hidden`)
	if e := b.text(panelSel(op) + ` [data-var=filter] [data-testid=field-error]`); !strings.HasPrefix(e, "not valid JSON: ") {
		b.fatalf("filter error %q", e)
	}
	if _, ok := s.seen.last("/operations/" + op); ok {
		b.fatalf("a request went out with malformed JSON")
	}

	// A value the gateway rejects: 400, and the field is marked.
	b.fill(op, "filter", `{"author": "ada"}`)
	b.fill(op, "limit", "1.5")
	b.run(op, "400 Bad Request")
	p := panelSel(op)
	if e := b.text(p + ` ` + testid("error-message")); !strings.HasPrefix(e, "400 The variables were rejected") || !strings.Contains(e, "InputValidationError") {
		b.fatalf("400 message %q", e)
	}
	b.wait("the marked field", `!document.querySelector(`+q(p+` [data-var=limit] [data-testid=field-error]`)+`).hidden`)

	// Corrected, it runs: enum, input object and Int together.
	s.post(t, "chat/PostMessage", `{"room":"lobby","author":"ada","content":"first"}`)
	s.post(t, "chat/PostMessage", `{"room":"lobby","author":"ada","content":"second"}`)
	s.post(t, "chat/PostMessage", `{"room":"lobby","author":"bob","content":"third"}`)
	b.fill(op, "limit", "1")
	b.do(chromedp.SetValue(chromedp.CSS(inputSel(op, "sort")), `"NEWEST"`))
	b.run(op, "200 OK")
	body := eval[string](b, `JSON.stringify(JSON.parse(document.querySelector(`+q(p+` [data-testid=result-body]`)+`).textContent).data.messages.map((m) => m.content))`)
	if body != `["second"]` {
		b.fatalf("messages %s, want the newest of ada's", body)
	}
	if js := b.text(p + ` ` + testid("snippet-curl")); !strings.Contains(js, `sort=%22NEWEST%22`) && !strings.Contains(js, `sort=NEWEST`) {
		b.fatalf("curl snippet does not follow the inputs:\n%s", js)
	}
}

// TestLiveQuery watches a live query (wg_live=true) from the page: the
// first result at once, then a new event when the price changes.
func TestLiveQuery(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)
	const op = "stocks/Price"
	b.open(op)
	b.fill(op, "symbol", "ACME")
	b.click(panelSel(op) + ` ` + testid("subscribe"))
	st := streamSel(op)
	b.wait("the first result", `document.querySelectorAll(`+q(st+` [data-testid=event]`)+`).length === 1`)
	if r, _ := s.seen.last("/operations/" + op); !r.SSE {
		b.fatalf("live request %+v", r)
	}
	b.mint("admin", "admin")
	b.open("stocks/SetPrice")
	b.fill("stocks/SetPrice", "symbol", "ACME")
	b.fill("stocks/SetPrice", "price", "42.5")
	b.run("stocks/SetPrice", "200 OK")
	b.wait("the new price", `[...document.querySelectorAll(`+q(st+` [data-testid=event] .json`)+`)].some((e) => e.textContent.includes('42.5'))`)
}

// TestUpstreamDown shows the 502 message, for a run and for a stream,
// when the GraphQL server is gone.
func TestUpstreamDown(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	b := openTab(t, s.URL, desktopW, desktopH, false)
	if err := s.demo.Close(); err != nil {
		t.Fatal(err)
	}

	b.open("chat/Messages")
	b.fill("chat/Messages", "room", "lobby")
	b.run("chat/Messages", "502 Bad Gateway")
	if e := b.text(panelSel("chat/Messages") + ` ` + testid("error-message")); !strings.HasPrefix(e, "502 The upstream GraphQL server is unavailable") || !strings.Contains(e, "UpstreamUnavailable") {
		b.fatalf("502 message %q", e)
	}

	b.open("Countdown")
	b.fill("Countdown", "from", "3")
	b.click(panelSel("Countdown") + ` ` + testid("subscribe"))
	st := streamSel("Countdown")
	b.wait("the refused stream", `document.querySelector(`+q(st)+`)?.dataset.state === 'failed'`)
	if e := b.text(st + ` ` + testid("error-message")); !strings.HasPrefix(e, "502 The upstream GraphQL server is unavailable") {
		b.fatalf("stream error %q", e)
	}
}
