package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/source"
	"github.com/fireboom/fireboom/source/sourcetest"
)

// The event-source tests run the real gateway over loopback HTTP against
// the real servers: PostgreSQL and Redis on this machine, NATS in-process
// (package sourcetest). Messages are published from outside the gateway,
// by a client of the test's own.

// evEnv is one kind of server behind a gateway source: how to publish
// from outside, and how the server sees the gateway's connection.
type evEnv struct {
	kind string // source.Postgres, source.NATS or source.Redis
	// name is the source's name in the config, unique to the test: its
	// connection introduces itself as fireboom:<name> on a shared server.
	name string
	url  string
	// channel is the channel or subject of the test's orders.
	channel string
	// publish sends payload to channel from outside the gateway.
	publish func(t *testing.T, payload string)
	// kill cuts the gateway's connection from the server's side (NATS:
	// the server goes away and a new one comes up on its port).
	kill func(t *testing.T)
	// conns counts the gateway's connections as the server sees them.
	conns func(t *testing.T) int
	// natsServer is the NATS server now (NATS only).
	natsServer func() *server.Server
}

// evSecret signs the tokens of the event-source tests.
const evSecret = "ev-secret"

func clientName(e *evEnv) string { return "fireboom:" + e.name }

// pgEvEnv publishes with psql's NOTIFY, as a shell script would.
func pgEvEnv(t *testing.T) *evEnv {
	db := sourcetest.PGDatabase(t)
	out := sourcetest.PGConn(t)
	e := &evEnv{kind: source.Postgres, name: "pg_" + sourcetest.Random(), url: sourcetest.PGURL(t), channel: "orders_" + sourcetest.Random()}
	ctx := context.Background()
	e.publish = func(t *testing.T, payload string) {
		t.Helper()
		sourcetest.Psql(t, db, "NOTIFY "+e.channel+", '"+strings.ReplaceAll(payload, "'", "''")+"'")
	}
	e.conns = func(t *testing.T) int {
		t.Helper()
		var n int
		if err := out.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", clientName(e)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	e.kill = func(t *testing.T) {
		t.Helper()
		var n int
		err := out.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", clientName(e)).Scan(&n)
		if err != nil || n != 1 {
			t.Fatalf("terminated %d backends of %s: %v", n, clientName(e), err)
		}
	}
	return e
}

