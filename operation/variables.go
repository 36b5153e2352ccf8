package operation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// ParamVariables is the query parameter that may carry all variables as one
// JSON object.
const ParamVariables = "wg_variables"

// buildVariables fills Variables and checks declared defaults.
func (op *Operation) buildVariables(file string, od *ast.OperationDefinition) []Problem {
	claimOf := make(map[string]string, len(op.Claims))
	for _, cv := range op.Claims {
		claimOf[cv.Variable] = cv.Claim
	}
	var problems []Problem
	op.vars = make(map[string]*VariableInfo, len(od.VariableDefinitions))
	op.Variables = make([]VariableInfo, 0, len(od.VariableDefinitions))
	for _, vd := range od.VariableDefinitions {
		vi := VariableInfo{
			Name:        vd.Variable,
			Type:        vd.Type,
			Required:    vd.Type.NonNull && vd.DefaultValue == nil,
			Description: vd.Description,
			FromClaim:   claimOf[vd.Variable],
		}
		if vd.DefaultValue != nil {
			raw, err := astToJSON(vd.DefaultValue)
			c := &coercer{schema: op.schema}
			var x any
			ok := err == nil
			if ok {
				x, ok = c.coerce(vd.Type, raw, "/"+vd.Variable, 1)
			}
			if !ok {
				msg := "bad default value"
				if err != nil {
					msg += ": " + err.Error()
				} else if len(c.errs) > 0 {
					msg += ": " + c.errs[0].Message
				}
				problems = append(problems, problemAt(file, vd.Position, "$%s: %s", vd.Variable, msg))
				continue
			}
			b, err := json.Marshal(x)
			if err != nil {
				problems = append(problems, problemAt(file, vd.Position, "$%s: bad default value: %v", vd.Variable, err))
				continue
			}
			vi.def, vi.Default = x, b
		}
		op.Variables = append(op.Variables, vi)
	}
	for i := range op.Variables {
		op.vars[op.Variables[i].Name] = &op.Variables[i]
	}
	return problems
}

// publicNames lists the variables a client may send, for error messages.
func (op *Operation) publicNames() string {
	var names []string
	for _, v := range op.Variables {
		if v.FromClaim == "" {
			names = append(names, v.Name)
		}
	}
	if len(names) == 0 {
		return "this operation takes no variables"
	}
	return "accepted: " + strings.Join(names, ", ")
}

// VariablesFromQuery builds the variables of a GET request from its query
// parameters, each coerced by the variable's declared type, plus
// wg_variables (a JSON object) when present. Parameters for which reserved
// answers true are skipped. Every failure is an *InputError.
func (op *Operation) VariablesFromQuery(q url.Values, reserved func(name string) bool) (json.RawMessage, error) {
	c := &coercer{schema: op.schema}
	given := map[string]any{}
	fromWG := map[string]bool{}
	failed := map[string]bool{} // reported already; not "missing" too
	wgBad := false
	if wv, ok := q[ParamVariables]; ok {
		if len(wv) != 1 {
			c.fail("/", noValue, "%s given more than once", ParamVariables)
			wgBad = true
		} else if m, err := decodeObject([]byte(wv[0])); err != nil {
			c.fail("/", noValue, "%s: %v", ParamVariables, err)
			wgBad = true
		} else {
			for k, v := range m {
				given[k], fromWG[k] = v, true
			}
		}
	}
	for _, k := range sortedKeys(q) {
		if k == ParamVariables || (reserved != nil && reserved(k)) {
			continue
		}
		path := "/" + pointerEscape(k)
		vi := op.vars[k]
		switch {
		case vi == nil:
			c.fail(path, noValue, "unknown parameter %q; %s", short(k), op.publicNames())
			continue
		case vi.FromClaim != "":
			c.fail(path, noValue, "variable is set from the token")
			continue
		case fromWG[k]:
			c.fail(path, noValue, "given both in %s and as a query parameter", ParamVariables)
			continue
		}
		vals := q[k]
		if vi.Type.Elem == nil && len(vals) > 1 {
			c.fail(path, noValue, "given %d times; $%s (%s) is not a list", len(vals), k, vi.Type.String())
			failed[k] = true
			continue
		}
		if x, ok := c.fromText(vi.Type, vals, path); ok {
			given[k] = x
		} else {
			failed[k] = true
		}
	}
	if wgBad {
		// A broken wg_variables hides which variables were meant to be
		// sent: reporting them "missing" would only mislead.
		return nil, inputError(c.errs)
	}
	return op.finish(c, given, failed)
}

