package e2e

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/source/sourcetest"
)

// ordersSDL is an events schema alone (no upstream) over one NATS subject.
const ordersSDL = `type Query { version: String }
type OrderEvent { id: ID!  userId: ID!  status: String!  total: Float }
type PublishResult { success: Boolean! }
type Subscription {
  orderUpdated(userId: ID!): OrderEvent! @listen(source: "bus", subject: "orders", filter: { userId: "{{ args.userId }}" })
}
type Mutation {
  updateOrder(id: ID!, userId: ID!, status: String!, total: Float): PublishResult! @publish(source: "bus", subject: "orders")
}
`

// startSourceGateway serves ordersSDL from an in-process NATS server, in
// dev mode (the dashboard mints tokens), and returns the gateway's URL and
// the server's.
func startSourceGateway(t *testing.T) (gatewayURL, natsURL string) {
	t.Helper()
	needBrowser(t)
	srv := sourcetest.NATSServer(t, 0)
	dir := t.TempDir()
	for name, text := range map[string]string{
		"events.graphql": ordersSDL,
		"operations/orders/MyOrders.graphql": "# Each user's orders: the user is the token's subject.\n" +
			"subscription MyOrders($userId: ID! @fromClaim(name: SUB)) {\n  orderUpdated(userId: $userId) { id status total }\n}\n",
		"operations/orders/UpdateOrder.graphql": "# Publishes an order change.\n" +
			"mutation UpdateOrder($id: ID!, $userId: ID!, $status: String!, $total: Float) {\n  updateOrder(id: $id, userId: $userId, status: $status, total: $total) { success }\n}\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{"operationsDir": %q, "dev": true,
		"auth": {"jwt": {"secret": %q}, "cookie": "fb_token"},
		"sources": {"bus": {"nats": {"url": %q}}}, "events": {"schemaFile": %q}}`,
		filepath.Join(dir, "operations"), e2eSecret, srv.ClientURL(), filepath.Join(dir, "events.graphql"))),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(g)
	t.Cleanup(func() {
		g.BeginShutdown()
		hs.Close()
		_ = g.Close()
		http.DefaultClient.CloseIdleConnections()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	waitHTTP(t, hs.URL+"/ready", http.StatusOK)
	return hs.URL, srv.ClientURL()
}

// An event-source operation is listed in the dashboard like any other and
// runs there: a signed-in user's MyOrders stream shows the events
// published from outside for that user only, and the @publish mutation
// run from the page reaches it.
func TestEventSourceInDashboard(t *testing.T) {
	t.Parallel()
	base, natsURL := startSourceGateway(t)
	nc := sourcetest.NATSClient(t, natsURL)
	b := openTab(t, base, desktopW, desktopH, false)

	if got, want := eval[[]listItem](b, listItemsJS), []listItem{
		{Name: "orders/MyOrders", Kind: "subscription", Folder: "orders", Lock: true, Roles: []string{}},
		{Name: "orders/UpdateOrder", Kind: "mutation", Folder: "orders", Roles: []string{}},
	}; !reflect.DeepEqual(got, want) {
		b.fatalf("operations list:\n got %+v\nwant %+v", got, want)
	}

	b.mint("alice", "")
	const op = "orders/MyOrders"
	b.open(op)
	b.wait("no variables: the user is the token's", `!!document.querySelector(`+q(panelSel(op)+` [data-testid=no-variables]`)+`)`)
	b.click(panelSel(op) + ` ` + testid("subscribe"))
	st := streamSel(op)
	b.wait("the stream to open", `document.querySelector(`+q(st)+`)?.dataset.state === 'open'`)
	// Open means the headers came: the gateway listens on the subject.
	waitFor(t, "the gateway's stream", func() bool {
		return strings.Contains(metrics(t, base), `fireboom_open_streams{mode="sse",operation="orders/MyOrders"} 1`)
	})
	for _, p := range []string{
		`{"id":6,"userId":"bob","status":"paid","total":1}`,
		`{"id":7,"userId":"alice","status":"paid","total":12.5}`,
	} {
		if err := nc.Publish("orders", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	b.wait("the event in the stream", `document.querySelectorAll(`+q(st+` [data-testid=event]`)+`).length === 1`)

	const up = "orders/UpdateOrder"
	b.open(up)
	b.fill(up, "id", "7")
	b.fill(up, "userId", "alice")
	b.fill(up, "status", "shipped")
	b.run(up, "200 OK")
	if body := b.text(panelSel(up) + ` ` + testid("result-body")); !strings.Contains(body, `"success": true`) {
		b.fatalf("UpdateOrder answered %s", body)
	}
	b.wait("the published event in the stream", `document.querySelectorAll(`+q(st+` [data-testid=event]`)+`).length === 2`)
	events := eval[[]string](b, `[...document.querySelectorAll(`+q(st+` [data-testid=event] .json`)+`)].map((e) => e.textContent)`)
	if want := []string{
		`{"data":{"orderUpdated":{"id":"7","status":"paid","total":12.5}}}`,
		`{"data":{"orderUpdated":{"id":"7","status":"shipped","total":null}}}`,
	}; !reflect.DeepEqual(events, want) {
		b.fatalf("events %q, want %q", events, want)
	}
	if c := b.text(st + ` ` + testid("event-count")); c != "2" {
		b.fatalf("event-count %q", c)
	}
	b.click(st + ` ` + testid("stop"))
	b.wait("the stopped state", `document.querySelector(`+q(st)+`).dataset.state === 'stopped'`)
	waitFor(t, "the gateway's stream to end", func() bool {
		return strings.Contains(metrics(t, base), `fireboom_open_streams{mode="sse",operation="orders/MyOrders"} 0`)
	})
}
