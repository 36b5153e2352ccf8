package operation

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

// contractEvents is the events.graphql of CONTRACT §10.
const contractEvents = `type OrderEvent { id: ID!  userId: ID!  status: String!  total: Float }
type Reading { deviceId: ID!  celsius: Float!  at: String! }
type PublishResult { success: Boolean! }
input ReadingInput { celsius: Float!  at: String! }

extend type Subscription {
  orderUpdated(userId: ID!): OrderEvent!  @listen(source: "pg", channel: "orders", filter: { userId: "{{ args.userId }}" })
  reading(deviceId: ID!): Reading!        @listen(source: "bus", subject: "sensors.{{ args.deviceId }}")
  alert: String!                           @listen(source: "cache", channel: "alerts")
}
extend type Mutation {
  reportReading(deviceId: ID!, input: ReadingInput!): PublishResult!
    @publish(source: "bus", subject: "sensors.{{ args.deviceId }}", payload: "{{ args.input }}")
}
`

var contractKinds = map[string]string{"pg": KindPostgres, "bus": KindNATS, "cache": KindRedis}

func upstreamSource(t testing.TB) *ast.Source {
	t.Helper()
	sdl, err := os.ReadFile(filepath.Join("testdata", "schema.graphql"))
	if err != nil {
		t.Fatal(err)
	}
	return &ast.Source{Name: "schema.graphql", Input: string(sdl)}
}

// eventsSchema builds the upstream test schema (or none) extended by sdl.
func eventsSchema(t testing.TB, base *ast.Source, sdl string) *ast.Schema {
	t.Helper()
	s, probs, err := BuildSchema(base, &EventsSchema{File: "events.graphql", SDL: []byte(sdl), Sources: contractKinds})
	if err != nil || len(probs) > 0 {
		t.Fatalf("BuildSchema: %v %v", err, probs)
	}
	return s
}

func compileOn(t testing.TB, s *ast.Schema, src string) *Operation {
	t.Helper()
	op, probs := Compile("orders/MyOrders", "MyOrders.graphql", []byte(src), s)
	if len(probs) > 0 {
		t.Fatalf("compile: %v", probs)
	}
	return op
}

