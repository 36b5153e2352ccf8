package operation

import (
	"encoding/json"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
)

func TestNullableSchema(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`{}`, `{}`},
		{`{"description":"any"}`, `{"description":"any"}`},
		{`{"type":"string"}`, `{"type":["string","null"]}`},
		{`{"type":"string","enum":["A","B"]}`, `{"enum":["A","B",null],"type":["string","null"]}`},
		{`{"type":"string","const":"T"}`, `{"enum":["T",null],"type":["string","null"]}`},
		{`{"type":["string","null"]}`, `{"type":["string","null"]}`},
		{`{"type":["string","integer"]}`, `{"anyOf":[{"type":["string","integer"]},{"type":"null"}]}`},
		{`{"$ref":"#/$defs/X"}`, `{"anyOf":[{"$ref":"#/$defs/X"},{"type":"null"}]}`},
	} {
		var s map[string]any
		if err := json.Unmarshal([]byte(tc.in), &s); err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(NullableSchema(s))
		if string(got) != tc.want {
			t.Errorf("NullableSchema(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestScalarSchema(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		def  ast.Definition
		want string
	}{
		{ast.Definition{Name: "Int"}, `{"maximum":2147483647,"minimum":-2147483648,"type":"integer"}`},
		{ast.Definition{Name: "Float"}, `{"type":"number"}`},
		{ast.Definition{Name: "ID"}, `{"type":"string"}`},
		{ast.Definition{Name: "Boolean"}, `{"type":"boolean"}`},
		{ast.Definition{Name: "JSON", Description: "any value"}, `{"description":"any value"}`},
		{ast.Definition{Name: "Time"}, `{}`},
	} {
		got, _ := json.Marshal(ScalarSchema(&tc.def))
		if string(got) != tc.want {
			t.Errorf("ScalarSchema(%s) = %s, want %s", tc.def.Name, got, tc.want)
		}
	}
}
