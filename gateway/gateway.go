package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/source"
	"github.com/fireboom/fireboom/sse"
	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream"
	"github.com/fireboom/fireboom/web"
)

// Gateway serves the stored operations of one config.
type Gateway struct {
	cfg    *config.Config
	log    *slog.Logger
	auth   *auth.Authenticator
	client *upstream.Client
	// httpClient carries queries, mutations and introspection upstream.
	httpClient   *http.Client
	hub          *upstream.Hub              // upstream subscriptions over WebSocket; nil without an upstream
	sources      *source.Set                // event sources (PostgreSQL, NATS, Redis); nil without any
	httpSubs     *upstream.HTTPSubConfig    // or over SSE or multipart; nil for WebSocket
	httpSubStats upstream.HTTPSubStats      // their counters
	topics       *topic.Hub                 // every shared stream: subscriptions, live queries
	engine       topic.Engine               // the cluster, or nil (see cluster.go)
	apiDoc       atomic.Pointer[openAPIDoc] // /openapi.json of the current registry
	reg          registrySwap
	router       chi.Router
	met          *metrics
	cert         *certificate // the TLS certificate; nil without tls (see server.go)

	// shutdownCtx ends, and shutdown is closed, when the server begins a
	// graceful shutdown, so every open stream ends.
	shutdownCtx   context.Context
	shutdown      <-chan struct{}
	beginShutdown context.CancelFunc
	streams       atomic.Int64 // open client streams
	limits        streamLimits
	proxies       proxies // trustedProxies: whose X-Forwarded-For is believed
	ready         readyProbe
	bodyTimeout   time.Duration // bounds reading a request body (bodyReadTimeout)

	// liveCfg holds the settings SIGHUP may change (see settings and
	// ReloadConfig); cfg stays the config the gateway started with.
	liveCfg atomic.Pointer[config.Config]
	// reloadMu serializes registry rebuilds (hot reload, SIGHUP, the
	// schema loader); open indexes open streams by operation for them.
	reloadMu sync.Mutex
	open     openStreams

	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines owned by the gateway

	// detached counts the streams that outlived their handler (streamTo).
	detached     sync.WaitGroup
	detachMu     sync.Mutex
	detachClosed bool
	detachedSet  map[*detachedStream]struct{}
	// watcher notices the clients of detached streams leaving (closed
	// after them).
	watcher *sse.Watcher
}

// Options are the parts of a Gateway that are not in the config file.
type Options struct {
	// Logger receives the gateway's logs (default slog.Default()).
	Logger *slog.Logger
	// HTTPClient is used for upstream queries (default: a client with
	// the configured upstream timeout).
	HTTPClient *http.Client
	// AuthOptions tune the authenticator beyond the config file (JWKS
	// client and refresh intervals; tests shorten the unknown-kid limit).
	AuthOptions []auth.Option
	// TuneHub, if set, adjusts the upstream hub's settings before it is
	// made (tests shorten the connection_ack timeout).
	TuneHub func(*upstream.HubConfig)
	// TuneTopics, if set, adjusts the topic layer's settings before it is
	// built (tests shorten the resume hold).
	TuneTopics func(*topic.Config)
	// BodyTimeout bounds reading a request body (default 30 s; tests
	// shorten it).
	BodyTimeout time.Duration
	// Engine, when set, shares topics with the other instances of a
	// cluster (package cluster makes it from the config's "cluster"
	// section). Close closes it (when it has a Close method) after the
	// topics and before the upstream connections, so that the sources it
	// runs are handed over rather than cut.
	Engine topic.Engine
}

// New builds a Gateway. It loads the operations against the upstream
// schema; when the upstream cannot be reached it still starts, says so, and
// keeps trying in the background (operations answer 502 meanwhile).
func New(cfg *config.Config, opt Options) (*Gateway, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	hc := opt.HTTPClient
	if hc == nil {
		// The gateway owns its upstream transport so that Close can drop
		// its idle connections.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		hc = &http.Client{Timeout: cfg.Upstream.Timeout.D(), Transport: tr}
	}
	cert, err := loadCertificate(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		cfg:        cfg,
		log:        log,
		httpClient: hc,
		watcher:    sse.NewWatcher(),
		cancel:     cancel,
		proxies:    newProxies(cfg.TrustedProxies),
		cert:       cert,
	}
	g.shutdownCtx, g.beginShutdown = context.WithCancel(context.Background())
	g.shutdown = g.shutdownCtx.Done()
	g.bodyTimeout = opt.BodyTimeout
	if g.bodyTimeout <= 0 {
		g.bodyTimeout = bodyReadTimeout
	}
	g.auth, err = auth.New(ctx, AuthConfig(cfg), append([]auth.Option{auth.WithRefreshErrorHandler(func(err error) {
		log.Warn("JWKS refresh failed", "err", err)
	})}, opt.AuthOptions...)...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: %w", err)
	}
	g.client = upstream.NewClient(cfg.Upstream.URL, staticHeaders(cfg), hc)
	reconnected := make(chan struct{}, 1) // see refreshSchemaOnReconnect
	hubCfg := upstream.HubConfig{
		URL:                        cfg.Upstream.SubscriptionURL,
		MaxOperationsPerConnection: cfg.Upstream.MaxOperationsPerConnection,
		MaxConnections:             cfg.Upstream.MaxConnections,
		ReconnectTimeout:           cfg.Upstream.ReconnectTimeout.D(),
		OnReconnect:                func() { signal(reconnected) },
		Logger:                     log,
	}
	if opt.TuneHub != nil {
		opt.TuneHub(&hubCfg)
	}
	if cfg.HasUpstream() { // else event sources alone: no hub
		g.hub, err = upstream.NewHub(hubCfg)
		if err != nil {
			g.auth.Close()
			cancel()
			return nil, fmt.Errorf("upstream: %w", err)
		}
	}
	if g.sources, err = newSources(cfg, log); err != nil {
		g.auth.Close()
		cancel()
		return nil, fmt.Errorf("sources: %w", err)
	}
	if p := cfg.Upstream.SubscriptionProtocol; p == upstream.ProtocolSSE || p == upstream.ProtocolMultipart {
		// One request per subscription, on the upstream transport but
		// without its timeout, which would cut every stream.
		g.httpSubs = &upstream.HTTPSubConfig{
			URL: cfg.Upstream.SubscriptionURL, Protocol: p, Header: staticHeaders(cfg),
			ReconnectTimeout: cfg.Upstream.ReconnectTimeout.D(),
			HTTPClient:       &http.Client{Transport: hc.Transport}, Logger: log,
			Stats: &g.httpSubStats,
		}
	}
	g.liveCfg.Store(cfg)
	tcfg := topic.Config{Logger: log, Engine: opt.Engine}
	g.engine = opt.Engine
	if opt.TuneTopics != nil {
		opt.TuneTopics(&tcfg)
	}
	g.topics = topic.NewHub(tcfg)
	g.met = newMetrics(g)
	if err := g.loadSchema(ctx); err != nil {
		log.Warn("upstream unreachable at start: operations answer 502 until its schema can be read", "url", cfg.Upstream.URL, "err", err)
		g.install(buildRegistry(cfg.OperationsDir, nil, cfg))
		g.wg.Add(1)
		go g.schemaLoader(ctx)
	}
	g.router = g.routes()
	if cfg.Dev && cfg.Auth.JWT.Secret != "" && !loopback(cfg.Listen) {
		log.Warn(`"dev": true lets anyone who reaches ` + cfg.Listen + ` mint tokens at POST /_/token; use it on loopback only`)
	}
	if cert != nil {
		g.logCertificate("serving TLS", cert.cur.Load().Leaf)
	}
	g.watch(ctx)
	g.wg.Add(1)
	go g.refreshSchemaOnReconnect(ctx, reconnected)
	return g, nil
}