// VariablesFromJSON builds the variables from a JSON object (a POST body; an
// empty body is {}). Every failure is an *InputError.
func (op *Operation) VariablesFromJSON(body []byte) (json.RawMessage, error) {
	c := &coercer{schema: op.schema}
	m, err := decodeObject(body)
	if err != nil {
		c.fail("/", noValue, "%v", err)
		return nil, inputError(c.errs)
	}
	return op.finish(c, m, nil)
}

// decodeObject decodes a JSON object; blank input is an empty object.
func decodeObject(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	v, err := decodeJSON(body)
	if err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("variables must be a JSON object")
	}
	return m, nil
}

// finish checks names, coerces values, applies defaults and enforces required
// variables, then renders the canonical JSON.
func (op *Operation) finish(c *coercer, given map[string]any, failed map[string]bool) (json.RawMessage, error) {
	for _, k := range sortedKeys(given) {
		vi := op.vars[k]
		switch {
		case vi == nil:
			c.fail("/"+pointerEscape(k), noValue, "unknown variable %q; %s", short(k), op.publicNames())
		case vi.FromClaim != "":
			c.fail("/"+pointerEscape(k), noValue, "variable is set from the token")
		}
	}
	out := make(map[string]any, len(op.Variables))
	for _, vi := range op.Variables {
		if vi.FromClaim != "" {
			continue
		}
		v, present := given[vi.Name]
		if !present && failed[vi.Name] {
			continue
		}
		if !present {
			if vi.Default != nil {
				out[vi.Name] = vi.def
			} else if vi.Type.NonNull {
				c.fail("/"+vi.Name, noValue, "required variable $%s (%s) is missing", vi.Name, vi.Type.String())
			}
			continue
		}
		if x, ok := c.coerce(vi.Type, v, "/"+vi.Name, 1); ok {
			out[vi.Name] = x
		}
	}
	if len(c.errs) > 0 {
		return nil, inputError(c.errs)
	}
	b, err := canonical(out)
	if err != nil {
		return nil, inputError([]FieldError{{PropertyPath: "/", Message: err.Error()}})
	}
	return b, nil
}

// inputError sorts the errors by path, so the answer does not depend on the
// order in which they were found.
func inputError(errs []FieldError) *InputError {
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].PropertyPath < errs[j].PropertyPath })
	first := errs[0]
	msg := "invalid variables: " + first.PropertyPath + ": " + first.Message
	if len(errs) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return &InputError{Message: msg, Errors: errs}
}

// fromText turns query parameter values into a JSON-domain value for type t;
// finish checks it against t afterwards.
func (c *coercer) fromText(t *ast.Type, vals []string, path string) (any, bool) {
	if t.Elem == nil {
		return c.oneFromText(t, vals[0], path)
	}
	if len(vals) == 1 {
		if s := strings.TrimSpace(vals[0]); strings.HasPrefix(s, "[") {
			return c.jsonFromText(s, path)
		}
		x, ok := c.oneFromText(t.Elem, vals[0], path)
		if !ok {
			return nil, false
		}
		return []any{x}, true
	}
	out := make([]any, len(vals))
	good := true
	for i, s := range vals {
		x, ok := c.oneFromText(t.Elem, s, path+"/"+strconv.Itoa(i))
		out[i] = x
		good = good && ok
	}
	return out, good
}

