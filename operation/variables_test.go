package operation

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// varsOp declares a variable of every kind of input type.
const varsOp = `query Q(
  $room: String!, $code: String, $first: Int, $ratio: Float, $exact: Boolean,
  $ids: [ID!], $sort: Sort = NEWEST, $filter: MessageFilter, $meta: JSON, $at: Time,
  $m: [[Int]], $by: UserBy,
  $user: ID! @fromClaim(name: SUB)
) {
  messages(room: $room, sort: $sort, filter: $filter, first: $first, ratio: $ratio, exact: $exact,
    ids: $ids, code: $code, meta: $meta, at: $at) { id }
  me(id: $user) { id }
  matrix(m: $m)
  user(by: $by) { id }
}`

var reservedParams = map[string]bool{
	"wg_sse": true, "wg_subscribe_once": true, "wg_live": true, "wg_variables": true,
	"wg_json_patch": true, "wg_last_event_id": true, "access_token": true,
}

func isReserved(name string) bool { return reservedParams[name] }

type varCase struct {
	name  string
	in    string   // query string or JSON body
	want  string   // canonical JSON, when no error
	paths []string // PropertyPaths of the errors, when an error is expected
	msg   string   // a substring of one error message
}

func checkVars(t *testing.T, tc varCase, got []byte, err error) {
	t.Helper()
	if tc.paths == nil {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", tc.in, err)
		}
		if string(got) != tc.want {
			t.Fatalf("%s:\n got %s\nwant %s", tc.in, got, tc.want)
		}
		return
	}
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("%s: want *InputError, got %v (%s)", tc.in, err, got)
	}
	var paths []string
	found := tc.msg == ""
	for _, fe := range ie.Errors {
		paths = append(paths, fe.PropertyPath)
		if strings.Contains(fe.Message, tc.msg) {
			found = true
		}
	}
	if !reflect.DeepEqual(paths, tc.paths) {
		t.Errorf("%s: paths %q, want %q (%v)", tc.in, paths, tc.paths, ie.Errors)
	}
	if !found {
		t.Errorf("%s: no message contains %q: %v", tc.in, tc.msg, ie.Errors)
	}
	if ie.Message == "" || ie.Error() != ie.Message {
		t.Errorf("%s: bad Message %q", tc.in, ie.Message)
	}
}