// AuthConfig maps the config file's auth section to the auth package.
func AuthConfig(cfg *config.Config) auth.Config {
	j := cfg.Auth.JWT
	return auth.Config{
		Secret:     j.Secret,
		JWKSURL:    j.JWKSURL,
		Issuer:     j.Issuer,
		Audience:   j.Audience,
		RolesClaim: j.RolesClaim,
		Leeway:     j.Leeway.D(),
		Cookie:     cfg.Auth.Cookie,
		QueryParam: *cfg.Auth.QueryParam,
	}
}

func staticHeaders(cfg *config.Config) http.Header {
	h := http.Header{}
	for k, v := range cfg.Upstream.Headers {
		h.Set(k, v)
	}
	return h
}

// routes wires the HTTP surface. Everything under /operations goes
// through handleOperation, the one point where identity is decided.
func (g *Gateway) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(g.requestLog, g.bodyDeadline)
	if c := newCORS(g.cfg); c != nil {
		r.Use(c.handler)
	}
	r.Use(g.recoverer)
	r.Get("/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/ready", g.handleReady)
	r.Handle("/metrics", g.met.handler())
	r.HandleFunc("/operations", g.handleIndex)
	r.HandleFunc("/operations/*", g.handleOperation)
	r.Get("/_/stats", g.handleStats)
	r.Get("/_/info", g.handleInfo)
	r.Get("/openapi.json", g.handleOpenAPI)
	if g.cfg.Dev && g.cfg.Auth.JWT.Secret != "" {
		r.Post("/_/token", g.handleMintToken)
	}
	r.Handle("/*", web.Handler())
	return r
}

// ServeHTTP makes the Gateway an http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.router.ServeHTTP(w, r)
}

// BeginShutdown ends every open stream with done (SSE first sends a retry
// hint) so clients reconnect elsewhere. Call it before http.Server.Shutdown,
// which waits for the streams to return.
func (g *Gateway) BeginShutdown() {
	g.beginShutdown()
}

// Close stops background work, completes every upstream subscription and
// closes upstream connections, waiting for all of it.
func (g *Gateway) Close() error {
	g.BeginShutdown()
	g.cancel()
	g.wg.Wait()
	g.waitStreams()
	_ = g.watcher.Close()
	g.topics.Close() // stops every source: completes upstream subscriptions
	g.closeEngine()  // hands the cluster's topics over while their sources can still stop cleanly
	err := g.hub.Close()
	if g.sources != nil {
		g.sources.Close()
	}
	g.auth.Close()
	g.httpClient.CloseIdleConnections()
	return err
}

// OperationCount reports the operations served and the files that failed.
func (g *Gateway) OperationCount() (served, failed int) {
	reg := g.reg.Load()
	return len(reg.endpoints), len(reg.problems)
}

// recoverer turns a panicking handler into a 500 without taking other
// requests down. http.ErrAbortHandler is re-raised, as net/http expects.
// It runs inside requestLog, whose writer tells whether the response has
// begun (then the connection is cut rather than a 500 appended).
func (g *Gateway) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				g.log.Error("handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
				if lw := requestLogWriter(w); lw != nil && lw.status != 0 {
					// A status and perhaps stream bytes are out: a JSON
					// body now would corrupt the response. Cut it instead.
					panic(http.ErrAbortHandler)
				}
				newError(http.StatusInternalServerError, codeInternal, "internal error").write(w)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// loopback reports whether a listen address is on the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// jitter spreads d by ±10% so that capped streams do not all reconnect at
// once.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	n := time.Now().UnixNano()
	return d - d/10 + time.Duration(n%int64(d/5+1))
}
