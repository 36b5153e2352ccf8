package operation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
)

// ErrBadPayload wraps every reason an event payload cannot become a result:
// it is not JSON, or it does not fit the field's type and selection. The
// messages name paths and types, never the payload's content.
var ErrBadPayload = errors.New("bad event payload")

// Shape applies an operation's selection set to the JSON value an event
// source delivered for its root field, as a GraphQL server would resolve a
// field whose value is that JSON: fields by name, aliases, __typename,
// nested objects and lists, @skip and @include, fragments (on interfaces
// and unions the payload's "__typename" names the concrete type).
//
// Leaves are coerced as GraphQL result coercion does: ID from a string or
// an integer, String from a string (or a number or boolean, as text), Int
// from an integral number within 32 bits, Float from a number, Boolean from
// a boolean, an enum from one of its value names; a custom scalar is copied.
// A missing or null value of a nullable type is null; of a non-null type
// the whole payload is refused (no null bubbling): the caller drops it.
// Fields of the payload that are not selected are left out.
type Shape struct {
	schema *ast.Schema
	key    string // response key: alias, else field name
	typ    *ast.Type
	sel    ast.SelectionSet
}

// newShape builds the shape of a validated root field.
func newShape(schema *ast.Schema, f *ast.Field, def *ast.FieldDefinition) *Shape {
	key := f.Alias
	if key == "" {
		key = f.Name
	}
	return &Shape{schema: schema, key: key, typ: def.Type, sel: f.SelectionSet}
}