func TestVariablesFromQuery(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, varsOp)
	const base = `"room":"a","sort":"NEWEST"`
	cases := []varCase{
		// String and ID are taken as they are.
		{name: "string keeps leading zeros", in: "room=a&code=007", want: `{"code":"007",` + base + `}`},
		{name: "empty string", in: "room=", want: `{"room":"","sort":"NEWEST"}`},
		{name: "string null is text", in: "room=a&code=null", want: `{"code":"null",` + base + `}`},
		{name: "string utf8", in: "room=%E2%9C%93", want: `{"room":"✓","sort":"NEWEST"}`},
		// Int.
		{name: "int", in: "room=a&first=10", want: `{"first":10,` + base + `}`},
		{name: "int negative min", in: "room=a&first=-2147483648", want: `{"first":-2147483648,` + base + `}`},
		{name: "int leading zeros", in: "room=a&first=007", want: `{"first":7,` + base + `}`},
		{name: "int overflow", in: "room=a&first=2147483648", paths: []string{"/first"}, msg: "must be an Int"},
		{name: "int fraction", in: "room=a&first=1.5", paths: []string{"/first"}},
		{name: "int exponent", in: "room=a&first=1e3", paths: []string{"/first"}},
		{name: "int text", in: "room=a&first=ten", paths: []string{"/first"}},
		{name: "int empty", in: "room=a&first=", paths: []string{"/first"}},
		{name: "int plus", in: "room=a&first=%2B5", paths: []string{"/first"}},
		// Float.
		{name: "float", in: "room=a&ratio=1.5", want: `{"ratio":1.5,` + base + `}`},
		{name: "float int", in: "room=a&ratio=3", want: `{"ratio":3,` + base + `}`},
		{name: "float exp", in: "room=a&ratio=-2.5e-3", want: `{"ratio":-2.5e-3,` + base + `}`},
		{name: "float leading zero normalized", in: "room=a&ratio=007.5", want: `{"ratio":7.5,` + base + `}`},
		{name: "float inf", in: "room=a&ratio=1e999", paths: []string{"/ratio"}},
		{name: "float nan", in: "room=a&ratio=NaN", paths: []string{"/ratio"}},
		{name: "float hex", in: "room=a&ratio=0x10", paths: []string{"/ratio"}},
		// Boolean.
		{name: "bool true", in: "room=a&exact=true", want: `{"exact":true,` + base + `}`},
		{name: "bool false", in: "room=a&exact=false", want: `{"exact":false,` + base + `}`},
		{name: "bool yes", in: "room=a&exact=yes", paths: []string{"/exact"}, msg: "true or false"},
		{name: "bool 1", in: "room=a&exact=1", paths: []string{"/exact"}},
		{name: "bool True", in: "room=a&exact=True", paths: []string{"/exact"}},
		// Enum.
		{name: "enum", in: "room=a&sort=OLDEST", want: `{"room":"a","sort":"OLDEST"}`},
		{name: "enum bad", in: "room=a&sort=oldest", paths: []string{"/sort"}, msg: "NEWEST, OLDEST"},
		// Lists.
		{name: "list repeated", in: "room=a&ids=1&ids=x", want: `{"ids":["1","x"],` + base + `}`},
		{name: "list json", in: "room=a&ids=[1,%22b%22]", want: `{"ids":["1","b"],` + base + `}`},
		{name: "list single", in: "room=a&ids=7", want: `{"ids":["7"],` + base + `}`},
		{name: "list json bad item", in: "room=a&ids=[1.5,true]", paths: []string{"/ids/0", "/ids/1"}},
		{name: "list json null item", in: "room=a&ids=[null]", paths: []string{"/ids/0"}, msg: "must not be null"},
		{name: "list malformed", in: "room=a&ids=[1,", paths: []string{"/ids"}, msg: "malformed JSON"},
		{name: "list null", in: "room=a&ids=null", want: `{"ids":["null"],` + base + `}`},
		{name: "nested list repeated", in: "room=a&m=[1,null]&m=2", want: `{"m":[[1,null],[2]],` + base + `}`},
		{name: "nested list bad", in: "room=a&m=[1,%22x%22]&m=y", paths: []string{"/m/1"}},
		// Input objects.
		{name: "object", in: `room=a&filter={"author":"bob"}`, want: `{"filter":{"author":"bob","limit":20},` + base + `}`},
		{name: "object nested defaults", in: `room=a&filter={"and":[{"tags":"x"}]}`, want: `{"filter":{"and":[{"limit":20,"tags":["x"]}],"limit":20},` + base + `}`},
		{name: "object null", in: "room=a&filter=null", want: `{"filter":null,` + base + `}`},
		{name: "object unknown field", in: `room=a&filter={"nope":1,"author":2}`, paths: []string{"/filter/author", "/filter/nope"}, msg: `unknown field "nope"`},
		{name: "object deep error", in: `room=a&filter={"and":[{"limit":1.5}]}`, paths: []string{"/filter/and/0/limit"}},
		{name: "object malformed", in: `room=a&filter={`, paths: []string{"/filter"}},
		{name: "object not object", in: `room=a&filter=[]`, paths: []string{"/filter"}},
		{name: "oneOf ok", in: `room=a&by={"email":"x@y"}`, want: `{"by":{"email":"x@y"},` + base + `}`},
		{name: "oneOf two", in: `room=a&by={"email":"x@y","id":"1"}`, paths: []string{"/by"}, msg: "exactly one"},
		// Custom scalars.
		{name: "custom text", in: "room=a&at=2024-01-01T00:00:00Z", want: `{"at":"2024-01-01T00:00:00Z",` + base + `}`},
		{name: "custom number is text", in: "room=a&meta=5", want: `{"meta":"5",` + base + `}`},
		{name: "custom json", in: `room=a&meta={"x":[1,2.50]}`, want: `{"meta":{"x":[1,2.50]},` + base + `}`},
		{name: "custom json string", in: `room=a&meta="5"`, want: `{"meta":"5",` + base + `}`},
		{name: "custom json bad", in: `room=a&meta={x}`, paths: []string{"/meta"}},
		{name: "custom json too deep", in: "room=a&meta=" + strings.Repeat("[", 64) + strings.Repeat("]", 64), paths: []string{"/meta"}, msg: "levels deep"},
		{name: "custom json deep enough", in: "room=a&meta=" + strings.Repeat("[", 63) + strings.Repeat("]", 63), want: `{"meta":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `,` + base + `}`},
		{name: "list too deep", in: "room=a&m=" + strings.Repeat("[", 64) + strings.Repeat("]", 64), paths: []string{"/m"}, msg: "levels deep"},
		// Names, required, reserved.
		{name: "missing required", in: "", paths: []string{"/room"}, msg: "required variable $room (String!) is missing"},
		{name: "twice", in: "room=a&room=b", paths: []string{"/room"}, msg: "given 2 times"},
		{name: "unknown", in: "room=a&nope=1", paths: []string{"/nope"}, msg: "accepted: room, code, first, ratio, exact, ids, sort, filter, meta, at, m, by"},
		{name: "claim var", in: "room=a&user=u1", paths: []string{"/user"}, msg: "variable is set from the token"},
		{name: "reserved skipped", in: "room=a&wg_sse=true&access_token=abc&wg_live=true", want: `{` + base + `}`},
		{name: "all errors", in: "first=x&exact=y&nope=1", paths: []string{"/exact", "/first", "/nope", "/room"}},
		// wg_variables.
		{name: "wg_variables", in: `wg_variables={"room":"a","first":5,"sort":"OLDEST"}`, want: `{"first":5,"room":"a","sort":"OLDEST"}`},
		{name: "wg_variables merged", in: `wg_variables={"room":"a"}&first=5`, want: `{"first":5,` + base + `}`},
		{name: "wg_variables conflict", in: `wg_variables={"room":"a"}&room=b`, paths: []string{"/room"}, msg: "given both"},
		{name: "wg_variables typed", in: `wg_variables={"room":"a","first":"5"}`, paths: []string{"/first"}},
		{name: "wg_variables malformed", in: `wg_variables={"room"`, paths: []string{"/"}, msg: "malformed JSON"},
		{name: "wg_variables array", in: `wg_variables=[1]`, paths: []string{"/"}, msg: "JSON object"},
		{name: "wg_variables twice", in: `wg_variables={}&wg_variables={}`, paths: []string{"/"}},
		{name: "wg_variables unknown", in: `wg_variables={"room":"a","x":1}`, paths: []string{"/x"}, msg: "unknown variable"},
		{name: "wg_variables claim", in: `wg_variables={"room":"a","user":"u"}`, paths: []string{"/user"}, msg: "set from the token"},
		{name: "wg_variables explicit null", in: `wg_variables={"room":"a","sort":null}`, want: `{"room":"a","sort":null}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := op.VariablesFromQuery(q, isReserved)
			checkVars(t, tc, got, err)
		})
	}
}