// oneFromText parses one parameter value by its declared type: String and ID
// as is, Int/Float/Boolean strictly, enums as names, input objects and lists
// as JSON text.
func (c *coercer) oneFromText(t *ast.Type, s string, path string) (any, bool) {
	if t.Elem != nil {
		return c.fromText(t, []string{s}, path)
	}
	// As encoding/json does for bodies: invalid UTF-8 becomes U+FFFD, so
	// both ways in give the same canonical output.
	s = strings.ToValidUTF8(s, "\uFFFD")
	def := c.typeDef(t.NamedType)
	if def == nil {
		c.fail(path, noValue, "unknown type %s", t.NamedType)
		return nil, false
	}
	switch def.Kind {
	case ast.Enum:
		return s, true
	case ast.InputObject:
		return c.jsonFromText(s, path)
	case ast.Scalar:
	default:
		c.fail(path, noValue, "%s is not an input type", def.Name)
		return nil, false
	}
	switch def.Name {
	case "String", "ID":
		return s, true
	case "Boolean":
		switch s {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		c.fail(path, s, "must be a Boolean (true or false)")
	case "Int":
		if integerText.MatchString(s) {
			if i, err := strconv.ParseInt(s, 10, 32); err == nil {
				return json.Number(strconv.FormatInt(i, 10)), true
			}
		}
		c.fail(path, s, "must be an Int (a whole number from %d to %d)", math.MinInt32, math.MaxInt32)
	case "Float":
		if numberText.MatchString(s) {
			f, err := strconv.ParseFloat(s, 64)
			if err == nil && !math.IsInf(f, 0) {
				if jsonNumber.MatchString(s) {
					return json.Number(s), true
				}
				return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), true
			}
		}
		c.fail(path, s, "must be a Float (a finite number)")
	default:
		// Custom scalar: JSON when it plainly is, else the text itself.
		if t := strings.TrimSpace(s); t != "" && strings.ContainsRune(`{["`, rune(t[0])) {
			return c.jsonFromText(t, path)
		}
		return s, true
	}
	return nil, false
}

func (c *coercer) jsonFromText(s string, path string) (any, bool) {
	v, err := decodeJSON([]byte(s))
	if err != nil {
		c.fail(path, s, "malformed JSON: %v", err)
		return nil, false
	}
	return v, true
}

// InjectClaims fills every @fromClaim variable of vars (a JSON object from
// VariablesFromQuery or VariablesFromJSON) from lookup. A claim missing for a
// non-null variable is ErrClaimMissing; a claim that does not fit the
// variable's type is ErrClaimInvalid. A missing claim for a nullable variable
// leaves the variable out. The result is canonical JSON.
func (op *Operation) InjectClaims(vars json.RawMessage, lookup func(claim string) (any, bool)) (json.RawMessage, error) {
	if len(op.Claims) == 0 {
		return vars, nil
	}
	m, err := decodeObject(vars)
	if err != nil {
		return nil, fmt.Errorf("operation %s: %w", op.Name, err)
	}
	for _, cv := range op.Claims {
		var (
			val any
			ok  bool
		)
		if lookup != nil {
			val, ok = lookup(cv.Claim)
		}
		if !ok || val == nil {
			if cv.Type.NonNull {
				return nil, fmt.Errorf("%w: %q (for $%s)", ErrClaimMissing, cv.Claim, cv.Variable)
			}
			delete(m, cv.Variable)
			continue
		}
		raw, err := json.Marshal(val)
		var jv any
		if err == nil {
			jv, err = decodeJSON(raw)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %q (for $%s): %v", ErrClaimInvalid, cv.Claim, cv.Variable, err)
		}
		c := &coercer{schema: op.schema}
		x, ok := c.coerce(cv.Type, jv, "/"+cv.Variable, 1)
		if !ok {
			// The claim's value is not echoed: it may be personal data.
			return nil, fmt.Errorf("%w: %q does not fit $%s (%s)", ErrClaimInvalid, cv.Claim, cv.Variable, cv.Type.String())
		}
		m[cv.Variable] = x
	}
	return canonical(m)
}
