package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults for settings left out of fireboom.json.
const (
	DefaultListen                     = "127.0.0.1:9991"
	DefaultOperationsDir              = "operations"
	DefaultHeartbeat                  = 15 * time.Second
	DefaultShutdownTimeout            = 10 * time.Second
	DefaultMaxBodyBytes               = 1 << 20
	DefaultQueryParam                 = "access_token"
	DefaultRolesClaim                 = "roles"
	DefaultReplayBuffer               = 256
	DefaultMaxOperationsPerConnection = 100
	DefaultUpstreamTimeout            = 30 * time.Second
	DefaultReconnectTimeout           = 30 * time.Second
	DefaultWriteTimeout               = 10 * time.Second
	DefaultSubscriptionProtocol       = "ws"
)

// MinReconnectTimeout is the smallest upstream.reconnectTimeout: the first
// reconnect attempt comes after about 100ms.
const MinReconnectTimeout = 100 * time.Millisecond

// Config is the whole of fireboom.json. Every field's zero value is
// replaced by the default its comment names (see Defaults).
type Config struct {
	// Listen is the address served (default 127.0.0.1:9991).
	Listen string `json:"listen"`
	// TLS serves HTTPS, with HTTP/2 and HTTP/1.1, when set (see TLS).
	TLS TLS `json:"tls"`
	// HTTP2 tunes HTTP/2 (see HTTP2).
	HTTP2 HTTP2 `json:"http2"`
	// OperationsDir holds the *.graphql operations (default "operations",
	// relative to the config file's folder).
	OperationsDir string `json:"operationsDir"`
	// Dev turns on development helpers: the dashboard's token minting
	// endpoint (POST /_/token), which exists only with Dev and an HMAC secret.
	Dev bool `json:"dev"`
	// Upstream is the GraphQL server behind the gateway.
	Upstream Upstream `json:"upstream"`
	// Auth configures the one HTTP authentication of every endpoint.
	Auth Auth `json:"auth"`
	// CORS configures cross-origin access (off when no origin is listed).
	CORS CORS `json:"cors"`
	// Subscriptions tunes client streams.
	Subscriptions Subscriptions `json:"subscriptions"`
	// Limits bounds request sizes.
	Limits Limits `json:"limits"`
	// Log chooses the log format and level.
	Log Log `json:"log"`
	// ShutdownTimeout bounds a graceful shutdown (default 10s).
	ShutdownTimeout Duration `json:"shutdownTimeout"`
	// TrustedProxies lists the load balancers in front of the gateway (IP
	// addresses or CIDR prefixes). From such a peer, the client's address
	// is read from X-Forwarded-For (see ParseProxy); from any other peer
	// the header is ignored, so it cannot be spoofed. Default: none.
	TrustedProxies []string `json:"trustedProxies"`
	// Operations holds per-operation settings, keyed by operation name
	// ("chat/Messages").
	Operations map[string]Operation `json:"operations"`
	// Sources are the event sources (PostgreSQL, NATS, Redis) by name, as
	// @listen and @publish name them (default: none).
	Sources map[string]Source `json:"sources"`
	// Events declares the GraphQL schema of the event sources.
	Events Events `json:"events"`
	// Cluster, when set, makes this instance one of a cluster over NATS
	// JetStream (see Cluster); nil: one process, in-memory replay.
	Cluster *Cluster `json:"cluster"`

	// Dir is the folder of the config file; relative paths resolve
	// against it. Not read from JSON.
	Dir string `json:"-"`
}

