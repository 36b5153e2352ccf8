package gateway

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/source/sourcetest"
	"github.com/fireboom/fireboom/topic"
)

// ordersTable makes a table whose trigger NOTIFYs each inserted or updated
// row on e's channel as JSON (json_build_object), as an application's
// database would, and returns a function that runs SQL on it from outside.
func ordersTable(t *testing.T, e *evEnv) func(sql string) {
	t.Helper()
	db := sourcetest.PGConn(t)
	table := "orders_" + sourcetest.Random()
	ctx := context.Background()
	run := func(sql string) {
		t.Helper()
		if _, err := db.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run(`CREATE TABLE ` + table + ` (id serial PRIMARY KEY, user_id text NOT NULL, status text NOT NULL DEFAULT 'new', total numeric(10, 2))`)
	run(`CREATE FUNCTION ` + table + `_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('` + e.channel + `', json_build_object('id', NEW.id, 'userId', NEW.user_id, 'status', NEW.status, 'total', NEW.total)::text);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql`)
	run(`CREATE TRIGGER notify AFTER INSERT OR UPDATE ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION ` + table + `_notify()`)
	t.Cleanup(func() {
		_, _ = db.Exec(ctx, "DROP TABLE "+table+"; DROP FUNCTION "+table+"_notify()")
	})
	// The callers' SQL names the table "orders".
	return func(sql string) { t.Helper(); run(strings.Replace(sql, " orders ", " "+table+" ", 1)) }
}

// The central example (CONTRACT §10): MyOrders takes $userId from the
// token's subject and filters on the payload's userId. Alice and Bob
// listen on the same channel; rows changed in PostgreSQL reach each of
// them, and only theirs, in order. A client cannot choose the user; no
// token, no stream.
func TestEventSourcePerUser(t *testing.T) {
	e := pgEvEnv(t)
	g := evGateway(t, e, evOptions{})
	sql := ordersTable(t, e)
	path := g.URL + "/operations/orders/MyOrders"
	alice := evStream(t, path+"?wg_sse=true", "Authorization", "Bearer "+evToken(t, "alice"))
	bob := evStream(t, path+"?wg_sse=true", "Authorization", "Bearer "+evToken(t, "bob"))
	// EventSource cannot send headers: the token rides in access_token.
	aliceJSON := evStream(t, path+"?access_token="+evToken(t, "alice"))
	if st := g.topics.Stats(kindSource); st.Topics != 2 || st.Clients != 3 {
		t.Errorf("topics %d, clients %d; want 2 (one per user) and 3", st.Topics, st.Clients)
	}

	sql(`INSERT INTO orders (user_id, status, total) VALUES ('bob', 'paid', 3)`)
	sql(`INSERT INTO orders (user_id, status, total) VALUES ('alice', 'paid', 12.5)`)
	sql(`INSERT INTO orders (user_id) VALUES ('carol')`)
	sql(`UPDATE orders SET status = 'shipped' WHERE user_id = 'alice'`)
	sql(`UPDATE orders SET status = 'refunded', total = 0 WHERE user_id = 'bob'`)
	sql(`INSERT INTO orders (user_id) VALUES ('alice')`)

	got := frames(t, alice, 3)
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"2\",\"status\":\"paid\",\"total\":12.50}}}\n\n"+
		"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"2\",\"status\":\"shipped\",\"total\":12.50}}}\n\n"+
		"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"4\",\"status\":\"new\",\"total\":null}}}\n\n"); got != want {
		t.Errorf("alice:\n%q\nwant\n%q", got, want)
	}
	if got, want := frames(t, aliceJSON, 3), "{\"data\":{\"orderUpdated\":{\"id\":\"2\",\"status\":\"paid\",\"total\":12.50}}}\n\n"+
		"{\"data\":{\"orderUpdated\":{\"id\":\"2\",\"status\":\"shipped\",\"total\":12.50}}}\n\n"+
		"{\"data\":{\"orderUpdated\":{\"id\":\"4\",\"status\":\"new\",\"total\":null}}}\n\n"; got != want {
		t.Errorf("alice's JSON stream:\n%q\nwant\n%q", got, want)
	}
	// Bob's last row comes after alice's last one: had any of hers or
	// carol's reached him, it would show before it.
	sql(`UPDATE orders SET status = 'closed' WHERE user_id = 'bob'`)
	got = frames(t, bob, 3)
	if want := withIDs(t, got, "id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"1\",\"status\":\"paid\",\"total\":3.00}}}\n\n"+
		"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"1\",\"status\":\"refunded\",\"total\":0.00}}}\n\n"+
		"id: *\ndata: {\"data\":{\"orderUpdated\":{\"id\":\"1\",\"status\":\"closed\",\"total\":0.00}}}\n\n"); got != want {
		t.Errorf("bob:\n%q\nwant\n%q", got, want)
	}

	// The user is the token's: a client that sets it is refused, however
	// it sends it, before any stream starts.
	for _, q := range []string{"userId=bob", "wg_variables=" + url.QueryEscape(`{"userId":"bob"}`)} {
		resp := get(t, path+"?wg_sse=true&"+q, "Authorization", "Bearer "+evToken(t, "alice"))
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"code":"InputValidationError"`) || !strings.Contains(body, `"propertyPath":"/userId"`) {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
	for _, h := range [][]string{nil, {"Authorization", "Bearer " + evToken(t, "alice") + "x"}} {
		resp := get(t, path+"?wg_sse=true", h...)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(body, `"code":"Unauthorized"`) {
			t.Errorf("token %v: %d %s", h, resp.StatusCode, body)
		}
	}
	if st := g.topics.Stats(kindSource); st.Topics != 2 || st.Clients != 3 {
		t.Errorf("refused requests changed the topics: %+v", st)
	}
}

// Identical subscriptions share one topic: a message is filtered and
// shaped once, then fanned out; different users are different topics;
// one connection per source carries them all.
func TestEventSourceDedup(t *testing.T) {
	eachEvEnv(t, func(t *testing.T, e *evEnv) {
		g := evGateway(t, e, evOptions{})
		src := g.sources.Get(e.name)
		path := g.URL + "/operations/orders/MyOrders"
		alice := evToken(t, "alice")
		a1 := evStream(t, path+"?wg_sse=true", "Authorization", "Bearer "+alice)
		a2 := evStream(t, path, "Authorization", "Bearer "+alice)
		b1 := evStream(t, path+"?wg_sse=true", "Authorization", "Bearer "+evToken(t, "bob"))
		if st := g.topics.Stats(kindSource); st.Topics != 2 || st.Clients != 3 {
			t.Fatalf("topics %d, clients %d; want 2 and 3", st.Topics, st.Clients)
		}
		s0, t0 := src.Stats(), g.topics.Stats(kindSource)
		e.publish(t, `{"id":1,"userId":"alice","status":"paid"}`)
		frames(t, a1, 1)
		frames(t, a2, 1)
		e.publish(t, `{"id":2,"userId":"bob","status":"paid"}`)
		frames(t, b1, 1)
		// Two messages; each made one result (its user's topic; the other
		// topic's filter dropped it), written to that topic's clients. A
		// topic counts its pushes once they are done: a client may read
		// an event before.
		if d := src.Stats().Messages - s0.Messages; d != 2 {
			t.Errorf("%d messages, want 2", d)
		}
		var d topic.Stats
		eventually(t, 10*time.Second, "the topics to count 3 pushes", func() bool {
			t1 := g.topics.Stats(kindSource)
			d = topic.Stats{EventsIn: t1.EventsIn - t0.EventsIn, EventsOut: t1.EventsOut - t0.EventsOut}
			return d.EventsOut >= 3
		})
		if d.EventsIn != 2 || d.EventsOut != 3 {
			t.Errorf("%d results, %d pushed to clients; want 2 and 3", d.EventsIn, d.EventsOut)
		}

		// Many more topics and clients: still one connection.
		for _, u := range []string{"carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"} {
			tok := evToken(t, u)
			evStream(t, path+"?wg_sse=true", "Authorization", "Bearer "+tok)
			evStream(t, path, "Authorization", "Bearer "+tok)
		}
		for range 4 {
			evStream(t, path+"?wg_sse=true", "Authorization", "Bearer "+alice)
		}
		if st := g.topics.Stats(kindSource); st.Topics != 10 || st.Clients != 23 {
			t.Errorf("topics %d, clients %d; want 10 and 23", st.Topics, st.Clients)
		}
		if n := e.conns(t); n != 1 {
			t.Errorf("%d connections of the source at the server, want 1", n)
		}
	})
}

// The PostgreSQL source's one connection is its LISTEN connection, as
// pg_stat_activity shows it.
func TestEventSourcePostgresListenConnection(t *testing.T) {
	e := pgEvEnv(t)
	g := evGateway(t, e, evOptions{})
	for _, u := range []string{"u1", "u2", "u3"} {
		evStream(t, g.URL+"/operations/orders/UserOrders?wg_sse=true&userId="+u)
		evStream(t, g.URL+"/operations/orders/UserOrders?userId="+u)
	}
	rows, err := sourcetest.PGConn(t).Query(context.Background(),
		"SELECT query FROM pg_stat_activity WHERE application_name = $1", clientName(e))
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		queries = append(queries, q)
	}
	if rows.Err() != nil || len(queries) != 1 || !strings.HasPrefix(queries[0], "LISTEN ") {
		t.Errorf("connections of %s: %q (%v); want one, whose last query was a LISTEN", clientName(e), queries, rows.Err())
	}
}
