package gateway

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/fireboom/fireboom/auth"
	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/upstream"
)

// endpoint is one served operation with its per-operation settings.
type endpoint struct {
	*operation.Operation
	policy     auth.Policy
	dedup      bool
	replayLast bool
	live       time.Duration
}

// registry is an immutable snapshot of the loaded operations; a reload
// swaps in a new one.
type registry struct {
	dir       string      // the operations folder it was loaded from
	schema    *ast.Schema // nil while the upstream schema is unknown
	endpoints map[string]*endpoint
	// pending names operation files found on disk while the schema is
	// unknown: their endpoints answer 502 until it arrives.
	pending  map[string]bool
	problems []operation.Problem
	loadedAt time.Time
}

// sorted lists the public endpoints by name.
func (r *registry) sorted() []*endpoint {
	out := make([]*endpoint, 0, len(r.endpoints))
	for _, e := range r.endpoints {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// buildRegistry loads every operation under dir against schema, with the
// per-operation settings and load checks of cfg. With a nil schema it only
// lists the operation names, which answer 502 meanwhile.
func buildRegistry(dir string, schema *ast.Schema, cfg *config.Config) *registry {
	reg := &registry{dir: dir, schema: schema, endpoints: map[string]*endpoint{}, loadedAt: time.Now()}
	if schema == nil {
		reg.pending = pendingNames(dir)
		return reg
	}
	ops, problems := operation.LoadDir(dir, schema, loadChecks(cfg)...)
	reg.problems = problems
	for _, op := range ops {
		if op.Internal {
			continue
		}
		s := cfg.Operations[op.Name]
		e := &endpoint{
			Operation:  op,
			policy:     auth.Policy(op.RBAC),
			dedup:      s.Dedup == nil || *s.Dedup,
			replayLast: s.ReplayLast,
			live:       s.LiveInterval.D(),
		}
		reg.endpoints[op.Name] = e
	}
	return reg
}

func pendingNames(dir string) map[string]bool {
	names := map[string]bool{}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".graphql") {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return nil
		}
		name := filepath.ToSlash(strings.TrimSuffix(rel, ".graphql"))
		if !strings.HasPrefix(name, "internal/") && !strings.Contains(name, "/internal/") {
			names[name] = true
		}
		return nil
	})
	return names
}

// LoadOperations reads the upstream schema of cfg once and loads every
// operation of cfg.OperationsDir against it, as the gateway does, for the
// commands that work without serving (`fireboom check`, `fireboom
// openapi`). ops holds internal operations too; problems are the events
// schema's (events.schemaFile) and the files that do not load. The error
// is the schema's.
func LoadOperations(ctx context.Context, cfg *config.Config) (*ast.Schema, []*operation.Operation, []operation.Problem, error) {
	client := upstream.NewClient(cfg.Upstream.URL, staticHeaders(cfg), &http.Client{Timeout: cfg.Upstream.Timeout.D()})
	schema, evProblems, err := fetchSchema(ctx, cfg, client)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the schema: %w", err)
	}
	ops, problems := operation.LoadDir(cfg.OperationsDir, schema, loadChecks(cfg)...)
	return schema, ops, append(evProblems, problems...), nil
}

// UnknownOperations lists, sorted, the keys of cfg.Operations (the
// "operations" settings of fireboom.json) for which exists is false: the
// settings of an operation that does not exist, a typo that would
// otherwise be silently ignored.
func UnknownOperations(cfg *config.Config, exists func(name string) bool) []string {
	var unknown []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Operations)) {
		if !exists(name) {
			unknown = append(unknown, name)
		}
	}
	return unknown
}

