package operation

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// shapeEvents is an events schema with every kind of output type.
const shapeEvents = `type Query { v: String }
enum Status { NEW PAID }
scalar JSON
interface Node { id: ID! }
type Item implements Node { id: ID! qty: Int! price: Float }
type Note implements Node { id: ID! text: String }
union Thing = Item | Note
type Order implements Node {
  id: ID!
  status: Status
  items: [Item!]!
  first: Item
  node: Node
  thing: Thing
  meta: JSON
  tags: [String]
  ok: Boolean
  label: String
}
type Subscription {
  order(flag: Boolean): Order @listen(source: "pg", channel: "orders")
  count: Int! @listen(source: "pg", channel: "counts")
  ids: [ID!] @listen(source: "pg", channel: "ids")
}
`

// shapeOf compiles a subscription over shapeEvents and returns a function
// that applies it to a payload with the given variables.
func shapeOf(t testing.TB, src string) func(payload, vars string) (string, error) {
	t.Helper()
	s := eventsSchema(t, nil, shapeEvents)
	op := compileOn(t, s, src)
	return func(payload, vars string) (string, error) {
		v, err := DecodePayload([]byte(payload))
		if err != nil {
			return "", err
		}
		var vm map[string]any
		if vars != "" {
			if err := json.Unmarshal([]byte(vars), &vm); err != nil {
				t.Fatal(err)
			}
		}
		b, err := op.Event.shape.Apply(v, vm)
		return string(b), err
	}
}

func TestShapeSelection(t *testing.T) {
	apply := shapeOf(t, `subscription($skipItems: Boolean!) {
  o: order {
    __typename
    id
    kind: status
    items @skip(if: $skipItems) { id qty }
    first { ...F price }
    node { id ... on Note { text } ... on Item { qty } }
    thing { __typename ... on Note { text } }
    meta
    tags
    label
    ok @include(if: false)
  }
}
fragment F on Item { id }`)
	payload := `{"id":1,"status":"PAID","items":[{"id":"a","qty":2,"extra":true},{"id":3,"qty":1.0}],
"first":{"id":"f","qty":1,"price":9.99},"node":{"__typename":"Note","id":"n","text":"<hi> \"you\"\u2028"},
"thing":{"__typename":"Item","id":"i","qty":1},"meta":{"b":[1,{"z":null}],"a":"x"},"tags":["x",null],"ok":true,"label":12}`
	got, err := apply(payload, `{"skipItems":false}`)
	want := `{"data":{"o":{"__typename":"Order","id":"1","kind":"PAID","items":[{"id":"a","qty":2},{"id":"3","qty":1}],` +
		`"first":{"id":"f","price":9.99},"node":{"id":"n","text":"<hi> \"you\"\u2028"},"thing":{"__typename":"Item"},` +
		`"meta":{"a":"x","b":[1,{"z":null}]},"tags":["x",null],"label":"12"}}}`
	if err != nil || got != want {
		t.Errorf("got  %s %v\nwant %s", got, err, want)
	}
	got, err = apply(`{"id":"1","items":"not a list"}`, `{"skipItems":true}`)
	want = `{"data":{"o":{"__typename":"Order","id":"1","kind":null,"first":null,"node":null,"thing":null,"meta":null,"tags":null,"label":null}}}`
	if err != nil || got != want {
		t.Errorf("skipped:\n got  %s %v\nwant %s", got, err, want)
	}
}

func TestShapeScalarsAndNull(t *testing.T) {
	count := shapeOf(t, `subscription { count }`)
	ids := shapeOf(t, `subscription { ids }`)
	order := shapeOf(t, `subscription { order { id } }`)
	for _, tc := range []struct {
		apply         func(string, string) (string, error)
		payload, want string
	}{
		{count, `7`, `{"data":{"count":7}}`},
		{count, `7.0`, `{"data":{"count":7}}`},
		{count, `-2147483648`, `{"data":{"count":-2147483648}}`},
		{ids, `[1,"b"]`, `{"data":{"ids":["1","b"]}}`},
		{ids, `null`, `{"data":{"ids":null}}`},
		{order, `null`, `{"data":{"order":null}}`},
	} {
		got, err := tc.apply(tc.payload, "")
		if err != nil || got != tc.want {
			t.Errorf("%s: got %s %v, want %s", tc.payload, got, err, tc.want)
		}
	}
}

func TestShapeRefuses(t *testing.T) {
	count := shapeOf(t, `subscription { count }`)
	ids := shapeOf(t, `subscription { ids }`)
	order := shapeOf(t, `subscription { order { id status items { qty } node { id } ok } }`)
	for _, tc := range []struct {
		apply         func(string, string) (string, error)
		payload, want string
	}{
		{count, `nope`, "not JSON"},
		{count, `1 2`, "not JSON: data after the value"},
		{count, ``, "not JSON"},
		{count, `null`, "count: missing or null, but the type is Int!"},
		{count, `2147483648`, "count: expected Int (32-bit integer)"},
		{count, `1.5`, "count: expected Int (32-bit integer)"},
		{count, `"7"`, "count: expected Int, got a string"},
		{ids, `[null]`, "ids.0: missing or null, but the type is ID!"},
		{ids, `[1.5]`, "ids.0: expected ID (a string or an integer)"},
		{ids, `"1"`, "ids: expected a list ([ID!]), got a string"},
		{order, `[]`, "order: expected an object (Order), got a list"},
		{order, `{"items":[]}`, "order.id: missing or null, but the type is ID!"},
		{order, `{"id":1,"items":[{"qty":"2"}]}`, "order.items.0.qty: expected Int, got a string"},
		{order, `{"id":1,"items":[],"status":"LOST"}`, "order.status: expected a value of enum Status"},
		{order, `{"id":1,"items":[],"node":{"id":1}}`, `order.node: a value of interface Node needs "__typename" naming one of its object types`},
		{order, `{"id":1,"items":[],"node":{"__typename":"Thing","id":1}}`, `order.node: a value of interface Node needs "__typename"`},
		{order, `{"id":1,"items":[],"ok":1}`, "order.ok: expected Boolean, got a number"},
	} {
		got, err := tc.apply(tc.payload, "")
		if !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %s %v, want an error with %q", tc.payload, got, err, tc.want)
		}
		if err != nil && len(tc.payload) > 4 && strings.Contains(err.Error(), tc.payload) {
			t.Errorf("%s: the error quotes the payload: %v", tc.payload, err)
		}
	}
}

// FuzzShape: no payload may panic, and every accepted one gives valid JSON
// that keeps exactly the selected keys.
func FuzzShape(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"status":"PAID","items":[{"id":"a","qty":2}],"meta":{"a":[1,"\u0000"]},"tags":["x",null]}`,
		`{"id":"x","items":[],"label":true,"node":{"__typename":"Item","id":2,"qty":3}}`,
		`{"id":1e2,"items":[{"id":1,"qty":1e0}],"label":"\ud800"}`,
		`null`, `[`, `"s"`,
	} {
		f.Add([]byte(s))
	}
	apply := shapeOf(f, `subscription { order { id status items { id qty } meta tags label node { __typename id } } }`)
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := apply(string(payload), "")
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error does not wrap ErrBadPayload: %v", err)
			}
			return
		}
		var out struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(got), &out); err != nil || len(out.Data) != 1 {
			t.Fatalf("%s: not a result: %v", got, err)
		}
	})
}