func TestVariablesFromJSON(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, varsOp)
	const base = `"room":"a","sort":"NEWEST"`
	deep := `{"room":"a","meta":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`
	okDeep := `{"room":"a","meta":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`
	cases := []varCase{
		{name: "minimal", in: `{"room":"a"}`, want: `{` + base + `}`},
		{name: "key order canonical", in: `{"sort":"OLDEST","code":"x","room":"a"}`, want: `{"code":"x","room":"a","sort":"OLDEST"}`},
		{name: "empty body", in: ``, paths: []string{"/room"}},
		{name: "blank body", in: " \n", paths: []string{"/room"}},
		{name: "null body", in: `null`, paths: []string{"/"}, msg: "JSON object"},
		{name: "array body", in: `[]`, paths: []string{"/"}},
		{name: "malformed", in: `{"room":`, paths: []string{"/"}, msg: "malformed JSON: unexpected EOF"},
		{name: "cut short in an object", in: `{"room":"a"`, paths: []string{"/"}, msg: "malformed JSON: unexpected EOF"},
		{name: "cut short in an array", in: `{"room":"a","ids":[1,2`, paths: []string{"/"}, msg: "malformed JSON: unexpected EOF"},
		{name: "trailing", in: `{"room":"a"} {}`, paths: []string{"/"}, msg: "after the JSON value"},
		{name: "duplicate key", in: `{"room":"a","room":"b"}`, paths: []string{"/"}, msg: `malformed JSON: duplicate key "room"`},
		{name: "duplicate nested key", in: `{"room":"a","filter":{"limit":1,"and":[{"limit":2,"limit":3}]}}`, paths: []string{"/"}, msg: `duplicate key "limit"`},
		{name: "duplicate key in a custom scalar", in: `{"room":"a","meta":{"k":1,"k":1}}`, paths: []string{"/"}, msg: `duplicate key "k"`},
		{name: "same key in sibling objects", in: `{"room":"a","filter":{"and":[{"limit":2},{"limit":3}]}}`, want: `{"filter":{"and":[{"limit":2},{"limit":3}],"limit":20},` + base + `}`},
		{name: "too deep", in: deep, paths: []string{"/"}, msg: "levels deep"},
		{name: "deep enough", in: okDeep, want: `{"meta":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `,` + base + `}`},
		{name: "string for string only", in: `{"room":7}`, paths: []string{"/room"}, msg: "must be a String"},
		{name: "null for non-null", in: `{"room":null}`, paths: []string{"/room"}, msg: "must not be null"},
		{name: "int", in: `{"room":"a","first":-3}`, want: `{"first":-3,` + base + `}`},
		{name: "int as 1.0", in: `{"room":"a","first":1.0}`, want: `{"first":1,` + base + `}`},
		{name: "int as 1e2", in: `{"room":"a","first":1e2}`, want: `{"first":100,` + base + `}`},
		{name: "int fraction", in: `{"room":"a","first":1.5}`, paths: []string{"/first"}},
		{name: "int overflow", in: `{"room":"a","first":3000000000}`, paths: []string{"/first"}},
		{name: "int string", in: `{"room":"a","first":"1"}`, paths: []string{"/first"}},
		{name: "float from int", in: `{"room":"a","ratio":3}`, want: `{"ratio":3,` + base + `}`},
		{name: "float exact text", in: `{"room":"a","ratio":0.1000000000000000055511151231257827}`, want: `{"ratio":0.1000000000000000055511151231257827,` + base + `}`},
		{name: "float huge", in: `{"room":"a","ratio":1e400}`, paths: []string{"/ratio"}},
		{name: "float string", in: `{"room":"a","ratio":"1.5"}`, paths: []string{"/ratio"}},
		{name: "bool", in: `{"room":"a","exact":"true"}`, paths: []string{"/exact"}},
		{name: "id int to string", in: `{"room":"a","ids":[1,"x",12345678901234567890]}`, want: `{"ids":["1","x","12345678901234567890"],` + base + `}`},
		{name: "id single", in: `{"room":"a","ids":5}`, want: `{"ids":["5"],` + base + `}`},
		{name: "id float", in: `{"room":"a","ids":[1.5]}`, paths: []string{"/ids/0"}},
		{name: "id bool", in: `{"room":"a","ids":[true, null]}`, paths: []string{"/ids/0", "/ids/1"}},
		{name: "enum", in: `{"room":"a","sort":"LEGACY"}`, want: `{"room":"a","sort":"LEGACY"}`},
		{name: "enum bad", in: `{"room":"a","sort":1}`, paths: []string{"/sort"}},
		{name: "object", in: `{"room":"a","filter":{"limit":5,"and":[{}]}}`, want: `{"filter":{"and":[{"limit":20}],"limit":5},` + base + `}`},
		{name: "object explicit null field", in: `{"room":"a","filter":{"limit":null}}`, want: `{"filter":{"limit":null},` + base + `}`},
		{name: "object unknown", in: `{"room":"a","filter":{"x~/y":1}}`, paths: []string{"/filter/x~0~1y"}},
		{name: "object wrong", in: `{"room":"a","filter":"x"}`, paths: []string{"/filter"}},
		{name: "custom passthrough", in: `{"room":"a","meta":{"b":[true,null,12345678901234567890123]}}`, want: `{"meta":{"b":[true,null,12345678901234567890123]},` + base + `}`},
		{name: "unknown", in: `{"room":"a","nope":1}`, paths: []string{"/nope"}, msg: "accepted: room"},
		{name: "claim", in: `{"room":"a","user":"u"}`, paths: []string{"/user"}, msg: "set from the token"},
		{name: "many errors", in: `{"first":"x","ratio":"y","exact":1}`, paths: []string{"/exact", "/first", "/ratio", "/room"}},
		{name: "html not escaped", in: `{"room":"<a&b>"}`, want: `{"room":"<a&b>","sort":"NEWEST"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := op.VariablesFromJSON([]byte(tc.in))
			checkVars(t, tc, got, err)
		})
	}
}

