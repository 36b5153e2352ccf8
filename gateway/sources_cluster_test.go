package gateway

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fireboom/fireboom/cluster"
	"github.com/fireboom/fireboom/cluster/natsd"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/source/sourcetest"
	"github.com/fireboom/fireboom/topic"
)

// clusterEngine joins the cluster of cfg's "cluster" section as the
// command does (cmd/fireboom/cluster.go); the gateway it is handed to
// closes it.
func clusterEngine(t *testing.T, cfg *config.Config, log *slog.Logger) topic.Engine {
	t.Helper()
	e, err := cluster.New(cluster.FromConfig(cfg.Cluster, log))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// anyID is an SSE id line of any form (cluster ids hold a '.').
var anyID = regexp.MustCompile(`(?m)^id: (\S+)$`)

// sseIDs lists the ids of a stream's frames, in order.
func sseIDs(text string) []string {
	var ids []string
	for _, m := range anyID.FindAllStringSubmatch(text, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// An event-source topic has one owner in a cluster like any other topic
// (CONTRACT §10 with §9): two gateways on one JetStream server, clients
// of the same PostgreSQL subscription on both, and one LISTEN for all of
// them; the same ids on both instances, a resume on the other instance,
// and a handoff when the owner shuts down.
func TestEventSourceCluster(t *testing.T) {
	e := pgEvEnv(t)
	ns, err := natsd.Start(natsd.Options{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown) // after the gateways' cleanups, which close their engines
	extra := fmt.Sprintf(`"cluster": {"nats": {"url": %q}, "leaseTTL": "1s"}, `, ns.URL())
	gws := []*testGateway{evGateway(t, e, evOptions{extra: extra}), evGateway(t, e, evOptions{extra: extra})}
	const path = "/operations/orders/UserOrders?userId=u1&wg_sse=true"

	pg, listen := sourcetest.PGConn(t), `LISTEN "`+e.channel+`"`
	// listeners checks the source's connections at the server (one per
	// instance still running) and that exactly one LISTENs on the
	// channel: its last query was that LISTEN, and the others' was not
	// (nothing else runs on them here: no @publish, one channel).
	listeners := func(what string, conns int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			queries, n := pgQueries(t, pg, clientName(e)), 0
			for _, q := range queries {
				if q == listen {
					n++
				}
			}
			if len(queries) == conns && n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the source's connections last ran %q; want %d, one of them %q", what, queries, conns, listen)
			}
		}
	}
	// received checks how many NOTIFYs an instance's source connection
	// got: the server sends them to LISTENing connections only.
	received := func(who string, g *testGateway, want string) {
		t.Helper()
		if got := scrape(t, g.URL)[`fireboom_source_messages_total{source="`+e.name+`"}`]; got != want {
			t.Errorf("%s's source received %s NOTIFYs, want %s", who, got, want)
		}
	}
	owned := func(g *testGateway) int { return g.engine.Status().Owned }
	notify := func(id int) {
		e.publish(t, fmt.Sprintf(`{"id":%d,"userId":"u1","status":"s%d","total":%d.5}`, id, id, id))
	}
	result := func(id int) string {
		return fmt.Sprintf("id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"%d\",\"status\":\"s%d\",\"total\":%d.5}}}\n\n", id, id, id)
	}
	// exact checks frames against want's, whose ids are "*": each must
	// be there, and none repeated.
	exact := func(who, got string, want ...string) {
		t.Helper()
		w, ids := strings.Join(want, ""), sseIDs(got)
		if strings.Count(w, "id: *\n") != len(ids) {
			t.Fatalf("%s: ids %q in %q, want %d", who, ids, got, strings.Count(w, "id: *\n"))
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Errorf("%s: id %s repeated", who, id)
			}
			seen[id] = true
			w = strings.Replace(w, "id: *\n", "id: "+id+"\n", 1)
		}
		if got != w {
			t.Errorf("%s:\n%q\nwant\n%q", who, got, w)
		}
	}

	// The first client makes its instance the topic's owner.
	co := evStream(t, gws[0].URL+path)
	eventually(t, 10*time.Second, "an owner", func() bool { return owned(gws[0])+owned(gws[1]) == 1 })
	o, x := gws[0], gws[1]
	if owned(x) == 1 {
		o, x = x, o
	}
	cx := evStream(t, x.URL+path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	away := bufio.NewReader(resp.Body)
	listeners("one LISTEN for three clients on two instances", 2)
	if o.topics.Stats(kindSource).Clients != 2 || x.topics.Stats(kindSource).Clients != 1 || owned(x) != 0 {
		t.Fatalf("clients %d and %d, owned by the other: %d", o.topics.Stats(kindSource).Clients, x.topics.Stats(kindSource).Clients, owned(x))
	}

	// A NOTIFY from outside reaches every client, exact bytes, the same
	// ids on both instances; another user's is filtered out.
	notify(1)
	e.publish(t, `{"id":2,"userId":"u2","status":"s2"}`)
	notify(3)
	got := frames(t, co, 2)
	exact("the owner's client", got, result(1), result(3))
	if g := frames(t, cx, 2); g != got {
		t.Errorf("the other instance's client:\n%q\nthe owner's:\n%q", g, got)
	}
	if g := frames(t, away, 2); g != got {
		t.Errorf("the owner's second client:\n%q\nthe first:\n%q", g, got)
	}
	received("the owner", o, "3")
	received("the other instance", x, "0")

	// A client leaves the owner and comes back on the other instance with
	// Last-Event-ID: it gets exactly what it missed, then live events.
	last := sseIDs(got)[1]
	cancel()
	resp.Body.Close()
	eventually(t, 10*time.Second, "the client to leave", func() bool { return o.topics.Stats(kindSource).Clients == 1 })
	notify(4)
	notify(5)
	missed := frames(t, co, 2)
	exact("the owner's client", missed, result(4), result(5))
	if g := frames(t, cx, 2); g != missed {
		t.Errorf("the other instance's client:\n%q\nthe owner's:\n%q", g, missed)
	}
	back := evStream(t, x.URL+path, "Last-Event-ID", last)
	notify(6)
	live := frames(t, co, 1)
	exact("the owner's client", live, result(6))
	if g := frames(t, cx, 1); g != live {
		t.Errorf("the other instance's client: %q, the owner's: %q", g, live)
	}
	if g := frames(t, back, 3); g != missed+live {
		t.Errorf("resumed on the other instance:\n%q\nwant\n%q", g, missed+live)
	}
	listeners("still one LISTEN", 2)
	received("the owner", o, "6")
	received("the other instance", x, "0")

	// The owner shuts down (SIGTERM: the engine first, as the command
	// does): its client is told to reconnect, the other instance takes
	// the topic over and LISTENs; its clients get one gap, then the next
	// NOTIFY, with the same ids.
	o.engine.(*cluster.Engine).BeginShutdown()
	o.BeginShutdown()
	if end := readToEnd(t, co); !strings.Contains(end, "retry: 1000\n") || strings.Contains(end, "event: done") {
		t.Errorf("the owner's client at shutdown: %q", end)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the other instance to take over", func() bool { return owned(x) == 1 })
	listeners("one LISTEN, the other instance's", 1)
	notify(7)
	got = frames(t, cx, 2)
	exact("after the handoff", got, "event: gap\ndata: {\"missed\":0,\"reason\":\"handoff\"}\n\n", result(7))
	if g := frames(t, back, 2); g != got {
		t.Errorf("the resumed client after the handoff:\n%q\nthe other:\n%q", g, got)
	}
	received("the new owner", x, "1")
	if n := x.engine.Status().Takeovers["handoff"]; n != 1 {
		t.Errorf("%d handoffs counted, want 1", n)
	}
}

// pgQueries lists the last query of each connection named app at the
// server.
func pgQueries(t *testing.T, conn *pgx.Conn, app string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT query FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var qs []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return qs
}
