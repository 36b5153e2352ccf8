package openapi

import (
	"fmt"
	"sort"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fireboom/fireboom/operation"
)

// resultSchema is the JSON Schema of an operation's GraphQL result,
// {"data": ..., "errors": [...]}, with data described field by field from
// the selection set.
func resultSchema(schema *ast.Schema, query string) (map[string]any, error) {
	doc, errs := gqlparser.LoadQuery(schema, query)
	if len(errs) > 0 {
		return nil, fmt.Errorf("openapi: the operation does not validate: %w", errs)
	}
	if len(doc.Operations) != 1 {
		return nil, fmt.Errorf("openapi: expected one operation, got %d", len(doc.Operations))
	}
	od := doc.Operations[0]
	var root *ast.Definition
	switch od.Operation {
	case ast.Query:
		root = schema.Query
	case ast.Mutation:
		root = schema.Mutation
	case ast.Subscription:
		root = schema.Subscription
	}
	if root == nil {
		return nil, fmt.Errorf("openapi: the schema has no %s type", od.Operation)
	}
	w := walker{schema: schema}
	data := operation.NullableSchema(w.object(root, []ast.SelectionSet{od.SelectionSet}))
	return map[string]any{
		"type": "object",
		"properties": map[string]any{
			"data":       data,
			"errors":     map[string]any{"type": "array", "items": ref(graphQLErrorName)},
			"extensions": map[string]any{"type": "object"},
		},
	}, nil
}

// walker turns selection sets into JSON Schema against the upstream schema.
type walker struct {
	schema *ast.Schema
}

// field is one response key of an object, merged over every selection
// that names it.
type field struct {
	def         *ast.FieldDefinition
	sets        []ast.SelectionSet
	conditional bool // not always present: a narrower fragment, @skip or @include
}

// object describes a composite type's value for the merged selection sets.
func (w walker) object(def *ast.Definition, sets []ast.SelectionSet) map[string]any {
	fields := map[string]*field{}
	var order []string
	for _, set := range sets {
		w.collect(def, set, false, fields, &order)
	}
	props := make(map[string]any, len(fields))
	required := []string{}
	for _, key := range order {
		f := fields[key]
		s := w.fieldSchema(def, f)
		if f.def.Description != "" {
			s["description"] = f.def.Description
		}
		props[key] = s
		if !f.conditional {
			required = append(required, key)
		}
	}
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// collect gathers the fields of set (and of its fragments) by response key.
func (w walker) collect(parent *ast.Definition, set ast.SelectionSet, conditional bool, fields map[string]*field, order *[]string) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Definition == nil {
				continue
			}
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			cond := conditional || skippable(s.Directives)
			f := fields[key]
			if f == nil {
				f = &field{def: s.Definition, conditional: cond}
				fields[key] = f
				*order = append(*order, key)
			}
			f.conditional = f.conditional && cond
			if len(s.SelectionSet) > 0 {
				f.sets = append(f.sets, s.SelectionSet)
			}
		case *ast.InlineFragment:
			cond := conditional || skippable(s.Directives) || !w.applies(parent, s.TypeCondition)
			w.collect(parent, s.SelectionSet, cond, fields, order)
		case *ast.FragmentSpread:
			if s.Definition == nil {
				continue
			}
			cond := conditional || skippable(s.Directives) || !w.applies(parent, s.Definition.TypeCondition)
			w.collect(parent, s.Definition.SelectionSet, cond, fields, order)
		}
	}
}

// applies reports whether a fragment on typeCond always applies to a value
// of type parent (so its fields are always present).
func (w walker) applies(parent *ast.Definition, typeCond string) bool {
	if typeCond == "" || typeCond == parent.Name {
		return true
	}
	if parent.Kind != ast.Object {
		return false
	}
	for _, abs := range w.schema.GetImplements(parent) {
		if abs.Name == typeCond {
			return true
		}
	}
	return false
}

func skippable(dirs ast.DirectiveList) bool {
	return dirs.ForName("skip") != nil || dirs.ForName("include") != nil
}

func (w walker) fieldSchema(parent *ast.Definition, f *field) map[string]any {
	if f.def.Name == "__typename" {
		return w.typename(parent)
	}
	return w.typeSchema(f.def.Type, f.sets)
}

// typename is the schema of __typename: the concrete type names possible.
func (w walker) typename(parent *ast.Definition) map[string]any {
	if parent.Kind == ast.Object {
		return map[string]any{"type": "string", "const": parent.Name}
	}
	var names []any
	for _, d := range w.schema.GetPossibleTypes(parent) {
		names = append(names, d.Name)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].(string) < names[j].(string) })
	return map[string]any{"type": "string", "enum": names}
}

// typeSchema describes one output value of type t.
func (w walker) typeSchema(t *ast.Type, sets []ast.SelectionSet) map[string]any {
	var s map[string]any
	if t.Elem != nil {
		s = map[string]any{"type": "array", "items": w.typeSchema(t.Elem, sets)}
	} else {
		def := w.schema.Types[t.NamedType]
		switch {
		case def == nil:
			return map[string]any{} // introspection types: any JSON value
		case def.Kind == ast.Scalar:
			s = operation.ScalarSchema(def)
		case def.Kind == ast.Enum:
			s = operation.EnumSchema(def)
		default: // object, interface, union
			s = w.object(def, sets)
		}
	}
	if !t.NonNull {
		s = operation.NullableSchema(s)
	}
	return s
}