func TestVariablesNoVariables(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, `query { me { id } }`)
	got, err := op.VariablesFromQuery(url.Values{}, nil)
	if err != nil || string(got) != `{}` {
		t.Fatalf("got %s %v", got, err)
	}
	_, err = op.VariablesFromQuery(url.Values{"x": {"1"}}, nil)
	var ie *InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Errors[0].Message, "takes no variables") {
		t.Fatalf("got %v", err)
	}
}

func TestInvalidValueTruncated(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, varsOp)
	long := strings.Repeat("é", 500)
	_, err := op.VariablesFromQuery(url.Values{"room": {"a"}, "first": {long}}, nil)
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatal(err)
	}
	s, ok := ie.Errors[0].InvalidValue.(string)
	if !ok || len(s) > maxShownBytes+len("…") || !strings.HasSuffix(s, "…") {
		t.Fatalf("InvalidValue = %q", ie.Errors[0].InvalidValue)
	}
	_, err = op.VariablesFromJSON([]byte(`{"room":"a","filter":{"limit":"` + strings.Repeat("x", 1000) + `"}}`))
	if !errors.As(err, &ie) {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ie.Errors)
	if len(b) > 400 {
		t.Fatalf("errors too large: %s", b)
	}
	// The number of errors is bounded too.
	_, err = op.VariablesFromJSON([]byte(`{"room":"a","ids":[` + strings.Repeat("true,", 1000) + `true]}`))
	if !errors.As(err, &ie) || len(ie.Errors) != maxErrors {
		t.Fatalf("got %d errors", len(ie.Errors))
	}
}

