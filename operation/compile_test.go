package operation

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

var (
	testSchemaOnce sync.Once
	testSchemaVal  *ast.Schema
	testSchemaErr  error
)

// testSchema is the demo-like schema of testdata/schema.graphql.
func testSchema(t testing.TB) *ast.Schema {
	t.Helper()
	testSchemaOnce.Do(func() {
		sdl, err := os.ReadFile(filepath.Join("testdata", "schema.graphql"))
		if err != nil {
			testSchemaErr = err
			return
		}
		testSchemaVal, testSchemaErr = ParseSchemaSDL(string(sdl))
	})
	if testSchemaErr != nil {
		t.Fatal(testSchemaErr)
	}
	return testSchemaVal
}

// mustCompile compiles src as "test/Op" and fails the test on problems.
func mustCompile(t testing.TB, src string) *Operation {
	t.Helper()
	op, probs := Compile("test/Op", "test/Op.graphql", []byte(src), testSchema(t))
	if len(probs) > 0 || op == nil {
		t.Fatalf("compile: %v", probs)
	}
	return op
}

// compileProblems compiles src and returns the problems as strings.
func compileProblems(t *testing.T, name, src string) []string {
	t.Helper()
	op, probs := Compile(name, "f.graphql", []byte(src), testSchema(t))
	if len(probs) == 0 {
		t.Fatalf("compile %q: want problems, got none", src)
	}
	if op != nil {
		t.Fatalf("compile %q: problems and an operation", src)
	}
	out := make([]string, len(probs))
	for i, p := range probs {
		out[i] = p.String()
	}
	return out
}

func TestCompileQuery(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, `# a comment
query Messages($room: String!, $sort: Sort = OLDEST) {
  messages(room: $room, sort: $sort) { ...M content }
}
fragment M on Message { id author }
`)
	if op.Kind != Query || op.OperationName != "Messages" || op.Name != "test/Op" || op.File != "test/Op.graphql" {
		t.Errorf("got %+v", op)
	}
	if op.Internal || op.RequiresAuth || !op.RBAC.IsZero() || len(op.Claims) != 0 {
		t.Errorf("unexpected auth: %+v", op)
	}
	for _, want := range []string{"query Messages", "fragment M on Message", "$sort: Sort = OLDEST"} {
		if !strings.Contains(op.Query, want) {
			t.Errorf("Query lacks %q:\n%s", want, op.Query)
		}
	}
	if strings.Contains(op.Query, "#") {
		t.Errorf("Query keeps comments:\n%s", op.Query)
	}
	if len(op.Variables) != 2 || !op.Variables[0].Required || op.Variables[1].Required ||
		string(op.Variables[1].Default) != `"OLDEST"` || op.Variables[0].Type.String() != "String!" {
		t.Errorf("variables: %+v", op.Variables)
	}
}

func TestQueryTextReparses(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, `query Q($f: MessageFilter = {author: "a\"b\u0007\u00e9", tags: ["x"]}) @requireAuthentication {
  a: messages(room: """block
"quoted" text""", filter: $f) @include(if: true) { id ... on Message { content } }
}`)
	again := mustCompile(t, op.Query)
	if again.Query != op.Query {
		t.Fatalf("Query text not stable:\n%s\n%s", op.Query, again.Query)
	}
	if string(op.Variables[0].Default) != `{"author":"a\"b\u0007é","limit":20,"tags":["x"]}` {
		t.Errorf("default = %s", op.Variables[0].Default)
	}
}

func TestCompileKinds(t *testing.T) {
	t.Parallel()
	m := mustCompile(t, `mutation { postMessage(room: "a", content: "b") { id } }`)
	if m.Kind != Mutation || m.OperationName != "" {
		t.Errorf("mutation: %+v", m)
	}
	s := mustCompile(t, `subscription S($from: Int!) { countdown(from: $from) }`)
	if s.Kind != Subscription {
		t.Errorf("subscription: %+v", s)
	}
}

