package auth

// Policy is an @rbac directive: WunderGraph semantics, exact and
// case-sensitive role names, empty lists are no constraint.
type Policy struct {
	// RequireMatchAll: the roles must include every one of these.
	RequireMatchAll []string `json:"requireMatchAll,omitempty"`
	// RequireMatchAny: the roles must include at least one of these.
	RequireMatchAny []string `json:"requireMatchAny,omitempty"`
	// DenyMatchAll: denied if the roles include every one of these.
	DenyMatchAll []string `json:"denyMatchAll,omitempty"`
	// DenyMatchAny: denied if the roles include any of these.
	DenyMatchAny []string `json:"denyMatchAny,omitempty"`
}

// IsZero reports whether the policy has no constraint (allows everyone,
// though @rbac still implies authentication).
func (p Policy) IsZero() bool {
	return len(p.RequireMatchAll) == 0 && len(p.RequireMatchAny) == 0 &&
		len(p.DenyMatchAll) == 0 && len(p.DenyMatchAny) == 0
}

// Allows reports whether a holder of roles passes every constraint.
func (p Policy) Allows(roles []string) bool {
	has := make(map[string]bool, len(roles))
	for _, r := range roles {
		has[r] = true
	}
	all := func(want []string) bool {
		for _, w := range want {
			if !has[w] {
				return false
			}
		}
		return true
	}
	anyOf := func(want []string) bool {
		for _, w := range want {
			if has[w] {
				return true
			}
		}
		return false
	}
	switch {
	case len(p.RequireMatchAll) > 0 && !all(p.RequireMatchAll):
		return false
	case len(p.RequireMatchAny) > 0 && !anyOf(p.RequireMatchAny):
		return false
	case len(p.DenyMatchAll) > 0 && all(p.DenyMatchAll):
		return false
	case len(p.DenyMatchAny) > 0 && anyOf(p.DenyMatchAny):
		return false
	}
	return true
}
