package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/gateway"
	"github.com/fireboom/fireboom/upstream/demo"
)

// writeTokenConfig writes a fireboom.json for the repository's operations and
// returns its path.
func writeTokenConfig(t *testing.T, text string) string {
	t.Helper()
	ops, err := filepath.Abs("../../operations")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fireboom.json")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "${OPS}", ops)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// `fireboom token` prints one JWT carrying the subject, the roles (at the
// configured roles claim), the -claim values, iss and aud from the config,
// and the gateway serving that config accepts it.
func TestTokenCommand(t *testing.T) {
	d, err := demo.Start(demo.Options{TickInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	path := writeTokenConfig(t, `{"operationsDir": "${OPS}", "upstream": {"url": "`+d.URL()+`"},
		"auth": {"jwt": {"secret": "cmd-test-secret", "issuer": "https://fireboom.test", "audience": "fireboom-api", "rolesClaim": "realm_access.roles"}}}`)

	var stdout, stderr bytes.Buffer
	code := run([]string{"token", "-config", path, "-sub", "alice", "-roles", "admin,ops", "-claim", "tenant=acme", "-claim", "email=alice@example.com", "-ttl", "10m"}, &stdout, &stderr)
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	out := stdout.String()
	tok := strings.TrimSuffix(out, "\n")
	if strings.Count(out, "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout %q is not one JWT line", out)
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(context.Background(), gateway.AuthConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	id, err := a.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice" || !slices.Equal(id.Roles, []string{"admin", "ops"}) {
		t.Errorf("sub %q roles %q", id.Subject, id.Roles)
	}
	for claim, want := range map[string]any{"tenant": "acme", "email": "alice@example.com", "iss": "https://fireboom.test", "aud": "fireboom-api"} {
		if got, _ := id.Claim(claim); got != want {
			t.Errorf("claim %s = %v, want %v", claim, got, want)
		}
	}
	if ttl := time.Until(id.ExpiresAt); ttl <= 9*time.Minute || ttl > 10*time.Minute {
		t.Errorf("expires in %v, want about 10m", ttl)
	}

	g, err := gateway.New(cfg, gateway.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer func() {
		g.BeginShutdown()
		srv.Close()
		_ = g.Close()
	}()
	for _, c := range []struct{ method, path, body, want string }{
		{"GET", "/operations/chat/MyMessages", "", `{"data":{"myMessages":[]}}`},
		{"POST", "/operations/stocks/SetPrice", `{"symbol":"CLI","price":3}`, `"setPrice":{"symbol":"CLI","price":3,"seq":`},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), c.want) {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestTokenCommandErrors(t *testing.T) {
	withSecret := writeTokenConfig(t, `{"upstream": {"url": "http://127.0.0.1:1/graphql"}, "auth": {"jwt": {"secret": "s"}}}`)
	noSecret := writeTokenConfig(t, `{"upstream": {"url": "http://127.0.0.1:1/graphql"}}`)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no subject", []string{"token", "-config", withSecret}, "-sub is required"},
		{"zero ttl", []string{"token", "-config", withSecret, "-sub", "a", "-ttl", "0s"}, "token: -ttl must be positive, got 0s"},
		{"negative ttl", []string{"token", "-config", withSecret, "-sub", "a", "-ttl", "-1h"}, "token: -ttl must be positive, got -1h0m0s"},
		{"no secret", []string{"token", "-config", noSecret, "-sub", "alice"}, "no auth.jwt.secret"},
		{"bad claim", []string{"token", "-config", withSecret, "-sub", "alice", "-claim", "novalue"}, "expected key=value"},
		{"bad ttl", []string{"token", "-config", withSecret, "-sub", "alice", "-ttl", "-1h"}, "ttl must be positive"},
		{"no config", []string{"token", "-config", filepath.Join(t.TempDir(), "missing.json"), "-sub", "alice"}, "missing.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != 1 || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout.String(), stderr.String(), tc.want)
			}
		})
	}
}
