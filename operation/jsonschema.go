package operation

import (
	"encoding/json"
	"math"

	"github.com/vektah/gqlparser/v2/ast"
)

// schemaBuilder derives JSON Schema (draft 2020-12) from GraphQL input types.
// Input objects go to $defs and are referenced, so recursive inputs are safe.
type schemaBuilder struct {
	schema *ast.Schema
	defs   map[string]any
}

// variablesSchema describes the public variables as one object schema.
func (op *Operation) variablesSchema() json.RawMessage {
	b := &schemaBuilder{schema: op.schema, defs: map[string]any{}}
	var props properties
	required := []string{}
	for _, v := range op.Variables {
		if v.FromClaim != "" {
			continue
		}
		s := b.forType(v.Type)
		if v.Default != nil {
			s["default"] = v.def
		}
		if v.Description != "" {
			s["description"] = v.Description
		}
		props = append(props, property{v.Name, s})
		if v.Required {
			required = append(required, v.Name)
		}
	}
	root := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		root["required"] = required
	}
	if len(b.defs) > 0 {
		root["$defs"] = b.defs
	}
	out, err := json.Marshal(root)
	if err != nil {
		// Only JSON-domain values are in root; this cannot fail.
		return json.RawMessage(`{"type":"object"}`)
	}
	return out
}

// forType returns a fresh schema map for t (callers may add keys).
func (b *schemaBuilder) forType(t *ast.Type) map[string]any {
	var s map[string]any
	if t.Elem != nil {
		s = map[string]any{"type": "array", "items": b.forType(t.Elem)}
	} else {
		def := b.schema.Types[t.NamedType]
		switch {
		case def == nil:
			return map[string]any{}
		case def.Kind == ast.Enum:
			s = EnumSchema(def)
			s["title"] = def.Name // the dashboard labels the field with it
		case def.Kind == ast.InputObject:
			b.define(def)
			s = map[string]any{"$ref": "#/$defs/" + def.Name}
		default:
			s = ScalarSchema(def)
		}
	}
	if !t.NonNull {
		s = NullableSchema(s)
	}
	return s
}

// ScalarSchema is the JSON Schema of a GraphQL scalar: the built-in ones
// by their GraphQL rules (Int is 32-bit), a custom scalar any JSON value
// (with its description), since only the upstream can judge it. Variables
// and the OpenAPI document's results both use it.
func ScalarSchema(def *ast.Definition) map[string]any {
	switch def.Name {
	case "Int":
		return map[string]any{"type": "integer", "minimum": math.MinInt32, "maximum": math.MaxInt32}
	case "Float":
		return map[string]any{"type": "number"}
	case "String", "ID":
		return map[string]any{"type": "string"}
	case "Boolean":
		return map[string]any{"type": "boolean"}
	}
	// Custom scalar: any JSON value; the upstream judges.
	s := map[string]any{}
	if def.Description != "" {
		s["description"] = def.Description
	}
	return s
}

// EnumSchema is the JSON Schema of a GraphQL enum: a string, one of its
// value names. Variables and the OpenAPI document's results both use it.
func EnumSchema(def *ast.Definition) map[string]any {
	names := make([]any, len(def.EnumValues))
	for i, ev := range def.EnumValues {
		names[i] = ev.Name
	}
	return map[string]any{"type": "string", "enum": names}
}

// NullableSchema widens the JSON Schema s to also accept null, in place
// when s has a single "type" (its enum or const gains null too), else by
// wrapping it in anyOf. A schema that accepts anything is returned as is.
func NullableSchema(s map[string]any) map[string]any {
	if len(s) == 0 || (len(s) == 1 && s["description"] != nil) {
		return s // already accepts anything
	}
	switch typ := s["type"].(type) {
	case string:
		s["type"] = []any{typ, "null"}
		if enum, ok := s["enum"].([]any); ok {
			s["enum"] = append(enum, nil)
		}
		if c, ok := s["const"]; ok {
			delete(s, "const")
			s["enum"] = []any{c, nil}
		}
		return s
	case []any:
		for _, t := range typ {
			if t == "null" {
				return s
			}
		}
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// define adds the $defs entry of an input object once.
func (b *schemaBuilder) define(def *ast.Definition) {
	if _, done := b.defs[def.Name]; done {
		return
	}
	b.defs[def.Name] = nil // placeholder: stops recursion
	var props properties
	required := []string{}
	for _, f := range def.Fields {
		s := b.forType(f.Type)
		if f.DefaultValue != nil {
			if dv, err := astToJSON(f.DefaultValue); err == nil {
				s["default"] = dv
			}
		}
		if f.Description != "" {
			s["description"] = f.Description
		}
		props = append(props, property{f.Name, s})
		if f.Type.NonNull && f.DefaultValue == nil {
			required = append(required, f.Name)
		}
	}
	obj := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		obj["required"] = required
	}
	if def.Description != "" {
		obj["description"] = def.Description
	}
	if def.Directives.ForName("oneOf") != nil {
		obj["minProperties"] = 1
		obj["maxProperties"] = 1
	}
	b.defs[def.Name] = obj
}

// properties is a JSON Schema "properties" object that keeps the declared
// order of GraphQL variables and input fields on the wire (a Go map would
// sort them), so that the dashboard's forms follow the operation's text.
type properties []property

type property struct {
	name   string
	schema map[string]any
}

func (ps properties) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := json.Marshal(p.name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(p.schema)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}
