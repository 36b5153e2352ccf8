package auth

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Mint signs an HS256 token with cfg.Secret for local development
// (`fireboom token`, the dashboard's dev token). It sets sub, iat and exp
// (now + ttl), iss and aud when cfg has them, and roles at cfg.RolesClaim
// (nested objects for a dotted path; omitted when roles is nil). These win
// over the same names in claims. claims is not modified.
func Mint(cfg Config, subject string, roles []string, claims map[string]any, ttl time.Duration) (string, error) {
	if cfg.Secret == "" {
		return "", ErrNoSecret
	}
	if ttl <= 0 {
		return "", fmt.Errorf("%w: token ttl must be positive", ErrInvalidConfig)
	}
	path := cfg.RolesClaim
	if path == "" {
		path = DefaultRolesClaim
	}
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			return "", fmt.Errorf("%w: rolesClaim %q has an empty path segment", ErrInvalidConfig, path)
		}
	}
	c := jwt.MapClaims{}
	maps.Copy(c, claims)
	now := time.Now()
	c["iat"] = jwt.NewNumericDate(now)
	c["exp"] = jwt.NewNumericDate(now.Add(ttl))
	if subject != "" {
		c["sub"] = subject
	}
	if cfg.Issuer != "" {
		c["iss"] = cfg.Issuer
	}
	if cfg.Audience != "" {
		c["aud"] = cfg.Audience
	}
	if roles != nil {
		setPath(c, segs, append([]string{}, roles...))
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(cfg.Secret))
}

// setPath stores v at segs, copying each map on the way so the caller's
// nested maps are never changed, and replacing non-objects with objects.
func setPath(m map[string]any, segs []string, v any) {
	for _, s := range segs[:len(segs)-1] {
		child, _ := m[s].(map[string]any)
		next := make(map[string]any, len(child)+1)
		maps.Copy(next, child)
		m[s] = next
		m = next
	}
	m[segs[len(segs)-1]] = v
}
