package operation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vektah/gqlparser/v2/ast"
)

// Limits of variable coercion.
const (
	// MaxDepth bounds the nesting of objects and arrays in variables.
	MaxDepth = 64
	// maxErrors bounds the field errors collected for one request.
	maxErrors = 50
	// maxShownBytes bounds a string echoed back as FieldError.InvalidValue.
	maxShownBytes = 100
)

// Values are coerced in the "JSON domain": what encoding/json decodes into
// with UseNumber: map[string]any, []any, string, json.Number, bool, nil.

var (
	integerText = regexp.MustCompile(`^-?[0-9]+$`)
	numberText  = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	jsonNumber  = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// noValue marks a FieldError without an invalid value (a missing variable).
type noValueT struct{}

var noValue = noValueT{}

// coercer validates values against GraphQL input types and collects errors.
type coercer struct {
	schema *ast.Schema
	errs   []FieldError
}

func (c *coercer) fail(path string, v any, format string, args ...any) {
	if len(c.errs) >= maxErrors {
		return
	}
	fe := FieldError{PropertyPath: path, Message: fmt.Sprintf(format, args...)}
	if _, none := v.(noValueT); !none {
		fe.InvalidValue = shown(v)
	}
	c.errs = append(c.errs, fe)
}

// coerce checks v against t and returns the value to send upstream.
func (c *coercer) coerce(t *ast.Type, v any, path string, depth int) (any, bool) {
	// depth is the nesting level of the value's container: a variable sits
	// at 1 (inside the variables object), so a list variable's brackets are
	// at level 2, as checkDepth counts them.
	if depth+nesting(v, MaxDepth) > MaxDepth {
		c.fail(path, noValue, "nested more than %d levels deep", MaxDepth)
		return nil, false
	}
	if v == nil {
		if t.NonNull {
			c.fail(path, noValue, "must not be null (type %s)", t.String())
			return nil, false
		}
		return nil, true
	}
	if t.Elem != nil {
		list, ok := v.([]any)
		if !ok {
			// GraphQL list input coercion: a single value is a list of one.
			x, ok := c.coerce(t.Elem, v, path, depth+1)
			if !ok {
				return nil, false
			}
			return []any{x}, true
		}
		out := make([]any, len(list))
		good := true
		for i, item := range list {
			x, ok := c.coerce(t.Elem, item, path+"/"+strconv.Itoa(i), depth+1)
			out[i] = x
			good = good && ok
		}
		return out, good
	}
	def := c.typeDef(t.NamedType)
	if def == nil {
		c.fail(path, noValue, "unknown type %s", t.NamedType)
		return nil, false
	}
	switch def.Kind {
	case ast.Scalar:
		return c.scalar(def, v, path)
	case ast.Enum:
		s, ok := v.(string)
		if !ok || def.EnumValues.ForName(s) == nil {
			c.fail(path, v, "must be one of %s (enum %s)", enumNames(def), def.Name)
			return nil, false
		}
		return s, true
	case ast.InputObject:
		return c.object(def, v, path, depth)
	default:
		c.fail(path, noValue, "%s is not an input type", def.Name)
		return nil, false
	}
}

func (c *coercer) typeDef(name string) *ast.Definition {
	if c.schema == nil {
		return nil
	}
	return c.schema.Types[name]
}

func (c *coercer) scalar(def *ast.Definition, v any, path string) (any, bool) {
	switch def.Name {
	case "String":
		if s, ok := v.(string); ok {
			return s, true
		}
		c.fail(path, v, "must be a String")
	case "Boolean":
		if b, ok := v.(bool); ok {
			return b, true
		}
		c.fail(path, v, "must be a Boolean (true or false)")
	case "ID":
		switch x := v.(type) {
		case string:
			return x, true
		case json.Number:
			if integerText.MatchString(string(x)) {
				return string(x), true
			}
		}
		c.fail(path, v, "must be an ID (a string or an integer)")
	case "Int":
		if n, ok := v.(json.Number); ok {
			if i, ok := intValue(n); ok {
				return json.Number(strconv.FormatInt(i, 10)), true
			}
		}
		c.fail(path, v, "must be an Int (a whole number from %d to %d)", math.MinInt32, math.MaxInt32)
	case "Float":
		if n, ok := v.(json.Number); ok {
			f, err := strconv.ParseFloat(string(n), 64)
			if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return n, true
			}
		}
		c.fail(path, v, "must be a Float (a finite number)")
	default:
		// Custom scalars: any JSON value; the upstream judges.
		return v, true
	}
	return nil, false
}

// intValue accepts integral JSON numbers in the 32-bit range (1, -3, 1.0, 1e3).
func intValue(n json.Number) (int64, bool) {
	if i, err := strconv.ParseInt(string(n), 10, 32); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, false
	}
	return int64(f), true
}

