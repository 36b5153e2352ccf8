package openapi

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fireboom/fireboom/operation"
)

// demoSchema is the embedded demo upstream's schema, read from its SDL.
func demoSchema(t *testing.T) *ast.Schema {
	t.Helper()
	sdl, err := os.ReadFile("../upstream/demo/schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	s, err := operation.ParseSchemaSDL(string(sdl))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// repoDocument builds the document of the repository's operations with the
// repository's fireboom.json settings.
func repoDocument(t *testing.T) []byte {
	t.Helper()
	schema := demoSchema(t)
	ops, problems := operation.LoadDir("../operations", schema)
	if len(problems) > 0 {
		t.Fatalf("operations: %v", problems)
	}
	doc, err := Build(ops, schema, Options{
		Cookie: "fb_token", QueryParam: "access_token",
		Live: func(name string) time.Duration {
			if name == "stocks/Price" {
				return 2 * time.Second
			}
			return 0
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// load validates the document with kin-openapi (OpenAPI 3.1, JSON Schema
// 2020-12) and returns it.
func load(t *testing.T, b []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q is not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("validate: %v\n%s", err, b)
	}
	return doc
}

func TestDocumentValidates(t *testing.T) {
	b := repoDocument(t)
	doc := load(t, b)

	var paths []string
	for p := range doc.Paths.Map() {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	want := "/operations/Countdown /operations/Sub /operations/chat/MessageCreated /operations/chat/Messages " +
		"/operations/chat/MyMessages /operations/chat/PostMessage /operations/stocks/Price /operations/stocks/Prices " +
		"/operations/stocks/SetPrice"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("paths\n got %s\nwant %s", got, want)
	}
	if again := repoDocument(t); string(again) != string(b) {
		t.Fatal("two builds of the same operations differ")
	}
}

// params renders an operation's parameters as "name:in:required:type".
func params(op *openapi3.Operation) string {
	var out []string
	for _, p := range op.Parameters {
		v := p.Value
		typ := "content"
		if v.Schema != nil {
			typ = strings.Join(v.Schema.Value.Type.Slice(), "|")
		}
		req := "optional"
		if v.Required {
			req = "required"
		}
		out = append(out, v.Name+":"+v.In+":"+req+":"+typ)
	}
	return strings.Join(out, " ")
}

func statuses(op *openapi3.Operation) string {
	var out []string
	for code := range op.Responses.Map() {
		out = append(out, code)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func mediaTypes(op *openapi3.Operation) string {
	var out []string
	for mt := range op.Responses.Value("200").Value.Content {
		out = append(out, mt)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// checkValue validates a JSON value against a schema of the document.
func checkValue(t *testing.T, doc *openapi3.T, s *openapi3.SchemaRef, value string, valid bool) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(value), &v); err != nil {
		t.Fatal(err)
	}
	err := doc.ValidateSchemaJSON(s.Value, v, openapi3.EnableJSONSchema2020())
	if valid && err != nil {
		t.Errorf("%s: rejected: %v", value, err)
	}
	if !valid && err == nil {
		t.Errorf("%s: accepted, want rejected", value)
	}
}

// One operation of each kind, spot-checked.
func TestSpotChecks(t *testing.T) {
	doc := load(t, repoDocument(t))
	get := func(path string) *openapi3.Operation {
		item := doc.Paths.Find("/operations/" + path)
		if item == nil {
			t.Fatalf("no path for %s", path)
		}
		if item.Get != nil {
			return item.Get
		}
		return item.Post
	}

	t.Run("query", func(t *testing.T) {
		op := get("chat/Messages")
		if op.OperationID != "chat_Messages" || op.Summary != "The messages of a room." || op.Security != nil {
			t.Errorf("id %q summary %q security %v", op.OperationID, op.Summary, op.Security)
		}
		if got, want := params(op), "room:query:required:string sort:query:optional:string filter:query:optional:content limit:query:optional:integer"; got != want {
			t.Errorf("params\n got %s\nwant %s", got, want)
		}
		sort := op.Parameters.GetByInAndName("query", "sort").Schema.Value
		if len(sort.Enum) != 2 || sort.Default != "OLDEST" {
			t.Errorf("sort enum %v default %v", sort.Enum, sort.Default)
		}
		filter := op.Parameters.GetByInAndName("query", "filter").Content["application/json"].Schema.Value
		if filter.AnyOf[0].Ref != "#/components/schemas/MessageFilter" {
			t.Errorf("filter schema %+v", filter)
		}
		if got := statuses(op); got != "200 400 401 404 405 502 default" {
			t.Errorf("statuses %s", got)
		}
		if got := mediaTypes(op); got != "application/json" {
			t.Errorf("media types %s", got)
		}
		res := op.Responses.Value("200").Value.Content["application/json"].Schema
		checkValue(t, doc, res, `{"data":{"messages":[{"id":"1","author":"ann","content":"hi","createdAt":"2025-01-01T00:00:00Z"}]}}`, true)
		checkValue(t, doc, res, `{"data":null,"errors":[{"message":"boom","path":["messages",0]}]}`, true)
		checkValue(t, doc, res, `{"data":{"messages":[{"id":"1","author":"ann","content":"hi"}]}}`, false)            // createdAt missing
		checkValue(t, doc, res, `{"data":{"messages":[{"id":1,"author":"a","content":"c","createdAt":"t"}]}}`, false) // id not a string
		checkValue(t, doc, res, `{"data":{"messages":null}}`, false)                                                  // [Message!]!
	})

	t.Run("claims and auth", func(t *testing.T) {
		op := get("chat/MyMessages")
		if len(op.Parameters) != 0 {
			t.Errorf("the @fromClaim variable is a parameter: %s", params(op))
		}
		var schemes []string
		for _, req := range *op.Security {
			for name := range req {
				schemes = append(schemes, name)
			}
		}
		if got := strings.Join(schemes, " "); got != "bearerAuth cookieAuth queryAuth" {
			t.Errorf("security %s", got)
		}
		ss := doc.Components.SecuritySchemes
		if b := ss["bearerAuth"].Value; b.Type != "http" || b.Scheme != "bearer" {
			t.Errorf("bearer %+v", b)
		}
		if c := ss["cookieAuth"].Value; c.In != "cookie" || c.Name != "fb_token" {
			t.Errorf("cookie %+v", c)
		}
		if q := ss["queryAuth"].Value; q.In != "query" || q.Name != "access_token" {
			t.Errorf("query %+v", q)
		}
	})

	t.Run("mutation", func(t *testing.T) {
		item := doc.Paths.Find("/operations/chat/PostMessage")
		if item.Get != nil || item.Post == nil {
			t.Fatal("a mutation is POST only")
		}
		op := item.Post
		body := op.RequestBody.Value
		s := body.Content["application/json"].Schema.Value
		if !body.Required || strings.Join(s.Required, ",") != "room,content" || len(s.Properties) != 3 {
			t.Errorf("body required %v, schema required %v, properties %d", body.Required, s.Required, len(s.Properties))
		}
		checkValue(t, doc, body.Content["application/json"].Schema, `{"room":"r","content":"c"}`, true)
		checkValue(t, doc, body.Content["application/json"].Schema, `{"room":"r"}`, false)
		checkValue(t, doc, body.Content["application/json"].Schema, `{"room":"r","content":"c","x":1}`, false)
		if got := statuses(op); got != "200 400 401 404 405 413 502 default" {
			t.Errorf("statuses %s", got)
		}
		admin := get("stocks/SetPrice")
		if got := statuses(admin); got != "200 400 401 403 404 405 413 502 default" {
			t.Errorf("rbac statuses %s", got)
		}
		if admin.Extensions["x-fireboom-rbac"] == nil || !strings.Contains(admin.Description, "Roles: any of admin.") {
			t.Errorf("rbac not documented: %q", admin.Description)
		}
	})

	t.Run("subscription", func(t *testing.T) {
		op := get("chat/MessageCreated")
		if got := mediaTypes(op); got != "application/json application/x-ndjson text/event-stream" {
			t.Errorf("media types %s", got)
		}
		if got := statuses(op); got != "200 204 400 401 404 405 429 502 503 default" {
			t.Errorf("statuses %s", got)
		}
		want := "room:query:required:string wg_sse:query:optional:boolean wg_subscribe_once:query:optional:boolean " +
			"wg_last_event_id:query:optional:string Last-Event-ID:header:optional:string"
		if got := params(op); got != want {
			t.Errorf("params\n got %s\nwant %s", got, want)
		}
		res := op.Responses.Value("200").Value.Content["application/x-ndjson"].Schema
		checkValue(t, doc, res, `{"data":{"messageCreated":{"id":"1","author":"a","content":"c","createdAt":"t"}}}`, true)
	})

	t.Run("live query", func(t *testing.T) {
		op := get("stocks/Price")
		if got := mediaTypes(op); got != "application/json application/x-ndjson text/event-stream" {
			t.Errorf("media types %s", got)
		}
		if got := statuses(op); got != "200 400 401 404 405 429 502 503 default" {
			t.Errorf("statuses %s", got)
		}
		want := "symbol:query:required:string wg_live:query:optional:boolean wg_json_patch:query:optional:boolean " +
			"wg_sse:query:optional:boolean wg_subscribe_once:query:optional:boolean " +
			"wg_last_event_id:query:optional:string Last-Event-ID:header:optional:string"
		if got := params(op); got != want {
			t.Errorf("params\n got %s\nwant %s", got, want)
		}
		if op.Extensions["x-fireboom-live-interval"] != "2s" {
			t.Errorf("live interval %v", op.Extensions["x-fireboom-live-interval"])
		}
		lines := op.Responses.Value("200").Value.Content["application/x-ndjson"].Schema
		checkValue(t, doc, lines, `{"data":{"stockPrice":{"symbol":"ACME","price":101.5,"seq":3}}}`, true)
		checkValue(t, doc, lines, `{"data":{"stockPrice":null}}`, true)
		checkValue(t, doc, lines, `[{"op":"replace","path":"/data/stockPrice/price","value":102}]`, true)
		checkValue(t, doc, lines, `{"data":{"stockPrice":{"symbol":"ACME","price":"high","seq":3}}}`, false)
		// Not live: no stream parameters.
		if got := params(get("chat/Messages")); strings.Contains(got, "wg_") {
			t.Errorf("a plain query has stream parameters: %s", got)
		}
	})
}

// The response walk follows aliases, fragments on interfaces and unions,
// @include/@skip and __typename.
func TestResultSchemaFragments(t *testing.T) {
	schema, err := operation.ParseSchemaSDL(`
interface Node { id: ID! }
"A person."
type User implements Node { id: ID! "Display name." name: String friends: [User!] }
type Bot implements Node { id: ID! model: String! }
union Actor = User | Bot
enum Mood { HAPPY SAD }
scalar Time
type Query { node(id: ID!): Node  actors: [Actor!]!  me: User!  mood: Mood  now: Time! }`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := resultSchema(schema, `
query Q($id: ID!, $withName: Boolean!) {
  node(id: $id) { __typename id ... on User { name } ...BotFields }
  actors { ... on User { id } ... on Bot { model } }
  me { alias: name name @include(if: $withName) friends { id } ...UserFields ... on Node { __typename } }
  mood
  now
}
fragment BotFields on Bot { model }
fragment UserFields on User { id }`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(s["properties"].(map[string]any)["data"])
	want := `{"properties":{` +
		`"actors":{"items":{"properties":{"id":{"type":"string"},"model":{"type":"string"}},"type":"object"},"type":"array"},` +
		`"me":{"properties":{"__typename":{"const":"User","type":"string"},"alias":{"description":"Display name.","type":["string","null"]},` +
		`"friends":{"items":{"properties":{"id":{"type":"string"}},"required":["id"],"type":"object"},"type":["array","null"]},` +
		`"id":{"type":"string"},"name":{"description":"Display name.","type":["string","null"]}},` +
		`"required":["alias","friends","id","__typename"],"type":"object"},` +
		`"mood":{"enum":["HAPPY","SAD",null],"type":["string","null"]},` +
		`"node":{"properties":{"__typename":{"enum":["Bot","User"],"type":"string"},"id":{"type":"string"},` +
		`"model":{"type":"string"},"name":{"description":"Display name.","type":["string","null"]}},` +
		`"required":["__typename","id"],"type":["object","null"]},` +
		`"now":{}},` +
		`"required":["node","actors","me","mood","now"],"type":["object","null"]}`
	if string(got) != want {
		t.Errorf("data schema\n got %s\nwant %s", got, want)
	}
}

// The validator is not a rubber stamp: a broken type or reference in the
// same document is refused.
func TestValidatorRefusesMistakes(t *testing.T) {
	b := string(repoDocument(t))
	for name, broken := range map[string]string{
		"bad type":      strings.Replace(b, `"type": "boolean"`, `"type": "bool"`, 1),
		"dangling $ref": strings.Replace(b, `"#/components/schemas/MessageFilter"`, `"#/components/schemas/Nope"`, 1),
		"bad parameter": strings.Replace(b, `"in": "query"`, `"in": "body"`, 1),
	} {
		if broken == b {
			t.Fatalf("%s: nothing replaced", name)
		}
		doc, err := openapi3.NewLoader().LoadFromData([]byte(broken))
		if err == nil {
			err = doc.Validate(t.Context())
		}
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
