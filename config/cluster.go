package config

import (
	"net/url"
	"regexp"
	"time"
)

// Defaults of the cluster section.
const (
	DefaultClusterName      = "fireboom"
	DefaultClusterMaxEvents = 1000
	DefaultClusterMaxAge    = 10 * time.Minute
	DefaultLeaseTTL         = 5 * time.Second
	DefaultClusterReconnect = 30 * time.Second
)

// Cluster makes several gateway processes one cluster over NATS JetStream
// (CONTRACT §9): each topic's source runs on one instance, every event
// goes through one JetStream stream, ids are cluster-wide.
type Cluster struct {
	// NATS is the broker.
	NATS NATS `json:"nats"`
	// Name is the cluster's name: instances with the same nats.url and
	// name are one cluster (default "fireboom"; letters, digits, '-', '_').
	Name string `json:"name"`
	// Replay bounds what each topic keeps in JetStream for resume.
	Replay ClusterReplay `json:"replay"`
	// LeaseTTL is how long a topic's lease outlives its owner: a killed
	// instance's topics are taken over within about this long (default
	// 5s, at least 1s).
	LeaseTTL Duration `json:"leaseTTL"`
	// ReconnectTimeout is how long NATS may be unreachable before /ready
	// answers 503 and new streams are refused (default 30s).
	ReconnectTimeout Duration `json:"reconnectTimeout"`
}

// NATS says how to reach the broker.
type NATS struct {
	// URL is the server, nats://host:port (or tls://); required.
	URL string `json:"url"`
	// Token authenticates with a token; CredsFile with a credentials file
	// (relative to the config file's folder). At most one of them.
	Token     string `json:"token"`
	CredsFile string `json:"credsFile"`
}

// ClusterReplay bounds each topic's subject.
type ClusterReplay struct {
	// MaxEvents is how many records a topic keeps (default 1000).
	MaxEvents int `json:"maxEvents"`
	// MaxAge is how long they are kept (default 10m).
	MaxAge Duration `json:"maxAge"`
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c *Cluster) applyDefaults() {
	if c == nil {
		return
	}
	if c.Name == "" {
		c.Name = DefaultClusterName
	}
	if c.Replay.MaxEvents == 0 {
		c.Replay.MaxEvents = DefaultClusterMaxEvents
	}
	if c.Replay.MaxAge == 0 {
		c.Replay.MaxAge = Duration(DefaultClusterMaxAge)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = Duration(DefaultLeaseTTL)
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = Duration(DefaultClusterReconnect)
	}
}

func (c *Cluster) validate(bad func(path, format string, a ...any)) {
	if c == nil {
		return
	}
	if c.NATS.URL == "" {
		bad("cluster.nats.url", "required (such as nats://127.0.0.1:4222)")
	} else if u, err := url.Parse(c.NATS.URL); err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls") {
		bad("cluster.nats.url", "expected a nats:// or tls:// URL, got %q", c.NATS.URL)
	}
	if c.NATS.Token != "" && c.NATS.CredsFile != "" {
		bad("cluster.nats", `set "token" or "credsFile", not both`)
	}
	if !clusterName.MatchString(c.Name) {
		bad("cluster.name", "use letters, digits, '-' and '_', got %q", c.Name)
	}
	if c.Replay.MaxEvents < 0 {
		bad("cluster.replay.maxEvents", "must not be negative")
	}
	if c.LeaseTTL.D() < time.Second {
		bad("cluster.leaseTTL", "must be at least 1s")
	}
}