// Upstream is the GraphQL server the gateway fronts.
type Upstream struct {
	// URL is the GraphQL HTTP endpoint. Required unless Demo is set.
	URL string `json:"url"`
	// SubscriptionURL is where subscriptions go: the WebSocket endpoint
	// with SubscriptionProtocol "ws" (default: URL with http→ws,
	// https→wss), the http(s) endpoint with "sse" or "multipart"
	// (default: URL).
	SubscriptionURL string `json:"subscriptionUrl"`
	// SubscriptionProtocol is how the upstream streams subscriptions:
	// "ws" (default: a WebSocket speaking graphql-transport-ws or
	// graphql-ws), "sse" (GraphQL over SSE, the graphql-sse protocol's
	// distinct connections mode, as GraphQL Yoga and Hot Chocolate serve)
	// or "multipart" (Apollo's multipart HTTP subscriptions, as Apollo
	// Router serves). With "sse" and "multipart" each upstream
	// subscription is one HTTP request.
	SubscriptionProtocol string `json:"subscriptionProtocol"`
	// Demo starts the built-in demo GraphQL server in-process on a free
	// loopback port and points the gateway at it.
	Demo bool `json:"demo"`
	// Headers are sent on every upstream request and WebSocket upgrade.
	Headers map[string]string `json:"headers"`
	// ForwardHeaders names client request headers copied upstream.
	ForwardHeaders []string `json:"forwardHeaders"`
	// SchemaFile is an SDL file used instead of introspection (optional).
	SchemaFile string `json:"schemaFile"`
	// Timeout bounds one query or mutation (default 30s).
	Timeout Duration `json:"timeout"`
	// MaxOperationsPerConnection is how many subscriptions share one
	// upstream WebSocket before another opens (default 100).
	MaxOperationsPerConnection int `json:"maxOperationsPerConnection"`
	// MaxConnections caps upstream WebSockets (0: no cap).
	MaxConnections int `json:"maxConnections"`
	// ReconnectTimeout is how long a subscription WebSocket that dropped is
	// re-dialled (backoff 100ms doubling to 5s, with jitter) while client
	// streams stay open; past it they end with UpstreamUnavailable
	// (default 30s, at least 100ms).
	ReconnectTimeout Duration `json:"reconnectTimeout"`
}

// Auth configures token extraction and verification.
type Auth struct {
	JWT JWT `json:"jwt"`
	// Cookie is the name of a cookie that may carry the token ("" = off).
	Cookie string `json:"cookie"`
	// QueryParam is the query parameter that may carry the token, for
	// EventSource (default "access_token"; "" turns it off).
	QueryParam *string `json:"queryParam"`
}

// JWT configures token verification.
type JWT struct {
	// Secret is the HMAC key (HS256/384/512).
	Secret string `json:"secret"`
	// JWKSURL serves RSA/ECDSA/EdDSA public keys.
	JWKSURL string `json:"jwksUrl"`
	// Issuer and Audience are checked when set.
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// RolesClaim is the dotted path of the roles claim (default "roles").
	RolesClaim string `json:"rolesClaim"`
	// Leeway tolerates clock skew on exp and nbf (default: the auth
	// package's default).
	Leeway Duration `json:"leeway"`
}

// Configured reports whether tokens can be verified: a secret or a JWKS
// URL is set. Without either, tokens are passed upstream unchecked and
// operations may not require authentication.
func (j JWT) Configured() bool { return j.Secret != "" || j.JWKSURL != "" }

// CORS configures cross-origin requests.
type CORS struct {
	// AllowedOrigins lists exact origins ("https://app.example.com"), or
	// "*" for any origin without credentials.
	AllowedOrigins []string `json:"allowedOrigins"`
	// AllowCredentials lets browsers send cookies; only with explicit
	// origins, never with "*".
	AllowCredentials bool `json:"allowCredentials"`
}

// Subscriptions tunes client streams.
type Subscriptions struct {
	// Heartbeat is the idle interval between keep-alive writes (default 15s).
	Heartbeat Duration `json:"heartbeat"`
	// WriteTimeout bounds each write to a client (default 10s).
	WriteTimeout Duration `json:"writeTimeout"`
	// ReplayBuffer is how many recent events each shared upstream
	// subscription keeps for Last-Event-ID resume (default 256).
	ReplayBuffer int `json:"replayBuffer"`
	// QueueEvents and QueueBytes bound each client's queue (defaults 1024
	// events, 4 MiB).
	QueueEvents int `json:"queueEvents"`
	QueueBytes  int `json:"queueBytes"`
	// SlowConsumer is the policy when a client's queue is full:
	// "disconnect" (default) or "drop-oldest".
	SlowConsumer string `json:"slowConsumer"`
	// MaxStreams caps open streams gateway-wide (0: no cap).
	MaxStreams int `json:"maxStreams"`
	// MaxStreamsPerIdentity caps open streams per token subject, or per
	// client IP when anonymous (0: no cap).
	MaxStreamsPerIdentity int `json:"maxStreamsPerIdentity"`
	// MaxLifetime ends a stream after about this long (jittered) so that
	// load balancers can rebalance; clients resume (0: no cap).
	MaxLifetime Duration `json:"maxLifetime"`
}

// Limits bounds request sizes.
type Limits struct {
	// MaxBodyBytes bounds a request body (default 1 MiB).
	MaxBodyBytes int64 `json:"maxBodyBytes"`
}

