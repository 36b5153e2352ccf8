package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults for Config and the options of New.
const (
	// DefaultRolesClaim is the claim path read for roles when Config.RolesClaim is "".
	DefaultRolesClaim = "roles"
	// DefaultLeeway is the clock skew allowed on exp and nbf when Config.Leeway is 0.
	DefaultLeeway = 5 * time.Second
	// DefaultRefreshInterval is how often the JWKS is refetched in the background.
	DefaultRefreshInterval = 15 * time.Minute
	// DefaultUnknownKIDInterval is the minimum time between two refetches
	// triggered by tokens whose kid is not in the JWKS.
	DefaultUnknownKIDInterval = 30 * time.Second
	// DefaultFetchTimeout bounds one JWKS HTTP request.
	DefaultFetchTimeout = 10 * time.Second
	// MaxTokenBytes is the longest token accepted; longer ones are "malformed".
	MaxTokenBytes = 16 << 10
)

var (
	hmacAlgs       = []string{"HS256", "HS384", "HS512"}
	asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// Config says how tokens are found and verified. Every zero value is usable.
type Config struct {
	// Secret is the HMAC key for HS256/384/512. "" = no HMAC.
	Secret string
	// JWKSURL is an http(s) URL serving a JSON Web Key Set with RSA, ECDSA or
	// Ed25519 public keys. "" = no JWKS. Symmetric ("oct") and encryption
	// ("use":"enc") keys in the set are ignored.
	JWKSURL string
	// Issuer, when set, must equal the token's iss claim.
	Issuer string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// RolesClaim is the dotted claim path holding the roles ("" = "roles";
	// "realm_access.roles" for Keycloak). The value is an array of strings or
	// one string of space-separated roles.
	RolesClaim string
	// Leeway is the clock skew allowed on exp and nbf: 0 = DefaultLeeway,
	// negative = none.
	Leeway time.Duration
	// Algorithms optionally narrows the accepted algorithms. nil = every
	// algorithm the configured keys support. Naming an algorithm no
	// configured key can verify (or "none") is a config error.
	Algorithms []string
	// Cookie is the name of a cookie holding the token. "" = not read.
	Cookie string
	// QueryParam is the name of a query parameter holding the token
	// (the gateway passes "access_token" by default). "" = not read.
	QueryParam string
}

// Option tunes New beyond the Config; mostly for the JWKS client and tests.
type Option func(*options) error

type options struct {
	client          *http.Client
	refreshInterval time.Duration
	unknownKID      time.Duration
	fetchTimeout    time.Duration
	onRefreshError  func(error)
	now             func() time.Time
}

// WithHTTPClient sets the client used to fetch the JWKS. The default is a
// private client whose idle connections Close releases.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return fmt.Errorf("%w: nil http client", ErrInvalidConfig)
		}
		o.client = c
		return nil
	}
}

// WithRefreshInterval sets how often the JWKS is refetched in the background
// (default DefaultRefreshInterval). After a failed fetch it is retried sooner,
// backing off from one second up to this interval.
func WithRefreshInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: refresh interval must be positive", ErrInvalidConfig)
		}
		o.refreshInterval = d
		return nil
	}
}

// WithUnknownKIDInterval sets the minimum time between two JWKS refetches
// triggered by an unknown kid (default DefaultUnknownKIDInterval). Requests
// never wait for this limit: while it holds, an unknown kid is rejected at once.
func WithUnknownKIDInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: unknown kid interval must be positive", ErrInvalidConfig)
		}
		o.unknownKID = d
		return nil
	}
}

// WithFetchTimeout bounds one JWKS HTTP request (default DefaultFetchTimeout).
func WithFetchTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: fetch timeout must be positive", ErrInvalidConfig)
		}
		o.fetchTimeout = d
		return nil
	}
}

// WithRefreshErrorHandler receives every failed JWKS fetch (errors wrap
// ErrJWKSFetch), so the caller can log it; the package itself never logs.
// It is called from the refresh goroutine or from a request's goroutine.
func WithRefreshErrorHandler(f func(error)) Option {
	return func(o *options) error {
		o.onRefreshError = f
		return nil
	}
}

