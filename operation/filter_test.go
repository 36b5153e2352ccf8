package operation

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestFilterMatch(t *testing.T) {
	payload := `{"s":"42","n":42,"big":12345678901234567890123,"f":0.5,"t":true,"z":null,"o":{"a":{"b":"x"}},"l":[1]}`
	v, err := DecodePayload([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c    Condition
		want bool
	}{
		{Condition{Path: "s", Value: "42"}, true},
		{Condition{Path: "s", Value: "42.0"}, false}, // a string compares as text
		{Condition{Path: "n", Value: "42"}, true},
		{Condition{Path: "n", Value: "42.0"}, true},
		{Condition{Path: "n", Value: "4.2e1"}, true},
		{Condition{Path: "n", Value: "420e-1"}, true},
		{Condition{Path: "n", Value: "43"}, false},
		{Condition{Path: "n", Value: "042"}, false}, // not a JSON number
		{Condition{Path: "n", Value: "0x2a"}, false},
		{Condition{Path: "n", Value: ""}, false},
		{Condition{Path: "big", Value: "12345678901234567890123"}, true},
		{Condition{Path: "big", Value: "12345678901234567890124"}, false},
		{Condition{Path: "big", Value: "1.2345678901234567890123e22"}, true},
		{Condition{Path: "f", Value: "5e-1"}, true},
		{Condition{Path: "f", Value: "1e999999999"}, false},
		{Condition{Path: "t", Value: "true"}, true},
		{Condition{Path: "t", Value: "false"}, false},
		{Condition{Path: "t", Value: "1"}, false},
		{Condition{Path: "z", Null: true}, true},
		{Condition{Path: "z", Value: ""}, false},
		{Condition{Path: "missing", Null: true}, true},
		{Condition{Path: "missing", Value: ""}, false},
		{Condition{Path: "o.a.b", Value: "x"}, true},
		{Condition{Path: "o.a", Value: "x"}, false},
		{Condition{Path: "o.a.b.c", Value: "x"}, false},
		{Condition{Path: "o.a.b.c", Null: true}, false}, // "x" is there: not missing
		{Condition{Path: "o.q.r", Null: true}, true},
		{Condition{Path: "l", Value: "[1]"}, false},
		{Condition{Path: "s.x", Value: "42"}, false},
	} {
		if got := (Filter{tc.c}).Match(v); got != tc.want {
			t.Errorf("%+v: got %v, want %v", tc.c, got, tc.want)
		}
	}
	if !(Filter{}).Match(v) || !(Filter(nil)).Match(json.Number("1")) {
		t.Error("an empty filter refuses")
	}
	if (Filter{{Path: "n", Value: "42"}, {Path: "s", Value: "x"}}).Match(v) {
		t.Error("a filter keeps a payload that fails one condition")
	}
}

func TestCanonNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "0", "0.000": "0", "0e9": "0",
		"42": "42e0", "4.20e1": "42e0", "-1.50": "-15e-1", "1000": "1e3", "0.001": "1e-3",
	} {
		if got, ok := canonNumber(in); !ok || got != want {
			t.Errorf("%s: got %q %v, want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "1.", ".5", "+1", "01", "1e", "1e99999999999", "NaN"} {
		if got, ok := canonNumber(in); ok {
			t.Errorf("%q accepted as %q", in, got)
		}
	}
}

func TestTemplates(t *testing.T) {
	args := map[string]any{"s": "a b", "n": json.Number("4.5"), "b": false, "o": map[string]any{"y": "<1>", "x": []any{nil}}}
	for _, tc := range []struct{ src, text, json string }{
		{"plain", "plain", "plain"},
		{"x.{{args.s}}.{{ args.n }}", "x.a b.4.5", `x."a b".4.5`},
		{"{{ args.o }}", `{"x":[null],"y":"<1>"}`, `{"x":[null],"y":"<1>"}`},
		{"{{\targs.b\n}}-{{ args.none }}", "false-", "false-null"},
	} {
		tpl, err := parseTemplate(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		text, err := tpl.renderText(args, nil)
		if err != nil || text != tc.text {
			t.Errorf("%s text: got %q %v, want %q", tc.src, text, err, tc.text)
		}
		j, err := tpl.renderJSON(args)
		if err != nil || string(j) != tc.json {
			t.Errorf("%s json: got %s %v, want %s", tc.src, j, err, tc.json)
		}
	}
	for src, want := range map[string]string{
		"{{ args.a ":       `"{{" without "}}"`,
		"a }} b":           `"}}" without "{{"`,
		"{{ a }}":          "{{ a }}: a placeholder is {{ args.NAME }}",
		"{{ args.a.b }}":   "a placeholder is {{ args.NAME }}",
		"{{ args.a }} }}":  `"}}" without "{{"`,
		"{{ ARGS.a }}":     "a placeholder is",
		"x{{ args.1a }}":   "a placeholder is",
		"{{ args.a | x }}": "a placeholder is",
	} {
		if _, err := parseTemplate(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", src, err, want)
		}
	}
}
