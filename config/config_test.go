package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSmallestConfigGetsDefaults(t *testing.T) {
	c, err := Parse([]byte(`{"upstream":{"url":"https://api.example.com/graphql"}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.OperationsDir != "operations" {
		t.Errorf("listen %q dir %q", c.Listen, c.OperationsDir)
	}
	if c.Upstream.SubscriptionURL != "wss://api.example.com/graphql" {
		t.Errorf("subscriptionUrl %q", c.Upstream.SubscriptionURL)
	}
	if c.Subscriptions.Heartbeat.D() != 15*time.Second || c.ShutdownTimeout.D() != 10*time.Second {
		t.Errorf("durations %v %v", c.Subscriptions.Heartbeat, c.ShutdownTimeout)
	}
	if *c.Auth.QueryParam != "access_token" || c.Limits.MaxBodyBytes != 1<<20 || c.Auth.JWT.RolesClaim != "roles" {
		t.Errorf("defaults %q %d %q", *c.Auth.QueryParam, c.Limits.MaxBodyBytes, c.Auth.JWT.RolesClaim)
	}
}

func TestContractExampleParses(t *testing.T) {
	src := `{
  "listen": "127.0.0.1:9991",
  "operationsDir": "operations",
  "upstream": {
    "url": "http://127.0.0.1:4000/graphql",
    "subscriptionUrl": "ws://127.0.0.1:4000/graphql",
    "headers": { "X-Api-Key": "${UPSTREAM_API_KEY}" },
    "forwardHeaders": ["Authorization"]
  },
  "auth": {
    "jwt": { "secret": "${JWT_SECRET}", "jwksUrl": "", "issuer": "", "audience": "", "rolesClaim": "roles" },
    "cookie": "fb_token",
    "queryParam": "access_token"
  },
  "subscriptions": { "heartbeat": "15s" },
  "operations": { "chat/Messages": { "liveInterval": "2s" } }
}`
	c, err := Parse([]byte(src), env(map[string]string{"UPSTREAM_API_KEY": "k1", "JWT_SECRET": "s3"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.Headers["X-Api-Key"] != "k1" || c.Auth.JWT.Secret != "s3" {
		t.Errorf("env not expanded: %+v %q", c.Upstream.Headers, c.Auth.JWT.Secret)
	}
	if c.Operations["chat/Messages"].LiveInterval.D() != 2*time.Second {
		t.Errorf("liveInterval %v", c.Operations["chat/Messages"].LiveInterval)
	}
}

func TestQueryParamEmptyTurnsItOff(t *testing.T) {
	c, err := Parse([]byte(`{"upstream":{"demo":true},"auth":{"queryParam":""}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Auth.QueryParam != "" {
		t.Errorf("queryParam %q", *c.Auth.QueryParam)
	}
}

func TestErrorsNameTheJSONPath(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`{"upstream":{"demo":true,"headers":[]}}`, "upstream.headers: expected object"},
		{`{"upstream":{"demo":true},"subscriptions":{"heartbeat":"soon"}}`, `subscriptions.heartbeat: bad duration "soon"`},
		{`{"upstream":{"demo":true},"subscriptions":{"heartbeat":15}}`, `subscriptions.heartbeat: expected a duration string`},
		{`{"upstream":{"demo":true},"listn":"x"}`, "listn: unknown key"},
		{`{"upstream":{"demo":true,"extra":1}}`, "upstream.extra: unknown key"},
		{`{"upstream":{"demo":"yes"}}`, "upstream.demo: expected boolean"},
		{`{"upstream":{"demo":true},"operations":{"A":{"liveInterval":"x"}}}`, `operations.A.liveInterval: bad duration "x"`},
		{`{"upstream":{"demo":true},"upstream2":{}}`, "upstream2: unknown key"},
		{`{"upstream":{"url":"http://h/g","headers":{"K":"${NOPE}"}}}`, "upstream.headers.K: environment variable NOPE is not set"},
		{`{}`, "upstream.url: required"},
		{`{"upstream":{"url":"ftp://x"}}`, "upstream.url: expected an http(s) URL"},
		{`{"upstream":{"demo":true},"limits":{"maxBodyBytes":"big"}}`, "limits.maxBodyBytes: expected integer"},
		{`{"upstream":{"demo":true},"upstream":{"forwardHeaders":["Bad Header"]}}`, "upstream.forwardHeaders[0]: not a valid header name"},
		{`{"upstream":{"demo":true},"cors":{"allowedOrigins":["*"],"allowCredentials":true}}`, "cors.allowCredentials"},
		{`{"upstream":{"demo":true},"subscriptions":{"slowConsumer":"panic"}}`, "subscriptions.slowConsumer"},
		{`{"upstream":{"demo":true},"trustedProxies":["10.0.0.0/8","10.0.0.300"]}`, `trustedProxies[1]: expected an IP address or a CIDR prefix such as 10.0.0.0/8, got "10.0.0.300"`},
		{`{"upstream":{"demo":true},"trustedProxies":"10.0.0.1"}`, "trustedProxies: expected array"},
		{`{"upstream":{"demo":true},"trustedProxies":["::ffff:0:0/90"]}`, "trustedProxies[0]: expected an IP address or a CIDR prefix"},
		{`{"upstream": {"demo": true},}`, "invalid JSON at line 1"},
		{`[]`, "(top level): expected object"},
	} {
		_, err := Parse([]byte(tc.src), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestLoadResolvesPathsAgainstConfigFolder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fireboom.json")
	if err := os.WriteFile(p, []byte(`{"upstream":{"demo":true},"operationsDir":"ops"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.OperationsDir != filepath.Join(dir, "ops") {
		t.Errorf("operationsDir %q", c.OperationsDir)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}
