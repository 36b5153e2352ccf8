package source

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/fireboom/fireboom/operation"
)

// The example examples/postgres-notify works as its README says, up to the
// gateway: its schema.sql's trigger NOTIFYs each changed row, and its
// MyOrders, compiled over its events.graphql, turns alice's rows (only
// hers) into results.
func TestPostgresNotifyExample(t *testing.T) {
	dir := filepath.Join("..", "examples", "postgres-notify")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	url := pgURL(t)
	db := pgConn(t)
	ctx := context.Background()
	// The test database is shared by the package's tests; its orders
	// table is this test's alone.
	if _, err := db.Exec(ctx, string(read("schema.sql"))); err != nil {
		t.Fatalf("schema.sql: %v", err)
	}

	schema, probs, err := operation.BuildSchema(nil, &operation.EventsSchema{
		File: "events.graphql", SDL: read("events.graphql"), Sources: map[string]string{"pg": Postgres},
	})
	if err != nil || len(probs) > 0 {
		t.Fatalf("events.graphql: %v %v", err, probs)
	}
	op, probs := operation.Compile("orders/MyOrders", "MyOrders.graphql", read("operations/orders/MyOrders.graphql"), schema)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	// What the gateway does: the token's subject fills $userId.
	vars, err := op.InjectClaims([]byte(`{}`), func(claim string) (any, bool) { return "alice", claim == operation.ClaimSub })
	if err != nil {
		t.Fatal(err)
	}
	r, err := op.Event.Resolve(vars)
	if err != nil {
		t.Fatal(err)
	}

	s := newSource(t, Postgres, url, Options{})
	sink := newSink()
	open(t, s, r.Channel, r.Apply, sink)
	for _, q := range []string{
		`INSERT INTO orders (user_id, status, total) VALUES ('bob', 'paid', 3)`,
		`INSERT INTO orders (user_id, status, total) VALUES ('alice', 'paid', 12.5)`,
		`UPDATE orders SET status = 'shipped' WHERE user_id = 'alice'`,
		`INSERT INTO orders (user_id) VALUES ('alice')`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	sink.expect(t,
		`next {"data":{"orderUpdated":{"id":"2","status":"paid","total":12.50}}}`,
		`next {"data":{"orderUpdated":{"id":"2","status":"shipped","total":12.50}}}`,
		`next {"data":{"orderUpdated":{"id":"3","status":"new","total":null}}}`)
	sink.none(t)
}
