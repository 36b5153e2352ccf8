package auth

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Identity is a verified token's holder.
//
// Its String, GoString and LogValue leave out Token and Claims, so logging
// an Identity never writes the token.
type Identity struct {
	// Subject is the sub claim ("" if absent or not a string).
	Subject string
	// Roles are read from Config.RolesClaim, in token order, without
	// duplicates or empty names; nil when the token has no such claim.
	Roles []string
	// Claims is the decoded claim set. Numbers are json.Number, so large
	// integer ids keep every digit.
	Claims map[string]any
	// Token is the raw token (for forwarding upstream). Never log it.
	Token string
	// ExpiresAt is the exp claim (always set: exp is required).
	ExpiresAt time.Time
	// Source says where the token was found.
	Source Source
}

// Claim looks up a claim by name or dotted path.
//
// The WunderGraph claim names SUB, EMAIL, NAME and ROLES (any case for
// "roles") map to "sub", "email", "name" and the normalised Roles (a
// []string). Otherwise, at each level the whole remaining path is tried as
// one key first, then split at each dot from the left, so keys that contain
// dots work ("https://example.com/claims.tenant" finds key
// "https://example.com/claims" then "tenant"). A decimal segment indexes an
// array ("groups.0").
func (id *Identity) Claim(path string) (any, bool) {
	if id == nil {
		return nil, false
	}
	switch path {
	case "SUB":
		path = "sub"
	case "EMAIL":
		path = "email"
	case "NAME":
		path = "name"
	case "ROLES", "roles", "Roles":
		roles := id.Roles
		if roles == nil {
			roles = []string{}
		}
		return roles, true
	}
	return lookup(id.Claims, path)
}

// lookup walks path into v. The search is bounded by the claim set's shape:
// it only descends into keys that exist.
func lookup(v any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	switch node := v.(type) {
	case map[string]any:
		if x, ok := node[path]; ok {
			return x, true
		}
		for i := 0; i < len(path); i++ {
			if path[i] != '.' {
				continue
			}
			if child, ok := node[path[:i]]; ok {
				if x, ok := lookup(child, path[i+1:]); ok {
					return x, true
				}
			}
		}
	case []any:
		head, rest, more := strings.Cut(path, ".")
		n, err := strconv.Atoi(head)
		if err != nil || n < 0 || n >= len(node) || head != strconv.Itoa(n) {
			return nil, false
		}
		if !more {
			return node[n], true
		}
		return lookup(node[n], rest)
	}
	return nil, false
}

// rolesOf reads a roles claim: an array of strings (other elements are
// ignored) or one string of space-separated roles. Anything else: no roles.
func rolesOf(v any) []string {
	var raw []string
	switch x := v.(type) {
	case string:
		raw = strings.Fields(x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				raw = append(raw, s)
			}
		}
	case []string:
		raw = x
	}
	roles := make([]string, 0, len(raw))
	seen := make(map[string]bool, len(raw))
	for _, r := range raw {
		if r != "" && !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	return roles
}

// String describes the identity without its token or claims.
func (id *Identity) String() string {
	if id == nil {
		return "anonymous"
	}
	return fmt.Sprintf("sub=%q roles=%q exp=%s source=%s", id.Subject, id.Roles, id.ExpiresAt.UTC().Format(time.RFC3339), id.Source)
}

// GoString keeps %#v from printing the token.
func (id *Identity) GoString() string { return "auth.Identity{" + id.String() + "}" }

// LogValue implements slog.LogValuer without the token or claims.
func (id *Identity) LogValue() slog.Value {
	if id == nil {
		return slog.StringValue("anonymous")
	}
	return slog.GroupValue(
		slog.String("sub", id.Subject),
		slog.Any("roles", id.Roles),
		slog.Time("exp", id.ExpiresAt),
		slog.String("source", id.Source.String()),
	)
}

// ValidUntil is the moment Authenticate stops accepting id's token: its
// exp plus the leeway. An open stream must end then and not at exp itself,
// or a token accepted inside the leeway would open a stream that ends at
// once; acceptance and expiry use one deadline. The zero time means never.
func (a *Authenticator) ValidUntil(id *Identity) time.Time {
	if id == nil || id.ExpiresAt.IsZero() {
		return time.Time{}
	}
	return id.ExpiresAt.Add(max(a.cfg.Leeway, 0))
}
