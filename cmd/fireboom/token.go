package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
)

// claimFlags collects repeated -claim k=v flags.
type claimFlags map[string]any

func (c claimFlags) String() string { return "" }

func (c claimFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("expected key=value, got %q", s)
	}
	c[k] = v
	return nil
}

// token prints a signed development JWT (HMAC secret from the config).
func token(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	path := fs.String("config", "fireboom.json", "config file")
	sub := fs.String("sub", "", "subject (required)")
	roles := fs.String("roles", "", "comma-separated roles")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	claims := claimFlags{}
	fs.Var(claims, "claim", "extra claim key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return fmt.Errorf("token: -sub is required")
	}
	if *ttl <= 0 {
		return fmt.Errorf("token: -ttl must be positive, got %s", *ttl)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if cfg.Auth.JWT.Secret == "" {
		return fmt.Errorf("token: %s has no auth.jwt.secret to sign with", *path)
	}
	var rs []string
	if *roles != "" {
		rs = strings.Split(*roles, ",")
	}
	tok, err := auth.Mint(gateway.AuthConfig(cfg), *sub, rs, claims, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