// Apply renders {"data":{"<key>":<value>}} for the payload value v, which is
// in the JSON domain of DecodePayload (map[string]any, []any, string,
// json.Number, bool, nil) and is not modified. vars are the operation's
// variables, for @skip and @include. Errors wrap ErrBadPayload.
func (s *Shape) Apply(v any, vars map[string]any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"data":{`)
	writeString(&b, s.key)
	b.WriteByte(':')
	w := shaper{schema: s.schema, vars: vars, b: &b}
	if err := w.value(s.typ, s.sel, v, s.key); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	b.WriteString("}}")
	return b.Bytes(), nil
}

// DecodePayload reads one JSON value (numbers as json.Number) and nothing
// after it. The error wraps ErrBadPayload and does not quote the payload.
func DecodePayload(p []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrBadPayload)
	}
	if _, err := dec.Token(); err == nil || !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: not JSON: data after the value", ErrBadPayload)
	}
	return v, nil
}

type shaper struct {
	schema *ast.Schema
	vars   map[string]any
	b      *bytes.Buffer
}

// value writes v as a value of type t with selection sel; path names the
// position in errors ("orderUpdated.items.2.id").
func (w *shaper) value(t *ast.Type, sel ast.SelectionSet, v any, path string) error {
	if v == nil {
		if t.NonNull {
			return fmt.Errorf("%s: missing or null, but the type is %s", path, t.String())
		}
		w.b.WriteString("null")
		return nil
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: expected a list (%s), got %s", path, t.String(), kindOf(v))
		}
		w.b.WriteByte('[')
		for i, e := range list {
			if i > 0 {
				w.b.WriteByte(',')
			}
			if err := w.value(t.Elem, sel, e, path+"."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		w.b.WriteByte(']')
		return nil
	}
	def := w.schema.Types[t.NamedType]
	if def == nil {
		return fmt.Errorf("%s: unknown type %s", path, t.NamedType)
	}
	switch def.Kind {
	case ast.Scalar:
		return w.scalar(def.Name, v, path)
	case ast.Enum:
		s, ok := v.(string)
		if !ok || def.EnumValues.ForName(s) == nil {
			return fmt.Errorf("%s: expected a value of enum %s", path, def.Name)
		}
		writeString(w.b, s)
		return nil
	case ast.Object, ast.Interface, ast.Union:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: expected an object (%s), got %s", path, def.Name, kindOf(v))
		}
		if def.Kind != ast.Object {
			name, _ := obj["__typename"].(string)
			concrete := w.schema.Types[name]
			if concrete == nil || concrete.Kind != ast.Object || !possible(w.schema, def, concrete) {
				return fmt.Errorf("%s: a value of %s %s needs \"__typename\" naming one of its object types", path, strings.ToLower(string(def.Kind)), def.Name)
			}
			def = concrete
		}
		return w.object(def, sel, obj, path)
	}
	return fmt.Errorf("%s: type %s cannot be an output", path, def.Name)
}

// object writes the fields that sel collects for the object type def.
func (w *shaper) object(def *ast.Definition, sel ast.SelectionSet, obj map[string]any, path string) error {
	var groups []fieldGroup
	w.collect(def, sel, &groups, map[string]bool{})
	w.b.WriteByte('{')
	for i, g := range groups {
		if i > 0 {
			w.b.WriteByte(',')
		}
		writeString(w.b, g.key)
		w.b.WriteByte(':')
		f := g.fields[0]
		if f.Name == "__typename" {
			writeString(w.b, def.Name)
			continue
		}
		fd := def.Fields.ForName(f.Name)
		if fd == nil {
			return fmt.Errorf("%s: type %s has no field %s", path, def.Name, f.Name)
		}
		var sub ast.SelectionSet
		for _, gf := range g.fields {
			sub = append(sub, gf.SelectionSet...)
		}
		if err := w.value(fd.Type, sub, obj[f.Name], path+"."+f.Name); err != nil {
			return err
		}
	}
	w.b.WriteByte('}')
	return nil
}

// fieldGroup is the fields of one response key (GraphQL's CollectFields).
type fieldGroup struct {
	key    string
	fields []*ast.Field
}

func (w *shaper) collect(def *ast.Definition, sel ast.SelectionSet, groups *[]fieldGroup, visited map[string]bool) {
	for _, s := range sel {
		switch x := s.(type) {
		case *ast.Field:
			if !w.included(x.Directives) {
				continue
			}
			key := x.Alias
			if key == "" {
				key = x.Name
			}
			found := false
			for i := range *groups {
				if (*groups)[i].key == key {
					(*groups)[i].fields = append((*groups)[i].fields, x)
					found = true
					break
				}
			}
			if !found {
				*groups = append(*groups, fieldGroup{key: key, fields: []*ast.Field{x}})
			}
		case *ast.InlineFragment:
			if w.included(x.Directives) && w.applies(x.TypeCondition, def) {
				w.collect(def, x.SelectionSet, groups, visited)
			}
		case *ast.FragmentSpread:
			if visited[x.Name] || !w.included(x.Directives) || x.Definition == nil {
				continue
			}
			visited[x.Name] = true
			if w.applies(x.Definition.TypeCondition, def) {
				w.collect(def, x.Definition.SelectionSet, groups, visited)
			}
		}
	}
}

// applies reports whether a fragment on the type named cond applies to
// the object type def.
func (w *shaper) applies(cond string, def *ast.Definition) bool {
	if cond == "" || cond == def.Name {
		return true
	}
	c := w.schema.Types[cond]
	return c != nil && possible(w.schema, c, def)
}

func possible(schema *ast.Schema, abstract, obj *ast.Definition) bool {
	for _, p := range schema.GetPossibleTypes(abstract) {
		if p.Name == obj.Name {
			return true
		}
	}
	return false
}

// included evaluates @skip(if:) and @include(if:) with the variables.
func (w *shaper) included(dirs ast.DirectiveList) bool {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		arg := d.Arguments.ForName("if")
		if arg == nil || arg.Value == nil {
			continue
		}
		on := false
		switch arg.Value.Kind {
		case ast.BooleanValue:
			on = arg.Value.Raw == "true"
		case ast.Variable:
			on, _ = w.vars[arg.Value.Raw].(bool)
		}
		if d.Name == "skip" && on || d.Name == "include" && !on {
			return false
		}
	}
	return true
}

// scalar writes a leaf value coerced to the named scalar.
func (w *shaper) scalar(name string, v any, path string) error {
	bad := func() error { return fmt.Errorf("%s: expected %s, got %s", path, name, kindOf(v)) }
	switch name {
	case "String":
		switch x := v.(type) {
		case string:
			writeString(w.b, x)
		case json.Number:
			writeString(w.b, string(x))
		case bool:
			writeString(w.b, strconv.FormatBool(x))
		default:
			return bad()
		}
	case "ID":
		switch x := v.(type) {
		case string:
			writeString(w.b, x)
		case json.Number:
			n, ok := integral(x, math.MinInt64, math.MaxInt64)
			if !ok {
				return fmt.Errorf("%s: expected ID (a string or an integer), got a non-integral number", path)
			}
			writeString(w.b, strconv.FormatInt(n, 10))
		default:
			return bad()
		}
	case "Int":
		x, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		n, ok := integral(x, math.MinInt32, math.MaxInt32)
		if !ok {
			return fmt.Errorf("%s: expected Int (32-bit integer), got a number that is not one", path)
		}
		w.b.WriteString(strconv.FormatInt(n, 10))
	case "Float":
		x, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		w.b.WriteString(string(x))
	case "Boolean":
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		w.b.WriteString(strconv.FormatBool(x))
	default:
		// A custom scalar: the JSON value as it is.
		return writeJSON(w.b, v)
	}
	return nil
}

// integral reads n as an integer within [lo, hi]; 12.0 and 1.2e1 are 12.
func integral(n json.Number, lo, hi int64) (int64, bool) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, i >= lo && i <= hi
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, false
	}
	return int64(f), true
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// writeJSON writes a JSON-domain value: object keys sorted, no HTML
// escaping (the bytes go to API clients, not into HTML).
func writeJSON(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		writeString(b, x)
	case json.Number:
		if !jsonNumber.MatchString(string(x)) {
			return errors.New("not a JSON number")
		}
		b.WriteString(string(x))
	case float64:
		s, err := json.Marshal(x)
		if err != nil {
			return err
		}
		b.Write(s)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeJSON(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("cannot write %T as JSON", v)
	}
	return nil
}

// writeString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped for JavaScript.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028':
			b.WriteString(`\u2028`)
		case r == '\u2029':
			b.WriteString(`\u2029`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}
