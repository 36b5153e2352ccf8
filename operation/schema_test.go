package operation

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// introspect answers IntrospectionQuery for s the way a gqlgen server does,
// using gqlgen's own introspection resolvers, and wraps it in {"data":...}.
func introspect(t *testing.T, s *ast.Schema) []byte {
	t.Helper()
	var ref func(ty *introspection.Type) any
	ref = func(ty *introspection.Type) any {
		if ty == nil {
			return nil
		}
		return map[string]any{"kind": ty.Kind(), "name": ty.Name(), "ofType": ref(ty.OfType())}
	}
	inputs := func(ivs []introspection.InputValue) []any {
		out := []any{}
		for _, iv := range ivs {
			out = append(out, map[string]any{
				"name": iv.Name, "description": iv.Description(), "type": ref(iv.Type), "defaultValue": iv.DefaultValue,
			})
		}
		return out
	}
	refs := func(ts []introspection.Type) any {
		if ts == nil {
			return nil
		}
		out := []any{}
		for i := range ts {
			out = append(out, ref(&ts[i]))
		}
		return out
	}
	name := func(ty *introspection.Type) any {
		if ty == nil || ty.Name() == nil {
			return nil
		}
		return map[string]any{"name": ty.Name()}
	}

	is := introspection.WrapSchema(s)
	var types []any
	for _, ty := range is.Types() {
		m := map[string]any{
			"kind": ty.Kind(), "name": ty.Name(), "description": ty.Description(),
			"interfaces": refs(ty.Interfaces()), "possibleTypes": refs(ty.PossibleTypes()),
			"fields": nil, "inputFields": nil, "enumValues": nil,
		}
		if fs := ty.Fields(true); fs != nil {
			var fields []any
			for _, f := range fs {
				fields = append(fields, map[string]any{
					"name": f.Name, "description": f.Description(), "args": inputs(f.Args), "type": ref(f.Type),
					"isDeprecated": f.IsDeprecated(), "deprecationReason": f.DeprecationReason(),
				})
			}
			m["fields"] = fields
		}
		if ifs := ty.InputFields(); ifs != nil {
			m["inputFields"] = inputs(ifs)
		}
		if evs := ty.EnumValues(true); evs != nil {
			var vals []any
			for _, ev := range evs {
				vals = append(vals, map[string]any{
					"name": ev.Name, "description": ev.Description(),
					"isDeprecated": ev.IsDeprecated(), "deprecationReason": ev.DeprecationReason(),
				})
			}
			m["enumValues"] = vals
		}
		types = append(types, m)
	}
	var dirs []any
	for _, d := range is.Directives() {
		dirs = append(dirs, map[string]any{
			"name": d.Name, "description": d.Description(), "locations": d.Locations, "args": inputs(d.Args),
		})
	}
	body, err := json.Marshal(map[string]any{"data": map[string]any{"__schema": map[string]any{
		"queryType": name(is.QueryType()), "mutationType": name(is.MutationType()),
		"subscriptionType": name(is.SubscriptionType()), "types": types, "directives": dirs,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestIntrospectionQueryValidates(t *testing.T) {
	t.Parallel()
	doc, err := parser.ParseQuery(&ast.Source{Input: IntrospectionQuery})
	if err != nil {
		t.Fatal(err)
	}
	if errs := validator.ValidateWithRules(testSchema(t), doc, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	if n := strings.Count(IntrospectionQuery, "ofType"); n < 7 {
		t.Errorf("ofType depth %d", n)
	}
}

func TestSchemaFromIntrospectionRoundTrip(t *testing.T) {
	t.Parallel()
	orig := testSchema(t)
	got, err := SchemaFromIntrospection(introspect(t, orig))
	if err != nil {
		t.Fatal(err)
	}
	if got.Query.Name != "Query" || got.Mutation.Name != "Mutation" || got.Subscription.Name != "Subscription" {
		t.Fatalf("roots: %v %v %v", got.Query, got.Mutation, got.Subscription)
	}
	if a, b := describeSchema(orig), describeSchema(got); a != b {
		t.Errorf("schemas differ:\n--- SDL\n%s\n--- introspection\n%s", a, b)
	}
	// Operations compile the same against both.
	for _, src := range []string{varsOp, `subscription ($s: [String!]) { stockPricesChanged(symbols: $s) { symbol price } }`} {
		a, pa := Compile("A", "a", []byte(src), orig)
		b, pb := Compile("A", "a", []byte(src), got)
		if len(pa)+len(pb) > 0 {
			t.Fatalf("%v %v", pa, pb)
		}
		// @oneOf is not in the introspection answer (isOneOf is too new to ask for).
		sa := strings.Replace(string(a.VariablesSchema), `"maxProperties":1,"minProperties":1,`, "", 1)
		if a.Query != b.Query || sa != string(b.VariablesSchema) {
			t.Errorf("compiled differently:\n%s\n%s", a.VariablesSchema, b.VariablesSchema)
		}
	}
	if _, probs := Compile("A", "a", []byte(`{ messages(room: "a") { content @cached(ttl: 1) } }`), got); len(probs) > 0 {
		t.Errorf("custom directive lost: %v", probs)
	}
}

// describeSchema prints the user-defined part of s in a stable form.
func describeSchema(s *ast.Schema) string {
	var lines []string
	for name, def := range s.Types {
		if def.BuiltIn || strings.HasPrefix(name, "__") {
			continue
		}
		line := string(def.Kind) + " " + name + " " + strings.Join(def.Interfaces, "&") + " " + strings.Join(def.Types, "|") + " " + def.Description + ":"
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			line += " " + f.Name + "("
			for _, a := range f.Arguments {
				line += a.Name + ":" + a.Type.String() + "=" + a.DefaultValue.String() + ","
			}
			line += "):" + f.Type.String() + "=" + f.DefaultValue.String() + "#" + f.Description
			if d := f.Directives.ForName("deprecated"); d != nil {
				line += "@deprecated"
			}
		}
		for _, ev := range def.EnumValues {
			line += " " + ev.Name
			if ev.Directives.ForName("deprecated") != nil {
				line += "@deprecated"
			}
		}
		lines = append(lines, line)
	}
	for name, d := range s.Directives {
		if d.Position != nil && d.Position.Src != nil && d.Position.Src.BuiltIn {
			continue
		}
		lines = append(lines, "directive "+name+" "+strings.Join(func() []string {
			var l []string
			for _, loc := range d.Locations {
				l = append(l, string(loc))
			}
			return l
		}(), "|"))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestSchemaFromIntrospectionErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"errors":        `{"errors":[{"message":"introspection disabled"}],"data":null}`,
		"malformed":     `{"data":`,
		"no schema":     `{"data":{}}`,
		"no query":      `{"data":{"__schema":{"types":[]}}}`,
		"bad name":      `{"data":{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"OBJECT","name":"Query { x: Int } type Evil","fields":[{"name":"a","args":[],"type":{"kind":"SCALAR","name":"Int"}}]}]}}}`,
		"bad default":   `{"data":{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"OBJECT","name":"Query","fields":[{"name":"a","args":[{"name":"x","type":{"kind":"SCALAR","name":"Int"},"defaultValue":"1) b(y: Int"}],"type":{"kind":"SCALAR","name":"Int"}}]}]}}}`,
		"unknown type":  `{"data":{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"OBJECT","name":"Query","fields":[{"name":"a","args":[],"type":{"kind":"OBJECT","name":"Nope"}}]}]}}}`,
		"unknown kind":  `{"data":{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"THING","name":"Query"}]}}}`,
		"cut type ref":  `{"data":{"__schema":{"queryType":{"name":"Query"},"types":[{"kind":"OBJECT","name":"Query","fields":[{"name":"a","args":[],"type":{"kind":"NON_NULL","name":null}}]}]}}}`,
		"no data value": `null`,
	}
	for name, body := range cases {
		if _, err := SchemaFromIntrospection([]byte(body)); !errors.Is(err, ErrIntrospection) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	_, err := SchemaFromIntrospection([]byte(cases["errors"]))
	if err == nil || !strings.Contains(err.Error(), "introspection disabled") {
		t.Errorf("upstream error not reported: %v", err)
	}
}

func TestSchemaFromIntrospectionMinimal(t *testing.T) {
	t.Parallel()
	// A bare {"__schema":...} (a saved file) works, with renamed roots and descriptions that need escaping.
	body := `{"__schema":{"queryType":{"name":"Root"},"mutationType":null,"subscriptionType":null,"types":[
	  {"kind":"OBJECT","name":"Root","description":"say \"hi\"\n\\ \u2028 <b>","fields":[
	    {"name":"hello","description":null,"args":[{"name":"to","description":"who\n\"x\"","type":{"kind":"SCALAR","name":"String"},"defaultValue":"\"world\""}],
	     "type":{"kind":"NON_NULL","name":null,"ofType":{"kind":"SCALAR","name":"String","ofType":null}},"isDeprecated":true,"deprecationReason":"use \"hi\""}],
	   "inputFields":null,"interfaces":[],"enumValues":null,"possibleTypes":null},
	  {"kind":"SCALAR","name":"String","description":"builtin"},
	  {"kind":"OBJECT","name":"__Schema","fields":[]}
	],"directives":[{"name":"include","locations":["FIELD"],"args":[]}]}}`
	s, err := SchemaFromIntrospection([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if s.Query.Name != "Root" || s.Mutation != nil || s.Subscription != nil {
		t.Fatalf("roots %v %v %v", s.Query, s.Mutation, s.Subscription)
	}
	f := s.Query.Fields.ForName("hello")
	if f == nil || f.Type.String() != "String!" || f.Arguments[0].DefaultValue.Raw != "world" ||
		s.Query.Description != "say \"hi\"\n\\ \u2028 <b>" || f.Directives.ForName("deprecated") == nil {
		t.Fatalf("got %+v", f)
	}
}

func TestParseSchemaSDLError(t *testing.T) {
	t.Parallel()
	if _, err := ParseSchemaSDL(`type Query { a: Nope }`); !errors.Is(err, ErrSchema) {
		t.Fatalf("got %v", err)
	}
}
