package gateway

import (
	"context"
	"time"

	"github.com/fireboom/fireboom/upstream"
)

// Upstream resilience, gateway side. The upstream hub re-establishes a
// dropped subscription WebSocket by itself and keeps the client streams
// open (see upstream.HubConfig.ReconnectTimeout); what the gateway adds is
// a fresh look at the upstream's schema after each reconnect: the upstream
// may have come back as a new version. loadSchema swaps in the operations
// compiled against it, which ends the open streams of operations that no
// longer validate with OperationInvalid, then done (see reload.go).

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
			err := g.loadSchema(ctx)
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

// HubStats reports the upstream hub's counters (connections,
// subscriptions, reconnects, ...), for tools such as bench/soak.
func (g *Gateway) HubStats() upstream.HubStats { return g.hub.Stats() }