func TestInjectClaims(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, `query M(
  $sub: ID! @fromClaim(name: SUB), $roles: [String!]! @fromClaim(name: ROLES),
  $email: String @fromClaim(name: EMAIL), $level: Int @fromClaim(name: "org.level")
) {
  me(id: $sub) { id }
  hasRoles(roles: $roles)
  a: messages(room: "r", code: $email, first: $level) { id }
}`)
	claims := func(m map[string]any) func(string) (any, bool) {
		return func(c string) (any, bool) { v, ok := m[c]; return v, ok }
	}
	got, err := op.InjectClaims(json.RawMessage(`{}`), claims(map[string]any{
		"sub": "u1", "roles": []string{"admin", "b"}, "email": "x@y", "org.level": float64(3),
	}))
	if err != nil || string(got) != `{"email":"x@y","level":3,"roles":["admin","b"],"sub":"u1"}` {
		t.Fatalf("got %s %v", got, err)
	}
	// Single role, numeric subject, nullable claims absent.
	got, err = op.InjectClaims(nil, claims(map[string]any{"sub": 42, "roles": "admin"}))
	if err != nil || string(got) != `{"roles":["admin"],"sub":"42"}` {
		t.Fatalf("got %s %v", got, err)
	}
	// Missing non-null claim.
	_, err = op.InjectClaims(nil, claims(map[string]any{"roles": []any{"a"}}))
	if !errors.Is(err, ErrClaimMissing) || errors.Is(err, ErrClaimInvalid) {
		t.Fatalf("missing: %v", err)
	}
	_, err = op.InjectClaims(nil, nil)
	if !errors.Is(err, ErrClaimMissing) {
		t.Fatalf("nil lookup: %v", err)
	}
	// Wrong types: ErrClaimInvalid, which is also ErrClaimMissing.
	for _, m := range []map[string]any{
		{"sub": map[string]any{"a": 1}, "roles": []any{"a"}},
		{"sub": "u", "roles": []any{1}},
		{"sub": "u", "roles": []any{"a"}, "org.level": 1.5},
		{"sub": "u", "roles": []any{"a"}, "email": true},
	} {
		_, err = op.InjectClaims(nil, claims(m))
		if !errors.Is(err, ErrClaimInvalid) || !errors.Is(err, ErrClaimMissing) {
			t.Fatalf("%v: %v", m, err)
		}
		if strings.Contains(err.Error(), "1.5") {
			t.Errorf("claim value echoed: %v", err)
		}
	}
	// The client's variables stay, the claims join them.
	got, err = op.InjectClaims(json.RawMessage(`{"z":1}`), claims(map[string]any{"sub": "u", "roles": []any{"a"}}))
	if err != nil || string(got) != `{"roles":["a"],"sub":"u","z":1}` {
		t.Fatalf("got %s %v", got, err)
	}
	// No claims: vars are returned unchanged.
	plain := mustCompile(t, `query { me { id } }`)
	if got, err := plain.InjectClaims(json.RawMessage(`{}`), nil); err != nil || string(got) != `{}` {
		t.Fatalf("got %s %v", got, err)
	}
}

