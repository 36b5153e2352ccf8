package main

import "testing"

// `fireboom check` with event sources and no upstream at all: the events
// schema stands alone and every operation over it is checked.
func TestCheckEventsWithoutUpstream(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops",
		"auth": {"jwt": {"secret": "s"}},
		"sources": {"pg": {"postgres": {"url": "postgres://127.0.0.1:1/none"}}, "bus": {"nats": {"url": "nats://127.0.0.1:1"}}},
		"events": {"schemaFile": "events.graphql"}}`)
	writeFile(t, dir, "events.graphql", `type Query { version: String }
type OrderEvent { id: ID! userId: ID! status: String! }
type PublishResult { success: Boolean! }
type Subscription {
  orderUpdated(userId: ID!): OrderEvent! @listen(source: "pg", channel: "orders", filter: { userId: "{{ args.userId }}" })
}
type Mutation {
  ship(id: ID!): PublishResult! @publish(source: "bus", subject: "orders.{{ args.id }}")
}
`)
	writeFile(t, dir, "ops/orders/MyOrders.graphql", "subscription MyOrders($userId: ID! @fromClaim(name: SUB)) {\n  orderUpdated(userId: $userId) { id status }\n}\n")
	writeFile(t, dir, "ops/orders/Ship.graphql", "mutation Ship($id: ID!) { ship(id: $id) { success } }\n")
	version := writeFile(t, dir, "ops/Version.graphql", "query Version { version }\n")
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", cfg}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	want := version + ":1:1: no upstream is configured: only @listen subscriptions and @publish mutations of the events schema can be served\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got := stderr.String(); got != "2 operations ok, 1 problem\n" {
		t.Errorf("stderr %q", got)
	}
}

// `fireboom check` reports the events schema's problems as
// file:line:col: message, and the operations over its bad fields.
func TestCheckEventsSchemaProblems(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "fireboom.json", `{"operationsDir": "ops", "upstream": {"demo": true},
		"sources": {"cache": {"redis": {"url": "redis://127.0.0.1:1"}}},
		"events": {"schemaFile": "events.graphql"}}`)
	events := writeFile(t, dir, "events.graphql", `extend type Subscription {
  alert(level: Int): String! @listen(source: "cahce", channel: "alerts.{{ args.lvl }}")
}
`)
	writeFile(t, dir, "ops/Good.graphql", "query Good { serverTime }\n")
	alerts := writeFile(t, dir, "ops/Alerts.graphql", "subscription Alerts { alert }\n")
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", cfg}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	want := events + `:2:47: Subscription.alert: @listen: unknown source "cahce" (fireboom.json sources: cache)` + "\n" +
		events + `:2:65: Subscription.alert: @listen: {{ args.lvl }} names no argument of alert (level)` + "\n" +
		alerts + `:1:23: Cannot query field "alert" on type "Subscription".` + "\n"
	if got := stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	if got := stderr.String(); got != "1 operation ok, 3 problems\n" {
		t.Errorf("stderr %q", got)
	}
}

// The example examples/postgres-notify checks clean (no upstream, no
// database needed for that).
func TestCheckPostgresNotifyExample(t *testing.T) {
	var stdout, stderr syncBuffer
	if code := run([]string{"check", "-config", "../../examples/postgres-notify/fireboom.json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if stdout.String() != "" || stderr.String() != "1 operation ok\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}
