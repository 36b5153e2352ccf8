package gateway

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/operation"
)

// Hot reload: the operations folder is re-read (on a file change, see
// watch.go, or on SIGHUP through Reload) into a new registry that is
// swapped in atomically. Open streams are handled per operation: the
// streams of an operation whose compiled form is unchanged keep their
// upstream subscription and never notice; the streams of a changed or
// removed operation end with a GraphQL error naming why, then done.

// Stream endings of a reload. The events are shared by every stream they
// end; events are never modified once pushed.
var (
	// endChanged ends the streams of an operation whose file changed.
	endChanged = event.NewError("OperationReloaded", "operation changed")
	// endRemoved ends the streams of an operation whose file is gone.
	endRemoved = event.NewError("OperationRemoved", "operation removed")
	// endInvalid ends the streams of an operation that no longer
	// validates against a new upstream schema.
	endInvalid = event.NewError("OperationInvalid", "operation no longer valid against the upstream schema")
)

// Stream end reasons added by reloads (label values of
// fireboom_stream_ends_total, beside sse's reasons).
const (
	reasonReloaded = "reloaded"
	reasonRemoved  = "removed"
)

// openStreams indexes the open client streams by operation name so that a
// registry swap can end those of the operations it changed.
type openStreams struct {
	mu     sync.Mutex
	byName map[string]map[*trackedStream]struct{}
}

// trackedStream is one open stream of one endpoint.
type trackedStream struct {
	ep *endpoint
	q  *event.Queue
	// endedBy is the stream end reason when a reload closed q (guarded by
	// openStreams.mu); "" otherwise.
	endedBy string
}

// track registers a client stream of ep. When the registry no longer
// serves ep as it is (a reload raced with the request), the queue is
// closed at once with the reload's ending, so the client sees the same
// bytes as a stream that was open during the reload.
func (g *Gateway) track(ep *endpoint, q *event.Queue) *trackedStream {
	ts := &trackedStream{ep: ep, q: q}
	o := &g.open
	o.mu.Lock()
	defer o.mu.Unlock()
	// Swaps happen under o.mu, so the registry read here is the one every
	// later swap will diff against.
	reg := g.reg.Load()
	if ev, reason := ending(reg, ep); ev != nil {
		if q.Close(ev) {
			ts.endedBy = reason
		}
		return ts
	}
	if o.byName == nil {
		o.byName = map[string]map[*trackedStream]struct{}{}
	}
	set := o.byName[ep.Name]
	if set == nil {
		set = map[*trackedStream]struct{}{}
		o.byName[ep.Name] = set
	}
	set[ts] = struct{}{}
	return ts
}

// untrack removes a stream once it ended and reports the reload reason
// that ended it ("" when something else did).
func (g *Gateway) untrack(ts *trackedStream) string {
	o := &g.open
	o.mu.Lock()
	defer o.mu.Unlock()
	if set := o.byName[ts.ep.Name]; set != nil {
		delete(set, ts)
		if len(set) == 0 {
			delete(o.byName, ts.ep.Name)
		}
	}
	return ts.endedBy
}

// ending says how a stream of ep ends under reg: nil when reg still serves
// the same operation.
func ending(reg *registry, ep *endpoint) (*event.Event, string) {
	cur := reg.endpoints[ep.Name]
	switch {
	case cur == nil && reg.failed(ep.Name):
		return endInvalid, reasonRemoved
	case cur == nil:
		return endRemoved, reasonRemoved
	case !sameOperation(cur, ep):
		return endChanged, reasonReloaded
	}
	return nil, ""
}

// sameOperation reports whether a stream opened on a keeps its meaning
// under b: the same text sent upstream, the same access rules, the same
// claim variables and live interval. Settings that only matter when a
// stream starts (dedup, replayLast) do not count.
func sameOperation(a, b *endpoint) bool {
	if a == b {
		return true
	}
	return a.Kind == b.Kind && a.OperationName == b.OperationName && a.Query == b.Query &&
		a.RequiresAuth == b.RequiresAuth && a.live == b.live &&
		slices.Equal(a.RBAC.RequireMatchAll, b.RBAC.RequireMatchAll) &&
		slices.Equal(a.RBAC.RequireMatchAny, b.RBAC.RequireMatchAny) &&
		slices.Equal(a.RBAC.DenyMatchAll, b.RBAC.DenyMatchAll) &&
		slices.Equal(a.RBAC.DenyMatchAny, b.RBAC.DenyMatchAny) &&
		slices.EqualFunc(a.Claims, b.Claims, func(x, y operation.ClaimVar) bool {
			return x.Variable == y.Variable && x.Claim == y.Claim && x.Type.String() == y.Type.String()
		})
}