func (c *coercer) object(def *ast.Definition, v any, path string, depth int) (any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail(path, v, "must be an object (input type %s)", def.Name)
		return nil, false
	}
	good := true
	for _, k := range sortedKeys(m) {
		if def.Fields.ForName(k) == nil {
			c.fail(path+"/"+pointerEscape(k), noValue, "unknown field %q of input type %s", short(k), def.Name)
			good = false
		}
	}
	out := make(map[string]any, len(def.Fields))
	set := 0
	for _, f := range def.Fields {
		fp := path + "/" + f.Name
		fv, present := m[f.Name]
		if !present {
			if f.DefaultValue != nil {
				dv, err := astToJSON(f.DefaultValue)
				if err != nil {
					c.fail(fp, noValue, "schema default of %s.%s: %v", def.Name, f.Name, err)
					good = false
					continue
				}
				if x, ok := c.coerce(f.Type, dv, fp, depth+1); ok {
					out[f.Name] = x
				} else {
					good = false
				}
				continue
			}
			if f.Type.NonNull {
				c.fail(fp, noValue, "required field %s (%s) of input type %s is missing", f.Name, f.Type.String(), def.Name)
				good = false
			}
			continue
		}
		if fv != nil {
			set++
		}
		x, ok := c.coerce(f.Type, fv, fp, depth+1)
		if !ok {
			good = false
			continue
		}
		out[f.Name] = x
	}
	if good && def.Directives.ForName("oneOf") != nil && (set != 1 || len(m) != 1) {
		c.fail(path, noValue, "exactly one field of input type %s must be set (and not null)", def.Name)
		good = false
	}
	if !good {
		return nil, false
	}
	return out, true
}

func enumNames(def *ast.Definition) string {
	names := make([]string, len(def.EnumValues))
	for i, ev := range def.EnumValues {
		names[i] = ev.Name
	}
	return strings.Join(names, ", ")
}

// astToJSON converts a constant GraphQL literal (a default value) to the JSON domain.
func astToJSON(v *ast.Value) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch v.Kind {
	case ast.IntValue, ast.FloatValue:
		if !jsonNumber.MatchString(v.Raw) {
			return nil, fmt.Errorf("bad number %q", short(v.Raw))
		}
		return json.Number(v.Raw), nil
	case ast.StringValue, ast.BlockValue, ast.EnumValue:
		return v.Raw, nil
	case ast.BooleanValue:
		return v.Raw == "true", nil
	case ast.NullValue:
		return nil, nil
	case ast.ListValue:
		out := make([]any, 0, len(v.Children))
		for _, ch := range v.Children {
			x, err := astToJSON(ch.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	case ast.ObjectValue:
		out := make(map[string]any, len(v.Children))
		for _, ch := range v.Children {
			x, err := astToJSON(ch.Value)
			if err != nil {
				return nil, err
			}
			out[ch.Name] = x
		}
		return out, nil
	default:
		return nil, fmt.Errorf("a default value must be constant, got %s", short(v.String()))
	}
}

// nesting is how deep v nests arrays and objects (0 for a scalar), counted
// no further than limit+1.
func nesting(v any, limit int) int {
	if limit < 0 {
		return 1
	}
	deepest := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			deepest = max(deepest, nesting(e, limit-1))
		}
	case map[string]any:
		for _, e := range x {
			deepest = max(deepest, nesting(e, limit-1))
		}
	default:
		return 0
	}
	return deepest + 1
}

// decodeJSON decodes one JSON value with numbers kept exact, rejecting
// trailing data, nesting deeper than MaxDepth, and an object that names a
// key twice (encoding/json would keep the last one silently).
func decodeJSON(data []byte) (any, error) {
	if err := checkDepth(data, MaxDepth); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no JSON value")
		}
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

// readValue reads the next JSON value from dec token by token, as Decode
// into an any would, but with duplicate object keys an error.
func readValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	v, err := readRest(dec, tok)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the value began: the input was cut short
	}
	return v, err
}

// readRest reads the rest of the value that begins with tok.
func readRest(dec *json.Decoder, tok json.Token) (any, error) {
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // the decoder only yields string keys
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("duplicate key %q", short(k))
			}
			if m[k], err = readValue(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // '}'
		return m, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := readValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	}
	return tok, nil // string, json.Number, bool or nil
}

// checkDepth rejects JSON text nested deeper than limit, before the decoder
// recurses into it.
func checkDepth(data []byte, limit int) error {
	depth, inString, escaped := 0, false, false
	for _, b := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case b == '\\':
				escaped = true
			case b == '"':
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			depth++
			if depth > limit {
				return fmt.Errorf("nested more than %d levels deep", limit)
			}
		case b == '}' || b == ']':
			depth--
		}
	}
	return nil
}

// canonical renders variables with sorted keys (encoding/json sorts map
// keys), so equal variables give equal bytes: the hub's deduplication key.
func canonical(m map[string]any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// shown makes v safe to echo back: long strings are cut, composite values are
// rendered as JSON and cut too.
func shown(v any) any {
	switch x := v.(type) {
	case nil, bool:
		return x
	case string:
		return short(x)
	case json.Number:
		if len(x) > maxShownBytes {
			return short(string(x))
		}
		return x
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil
		}
		if len(b) > maxShownBytes {
			return short(string(b))
		}
		return json.RawMessage(b)
	}
}

// short cuts s to about maxShownBytes at a rune boundary.
func short(s string) string {
	if len(s) <= maxShownBytes {
		return s
	}
	cut := maxShownBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// pointerEscape escapes a JSON pointer segment and keeps it short.
func pointerEscape(s string) string {
	s = short(s)
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
