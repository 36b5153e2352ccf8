package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSourcesParse(t *testing.T) {
	src := `{
  "upstream": {"demo": true},
  "sources": {
    "pg":    { "postgres": { "url": "postgres://app@127.0.0.1:5432/app" } },
    "bus":   { "nats":     { "url": "nats://127.0.0.1:4222, nats://127.0.0.1:4223" } },
    "cache": { "redis":    { "url": "redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0" } }
  },
  "events": { "schemaFile": "events.graphql" }
}`
	c, err := Parse([]byte(src), env(map[string]string{"REDIS_PASSWORD": "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pg": SourcePostgres, "bus": SourceNATS, "cache": SourceRedis}
	if got := c.SourceKinds(); !reflect.DeepEqual(got, want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	if u := c.Sources["cache"].URL(); u != "redis://:pw@127.0.0.1:6379/0" {
		t.Errorf("redis url %q", u)
	}
	if c.Events.SchemaFile != "events.graphql" {
		t.Errorf("schemaFile %q", c.Events.SchemaFile)
	}
}

func TestEventsAloneNeedNoUpstream(t *testing.T) {
	c, err := Parse([]byte(`{"sources":{"pg":{"postgres":{"url":"postgresql://127.0.0.1/app"}}},"events":{"schemaFile":"e.graphql"}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HasUpstream() {
		t.Error("HasUpstream true without upstream")
	}
}

func TestSourceErrorsNameTheJSONPath(t *testing.T) {
	const ev = `,"events":{"schemaFile":"e.graphql"}`
	for _, tc := range []struct{ src, want string }{
		{`{"upstream":{"demo":true},"sources":{"pg":{}}` + ev + `}`,
			`sources.pg: expected exactly one of "postgres", "nats", "redis"`},
		{`{"upstream":{"demo":true},"sources":{"pg":{"postgres":{"url":"postgres://h/d"},"redis":{"url":"redis://h"}}}` + ev + `}`,
			`sources.pg: expected exactly one of "postgres", "nats", "redis", got postgres and redis`},
		{`{"upstream":{"demo":true},"sources":{"pg":{"mysql":{"url":"x"}}}` + ev + `}`,
			"sources.pg.mysql: unknown key (known: nats, postgres, redis)"},
		{`{"upstream":{"demo":true},"sources":{"pg":{"postgres":{}}}` + ev + `}`,
			"sources.pg.postgres.url: required"},
		{`{"upstream":{"demo":true},"sources":{"pg":{"postgres":{"url":"http://secret@h/d"}}}` + ev + `}`,
			"sources.pg.postgres.url: expected a postgres://, postgresql:// URL"},
		{`{"upstream":{"demo":true},"sources":{"bus":{"nats":{"url":"nats://h:4222,redis://h"}}}` + ev + `}`,
			"sources.bus.nats.url: expected a nats://, tls://, ws://, wss:// URL"},
		{`{"upstream":{"demo":true},"sources":{"c":{"redis":{"url":"${NOPE}"}}}` + ev + `}`,
			"sources.c.redis.url: environment variable NOPE is not set"},
		{`{"upstream":{"demo":true},"sources":{"c":{"redis":{"url":5}}}` + ev + `}`,
			"sources.c.redis.url: expected string"},
		{`{"upstream":{"demo":true},"sources":{"a b":{"redis":{"url":"redis://h"}}}` + ev + `}`,
			"sources.a b: a source name is letters"},
		{`{"upstream":{"demo":true},"sources":[]` + ev + `}`, "sources: expected object"},
		{`{"upstream":{"demo":true},"sources":{"c":{"redis":{"url":"redis://h"}}}}`,
			"events.schemaFile: required when sources are configured"},
		{`{"upstream":{"demo":true},"events":{"file":"x"}}`, "events.file: unknown key (known: schemaFile)"},
		{`{"sources":{}}`, "upstream.url: required"},
	} {
		_, err := Parse([]byte(tc.src), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.src, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error echoes the URL: %v", tc.src, err)
		}
	}
}

func TestEventsSchemaFileResolvesAgainstConfigFolder(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fireboom.json")
	if err := os.WriteFile(p, []byte(`{"events":{"schemaFile":"events.graphql"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Events.SchemaFile != filepath.Join(dir, "events.graphql") {
		t.Errorf("schemaFile %q", c.Events.SchemaFile)
	}
}