// failed reports whether the operation name has a load problem in r.
func (r *registry) failed(name string) bool {
	for _, p := range r.problems {
		if n, ok := r.nameOf(p.File); ok && n == name {
			return true
		}
	}
	return false
}

// nameOf maps a file path under the registry's folder to its operation
// name.
func (r *registry) nameOf(file string) (string, bool) {
	rel, err := filepath.Rel(r.dir, file)
	if err != nil || !strings.HasSuffix(rel, operation.FileExt) || strings.HasPrefix(rel, "..") {
		return "", false
	}
	return filepath.ToSlash(strings.TrimSuffix(rel, operation.FileExt)), true
}

// swapLocked installs next and ends the streams of every operation that it
// changes or drops. g.reloadMu is held.
func (g *Gateway) swapLocked(next *registry) {
	o := &g.open
	o.mu.Lock()
	defer o.mu.Unlock()
	g.reg.Store(next)
	for name, set := range o.byName {
		var ev *event.Event
		var reason string
		for ts := range set { // every stream of a set has the same operation
			ev, reason = ending(next, ts.ep)
			break
		}
		if ev == nil {
			continue
		}
		n := 0
		for ts := range set {
			if ts.q.Close(ev) {
				ts.endedBy = reason
				n++
			}
		}
		delete(o.byName, name)
		g.log.Info("streams ended by reload", "operation", name, "streams", n, "reason", reason)
	}
}

// Reload re-reads the operations folder and swaps in the result. A file
// that no longer compiles keeps its last good version (its problem is
// logged as file:line:col: message); a removed file's operation answers
// 404. Streams of changed or removed operations end (see endChanged,
// endRemoved); all other streams go on untouched. Reload returns the
// problems found (joined), or nil when every file compiled.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	cur := g.reg.Load()
	next := buildRegistry(g.cfg.OperationsDir, cur.schema, g.settings())
	var kept []string
	var errs []error
	for _, p := range next.problems {
		errs = append(errs, p)
		if p.File == next.dir || p.File == "" {
			// The folder itself is unreadable (removed or replaced
			// mid-deploy): change nothing rather than drop everything.
			g.met.reloads.WithLabelValues("failed").Inc()
			g.log.Error("operations not reloaded; serving the last good set", "problem", p.String())
			return p
		}
	}
	if cur.schema != nil && next.schema == cur.schema {
		for _, p := range next.problems {
			name, ok := next.nameOf(p.File)
			if old := cur.endpoints[name]; ok && old != nil && next.endpoints[name] == nil {
				next.endpoints[name] = old
				kept = append(kept, name)
			}
		}
	}
	added, changed, removed := diff(cur, next)
	g.swapLocked(next)

	result := "ok"
	if len(errs) > 0 {
		result = "failed"
	}
	g.met.reloads.WithLabelValues(result).Inc()
	for _, p := range next.problems {
		if name, _ := next.nameOf(p.File); slices.Contains(kept, name) {
			g.log.Error("operation change not applied; serving the last good version", "problem", p.String())
		} else {
			g.log.Error("operation not served", "problem", p.String())
		}
	}
	level := g.log.Info
	if len(added)+len(changed)+len(removed) == 0 && len(errs) == 0 {
		level = g.log.Debug
	}
	attrs := []any{"served", len(next.endpoints), "failed", len(next.problems)}
	for _, l := range []struct {
		key   string
		names []string
	}{{"added", added}, {"changed", changed}, {"removed", removed}} {
		if len(l.names) > 0 {
			attrs = append(attrs, l.key, l.names)
		}
	}
	level("operations reloaded", attrs...)
	return errors.Join(errs...)
}