// WithClock replaces time.Now for exp/nbf checks (tests).
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalidConfig)
		}
		o.now = now
		return nil
	}
}

// Authenticator verifies request tokens. It is safe for concurrent use.
// Close stops its background JWKS refresh.
type Authenticator struct {
	cfg       Config
	secret    []byte
	algs      map[string]bool
	parser    *jwt.Parser
	keys      *keySet // nil without JWKSURL
	closeOnce sync.Once
}

// New validates cfg and, with a JWKSURL, fetches the key set once (bounded by
// ctx and the fetch timeout) and starts a background refresh that lives
// until Close; ctx does not bound the refresh. An unreachable JWKS is not an
// error: it is reported to the refresh error handler, tokens are rejected
// with reason "no_keys" until a fetch succeeds, and fetches are retried.
//
// With neither Secret nor JWKSURL, authentication is not configured: New
// succeeds, Authenticate checks no token (every request is anonymous) and
// Verify rejects every token with reason "not_configured".
func New(ctx context.Context, cfg Config, opts ...Option) (*Authenticator, error) {
	o := options{
		refreshInterval: DefaultRefreshInterval,
		unknownKID:      DefaultUnknownKIDInterval,
		fetchTimeout:    DefaultFetchTimeout,
		now:             time.Now,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	cfg, err := normalize(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{cfg: cfg, algs: map[string]bool{}}
	if cfg.Secret != "" {
		a.secret = []byte(cfg.Secret)
	}
	for _, alg := range cfg.Algorithms {
		a.algs[alg] = true
	}
	leeway := cfg.Leeway
	if leeway < 0 {
		leeway = 0
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithLeeway(leeway),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(o.now),
		jwt.WithJSONNumber(),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		popts = append(popts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(popts...)
	if cfg.JWKSURL != "" {
		a.keys = newKeySet(ctx, cfg.JWKSURL, o)
	}
	return a, nil
}

// normalize fills defaults and checks cfg; errors wrap ErrInvalidConfig.
func normalize(cfg Config) (Config, error) {
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = DefaultRolesClaim
	}
	if slices.Contains(strings.Split(cfg.RolesClaim, "."), "") {
		return cfg, fmt.Errorf("%w: rolesClaim %q has an empty path segment", ErrInvalidConfig, cfg.RolesClaim)
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.JWKSURL != "" {
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("%w: jwksUrl must be an absolute http(s) URL", ErrInvalidConfig)
		}
	}
	var supported []string
	if cfg.Secret != "" {
		supported = append(supported, hmacAlgs...)
	}
	if cfg.JWKSURL != "" {
		supported = append(supported, asymmetricAlgs...)
	}
	if cfg.Algorithms == nil {
		cfg.Algorithms = supported
		return cfg, nil
	}
	algs := make([]string, 0, len(cfg.Algorithms))
	for _, alg := range cfg.Algorithms {
		if !slices.Contains(supported, alg) {
			return cfg, fmt.Errorf("%w: algorithm %q is not supported by the configured keys (HMAC needs secret; RS/PS/ES/EdDSA need jwksUrl)", ErrInvalidConfig, alg)
		}
		if !slices.Contains(algs, alg) {
			algs = append(algs, alg)
		}
	}
	if len(algs) == 0 && len(supported) > 0 {
		return cfg, fmt.Errorf("%w: algorithms is empty", ErrInvalidConfig)
	}
	cfg.Algorithms = algs
	return cfg, nil
}

// Configured reports whether a secret or a JWKS URL is set, i.e. whether any
// token can ever be accepted.
func (a *Authenticator) Configured() bool {
	return a != nil && (a.secret != nil || a.keys != nil)
}

// QueryParam is the query parameter read for tokens ("" = none), for the
// gateway's reserved-parameter list and StripQueryToken.
func (a *Authenticator) QueryParam() string { return a.cfg.QueryParam }

// Close stops the background JWKS refresh and waits for it. Safe to call
// more than once, and on a nil Authenticator.
func (a *Authenticator) Close() {
	if a == nil {
		return
	}
	a.closeOnce.Do(func() {
		if a.keys != nil {
			a.keys.close()
		}
	})
}
