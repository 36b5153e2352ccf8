package operation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// template is a text with {{ args.NAME }} placeholders, as written in the
// channel, subject, filter and payload arguments of @listen and @publish.
type template struct {
	parts []tplPart
}

// tplPart is a piece of literal text or, when arg is set, a placeholder.
type tplPart struct {
	text string
	arg  string
}

var placeholder = regexp.MustCompile(`^\s*args\.([_A-Za-z][_0-9A-Za-z]*)\s*$`)

// parseTemplate reads s. Every "{{" opens a placeholder that must be
// closed by "}}" and hold exactly args.NAME.
func parseTemplate(s string) (template, error) {
	var t template
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			if j := strings.Index(s, "}}"); j >= 0 {
				return t, errors.New(`"}}" without "{{"`)
			}
			if s != "" {
				t.parts = append(t.parts, tplPart{text: s})
			}
			return t, nil
		}
		if i > 0 {
			if strings.Contains(s[:i], "}}") {
				return t, errors.New(`"}}" without "{{"`)
			}
			t.parts = append(t.parts, tplPart{text: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return t, errors.New(`"{{" without "}}"`)
		}
		inner := s[i+2 : i+2+j]
		m := placeholder.FindStringSubmatch(inner)
		if m == nil {
			return t, fmt.Errorf("{{%s}}: a placeholder is {{ args.NAME }}, NAME an argument of the field", short(inner))
		}
		t.parts = append(t.parts, tplPart{arg: m[1]})
		s = s[i+2+j+2:]
	}
}

// args lists the argument names the template uses, in order, repeats kept.
func (t template) args() []string {
	var out []string
	for _, p := range t.parts {
		if p.arg != "" {
			out = append(out, p.arg)
		}
	}
	return out
}

// whole reports whether the template is exactly one placeholder, and which.
func (t template) whole() (string, bool) {
	if len(t.parts) == 1 && t.parts[0].arg != "" {
		return t.parts[0].arg, true
	}
	return "", false
}

// renderText fills the placeholders with the arguments as text: strings,
// IDs and enums as they are, numbers and booleans as written in JSON, input
// objects and lists as compact JSON with sorted keys, and a null or absent
// argument as the empty text. check, when set, vets each filled value.
func (t template) renderText(args map[string]any, check func(arg, val string) error) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.arg == "" {
			b.WriteString(p.text)
			continue
		}
		s, err := textOf(args[p.arg])
		if err != nil {
			return "", err
		}
		if check != nil {
			if err := check(p.arg, s); err != nil {
				return "", err
			}
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// renderJSON fills the placeholders with the arguments as JSON values
// (strings quoted), for payloads: "{{ args.input }}" is the input object's
// JSON, and {"id": {{ args.id }}} stays JSON whatever the id.
func (t template) renderJSON(args map[string]any) ([]byte, error) {
	var b bytes.Buffer
	for _, p := range t.parts {
		if p.arg == "" {
			b.WriteString(p.text)
			continue
		}
		if err := writeJSON(&b, args[p.arg]); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// textOf renders one argument value as text (see renderText).
func textOf(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	default:
		var b bytes.Buffer
		if err := writeJSON(&b, x); err != nil {
			return "", err
		}
		return b.String(), nil
	}
}

// checkPayloadTemplate makes sure a payload template is JSON once filled,
// whatever the arguments: with every placeholder null, and with every one a
// string (which catches a placeholder inside a JSON string literal, where a
// string value would break the quotes).
func checkPayloadTemplate(t template) error {
	for _, fill := range []any{nil, "s"} {
		args := map[string]any{}
		for _, a := range t.args() {
			args[a] = fill
		}
		b, err := t.renderJSON(args)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return errors.New(`the payload is not JSON once its placeholders are filled; each {{ args.NAME }} stands for a whole JSON value (write {"id": {{ args.id }}}, not {"id": "{{ args.id }}"})`)
		}
	}
	return nil
}
