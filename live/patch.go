package live

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"

	"github.com/wI2L/jsondiff"
)

// diff returns the RFC 6902 patch that turns prev into next, as compact
// JSON with the conventional member order ({"op","path","value"}), or nil
// when it can't be computed. Arrays are compared by longest common
// subsequence, so an item added to or removed from a list is one operation,
// and a subtree that changed wholesale is one replace.
func diff(prev, next []byte) []byte {
	patch, err := jsondiff.CompareJSON(prev, next,
		jsondiff.UnmarshalFunc(unmarshalNumbers), jsondiff.LCS(), jsondiff.Rationalize(), jsondiff.SkipCompact())
	if err != nil {
		return nil
	}
	return encodePatch(patch, next)
}

// unmarshalNumbers keeps numbers as written: float64 would round integers
// beyond 2^53 and change the text of others.
func unmarshalNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// encodePatch writes ops as [{"op":..,"path":..,"value":..}, ...]. A value
// is copied from target's bytes when the op's path leads to an equal value
// there, so that objects keep the upstream's member order (the differ
// works on maps); otherwise it is encoded, without HTML escaping.
func encodePatch(ops jsondiff.Patch, target []byte) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('[')
	for i, op := range ops {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`{"op":`)
		if enc.Encode(op.Type) != nil {
			return nil
		}
		trimNewline(&buf)
		if op.From != "" {
			buf.WriteString(`,"from":`)
			if enc.Encode(op.From) != nil {
				return nil
			}
			trimNewline(&buf)
		}
		buf.WriteString(`,"path":`)
		if enc.Encode(op.Path) != nil {
			return nil
		}
		trimNewline(&buf)
		switch op.Type {
		case jsondiff.OperationAdd, jsondiff.OperationReplace, jsondiff.OperationTest:
			buf.WriteString(`,"value":`)
			if raw := rawAt(target, op.Path); raw != nil && sameValue(raw, op.Value) {
				buf.Write(raw)
				break
			}
			if enc.Encode(op.Value) != nil {
				return nil
			}
			trimNewline(&buf)
		}
		buf.WriteByte('}')
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// trimNewline drops the newline json.Encoder writes after each value.
func trimNewline(b *bytes.Buffer) {
	if n := b.Len(); n > 0 && b.Bytes()[n-1] == '\n' {
		b.Truncate(n - 1)
	}
}

// rawAt returns the bytes of the value at an RFC 6901 pointer in doc, or
// nil when there is none.
func rawAt(doc []byte, pointer string) []byte {
	if pointer == "" {
		return doc
	}
	if pointer[0] != '/' {
		return nil
	}
	raw := json.RawMessage(doc)
	for _, tok := range strings.Split(pointer[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch {
		case len(raw) > 0 && raw[0] == '{':
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) != nil {
				return nil
			}
			next, ok := m[tok]
			if !ok {
				return nil
			}
			raw = next
		case len(raw) > 0 && raw[0] == '[':
			var a []json.RawMessage
			i, err := strconv.Atoi(tok)
			if err != nil || json.Unmarshal(raw, &a) != nil || i < 0 || i >= len(a) {
				return nil
			}
			raw = a[i]
		default:
			return nil
		}
	}
	return raw
}

// sameValue reports whether raw decodes to v (decoded with numbers kept).
func sameValue(raw []byte, v any) bool {
	var x any
	if unmarshalNumbers(raw, &x) != nil {
		return false
	}
	return reflect.DeepEqual(x, v)
}