func TestContractEventsSchema(t *testing.T) {
	s := eventsSchema(t, upstreamSource(t), contractEvents)
	op := compileOn(t, s, `subscription MyOrders($userId: ID! @fromClaim(name: SUB)) {
  orderUpdated(userId: $userId) { id status total }
}`)
	e := op.Event
	if e == nil || e.Publish || e.Source != "pg" || e.Field != "orderUpdated" || e.Key != "orderUpdated" || e.Subject || e.Target != "orders" {
		t.Fatalf("event %+v", e)
	}
	if !op.RequiresAuth || len(op.Claims) != 1 {
		t.Errorf("claims %+v", op.Claims)
	}
	r, err := e.Resolve(json.RawMessage(`{"userId":"u1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != "pg" || r.Channel != "orders" || len(r.Filter) != 1 || r.Filter[0] != (Condition{Path: "userId", Value: "u1"}) {
		t.Errorf("resolved %+v", r)
	}
	for _, tc := range []struct{ payload, want string }{
		{`{"id":7,"userId":"u1","status":"paid","total":12.5,"extra":1}`, `{"data":{"orderUpdated":{"id":"7","status":"paid","total":12.5}}}`},
		{`{"id":"8","userId":"u1","status":"new"}`, `{"data":{"orderUpdated":{"id":"8","status":"new","total":null}}}`},
		{`{"id":9,"userId":"u2","status":"paid"}`, ``},
	} {
		v, err := DecodePayload([]byte(tc.payload))
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Apply(v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %s %v, want %s", tc.payload, got, err, tc.want)
		}
	}
	v, _ := DecodePayload([]byte(`{"id":1,"userId":"u1","total":1}`))
	if _, err := r.Apply(v); !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), "orderUpdated.status: missing or null, but the type is String!") {
		t.Errorf("missing status: %v", err)
	}
}

func TestPublishResolve(t *testing.T) {
	s := eventsSchema(t, upstreamSource(t), contractEvents)
	op := compileOn(t, s, `mutation Report($id: ID!, $in: ReadingInput!) {
  ok: reportReading(deviceId: $id, input: $in) { success __typename }
}`)
	e := op.Event
	if e == nil || !e.Publish || e.Source != "bus" || !e.Subject || e.Key != "ok" {
		t.Fatalf("event %+v", e)
	}
	r, err := e.Resolve(json.RawMessage(`{"id":"d1","in":{"at":"2024-01-01T00:00:00Z","celsius":21.5}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Channel != "sensors.d1" {
		t.Errorf("subject %q", r.Channel)
	}
	if string(r.Payload) != `{"at":"2024-01-01T00:00:00Z","celsius":21.5}` {
		t.Errorf("payload %s", r.Payload)
	}
	if string(r.Result) != `{"data":{"ok":{"success":true,"__typename":"PublishResult"}}}` {
		t.Errorf("result %s", r.Result)
	}
	// A client may not widen the subject.
	for _, id := range []string{">", "*", "a.b", "", "a b"} {
		b, _ := json.Marshal(map[string]any{"id": id, "in": map[string]any{"at": "x", "celsius": 1}})
		_, err := e.Resolve(b)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Errors[0].PropertyPath != "/id" {
			t.Errorf("id %q: %v", id, err)
		}
	}
}

func TestPublishDefaultPayload(t *testing.T) {
	s := eventsSchema(t, nil, `type Query { version: String }
type Mutation {
  say(room: String!, text: String, n: Int = 3, tags: [String!]): Boolean @publish(source: "cache", channel: "room.{{ args.room }}")
}`)
	op := compileOn(t, s, `mutation ($t: String) { say(room: "a", text: $t, tags: ["x", "<y>"]) }`)
	r, err := op.Event.Resolve(json.RawMessage(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	// text: a variable not given is an absent argument; n: its default.
	if string(r.Payload) != `{"n":3,"room":"a","tags":["x","<y>"]}` || r.Channel != "room.a" {
		t.Errorf("payload %s channel %q", r.Payload, r.Channel)
	}
	if string(r.Result) != `{"data":{"say":true}}` {
		t.Errorf("result %s", r.Result)
	}
	r, _ = op.Event.Resolve(json.RawMessage(`{"t":null}`))
	if string(r.Payload) != `{"n":3,"room":"a","tags":["x","<y>"],"text":null}` {
		t.Errorf("payload with null %s", r.Payload)
	}
}

func TestEventsAloneServeOnlyEventFields(t *testing.T) {
	s := eventsSchema(t, nil, `type Query { version: String }
type Subscription { alert: String! @listen(source: "cache", channel: "alerts") }`)
	op := compileOn(t, s, `subscription { alert }`)
	if op.Event == nil || op.Event.Target != "alerts" {
		t.Fatalf("event %+v", op.Event)
	}
	v, _ := DecodePayload([]byte(`"fire"`))
	r, _ := op.Event.Resolve(nil)
	if got, err := r.Apply(v); string(got) != `{"data":{"alert":"fire"}}` || err != nil {
		t.Errorf("apply %s %v", got, err)
	}
	_, probs := Compile("q", "q.graphql", []byte(`{ version }`), s)
	if len(probs) != 1 || probs[0].String() != "q.graphql:1:1: no upstream is configured: only @listen subscriptions and @publish mutations of the events schema can be served" {
		t.Errorf("query without upstream: %v", probs)
	}
}

func TestEventsSchemaProblems(t *testing.T) {
	const head = "type E { id: ID! user: U tags: [String] }\ntype U { id: ID! }\ntype R { success: Boolean! }\n"
	for _, tc := range []struct{ sdl, want string }{
		{`extend type Subscription { e: E @listen(source: "nope", channel: "x") }`,
			`events.graphql:4:50: Subscription.e: @listen: unknown source "nope" (fireboom.json sources: bus, cache, pg)`},
		{`extend type Subscription { e(id: ID): E @listen(source: "pg", channel: "x.{{ args.idd }}") }`,
			`events.graphql:4:73: Subscription.e: @listen: {{ args.idd }} names no argument of e (id)`},
		{`extend type Subscription { e: E @listen(source: "pg", channel: "x", filter: { userId: "1" }) }`,
			`events.graphql:4:79: Subscription.e: @listen: filter: type E has no field userId`},
		{`extend type Subscription { e: E @listen(source: "pg", channel: "x", filter: { user: { name: "1" } }) }`,
			`events.graphql:4:87: Subscription.e: @listen: filter: type U has no field name`},
		{`extend type Subscription { e: E @listen(source: "pg", channel: "x", filter: { tags: "1" }) }`,
			`Subscription.e: @listen: filter: tags is [String]; a filter compares scalar or enum fields`},
		{`extend type Subscription { e: String @listen(source: "pg", channel: "x", filter: { a: "1" }) }`,
			`@listen: filter: String is not an object type`},
		{`extend type Query { e: E @listen(source: "pg", channel: "x") }`,
			`events.graphql:4:27: Query.e: @listen is only allowed on fields of the subscription type (Subscription)`},
		{`extend type Subscription { e: R @publish(source: "pg", channel: "x") }`,
			`Subscription.e: @publish is only allowed on fields of the mutation type (Mutation)`},
		{`extend type Subscription { e: E @listen(source: "pg", subject: "x") }`,
			`events.graphql:4:55: Subscription.e: @listen: source "pg" is PostgreSQL: use channel, not subject`},
		{`extend type Subscription { e: E @listen(source: "cache", subject: "x") }`,
			`source "cache" is Redis: use channel, not subject`},
		{`extend type Subscription { e: E @listen(source: "bus", channel: "x") }`,
			`events.graphql:4:56: Subscription.e: @listen: source "bus" is NATS: use subject, not channel`},
		{`extend type Subscription { e: E @listen(source: "bus") }`, `needs channel (PostgreSQL, Redis) or subject (NATS)`},
		{`extend type Subscription { e: E @listen(source: "pg", channel: "{{ args }}") }`, `{{ args }}: a placeholder is {{ args.NAME }}`},
		{`extend type Subscription { e: E @listen(source: "pg", channel: "a{{") }`, `"{{" without "}}"`},
		{`extend type Subscription { e: E }`, `events.graphql:4:28: Subscription.e: a subscription field of the events schema needs @listen`},
		{`extend type Query { e: E }`, `Query.e: the events schema may not add query fields`},
		{`extend type Mutation { e(a: String): R @publish(source: "pg", channel: "x", payload: "{\"a\": \"{{ args.a }}\"}") }`,
			`payload: the payload is not JSON once its placeholders are filled`},
		{`extend type Mutation { e: E @publish(source: "pg", channel: "x") }`, `the result type E has the non-null field id`},
		{`extend type Mutation { e: [R] @publish(source: "pg", channel: "x") }`, `the result type is [R]`},
		{`extend type Subscription { e: E @listen(channel: "x") }`, `events.graphql:4:34: Argument source for directive listen cannot be null.`},
		{`extend type Subscription { e: E @listen(source: "pg", chanel: "x") }`, `Undefined argument chanel for directive listen.`},
		{`extend type Subscription { e: E @listen(source: "pg", channel: "x" }`, `events.graphql:4:`},
	} {
		s, probs, err := BuildSchema(upstreamSource(t), &EventsSchema{File: "events.graphql", SDL: []byte(head + tc.sdl), Sources: contractKinds})
		if err != nil {
			t.Fatal(err)
		}
		if len(probs) == 0 {
			t.Errorf("%s: no problem, want %q", tc.sdl, tc.want)
			continue
		}
		if !strings.Contains(probs[0].String(), tc.want) {
			t.Errorf("%s:\n got %s\nwant %s", tc.sdl, probs[0], tc.want)
		}
		if s == nil || s.Types["E"] != nil {
			t.Errorf("%s: the schema returned is not the upstream's alone", tc.sdl)
		}
	}
}

func TestEventOperationProblems(t *testing.T) {
	s := eventsSchema(t, upstreamSource(t), contractEvents)
	for _, tc := range []struct{ src, want string }{
		{"mutation($id: ID!, $in: ReadingInput!) {\n  reportReading(deviceId: $id, input: $in) { success }\n  postMessage(room: \"a\", content: \"b\") { id }\n}",
			`f.graphql:3:3: the upstream field postMessage and the event field reportReading (source "bus") may not be mixed in one operation`},
		{"subscription {\n  messageCreated(room: \"a\") { id }\n  alert\n}",
			`f.graphql:2:3: the upstream field messageCreated and the event field alert (source "cache") may not be mixed in one operation`},
		{"subscription { a: alert b: alert }", `f.graphql:1:25: an event operation selects its one event field once, got alert and alert`},
		{"mutation($id: ID!, $in: ReadingInput!) { reportReading(deviceId: $id, input: $in) { success nope } }", `Cannot query field "nope"`},
	} {
		op, probs := Compile("x", "f.graphql", []byte(tc.src), s)
		if op != nil || len(probs) == 0 || !strings.Contains(probs[0].String(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.src, probs, tc.want)
		}
	}
}

func TestUpstreamOperationsUnchanged(t *testing.T) {
	s := eventsSchema(t, upstreamSource(t), contractEvents)
	op := compileOn(t, s, `subscription { messageCreated(room: "a") { id } }`)
	if op.Event != nil {
		t.Errorf("upstream subscription has an event: %+v", op.Event)
	}
}

func TestUpstreamWithoutRootsGetsThem(t *testing.T) {
	base := &ast.Source{Name: "up.graphql", Input: "schema { query: Q }\ntype Q { a: String }"}
	s := eventsSchema(t, base, `type Subscription { alert: String! @listen(source: "cache", channel: "alerts") }
extend type Mutation { ping: Boolean @publish(source: "cache", channel: "alerts", payload: "\"ping\"") }`)
	if s.Subscription == nil || s.Subscription.Name != "Subscription" || s.Mutation == nil {
		t.Fatalf("roots %v %v", s.Subscription, s.Mutation)
	}
	op := compileOn(t, s, `mutation { ping }`)
	r, err := op.Event.Resolve(nil)
	if err != nil || string(r.Payload) != `"ping"` || string(r.Result) != `{"data":{"ping":true}}` {
		t.Errorf("%s %s %v", r.Payload, r.Result, err)
	}
}

func TestFilterResolve(t *testing.T) {
	s := eventsSchema(t, nil, `type Query { v: String }
enum Status { NEW PAID }
type U { id: ID! }
type E { id: ID! user: U status: Status n: Int ok: Boolean }
type Subscription {
  e(uid: ID, n: Int): E @listen(source: "pg", channel: "c", filter: { user: { id: "{{ args.uid }}" }, status: PAID, n: "{{ args.n }}", ok: true })
}`)
	op := compileOn(t, s, `subscription($u: ID, $n: Int) { e(uid: $u, n: $n) { id } }`)
	r, err := op.Event.Resolve(json.RawMessage(`{"n":42}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{{Path: "user.id", Null: true}, {Path: "status", Value: "PAID"}, {Path: "n", Value: "42"}, {Path: "ok", Value: "true"}}
	if len(r.Filter) != len(want) {
		t.Fatalf("filter %+v", r.Filter)
	}
	for i := range want {
		if r.Filter[i] != want[i] {
			t.Errorf("filter[%d] = %+v, want %+v", i, r.Filter[i], want[i])
		}
	}
	for _, tc := range []struct {
		payload string
		kept    bool
	}{
		{`{"id":1,"status":"PAID","n":42,"ok":true}`, true},
		{`{"id":1,"user":null,"status":"PAID","n":4.2e1,"ok":true}`, true},
		{`{"id":1,"user":{"id":"x"},"status":"PAID","n":42,"ok":true}`, false},
		{`{"id":1,"status":"PAID","n":"42","ok":true}`, true},
		{`{"id":1,"status":"PAID","n":43,"ok":true}`, false},
		{`{"id":1,"status":"NEW","n":42,"ok":true}`, false},
		{`{"id":1,"status":"PAID","n":42,"ok":"true"}`, true},
		{`{"id":1,"status":"PAID","n":42,"ok":false}`, false},
	} {
		v, _ := DecodePayload([]byte(tc.payload))
		got, err := r.Apply(v)
		if err != nil || (got != nil) != tc.kept {
			t.Errorf("%s: got %s %v, kept want %v", tc.payload, got, err, tc.kept)
		}
	}
}

func TestBuildSchemaWithoutEvents(t *testing.T) {
	s, probs, err := BuildSchema(upstreamSource(t), nil)
	if err != nil || probs != nil || s.Types["Message"] == nil {
		t.Fatalf("%v %v", probs, err)
	}
	if _, _, err := BuildSchema(nil, nil); err == nil {
		t.Error("no schema at all accepted")
	}
	if _, _, err := BuildSchema(&ast.Source{Name: "bad", Input: "type {"}, nil); !errors.Is(err, ErrSchema) {
		t.Errorf("bad base: %v", err)
	}
}
