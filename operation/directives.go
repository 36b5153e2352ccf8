package operation

import (
	"fmt"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// The gateway's own directives. They are not part of the upstream schema, so
// they are removed from the document before it is validated and sent.
const (
	dirRequireAuth = "requireAuthentication"
	dirRBAC        = "rbac"
	dirFromClaim   = "fromClaim"
)

// claimNames maps the enum-like @fromClaim names to claim names.
var claimNames = map[string]string{
	"SUB":   ClaimSub,
	"EMAIL": ClaimEmail,
	"NAME":  ClaimName,
	"ROLES": ClaimRoles,
}

// takeOperationDirectives reads and removes @requireAuthentication and @rbac.
func (op *Operation) takeOperationDirectives(file string, od *ast.OperationDefinition) []Problem {
	var (
		problems []Problem
		kept     ast.DirectiveList
		seen     = map[string]bool{}
	)
	for _, d := range od.Directives {
		switch d.Name {
		case dirRequireAuth, dirRBAC:
		default:
			kept = append(kept, d)
			continue
		}
		if seen[d.Name] {
			problems = append(problems, problemAt(file, d.Position, "@%s given more than once", d.Name))
			continue
		}
		seen[d.Name] = true
		op.needsAuth(d)
		if d.Name == dirRequireAuth {
			if len(d.Arguments) > 0 {
				problems = append(problems, problemAt(file, d.Position, "@%s takes no arguments", d.Name))
			}
			continue
		}
		problems = append(problems, op.readRBAC(file, d)...)
	}
	od.Directives = kept
	return problems
}

func (op *Operation) readRBAC(file string, d *ast.Directive) []Problem {
	var problems []Problem
	if len(d.Arguments) == 0 {
		problems = append(problems, problemAt(file, d.Position,
			"@rbac needs at least one of requireMatchAll, requireMatchAny, denyMatchAll, denyMatchAny"))
	}
	seen := map[string]bool{}
	for _, a := range d.Arguments {
		var dst *[]string
		switch a.Name {
		case "requireMatchAll":
			dst = &op.RBAC.RequireMatchAll
		case "requireMatchAny":
			dst = &op.RBAC.RequireMatchAny
		case "denyMatchAll":
			dst = &op.RBAC.DenyMatchAll
		case "denyMatchAny":
			dst = &op.RBAC.DenyMatchAny
		default:
			problems = append(problems, problemAt(file, a.Position,
				"@rbac: unknown argument %q (allowed: requireMatchAll, requireMatchAny, denyMatchAll, denyMatchAny)", a.Name))
			continue
		}
		if seen[a.Name] {
			problems = append(problems, problemAt(file, a.Position, "@rbac: argument %q given more than once", a.Name))
			continue
		}
		seen[a.Name] = true
		roles, err := roleList(a.Value)
		if err != nil {
			problems = append(problems, problemAt(file, a.Position, "@rbac(%s): %v", a.Name, err))
			continue
		}
		*dst = roles
	}
	return problems
}

// roleList accepts [admin, "editor"] or a single admin / "admin".
func roleList(v *ast.Value) ([]string, error) {
	if v == nil {
		return nil, fmt.Errorf("missing value")
	}
	if v.Kind != ast.ListValue {
		r, err := roleName(v)
		if err != nil {
			return nil, err
		}
		return []string{r}, nil
	}
	roles := make([]string, 0, len(v.Children))
	for _, c := range v.Children {
		r, err := roleName(c.Value)
		if err != nil {
			return nil, err
		}
		roles = append(roles, r)
	}
	return roles, nil
}

func roleName(v *ast.Value) (string, error) {
	if v == nil || (v.Kind != ast.EnumValue && v.Kind != ast.StringValue && v.Kind != ast.BlockValue) {
		return "", fmt.Errorf("roles are names (admin) or strings (\"admin\"), got %s", v.String())
	}
	if strings.TrimSpace(v.Raw) == "" {
		return "", fmt.Errorf("empty role name")
	}
	return v.Raw, nil
}

// takeVariableDirectives reads and removes @fromClaim from variable definitions.
func (op *Operation) takeVariableDirectives(file string, od *ast.OperationDefinition) []Problem {
	var problems []Problem
	for _, vd := range od.VariableDefinitions {
		var kept ast.DirectiveList
		found := false
		for _, d := range vd.Directives {
			if d.Name != dirFromClaim {
				kept = append(kept, d)
				continue
			}
			if found {
				problems = append(problems, problemAt(file, d.Position, "$%s: @fromClaim given more than once", vd.Variable))
				continue
			}
			found = true
			claim, err := readFromClaim(d)
			if err != nil {
				problems = append(problems, problemAt(file, d.Position, "$%s: @fromClaim: %v", vd.Variable, err))
				continue
			}
			if err := checkClaimType(claim, vd.Type); err != nil {
				problems = append(problems, problemAt(file, vd.Position, "$%s: @fromClaim(%s): %v", vd.Variable, claim, err))
				continue
			}
			if vd.DefaultValue != nil {
				problems = append(problems, problemAt(file, vd.Position,
					"$%s: a @fromClaim variable may not have a default value", vd.Variable))
				continue
			}
			op.Claims = append(op.Claims, ClaimVar{Variable: vd.Variable, Claim: claim, Type: vd.Type})
			op.needsAuth(d)
		}
		vd.Directives = kept
	}
	return problems
}

func readFromClaim(d *ast.Directive) (string, error) {
	var val *ast.Value
	for _, a := range d.Arguments {
		if a.Name != "name" {
			return "", fmt.Errorf("unknown argument %q (only name)", a.Name)
		}
		if val != nil {
			return "", fmt.Errorf("argument name given more than once")
		}
		val = a.Value
	}
	if val == nil {
		return "", fmt.Errorf("missing argument name: SUB, EMAIL, NAME, ROLES or a \"custom.json.path\"")
	}
	switch val.Kind {
	case ast.EnumValue:
		c, ok := claimNames[val.Raw]
		if !ok {
			return "", fmt.Errorf("unknown claim %s; use SUB, EMAIL, NAME, ROLES or a \"custom.json.path\" string", val.Raw)
		}
		return c, nil
	case ast.StringValue, ast.BlockValue:
		path := val.Raw
		if path == "" {
			return "", fmt.Errorf("empty claim path")
		}
		for _, seg := range strings.Split(path, ".") {
			if seg == "" {
				return "", fmt.Errorf("claim path %q has an empty segment", path)
			}
		}
		return path, nil
	default:
		return "", fmt.Errorf("name must be SUB, EMAIL, NAME, ROLES or a string path, got %s", val.String())
	}
}

// checkClaimType checks the well-known claims against the variable's type.
// Custom paths accept any type; their values are coerced at request time.
func checkClaimType(claim string, t *ast.Type) error {
	stringish := func(t *ast.Type) bool {
		return t != nil && t.Elem == nil && (t.NamedType == "String" || t.NamedType == "ID")
	}
	switch claim {
	case ClaimSub, ClaimEmail, ClaimName:
		if !stringish(t) {
			return fmt.Errorf("needs a String or ID variable, not %s", t.String())
		}
	case ClaimRoles:
		if t.Elem == nil || !stringish(t.Elem) {
			return fmt.Errorf("needs a list of String or ID ([String!]), not %s", t.String())
		}
	}
	return nil
}
