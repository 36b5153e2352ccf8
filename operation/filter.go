package operation

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Filter keeps the event payloads whose fields equal given values: every
// condition must hold. The zero Filter keeps everything.
//
// Values are compared as JSON scalars, by the payload's kind:
//
//   - a string equals the text exactly;
//   - a number equals a text that is a JSON number of the same value
//     (exactly: "42", "42.0" and "4.2e1" all equal 42, also past 2^53);
//   - a boolean equals the text "true" or "false";
//   - null, or a missing field, equals only a null condition (a template
//     naming a null or absent argument);
//   - an object or a list equals nothing.
//
// So a condition from the template "{{ args.userId }}" rendered as "42"
// keeps a payload whose userId is 42 or "42".
type Filter []Condition

// Condition is one equality of a Filter.
type Condition struct {
	// Path is the dotted path of the field in the payload ("user.id").
	Path string
	// Value is the text the field must equal, unless Null is set.
	Value string
	// Null: the field must be null or missing.
	Null bool
}

// Match reports whether the payload value v (in DecodePayload's domain)
// passes every condition.
func (f Filter) Match(v any) bool {
	for _, c := range f {
		if !c.match(v) {
			return false
		}
	}
	return true
}

func (c Condition) match(v any) bool {
	for _, seg := range strings.Split(c.Path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return c.Null && v == nil
		}
		v = obj[seg]
	}
	switch x := v.(type) {
	case nil:
		return c.Null
	case string:
		return !c.Null && x == c.Value
	case bool:
		return !c.Null && c.Value == "true" == x && (c.Value == "true" || c.Value == "false")
	case json.Number:
		return !c.Null && numbersEqual(string(x), c.Value)
	}
	return false
}

// numbersEqual compares two JSON number texts by value, exactly, without
// arithmetic: each is brought to sign, significant digits and exponent
// (so no text, such as 1e999999999, costs more than its length).
func numbersEqual(a, b string) bool {
	ca, ok1 := canonNumber(a)
	cb, ok2 := canonNumber(b)
	return ok1 && ok2 && ca == cb
}

func canonNumber(s string) (string, bool) {
	if !jsonNumber.MatchString(s) {
		return "", false
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expText, hasExp := strings.Cut(strings.ToLower(s), "e")
	exp := int64(0)
	if hasExp {
		e, err := strconv.ParseInt(expText, 10, 32)
		if err != nil {
			return "", false
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	if trimmed == "" {
		return "0", true // -0 and 0e5 are 0
	}
	sign := ""
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + strconv.FormatInt(exp, 10), true
}