func natsEvEnv(t *testing.T) *evEnv {
	var mu sync.Mutex
	srv := sourcetest.NATSServer(t, 0)
	current := func() *server.Server { mu.Lock(); defer mu.Unlock(); return srv }
	e := &evEnv{kind: source.NATS, name: "bus_" + sourcetest.Random(), url: srv.ClientURL(), channel: "orders." + sourcetest.Random(), natsServer: current}
	e.publish = func(t *testing.T, payload string) {
		t.Helper()
		nc := sourcetest.NATSClient(t, e.url) // one per publish: the server may have been restarted
		defer nc.Close()
		if err := nc.Publish(e.channel, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	e.conns = func(t *testing.T) int {
		t.Helper()
		cz, err := current().Connz(nil)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range cz.Conns {
			if c.Name == clientName(e) {
				n++
			}
		}
		return n
	}
	e.kill = func(t *testing.T) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		port := srv.Addr().(*net.TCPAddr).Port
		srv.Shutdown()
		srv.WaitForShutdown()
		srv = sourcetest.NATSServer(t, port)
	}
	return e
}

func redisEvEnv(t *testing.T) *evEnv {
	out := sourcetest.RedisClient(t)
	ctx := context.Background()
	e := &evEnv{kind: source.Redis, name: "cache_" + sourcetest.Random(), url: sourcetest.RedisURL, channel: "fb:test:" + sourcetest.Random() + ":orders"}
	e.publish = func(t *testing.T, payload string) {
		t.Helper()
		if err := out.Publish(ctx, e.channel, payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// pubsub lists the ids of the gateway's pub/sub connections: the
	// server is shared, so they are found by name, never by type alone.
	pubsub := func(t *testing.T) []string { return sourcetest.RedisPubSub(t, out, clientName(e)) }
	e.conns = func(t *testing.T) int { t.Helper(); return len(pubsub(t)) }
	e.kill = func(t *testing.T) {
		t.Helper()
		ids := pubsub(t)
		if len(ids) != 1 {
			t.Fatalf("pub/sub connections of %s: %v", clientName(e), ids)
		}
		if err := out.Do(ctx, "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// eachEvEnv runs test once per kind of server.
func eachEvEnv(t *testing.T, test func(t *testing.T, e *evEnv)) {
	for _, k := range []struct {
		name string
		env  func(*testing.T) *evEnv
	}{{source.Postgres, pgEvEnv}, {source.NATS, natsEvEnv}, {source.Redis, redisEvEnv}} {
		t.Run(k.name, func(t *testing.T) { test(t, k.env(t)) })
	}
}

// evSchema is the contract's events schema (§10) over e's channel: as the
// only schema (standalone), or extending an upstream's.
func evSchema(e *evEnv, standalone bool) string {
	target := fmt.Sprintf(`channel: %q`, e.channel)
	if e.kind == source.NATS {
		target = fmt.Sprintf(`subject: %q`, e.channel)
	}
	ext, head := "extend ", ""
	if standalone {
		ext, head = "", "type Query { version: String }\n"
	}
	return head + `type OrderEvent { id: ID!  userId: ID!  status: String!  total: Float }
type PublishResult { success: Boolean! }
` + ext + `type Subscription {
  orderUpdated(userId: ID!): OrderEvent! @listen(source: "` + e.name + `", ` + target + `, filter: { userId: "{{ args.userId }}" })
}
` + ext + `type Mutation {
  updateOrder(id: ID!, userId: ID!, status: String!, total: Float): PublishResult! @publish(source: "` + e.name + `", ` + target + `)
}
`
}

// evOps are the stored operations over evSchema.
var evOps = map[string]string{
	// The central example: each user sees only their own orders.
	"orders/MyOrders.graphql": "subscription MyOrders($userId: ID! @fromClaim(name: SUB)) {\n  orderUpdated(userId: $userId) { id status total }\n}\n",
	// The same without a token: the user is a query parameter.
	"orders/UserOrders.graphql":  "subscription UserOrders($userId: ID!) {\n  orderUpdated(userId: $userId) { id status total }\n}\n",
	"orders/UpdateOrder.graphql": "mutation UpdateOrder($id: ID!, $userId: ID!, $status: String!, $total: Float) {\n  updateOrder(id: $id, userId: $userId, status: $status, total: $total) { success }\n}\n",
}

// evOptions shape evGateway's config.
type evOptions struct {
	upstream string            // the upstream's URL: the events schema extends its schema
	ops      map[string]string // more operation files
	extra    string            // more top-level config keys (`"k": v, `)
	sdl      string            // more of the events schema
	unready  bool              // do not wait for /ready (the source is down)
}

// evGateway serves evSchema and evOps from e's source, over loopback.
// Heartbeats are rare, so that streams carry only events.
func evGateway(t *testing.T, e *evEnv, o evOptions) *testGateway {
	t.Helper()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	schema := write("events.graphql", evSchema(e, o.upstream == "")+o.sdl)
	for name, text := range evOps {
		write("operations/"+name, text)
	}
	for name, text := range o.ops {
		write("operations/"+name, text)
	}
	up := ""
	if o.upstream != "" {
		up = fmt.Sprintf(`"upstream": {"url": %q}, `, o.upstream)
	}
	cfg := fmt.Sprintf(`{%s%s"operationsDir": %q, "auth": {"jwt": {"secret": %q}},
		"sources": {%q: {%q: {"url": %q}}}, "events": {"schemaFile": %q},
		"subscriptions": {"heartbeat": "10m"}}`,
		up, o.extra, filepath.Join(dir, "operations"), evSecret, e.name, e.kind, e.url, schema)
	g := newGatewayWith(t, cfg, nil, Options{}, nil, nil)
	if o.upstream == "" && !o.unready {
		eventually(t, 10*time.Second, "the gateway to be ready", func() bool {
			resp := get(t, g.URL+"/ready")
			readAll(t, resp)
			return resp.StatusCode == http.StatusOK
		})
	}
	return g
}

// evToken signs a token for sub with evSecret.
func evToken(t *testing.T, sub string) string {
	t.Helper()
	tok, err := auth.Mint(auth.Config{Secret: evSecret}, sub, nil, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// evStream opens a stream (header pairs as for get) and returns its
// reader once the gateway answered, that is once the source listens. The
// body is closed when the test ends.
func evStream(t *testing.T, url string, header ...string) *bufio.Reader {
	t.Helper()
	resp := get(t, url, header...)
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, readAll(t, resp))
	}
	return bufio.NewReader(resp.Body)
}

// frames reads n frames of a stream (each ends with a blank line) and
// returns their bytes.
func frames(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	var sb strings.Builder
	for range n {
		sb.WriteString(readUntil(t, r, "\n\n", 10*time.Second))
	}
	return sb.String()
}

// evPost sends a mutation's variables (headers as for get) and returns the
// status and body.
func evPost(t *testing.T, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readAll(t, resp)
}