// diff lists the operation names that next adds, changes or removes
// compared to cur.
func diff(cur, next *registry) (added, changed, removed []string) {
	for name, ep := range next.endpoints {
		old := cur.endpoints[name]
		switch {
		case old == nil:
			added = append(added, name)
		case !sameOperation(old, ep) || old.dedup != ep.dedup || old.replayLast != ep.replayLast:
			changed = append(changed, name)
		}
	}
	for name := range cur.endpoints {
		if next.endpoints[name] == nil {
			removed = append(removed, name)
		}
	}
	sort.Strings(added)
	sort.Strings(changed)
	sort.Strings(removed)
	return added, changed, removed
}

// settings is the config whose reloadable fields (see reloadable) are
// current. The other fields are read from g.cfg, the config at start.
func (g *Gateway) settings() *config.Config { return g.liveCfg.Load() }

// reloadable lists the config settings (JSON paths) that ReloadConfig
// applies to a running gateway. Every other setting needs a restart.
// log.level and shutdownTimeout are applied by the command.
var reloadable = map[string]bool{
	"operations":                          true,
	"subscriptions.heartbeat":             true,
	"subscriptions.writeTimeout":          true,
	"subscriptions.maxLifetime":           true,
	"subscriptions.maxStreams":            true,
	"subscriptions.maxStreamsPerIdentity": true,
	"subscriptions.queueEvents":           true,
	"subscriptions.queueBytes":            true,
	"subscriptions.slowConsumer":          true,
	"limits.maxBodyBytes":                 true,
	"log.level":                           true,
	"shutdownTimeout":                     true,
}

// ReloadConfig applies the reloadable settings of next (per-operation
// settings, subscription timings and limits, the body limit), re-reads the
// TLS certificate (see reloadCertificate) and reloads the operations. It
// returns the settings, as JSON paths, whose new value differs from the
// running one but takes effect only after a restart
// (listen, upstream.*, auth.*, ...); they are also logged. Values are
// never logged: they may be secrets.
func (g *Gateway) ReloadConfig(next *config.Config) (restart []string, err error) {
	var applied []string
	applies := func(path string) bool {
		return reloadable[path] || strings.HasPrefix(path, "tls.") && g.certReloads(next)
	}
	for _, path := range config.Diff(g.cfg, next) {
		if !applies(path) {
			restart = append(restart, path)
		}
	}
	for _, path := range config.Diff(g.settings(), next) {
		if applies(path) {
			applied = append(applied, path)
		}
	}
	// Fields that need a restart keep their running values in the
	// stored copy, so that nothing reads a half-applied config.
	merged := *g.cfg
	merged.Operations = maps.Clone(next.Operations)
	merged.Subscriptions.Heartbeat = next.Subscriptions.Heartbeat
	merged.Subscriptions.WriteTimeout = next.Subscriptions.WriteTimeout
	merged.Subscriptions.MaxLifetime = next.Subscriptions.MaxLifetime
	merged.Subscriptions.MaxStreams = next.Subscriptions.MaxStreams
	merged.Subscriptions.MaxStreamsPerIdentity = next.Subscriptions.MaxStreamsPerIdentity
	merged.Subscriptions.QueueEvents = next.Subscriptions.QueueEvents
	merged.Subscriptions.QueueBytes = next.Subscriptions.QueueBytes
	merged.Subscriptions.SlowConsumer = next.Subscriptions.SlowConsumer
	merged.Limits.MaxBodyBytes = next.Limits.MaxBodyBytes
	merged.Log.Level = next.Log.Level
	merged.ShutdownTimeout = next.ShutdownTimeout
	if g.certReloads(next) {
		merged.TLS = next.TLS
	}
	g.liveCfg.Store(&merged)
	g.reloadCertificate(next)
	if len(applied) > 0 {
		g.log.Info("config reloaded", "changed", applied)
	} else {
		g.log.Info("config reloaded; no reloadable setting changed")
	}
	if len(restart) > 0 {
		g.log.Warn("changed settings need a restart to take effect", "settings", restart)
	}
	return restart, g.Reload()
}

// queueLimits are the current per-client queue limits.
func (g *Gateway) queueLimits() event.Limits {
	s := g.settings().Subscriptions
	lim := event.Limits{MaxEvents: s.QueueEvents, MaxBytes: s.QueueBytes}
	if s.SlowConsumer == "drop-oldest" {
		lim.Policy = event.DropOldest
	}
	return lim
}
