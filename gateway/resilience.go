package gateway

import (
	"context"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"

	"github.com/fireboom/fireboom/topic"
	"github.com/fireboom/fireboom/upstream"
)

// Upstream resilience, gateway side. The upstream hub re-establishes a
// dropped subscription WebSocket by itself and keeps the client streams
// open (see upstream.HubConfig.ReconnectTimeout); what the gateway adds is
// a fresh look at the upstream's schema after each reconnect: the upstream
// may have come back as a new version. When the schema changed, loadSchema
// swaps in the operations compiled against it, which ends the open streams
// of operations that no longer validate with OperationInvalid, then done
// (see reload.go). When it did not change, nothing is rebuilt: a reload
// that kept the last good version of a file that fails to compile (Reload)
// stays as it is.

// signal wakes whoever waits on ch without ever blocking.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Attempts at re-reading the schema after a reconnect: the HTTP endpoint
// may come back a moment after the WebSocket one.
const (
	refreshAttempts = 4
	refreshDelay    = 500 * time.Millisecond
)

// refreshSchemaOnReconnect re-reads the upstream schema after each
// upstream reconnect (signalled on reconnected). It is owned by g.wg.
func (g *Gateway) refreshSchemaOnReconnect(ctx context.Context, reconnected <-chan struct{}) {
	defer g.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-reconnected:
		}
		delay := refreshDelay
		for attempt := 1; ; attempt++ {
			err := g.refreshSchema(ctx)
			if err == nil || ctx.Err() != nil {
				break
			}
			if attempt == refreshAttempts {
				g.log.Warn("upstream schema not re-read after a reconnect; keeping the current one", "err", err)
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay *= 2
		}
	}
}

// refreshSchema reads the upstream schema and reloads the operations
// against it if it differs from the one they were compiled against.
func (g *Gateway) refreshSchema(ctx context.Context) error {
	if cur := g.reg.Load().schema; cur != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		schema, _, err := fetchSchema(cctx, g.cfg, g.client)
		cancel()
		if err != nil {
			return err
		}
		if schemaSDL(schema) == schemaSDL(cur) {
			g.log.Debug("upstream schema unchanged after a reconnect")
			return nil
		}
		g.log.Info("upstream schema changed after a reconnect; reloading the operations")
	}
	return g.loadSchema(ctx)
}

// schemaSDL renders a schema as SDL text, types and directives sorted by
// name, for comparing two schemas.
func schemaSDL(s *ast.Schema) string {
	var b strings.Builder
	formatter.NewFormatter(&b).FormatSchema(s)
	return b.String()
}

// HubStats reports the upstream hub's counters (connections,
// subscriptions, reconnects, ...), for tools such as bench/soak.
func (g *Gateway) HubStats() upstream.HubStats { return g.hub.Stats() }

// TopicStats is a snapshot of the topic layer's counters, every kind.
func (g *Gateway) TopicStats() topic.Stats { return g.topics.Stats("") }
