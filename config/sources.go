package config

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// Source kinds, as written in fireboom.json ("sources": {"pg": {"postgres": {...}}}).
const (
	SourcePostgres = "postgres"
	SourceNATS     = "nats"
	SourceRedis    = "redis"
)

// Source is one event source (CONTRACT §10): exactly one of its fields is
// set, and that field names its kind.
type Source struct {
	// Postgres listens with LISTEN and publishes with pg_notify; URL is a
	// postgres:// or postgresql:// connection URL.
	Postgres *SourceConn `json:"postgres"`
	// NATS subscribes to and publishes on subjects; URL is nats://, tls://,
	// ws:// or wss://, or a comma-separated list of them.
	NATS *SourceConn `json:"nats"`
	// Redis uses pub/sub channels; URL is redis://, rediss:// or unix://.
	Redis *SourceConn `json:"redis"`
}

// SourceConn says where an event source is.
type SourceConn struct {
	// URL is the server's address, credentials included where needed
	// (use ${ENV} for secrets). Required.
	URL string `json:"url"`
}

// Kind returns SourcePostgres, SourceNATS or SourceRedis, or "" when not
// exactly one kind is set (validation reports that).
func (s Source) Kind() string {
	kinds := s.kinds()
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// URL returns the URL of the source's one kind.
func (s Source) URL() string {
	for _, c := range []*SourceConn{s.Postgres, s.NATS, s.Redis} {
		if c != nil {
			return c.URL
		}
	}
	return ""
}

func (s Source) kinds() []string {
	var k []string
	if s.Postgres != nil {
		k = append(k, SourcePostgres)
	}
	if s.NATS != nil {
		k = append(k, SourceNATS)
	}
	if s.Redis != nil {
		k = append(k, SourceRedis)
	}
	return k
}

// Events declares the GraphQL schema of the event sources.
type Events struct {
	// SchemaFile is an SDL file (relative to the config file's folder)
	// whose @listen and @publish fields are fed by, or publish to, the
	// sources. It extends the upstream schema; with no upstream it stands
	// alone and declares its own type Query. Default: none (no event
	// fields).
	SchemaFile string `json:"schemaFile"`
}

// SourceKinds maps each configured source's name to its kind, as package
// operation checks @listen and @publish against.
func (c *Config) SourceKinds() map[string]string {
	m := make(map[string]string, len(c.Sources))
	for name, s := range c.Sources {
		m[name] = s.Kind()
	}
	return m
}

// HasUpstream reports whether a GraphQL upstream is configured; without
// one, the gateway serves event sources alone.
func (c *Config) HasUpstream() bool { return c.Upstream.Demo || c.Upstream.URL != "" }

var sourceName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// sourceSchemes are the URL schemes each kind accepts.
var sourceSchemes = map[string][]string{
	SourcePostgres: {"postgres", "postgresql"},
	SourceNATS:     {"nats", "tls", "ws", "wss"},
	SourceRedis:    {"redis", "rediss", "unix"},
}

// validateSources checks "sources" and "events"; bad is validate's reporter.
func (c *Config) validateSources(bad func(path, format string, a ...any)) {
	names := make([]string, 0, len(c.Sources))
	for name := range c.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := c.Sources[name]
		path := "sources." + name
		if !sourceName.MatchString(name) {
			bad(path, "a source name is letters, digits, '_' and '-', starting with a letter or '_'")
		}
		switch kinds := s.kinds(); len(kinds) {
		case 0:
			bad(path, `expected exactly one of "postgres", "nats", "redis"`)
			continue
		case 1:
		default:
			bad(path, "expected exactly one of \"postgres\", \"nats\", \"redis\", got %s", strings.Join(kinds, " and "))
			continue
		}
		kind := s.Kind()
		path += "." + kind + ".url"
		u := s.URL()
		if u == "" {
			bad(path, "required")
			continue
		}
		urls := []string{u}
		if kind == SourceNATS {
			urls = strings.Split(u, ",")
		}
		for _, one := range urls {
			if !sourceURL(strings.TrimSpace(one), sourceSchemes[kind]) {
				// Never echo the URL: it may carry a password.
				bad(path, "expected a %s URL", strings.Join(sourceSchemes[kind], "://, ")+"://")
				break
			}
		}
	}
	if len(c.Sources) > 0 && c.Events.SchemaFile == "" {
		bad("events.schemaFile", "required when sources are configured (the SDL of their @listen and @publish fields)")
	}
}

func sourceURL(s string, schemes []string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return u.Host != "" || (sc == "unix" && u.Path != "")
		}
	}
	return false
}