func TestCompileProblems(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, src string
		opName    string
		want      string // one problem must contain this
	}{
		{"two operations", "query A { me { id } }\nquery B { me { id } }", "", "f.graphql:2:1: file holds 2 operations"},
		{"no operation", "fragment M on Message { id }", "", "f.graphql:1:1: no operation"},
		{"empty file", "", "", "f.graphql:1:1:"},
		{"parse error", "query {\n  messages(room: ) { id }\n}", "", "f.graphql:2:18: Unexpected )"},
		{"unknown field", "query {\n  me {\n    nope\n  }\n}", "", `f.graphql:3:5: Cannot query field "nope" on type "User".`},
		{"unknown directive", "query @foo {\n me { id } }", "", `f.graphql:1:8: Unknown directive "@foo".`},
		{"unused fragment", "query { me { id } }\nfragment M on Message { id }", "", "f.graphql:2:1:"},
		{"missing argument", "query { messages { id } }", "", `argument "room" of type "String!" is required`},
		{"two subscription fields", "subscription { countdown(from: 1) messageCreated(room: \"a\") { id } }", "", "must select only one top level field"},
		{"two subscription aliases", "subscription { countdown(from: 1) countdown2: countdown(from: 2) }", "", "exactly one top level field, got countdown, countdown2"},
		{"fragment subscription aliases", "subscription { countdown(from: 1) ...F }\nfragment F on Subscription { b: countdown(from: 2) }", "", "exactly one top level field"},
		{"no mutation type", "mutation { nope }", "", "Cannot query field"},
		{"internal subscription", "subscription { countdown(from: 1) }", "internal/Count", "f.graphql:1:1: a subscription may not be internal"},
		{"bad name space", "query { me { id } }", "bad name", "only letters, digits"},
		{"bad name dots", "query { me { id } }", "../etc/passwd", "only letters, digits"},
		{"bad name empty segment", "query { me { id } }", "a//b", "empty path segment"},
		{"bad name empty", "query { me { id } }", "-", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := tc.opName
			if name == "" {
				name = "Op"
			}
			if tc.name == "bad name empty" {
				name = ""
			}
			got := compileProblems(t, name, tc.src)
			if !containsAny(got, tc.want) {
				t.Errorf("problems %q lack %q", got, tc.want)
			}
		})
	}
}

func containsAny(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestCompileInternal(t *testing.T) {
	t.Parallel()
	op, probs := Compile("a/internal/Me", "x", []byte(`query { me { id } }`), testSchema(t))
	if len(probs) > 0 || !op.Internal {
		t.Fatalf("got %v %+v", probs, op)
	}
	op, probs = Compile("internal", "x", []byte(`query { me { id } }`), testSchema(t))
	if len(probs) > 0 || op.Internal {
		t.Fatalf("a file named internal is not in an internal folder: %v %+v", probs, op)
	}
	// A mutation may be internal.
	if op, probs = Compile("internal/Post", "x", []byte(`mutation { postMessage(room: "a", content: "b") { id } }`), testSchema(t)); len(probs) > 0 || !op.Internal {
		t.Fatalf("got %v %+v", probs, op)
	}
}

func TestDirectivesStripped(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, `query Me($sub: ID! @fromClaim(name: SUB), $x: Int @fromClaim(name: "org.level")) @requireAuthentication @rbac(requireMatchAll: [admin, "editor"], requireMatchAny: reader, denyMatchAll: ["banned"], denyMatchAny: [blocked, "guest"]) {
  me(id: $sub) { id }
  matrix(m: [[$x]])
}`)
	for _, d := range []string{"@requireAuthentication", "@rbac", "@fromClaim", "admin"} {
		if strings.Contains(op.Query, d) {
			t.Errorf("Query keeps %s:\n%s", d, op.Query)
		}
	}
	if !op.RequiresAuth {
		t.Error("RequiresAuth false")
	}
	want := RBAC{
		RequireMatchAll: []string{"admin", "editor"},
		RequireMatchAny: []string{"reader"},
		DenyMatchAll:    []string{"banned"},
		DenyMatchAny:    []string{"blocked", "guest"},
	}
	if !reflect.DeepEqual(op.RBAC, want) {
		t.Errorf("RBAC = %+v", op.RBAC)
	}
	if len(op.Claims) != 2 || op.Claims[0].Claim != ClaimSub || op.Claims[0].Variable != "sub" ||
		op.Claims[1].Claim != "org.level" || op.Claims[1].Type.String() != "Int" {
		t.Errorf("Claims = %+v", op.Claims)
	}
	var schema map[string]any
	if err := json.Unmarshal(op.VariablesSchema, &schema); err != nil {
		t.Fatal(err)
	}
	if props := schema["properties"].(map[string]any); len(props) != 0 {
		t.Errorf("claim variables in schema: %v", props)
	}
	if op.Variables[0].FromClaim != ClaimSub || op.Variables[1].FromClaim != "org.level" {
		t.Errorf("Variables = %+v", op.Variables)
	}
}