// fetchSchema reads the schema operations compile against: the upstream's
// (from the SDL file when configured, else by introspection; none without
// an upstream) extended by events.schemaFile. problems are the events
// schema's; with any, the schema is the upstream's alone (see
// operation.BuildSchema).
func fetchSchema(ctx context.Context, cfg *config.Config, client *upstream.Client) (*ast.Schema, []operation.Problem, error) {
	var base *ast.Source
	if cfg.HasUpstream() {
		var err error
		if base, err = fetchUpstreamSDL(ctx, cfg, client); err != nil {
			return nil, nil, err
		}
	}
	var events *operation.EventsSchema
	if f := cfg.Events.SchemaFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("events schema: %w", err)
		}
		events = &operation.EventsSchema{File: f, SDL: b, Sources: cfg.SourceKinds()}
	}
	return operation.BuildSchema(base, events)
}

// fetchUpstreamSDL reads the upstream schema as SDL.
func fetchUpstreamSDL(ctx context.Context, cfg *config.Config, client *upstream.Client) (*ast.Source, error) {
	if cfg.Upstream.SchemaFile != "" {
		b, err := os.ReadFile(cfg.Upstream.SchemaFile)
		if err != nil {
			return nil, err
		}
		return &ast.Source{Name: cfg.Upstream.SchemaFile, Input: string(b)}, nil
	}
	body, status, err := client.Do(ctx, upstream.Request{Query: operation.IntrospectionQuery, OperationName: "IntrospectionQuery"})
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return nil, fmt.Errorf("%w: introspection answered HTTP %d", upstream.ErrUnavailable, status)
	}
	sdl, err := operation.SDLFromIntrospection(body)
	if err != nil {
		return nil, err
	}
	return &ast.Source{Name: "introspection.graphql", Input: sdl}, nil
}

// schemaLoader fetches the schema until it succeeds, with backoff, then
// installs the registry. It is owned by the Gateway.
func (g *Gateway) schemaLoader(ctx context.Context) {
	defer g.wg.Done()
	delay := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		if err := g.loadSchema(ctx); err == nil {
			return
		} else if !errors.Is(err, context.Canceled) {
			g.log.Warn("upstream schema still unavailable; retrying", "err", err, "in", (2 * delay).String())
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// loadSchema fetches the schema and reloads the operations against it.
func (g *Gateway) loadSchema(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	schema, evProblems, err := fetchSchema(cctx, g.cfg, g.client)
	if err != nil {
		return err
	}
	// The build and the swap happen under reloadMu so that a concurrent
	// Reload cannot install a registry built without this schema.
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	reg := buildRegistry(g.cfg.OperationsDir, schema, g.settings())
	reg.problems = append(evProblems, reg.problems...)
	g.installLocked(reg)
	return nil
}

// install swaps in a registry and logs what it holds.
func (g *Gateway) install(reg *registry) {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.installLocked(reg)
}

// installLocked swaps in a registry, ending the streams of operations it
// changes or drops (see swapLocked), and logs what it holds. g.reloadMu
// is held.
func (g *Gateway) installLocked(reg *registry) {
	g.swapLocked(reg)
	for _, p := range reg.problems {
		g.log.Error("operation not served", "problem", p.String())
	}
	if reg.schema != nil {
		g.log.Info("operations loaded", "served", len(reg.endpoints), "failed", len(reg.problems))
		g.checkSettings(reg)
	}
}

// checkSettings warns about "operations" entries of fireboom.json that
// name no served operation (a typo would otherwise be silently ignored)
// and about liveInterval on anything but a query.
func (g *Gateway) checkSettings(reg *registry) {
	cfg := g.settings()
	for _, name := range UnknownOperations(cfg, func(name string) bool { return reg.endpoints[name] != nil }) {
		g.log.Warn("fireboom.json names no served operation", "key", "operations."+name)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Operations)) {
		if ep := reg.endpoints[name]; ep != nil && ep.live > 0 && ep.Kind != operation.Query {
			g.log.Warn("liveInterval applies to queries only", "key", "operations."+name+".liveInterval", "kind", string(ep.Kind))
		}
	}
}

// registrySwap is the atomic holder of the current registry.
type registrySwap = atomic.Pointer[registry]