// Log chooses the log output.
type Log struct {
	// Format is "text" (default) or "json".
	Format string `json:"format"`
	// Level is "debug", "info" (default), "warn" or "error".
	Level string `json:"level"`
}

// Operation holds per-operation settings.
type Operation struct {
	// LiveInterval enables ?wg_live=true on a query, polling at this
	// interval.
	LiveInterval Duration `json:"liveInterval"`
	// Dedup shares identical upstream subscriptions (default true).
	Dedup *bool `json:"dedup"`
	// ReplayLast gives a late joiner the most recent event first.
	ReplayLast bool `json:"replayLast"`
}

// Duration is a time.Duration written as a Go duration string ("15s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON reads a duration string such as "2s" or "1m30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) == 0 || b[0] != '"' {
		return errors.New(`expected a duration string such as "15s"`)
	}
	s = string(b[1 : len(b)-1])
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// Load reads, decodes and validates the config file at path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Dir = filepath.Dir(abs)
	c.resolvePaths()
	if c.TLS.Enabled() {
		// The files are read now so that a bad one is an error of the
		// config (at start, in check, on SIGHUP), not of the first client.
		if _, err := LoadKeyPair(c.TLS); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return c, nil
}

// Parse decodes and validates config JSON; lookup resolves ${NAME}.
// Paths stay as written (Load resolves them).
func Parse(b []byte, lookup func(string) (string, bool)) (*Config, error) {
	var c Config
	if err := decode(b, &c, lookup); err != nil {
		return nil, err
	}
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.OperationsDir == "" {
		c.OperationsDir = DefaultOperationsDir
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(DefaultShutdownTimeout)
	}
	if c.Upstream.SubscriptionProtocol == "" {
		c.Upstream.SubscriptionProtocol = DefaultSubscriptionProtocol
	}
	if c.Upstream.SubscriptionURL == "" && c.Upstream.URL != "" {
		c.Upstream.SubscriptionURL = c.Upstream.URL
		if c.Upstream.SubscriptionProtocol == "ws" {
			c.Upstream.SubscriptionURL = WebSocketURL(c.Upstream.URL)
		}
	}
	if c.Upstream.ReconnectTimeout == 0 {
		c.Upstream.ReconnectTimeout = Duration(DefaultReconnectTimeout)
	}
	if c.Upstream.Timeout == 0 {
		c.Upstream.Timeout = Duration(DefaultUpstreamTimeout)
	}
	if c.Upstream.MaxOperationsPerConnection == 0 {
		c.Upstream.MaxOperationsPerConnection = DefaultMaxOperationsPerConnection
	}
	if c.Auth.QueryParam == nil {
		p := DefaultQueryParam
		c.Auth.QueryParam = &p
	}
	if c.Auth.JWT.RolesClaim == "" {
		c.Auth.JWT.RolesClaim = DefaultRolesClaim
	}
	s := &c.Subscriptions
	if s.Heartbeat == 0 {
		s.Heartbeat = Duration(DefaultHeartbeat)
	}
	if s.WriteTimeout == 0 {
		s.WriteTimeout = Duration(DefaultWriteTimeout)
	}
	if s.ReplayBuffer == 0 {
		s.ReplayBuffer = DefaultReplayBuffer
	}
	if s.SlowConsumer == "" {
		s.SlowConsumer = "disconnect"
	}
	if c.Limits.MaxBodyBytes == 0 {
		c.Limits.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	c.Cluster.applyDefaults()
}

func (c *Config) validate() error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "expected host:port, got %q", c.Listen)
	}
	u := c.Upstream
	httpSubs := u.SubscriptionProtocol == "sse" || u.SubscriptionProtocol == "multipart"
	switch {
	case u.SubscriptionProtocol != "ws" && !httpSubs:
		bad("upstream.subscriptionProtocol", `expected "ws", "sse" or "multipart", got %q`, u.SubscriptionProtocol)
	case u.Demo && httpSubs:
		bad("upstream.subscriptionProtocol", `the demo upstream serves subscriptions over "ws" only`)
	}
	switch {
	case u.Demo && u.URL != "":
		bad("upstream", `set either "demo" or "url", not both`)
	case !u.Demo && u.URL == "" && c.Events.SchemaFile == "":
		bad("upstream.url", `required (or set "demo": true, or serve event sources alone with "events": {"schemaFile": ...})`)
	case u.URL != "":
		if !validURL(u.URL, "http", "https") {
			bad("upstream.url", "expected an http(s) URL, got %q", u.URL)
		}
		if httpSubs && !validURL(u.SubscriptionURL, "http", "https") {
			bad("upstream.subscriptionUrl", "expected an http(s) URL with subscriptionProtocol %q, got %q",
				u.SubscriptionProtocol, u.SubscriptionURL)
		} else if u.SubscriptionProtocol == "ws" && !validURL(u.SubscriptionURL, "ws", "wss") {
			bad("upstream.subscriptionUrl", "expected a ws(s) URL, got %q", u.SubscriptionURL)
		}
	}
	for name := range u.Headers {
		if !validHeaderName(name) {
			bad("upstream.headers."+name, "not a valid header name")
		}
	}
	for i, name := range u.ForwardHeaders {
		if !validHeaderName(name) {
			bad(fmt.Sprintf("upstream.forwardHeaders[%d]", i), "not a valid header name")
		}
	}
	if u.MaxOperationsPerConnection < 0 {
		bad("upstream.maxOperationsPerConnection", "must not be negative")
	}
	if u.MaxConnections < 0 {
		bad("upstream.maxConnections", "must not be negative")
	}
	if u.ReconnectTimeout.D() < MinReconnectTimeout {
		bad("upstream.reconnectTimeout", "must be at least %s", MinReconnectTimeout)
	}
	if j := c.Auth.JWT; j.JWKSURL != "" && !validURL(j.JWKSURL, "http", "https") {
		bad("auth.jwt.jwksUrl", "expected an http(s) URL")
	}
	for i, o := range c.CORS.AllowedOrigins {
		if o == "*" {
			if c.CORS.AllowCredentials {
				bad("cors.allowCredentials", `not allowed with origin "*"`)
			}
			continue
		}
		if p, err := url.Parse(o); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.Path != "" {
			bad(fmt.Sprintf("cors.allowedOrigins[%d]", i), "expected an origin such as https://app.example.com, got %q", o)
		}
	}
	s := c.Subscriptions
	if s.SlowConsumer != "disconnect" && s.SlowConsumer != "drop-oldest" {
		bad("subscriptions.slowConsumer", `expected "disconnect" or "drop-oldest", got %q`, s.SlowConsumer)
	}
	for path, n := range map[string]int{
		"subscriptions.replayBuffer": s.ReplayBuffer, "subscriptions.queueEvents": s.QueueEvents,
		"subscriptions.queueBytes": s.QueueBytes, "subscriptions.maxStreams": s.MaxStreams,
		"subscriptions.maxStreamsPerIdentity": s.MaxStreamsPerIdentity,
	} {
		if n < 0 {
			bad(path, "must not be negative")
		}
	}
	for i, p := range c.TrustedProxies {
		if _, err := ParseProxy(p); err != nil {
			bad(fmt.Sprintf("trustedProxies[%d]", i), "expected an IP address or a CIDR prefix such as 10.0.0.0/8, got %q", p)
		}
	}
	c.validateSources(bad)
	if c.Limits.MaxBodyBytes < 0 {
		bad("limits.maxBodyBytes", "must not be negative")
	}
	c.validateTLS(bad)
	if f := c.Log.Format; f != "text" && f != "json" {
		bad("log.format", `expected "text" or "json", got %q`, f)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", `expected "debug", "info", "warn" or "error", got %q`, c.Log.Level)
	}
	c.Cluster.validate(bad)
	return errors.Join(sortErrs(errs)...)
}

func (c *Config) resolvePaths() {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(c.Dir, p)
	}
	c.OperationsDir = abs(c.OperationsDir)
	c.Upstream.SchemaFile = abs(c.Upstream.SchemaFile)
	c.Events.SchemaFile = abs(c.Events.SchemaFile)
	c.TLS.CertFile = abs(c.TLS.CertFile)
	c.TLS.KeyFile = abs(c.TLS.KeyFile)
	if c.Cluster != nil {
		c.Cluster.NATS.CredsFile = abs(c.Cluster.NATS.CredsFile)
	}
}

// ParseProxy reads a trustedProxies entry: a CIDR prefix, or one address
// (a prefix of its full length). IPv4-mapped IPv6 forms are read as the
// IPv4 they map, as client addresses are.
func ParseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, err
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("%s: an IPv4-mapped prefix needs at least 96 bits", s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// WebSocketURL maps an http(s) URL to its ws(s) twin.
func WebSocketURL(u string) string {
	switch {
	case strings.HasPrefix(u, "https://"):
		return "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		return "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

func validURL(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return true
		}
	}
	return false
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
