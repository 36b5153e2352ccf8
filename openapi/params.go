package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fireboom/fireboom/operation"
)

// variables is an operation's variables schema, decoded, with its input
// object definitions moved out (to components.schemas) and references
// rewritten to point there.
type variables struct {
	root  map[string]any // {"type":"object","properties":...,"required":...}
	props map[string]any
	defs  map[string]any
}

func decodeVariables(op *operation.Operation) (*variables, error) {
	var root map[string]any
	d := json.NewDecoder(bytes.NewReader(op.VariablesSchema))
	d.UseNumber() // keeps int32 bounds and defaults as written
	if err := d.Decode(&root); err != nil {
		return nil, fmt.Errorf("openapi: %s: variables schema: %w", op.Name, err)
	}
	v := &variables{root: root, defs: map[string]any{}}
	if defs, ok := root["$defs"].(map[string]any); ok {
		for name, def := range defs {
			v.defs[name] = rewriteRefs(def)
		}
		delete(root, "$defs")
	}
	rewriteRefs(root)
	v.props, _ = root["properties"].(map[string]any)
	return v, nil
}

// rewriteRefs turns "#/$defs/X" into "#/components/schemas/X" throughout s,
// in place, and returns s.
func rewriteRefs(s any) any {
	switch x := s.(type) {
	case map[string]any:
		for k, v := range x {
			if r, ok := v.(string); k == "$ref" && ok && strings.HasPrefix(r, "#/$defs/") {
				x[k] = componentRef + strings.TrimPrefix(r, "#/$defs/")
				continue
			}
			rewriteRefs(v)
		}
	case []any:
		for _, v := range x {
			rewriteRefs(v)
		}
	}
	return s
}

// parameters lists the query parameters of a GET operation: one per public
// variable. Scalars and enums are plain values; lists and input objects are
// JSON text, described with a content type as OpenAPI prescribes.
func (v *variables) parameters(op *operation.Operation) []any {
	var out []any
	for _, info := range op.Variables {
		if info.FromClaim != "" {
			continue
		}
		s, _ := v.props[info.Name].(map[string]any)
		if s == nil {
			s = map[string]any{}
		}
		p := map[string]any{"name": info.Name, "in": "query", "required": info.Required}
		if info.Description != "" {
			p["description"] = info.Description
		}
		if info.Type.Elem != nil || isRef(s) {
			p["content"] = map[string]any{"application/json": map[string]any{"schema": s}}
		} else {
			// A query string cannot carry null: leaving the parameter out
			// is how a client sends none.
			p["schema"] = withoutNull(s)
		}
		out = append(out, p)
	}
	return out
}

// isRef reports whether s is (possibly nullable) a reference to an input
// object.
func isRef(s map[string]any) bool {
	if _, ok := s["$ref"]; ok {
		return true
	}
	if alts, ok := s["anyOf"].([]any); ok {
		for _, a := range alts {
			if m, ok := a.(map[string]any); ok && isRef(m) {
				return true
			}
		}
	}
	return false
}

// withoutNull removes null from a scalar schema's type and enum.
func withoutNull(s map[string]any) map[string]any {
	out := make(map[string]any, len(s))
	for k, v := range s {
		out[k] = v
	}
	if types, ok := s["type"].([]any); ok {
		var keep []any
		for _, t := range types {
			if t != "null" {
				keep = append(keep, t)
			}
		}
		if len(keep) == 1 {
			out["type"] = keep[0]
		} else {
			out["type"] = keep
		}
	}
	if enum, ok := s["enum"].([]any); ok {
		var keep []any
		for _, e := range enum {
			if e != nil {
				keep = append(keep, e)
			}
		}
		out["enum"] = keep
	}
	return out
}

// requestBody is a mutation's JSON body: the variables object.
func (v *variables) requestBody() map[string]any {
	req, _ := v.root["required"].([]any)
	return map[string]any{
		"required": len(req) > 0,
		"content":  map[string]any{"application/json": map[string]any{"schema": v.root}},
	}
}
