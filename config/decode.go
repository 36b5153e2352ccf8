package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// decode fills v from JSON strictly: every error names the JSON path of the
// offending value ("upstream.headers: expected object"). Strings go through
// ${NAME} expansion.
func decode(b []byte, v any, lookup func(string) (string, bool)) error {
	d := &decoder{lookup: lookup}
	if !json.Valid(b) {
		// Let encoding/json say where the syntax breaks.
		var x any
		err := json.Unmarshal(b, &x)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(b, se.Offset)
			return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
		}
		return fmt.Errorf("invalid JSON: %v", err)
	}
	d.value("", json.RawMessage(bytes.TrimSpace(b)), reflect.ValueOf(v).Elem())
	return errors.Join(sortErrs(d.errs)...)
}

type decoder struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (d *decoder) fail(path, format string, a ...any) {
	if path == "" {
		path = "(top level)"
	}
	d.errs = append(d.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) value(path string, raw json.RawMessage, v reflect.Value) {
	if string(raw) == "null" {
		return // null leaves the default in place
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if raw[0] == '"' {
			s, ok := d.str(path, raw)
			if !ok {
				return
			}
			raw, _ = json.Marshal(s)
		}
		if err := v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			d.fail(path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		n := reflect.New(v.Type().Elem())
		d.value(path, raw, n.Elem())
		v.Set(n)
	case reflect.Struct:
		var m map[string]json.RawMessage
		if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
			d.fail(path, "expected object")
			return
		}
		fields := map[string]int{}
		for i := 0; i < v.NumField(); i++ {
			tag := strings.Split(v.Type().Field(i).Tag.Get("json"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = i
			}
		}
		for _, k := range sortedKeys(m) {
			i, ok := fields[k]
			if !ok {
				d.fail(join(path, k), "unknown key (known: %s)", strings.Join(sortedKeys(fields), ", "))
				continue
			}
			d.value(join(path, k), m[k], v.Field(i))
		}
	case reflect.Map:
		var m map[string]json.RawMessage
		if raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
			d.fail(path, "expected object")
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for _, k := range sortedKeys(m) {
			e := reflect.New(v.Type().Elem()).Elem()
			d.value(join(path, k), m[k], e)
			out.SetMapIndex(reflect.ValueOf(k), e)
		}
		v.Set(out)
	case reflect.Slice:
		var a []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
			d.fail(path, "expected array")
			return
		}
		out := reflect.MakeSlice(v.Type(), len(a), len(a))
		for i := range a {
			d.value(fmt.Sprintf("%s[%d]", path, i), a[i], out.Index(i))
		}
		v.Set(out)
	case reflect.String:
		if s, ok := d.str(path, raw); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		if raw[0] != 't' && raw[0] != 'f' {
			d.fail(path, "expected boolean")
			return
		}
		v.SetBool(raw[0] == 't')
	case reflect.Int, reflect.Int64:
		var n int64
		if raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
			d.fail(path, "expected integer")
			return
		}
		v.SetInt(n)
	default:
		d.fail(path, "unsupported type %s", v.Type())
	}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// str reads a JSON string and expands ${NAME} references; an unset
// variable is an error naming it.
func (d *decoder) str(path string, raw json.RawMessage) (string, bool) {
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		d.fail(path, "expected string")
		return "", false
	}
	ok := true
	s = envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		val, set := d.lookup(name)
		if !set {
			d.fail(path, "environment variable %s is not set", name)
			ok = false
		}
		return val
	})
	return s, ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortErrs(errs []error) []error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off-1 && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