func TestQueryThenClaims(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, varsOp)
	vars, err := op.VariablesFromQuery(url.Values{"room": {"a"}}, isReserved)
	if err != nil {
		t.Fatal(err)
	}
	got, err := op.InjectClaims(vars, func(c string) (any, bool) { return "u1", c == ClaimSub })
	if err != nil || string(got) != `{"room":"a","sort":"NEWEST","user":"u1"}` {
		t.Fatalf("got %s %v", got, err)
	}
}

func TestFieldErrorJSON(t *testing.T) {
	t.Parallel()
	op := mustCompile(t, varsOp)
	_, err := op.VariablesFromQuery(url.Values{"room": {"a"}, "first": {"x"}, "filter": {`{"and":[{"x":1}]}`}}, nil)
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ie.Errors)
	want := `[{"propertyPath":"/filter/and/0/x","message":"unknown field \"x\" of input type MessageFilter"},` +
		`{"propertyPath":"/first","invalidValue":"x","message":"must be an Int (a whole number from -2147483648 to 2147483647)"}]`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if !strings.HasPrefix(ie.Message, "invalid variables: /filter/and/0/x: unknown field") || !strings.HasSuffix(ie.Message, "(and 1 more)") {
		t.Errorf("Message = %q", ie.Message)
	}
}
