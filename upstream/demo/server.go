package demo

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// SchemaSDL is the demo server's schema in GraphQL SDL.
//
//go:embed schema.graphqls
var SchemaSDL string

// Defaults of Options.
const (
	DefaultTickInterval = time.Second
	DefaultKeepAlive    = 10 * time.Second
	// DefaultInitTimeout is how long a WebSocket may wait before connection_init.
	DefaultInitTimeout = 10 * time.Second
)

const (
	// writeTimeout bounds one WebSocket write.
	writeTimeout = 10 * time.Second
	// closeGrace is how long Close lets connections finish their close
	// handshake before cutting them.
	closeGrace = time.Second
)

// Errors.
var (
	// ErrBadOptions wraps every invalid Options value.
	ErrBadOptions = errors.New("demo: bad options")
	// ErrClosed is returned for work asked of a closed server.
	ErrClosed = errors.New("demo: server closed")
)

// Options configure a Server. The zero value is a working server.
type Options struct {
	// TickInterval is the period of the stock ticker: 0 means
	// DefaultTickInterval, negative means no automatic ticks (prices then
	// change only through setPrice, which suits deterministic tests).
	TickInterval time.Duration
	// Protocols lists the WebSocket subprotocols offered, in order of
	// preference: ProtocolTransportWS and/or ProtocolGraphQLWS. nil means both,
	// graphql-transport-ws first. When set, a client offering none of them is
	// accepted without subprotocol and closed with 4406. When nil, a client
	// offering no subprotocol at all is spoken to in graphql-ws (gqlgen's
	// backward-compatible default).
	Protocols []string
	// KeepAlive is the keep-alive period: "ka" frames in graphql-ws, "ping"
	// frames in graphql-transport-ws (a client that does not answer with
	// "pong" within twice the period is disconnected). 0 means
	// DefaultKeepAlive, negative disables keep-alives.
	KeepAlive time.Duration
	// InitTimeout bounds the wait for connection_init: 0 means
	// DefaultInitTimeout, negative means forever.
	InitTimeout time.Duration
	// OnRequest, when set, is called for every HTTP request, WebSocket
	// upgrades included, before it is served (tests check forwarded headers).
	// It must not keep r.
	OnRequest func(r *http.Request)
	// InitFunc, when set, sees every connection_init payload (nil when the
	// client sent none); an error rejects the connection: graphql-ws gets a
	// connection_error frame carrying the error's text, both protocols a
	// close with code 4403.
	InitFunc func(payload map[string]any) error
	// Now is the clock for createdAt, publishedAt and serverTime; nil means
	// time.Now.
	Now func() time.Time
}

// Server is the demo GraphQL server. Create it with New, Start or StartAt
// and always Close it.
type Server struct {
	opts      Options
	protocols []string
	now       func() time.Time
	exec      *handler.Server
	chat      *chat
	ticker    *ticker
	stats     *stats

	ctx    context.Context // canceled by Close: ends every request and the ticker
	cancel context.CancelFunc

	// wg counts every goroutine the server owns: HTTP handlers (while
	// serving), accepted WebSocket connections (until gqlgen tore them down),
	// close handshakes, subscription goroutines, the ticker and Serve.
	wg     sync.WaitGroup
	mu     sync.Mutex
	closed bool
	conns  map[*wsConn]struct{}
	srv    *http.Server
	ln     net.Listener

	closeOnce sync.Once
	closeErr  error
}

// New returns a server that is not listening: serve Handler yourself, or use
// Start. It starts the ticker goroutine, so Close it.
func New(opts Options) (*Server, error) {
	protocols := opts.Protocols
	if protocols == nil {
		protocols = []string{ProtocolTransportWS, ProtocolGraphQLWS}
	}
	if len(protocols) == 0 {
		return nil, fmt.Errorf("%w: Protocols is empty (nil means both)", ErrBadOptions)
	}
	for i, p := range protocols {
		if p != ProtocolTransportWS && p != ProtocolGraphQLWS {
			return nil, fmt.Errorf("%w: Protocols[%d]: unknown subprotocol %q", ErrBadOptions, i, p)
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		protocols: slices.Clone(protocols),
		now:       now,
		chat:      newChat(),
		ticker:    newTicker(now()),
		stats:     newStats(),
		ctx:       ctx,
		cancel:    cancel,
		conns:     map[*wsConn]struct{}{},
	}
	s.exec = s.newExecutor()
	if interval := durationOr(opts.TickInterval, DefaultTickInterval); interval > 0 {
		s.wg.Add(1)
		go s.runTicker(interval)
	}
	return s, nil
}

// Start creates a server listening on a free loopback port ("127.0.0.1:0").
func Start(opts Options) (*Server, error) { return StartAt("127.0.0.1:0", opts) }

// StartAt creates a server listening on addr; tests restart an upstream on
// the address of a closed one with it. The GraphQL endpoint is at /graphql.
func StartAt(addr string, opts Options) (*Server, error) {
	s, err := New(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("demo: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/graphql", s.Handler())
	s.mu.Lock()
	s.ln = ln
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln) // returns ErrServerClosed on Close
	}()
	return s, nil
}