func TestDirectiveImplyAuth(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`query @requireAuthentication { me { id } }`,
		`query @rbac(denyMatchAny: [guest]) { me { id } }`,
		`query ($e: String! @fromClaim(name: EMAIL)) { search(text: $e) { __typename } }`,
	} {
		if op := mustCompile(t, src); !op.RequiresAuth {
			t.Errorf("%s: RequiresAuth false", src)
		}
	}
}

func TestDirectiveProblems(t *testing.T) {
	t.Parallel()
	cases := []struct{ src, want string }{
		{`query @rbac(requireAll: [admin]) { me { id } }`, `f.graphql:1:13: @rbac: unknown argument "requireAll"`},
		{`query @rbac { me { id } }`, "@rbac needs at least one"},
		{`query ($r: String!) @rbac(requireMatchAny: [$r]) { me { id } }`, "@rbac(requireMatchAny): roles are names"},
		{`query @rbac(requireMatchAny: [""]) { me { id } }`, "empty role name"},
		{`query @rbac(requireMatchAny: [a], requireMatchAny: [b]) { me { id } }`, "given more than once"},
		{`query @requireAuthentication @requireAuthentication { me { id } }`, "@requireAuthentication given more than once"},
		{`query @requireAuthentication(x: 1) { me { id } }`, "takes no arguments"},
		{`query ($s: Int @fromClaim(name: SUB)) { matrix(m: [[$s]]) }`, "f.graphql:1:8: $s: @fromClaim(sub): needs a String or ID variable, not Int"},
		{`query ($s: [String] @fromClaim(name: EMAIL)) { me { id } }`, "needs a String or ID variable"},
		{`query ($r: String @fromClaim(name: ROLES)) { search(text: $r) { __typename } }`, "needs a list of String or ID"},
		{`query ($r: [Int] @fromClaim(name: ROLES)) { matrix(m: [$r]) }`, "needs a list of String or ID"},
		{`query ($s: ID = "x" @fromClaim(name: SUB)) { me(id: $s) { id } }`, "may not have a default value"},
		{`query ($s: ID @fromClaim(name: USERID)) { me(id: $s) { id } }`, "unknown claim USERID"},
		{`query ($s: ID @fromClaim(path: "a")) { me(id: $s) { id } }`, `unknown argument "path"`},
		{`query ($s: ID @fromClaim) { me(id: $s) { id } }`, "missing argument name"},
		{`query ($s: ID @fromClaim(name: "a..b")) { me(id: $s) { id } }`, "empty segment"},
		{`query ($s: ID @fromClaim(name: SUB) @fromClaim(name: SUB)) { me(id: $s) { id } }`, "more than once"},
		{`query ($s: ID @fromClaim(name: SUB)) { me { id } }`, `Variable "$s" is never used`},
		{`query ($s: ID @other) { me(id: $s) { id } }`, `Unknown directive "@other"`},
	}
	for _, tc := range cases {
		got := compileProblems(t, "Op", tc.src)
		if !containsAny(got, tc.want) {
			t.Errorf("%s:\n problems %q lack %q", tc.src, got, tc.want)
		}
	}
}

func TestFromClaimTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, variable, claim, typ string }{
		{`query ($s: String! @fromClaim(name: SUB)) { search(text: $s) { __typename } }`, "s", ClaimSub, "String!"},
		{`query ($s: ID @fromClaim(name: NAME)) { me(id: $s) { id } }`, "s", ClaimName, "ID"},
		{`mutation ($r: [String!]! @fromClaim(name: ROLES)) { setRoles(user: "u", roles: $r) { id } }`, "r", ClaimRoles, "[String!]!"},
		{`query ($r: [ID!] @fromClaim(name: ROLES)) { messages(room: "a", ids: $r) { id } }`, "r", ClaimRoles, "[ID!]"},
		{`query ($m: JSON @fromClaim(name: "https://example.com/claims.meta")) { messages(room: "a", meta: $m) { id } }`, "m", "https://example.com/claims.meta", "JSON"},
	} {
		op := mustCompile(t, tc.src)
		if len(op.Claims) != 1 {
			t.Errorf("%s: claims %+v", tc.src, op.Claims)
			continue
		}
		if c := op.Claims[0]; c.Variable != tc.variable || c.Claim != tc.claim || c.Type.String() != tc.typ {
			t.Errorf("%s: claim $%s from %q as %s", tc.src, c.Variable, c.Claim, c.Type)
		}
	}
}

