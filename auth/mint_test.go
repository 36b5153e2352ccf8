package auth

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMintRoundTrip(t *testing.T) {
	t.Parallel()
	cfg := Config{Secret: testSecret, Issuer: "https://fireboom.local", Audience: "api", RolesClaim: "realm_access.roles"}
	extra := map[string]any{
		"email":        "dev@example.com",
		"realm_access": map[string]any{"other": "kept"},
		"exp":          1, // overridden by ttl
	}
	tok, err := Mint(cfg, "dev", []string{"admin", "user"}, extra, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, nested := extra["realm_access"].(map[string]any)["roles"]; nested || extra["exp"] != 1 {
		t.Fatal("Mint modified the caller's claims")
	}
	a := newAuth(t, cfg)
	id, err := a.Authenticate(bearer(tok))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "dev" || !slices.Equal(id.Roles, []string{"admin", "user"}) {
		t.Fatalf("identity %v", id)
	}
	if email, _ := id.Claim("EMAIL"); email != "dev@example.com" {
		t.Fatalf("email %v", email)
	}
	if other, _ := id.Claim("realm_access.other"); other != "kept" {
		t.Fatalf("realm_access.other %v", other)
	}
	if d := time.Until(id.ExpiresAt); d < 59*time.Minute || d > time.Hour+time.Second {
		t.Fatalf("expires in %v", d)
	}
	// A different issuer or audience does not accept it.
	other := newAuth(t, Config{Secret: testSecret, Audience: "another"})
	if _, err := other.Authenticate(bearer(tok)); reasonOf(t, err) != ReasonBadAudience {
		t.Fatalf("other audience: %v", err)
	}
}

func TestMintErrors(t *testing.T) {
	t.Parallel()
	if _, err := Mint(Config{}, "u", nil, nil, time.Hour); !errors.Is(err, ErrNoSecret) {
		t.Errorf("no secret: %v", err)
	}
	if _, err := Mint(Config{Secret: "s"}, "u", nil, nil, 0); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("zero ttl: %v", err)
	}
	if _, err := Mint(Config{Secret: "s", RolesClaim: "a."}, "u", []string{"r"}, nil, time.Hour); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("bad roles claim: %v", err)
	}
}