// Addr is the listening address ("127.0.0.1:port"), or "" when the server
// was made by New.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is the HTTP GraphQL endpoint, "http://127.0.0.1:port/graphql".
func (s *Server) URL() string { return "http://" + s.Addr() + "/graphql" }

// WebSocketURL is the subscription endpoint, "ws://127.0.0.1:port/graphql".
func (s *Server) WebSocketURL() string { return "ws://" + s.Addr() + "/graphql" }

// Handler serves GraphQL on any path it is mounted at: POST (and GET) for
// queries and mutations, WebSocket upgrades for subscriptions.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.opts.OnRequest != nil {
		s.opts.OnRequest(r)
	}
	if !s.enter() {
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	// Close must end this request even when the server is mounted elsewhere.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()

	if !isUpgrade(r) {
		s.stats.update(func(st *Stats) { st.HTTPRequests++ })
		s.exec.ServeHTTP(w, r.WithContext(context.WithValue(ctx, httpKey{}, true)))
		return
	}
	if s.opts.Protocols != nil && !offersAllowed(r, s.protocols) {
		refuseSubprotocol(w, r)
		return
	}
	t := &wsTrack{s: s}
	defer t.handlerDone()
	s.exec.ServeHTTP(w, r.WithContext(context.WithValue(ctx, wsTrackKey{}, t)))
}

// httpKey marks the context of operations that came over plain HTTP.
type httpKey struct{}

// enter counts a new goroutine of work in wg unless the server is closed.
// The check and the Add share the mutex Close takes before it waits, so no
// Add can race with Wait.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) newExecutor() *handler.Server {
	h := handler.New(NewExecutableSchema(Config{Resolvers: &resolver{s: s}}))
	ka := durationOr(s.opts.KeepAlive, DefaultKeepAlive)
	ws := transport.Websocket{
		Implementation: wsImpl{s: s},
		InitFunc:       s.initConn,
		InitTimeout:    max(durationOr(s.opts.InitTimeout, DefaultInitTimeout), 0),
		CloseFunc: func(ctx context.Context, _ int) {
			if t := trackOf(ctx); t != nil {
				t.release()
			}
		},
	}
	if ka > 0 {
		ws.KeepAlivePingInterval = ka // graphql-ws: "ka" frames
		ws.PingPongInterval = ka      // graphql-transport-ws: "ping", expecting "pong"
	}
	h.AddTransport(ws)
	// GraphQL over SSE (graphql-sse's distinct connections), for
	// upstream.subscriptionProtocol "sse": a POST that accepts
	// text/event-stream. Before POST, which would take it otherwise.
	h.AddTransport(transport.SSE{KeepAlivePingInterval: max(ka, 0)})
	h.AddTransport(transport.Options{})
	h.AddTransport(transport.GET{})
	h.AddTransport(transport.POST{})
	h.Use(extension.Introspection{})
	h.SetRecoverFunc(func(_ context.Context, err any) error {
		return fmt.Errorf("internal server error: %v", err) // never print from a library
	})
	h.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		if ctx.Value(httpKey{}) != nil {
			s.stats.operation(graphql.GetOperationContext(ctx))
		}
		return next(ctx)
	})
	return h
}

// initConn is gqlgen's WebsocketInitFunc.
func (s *Server) initConn(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	if t := trackOf(ctx); t != nil {
		t.mu.Lock()
		t.inited = true
		t.mu.Unlock()
	}
	s.stats.initPayload(p)
	if s.opts.InitFunc != nil {
		if err := s.opts.InitFunc(p); err != nil {
			reason := err.Error()
			if len(reason) > 120 { // a close reason holds at most 123 bytes
				reason = reason[:120]
			}
			ctx = transport.WithWebsocketCloseCode(ctx, 4403)
			return transport.AppendCloseReason(ctx, reason), nil, err
		}
	}
	return ctx, nil, nil
}

func (s *Server) runTicker(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.countDrops(s.ticker.tick(s.now()))
		}
	}
}

func (s *Server) countDrops(n int) {
	if n > 0 {
		s.stats.update(func(st *Stats) { st.Dropped += int64(n) })
	}
}

// Close stops the listener, closes every WebSocket (close frame 1000
// "terminated", or cut after a short grace when the peer does not answer),
// ends every subscription, stops the ticker and waits for all of it. Safe to
// call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv := s.srv
		s.mu.Unlock()
		s.cancel()
		if srv != nil {
			if err := srv.Close(); err != nil {
				s.closeErr = fmt.Errorf("demo: close: %w", err)
			}
		}
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeGrace):
			s.mu.Lock()
			for c := range s.conns {
				c.kill()
			}
			s.mu.Unlock()
			<-done
		}
	})
	return s.closeErr
}

func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