func TestVariablesSchema(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, `query Q(
  $room: String!, $sort: Sort = NEWEST, $filter: MessageFilter, $first: Int, $ratio: Float!,
  $exact: Boolean, $ids: [ID!], $meta: JSON, $by: UserBy!, $m: [[Int]]
) {
  messages(room: $room, sort: $sort, filter: $filter, first: $first, ratio: $ratio, exact: $exact, ids: $ids, meta: $meta) { id }
  user(by: $by) { id }
  matrix(m: $m)
}`)
	var got map[string]any
	if err := json.Unmarshal(op.VariablesSchema, &got); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "type": "object",
  "additionalProperties": false,
  "required": ["room", "ratio", "by"],
  "properties": {
    "room": {"type": "string"},
    "sort": {"type": ["string", "null"], "enum": ["NEWEST", "OLDEST", "LEGACY", null], "title": "Sort", "default": "NEWEST"},
    "filter": {"anyOf": [{"$ref": "#/$defs/MessageFilter"}, {"type": "null"}]},
    "first": {"type": ["integer", "null"], "minimum": -2147483648, "maximum": 2147483647},
    "ratio": {"type": "number"},
    "exact": {"type": ["boolean", "null"]},
    "ids": {"type": ["array", "null"], "items": {"type": "string"}},
    "meta": {},
    "by": {"$ref": "#/$defs/UserBy"},
    "m": {"type": ["array", "null"], "items": {"type": ["array", "null"], "items": {"type": ["integer", "null"], "minimum": -2147483648, "maximum": 2147483647}}}
  },
  "$defs": {
    "MessageFilter": {
      "type": "object", "additionalProperties": false, "description": "Filters messages.",
      "properties": {
        "author": {"type": ["string", "null"], "description": "Only messages by this author."},
        "contains": {"type": ["string", "null"]},
        "limit": {"type": ["integer", "null"], "minimum": -2147483648, "maximum": 2147483647, "default": 20},
        "tags": {"type": ["array", "null"], "items": {"type": "string"}},
        "since": {"description": "An RFC 3339 timestamp."},
        "and": {"type": ["array", "null"], "items": {"$ref": "#/$defs/MessageFilter"}}
      }
    },
    "UserBy": {
      "type": "object", "additionalProperties": false, "description": "Find a user by exactly one key.",
      "minProperties": 1, "maxProperties": 1,
      "properties": {"id": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]}}
    }
  }
}`
	var want map[string]any
	if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("schema:\n got %s", op.VariablesSchema)
	}
	// Properties keep the declared order on the wire (the dashboard's forms
	// follow it), for variables and for input object fields alike.
	if got, want := keyOrder(t, op.VariablesSchema, "properties"), []string{"room", "sort", "filter", "first", "ratio", "exact", "ids", "meta", "by", "m"}; !reflect.DeepEqual(got, want) {
		t.Errorf("variables in order %q, want %q", got, want)
	}
	if got, want := keyOrder(t, op.VariablesSchema, "$defs", "MessageFilter", "properties"), []string{"author", "contains", "limit", "tags", "since", "and"}; !reflect.DeepEqual(got, want) {
		t.Errorf("MessageFilter fields in order %q, want %q", got, want)
	}
}

// keyOrder returns the keys of the JSON object at path in doc, in the
// order they are written.
func keyOrder(t *testing.T, doc []byte, path ...string) []string {
	t.Helper()
	raw := json.RawMessage(doc)
	for _, p := range path {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		raw = m[p]
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%v: not an object: %s", path, raw)
	}
	var keys []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestLoadDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{
		"chat/Messages.graphql":      `query ($room: String!) { messages(room: $room) { id } }`,
		"chat/Post.graphql":          `mutation ($room: String!) { postMessage(room: $room, content: "x") { id } }`,
		"Me.graphql":                 `query { me { id } }`,
		"internal/Lookup.graphql":    `query { me { id } }`,
		"internal/Count.graphql":     `subscription { countdown(from: 3) }`,
		"live/Count.graphql":         `subscription { countdown(from: 3) }`,
		"broken/Parse.graphql":       "query {\n  me {",
		"broken/Two.graphql":         `query A { me { id } } query B { me { id } }`,
		"bad name.graphql":           `query { me { id } }`,
		".hidden/Secret.graphql":     `query { me { id } }`,
		"notes.txt":                  `not an operation`,
		"deep/a/b/c/Deepest.graphql": `{ me { id } }`,
	}
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ops, probs := LoadDir(dir, testSchema(t))
	var names []string
	for _, op := range ops {
		names = append(names, op.Name)
	}
	wantNames := []string{"Me", "chat/Messages", "chat/Post", "deep/a/b/c/Deepest", "internal/Lookup", "live/Count"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("names = %q, want %q", names, wantNames)
	}
	for _, op := range ops {
		if op.Internal != strings.HasPrefix(op.Name, "internal/") {
			t.Errorf("%s: Internal = %v", op.Name, op.Internal)
		}
		if op.File != filepath.Join(dir, filepath.FromSlash(op.Name)+".graphql") {
			t.Errorf("%s: File = %s", op.Name, op.File)
		}
	}
	var got []string
	for _, p := range probs {
		rel, _ := filepath.Rel(dir, p.File)
		got = append(got, filepath.ToSlash(rel)+":"+p.String()[len(p.File)+1:])
	}
	wantProbs := []string{
		"bad name.graphql:1:1: operation name",
		"broken/Parse.graphql:2:7: Expected Name, found <EOF>",
		"broken/Two.graphql:1:23: file holds 2 operations",
		"internal/Count.graphql:1:1: a subscription may not be internal",
	}
	if len(got) != len(wantProbs) {
		t.Fatalf("problems = %q", got)
	}
	for i := range wantProbs {
		if !strings.HasPrefix(got[i], wantProbs[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i], wantProbs[i])
		}
	}

	if _, probs := LoadDir(filepath.Join(dir, "missing"), testSchema(t)); len(probs) != 1 {
		t.Errorf("missing dir: %v", probs)
	}
}

func TestProblemString(t *testing.T) {
	t.Parallel()
	p := Problem{File: "ops/a.graphql", Line: 3, Column: 7, Message: "boom"}
	if p.String() != "ops/a.graphql:3:7: boom" || p.Error() != p.String() {
		t.Errorf("got %q", p.String())
	}
}

func TestCompileNilSchema(t *testing.T) {
	t.Parallel()
	if op, probs := Compile("A", "a.graphql", []byte(`{ me { id } }`), nil); op != nil || len(probs) != 1 {
		t.Errorf("got %v %v", op, probs)
	}
}
