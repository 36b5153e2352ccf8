package demo

import (
	"context"
	"fmt"
	"maps"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// maxInitPayloads is how many connection_init payloads Stats keeps.
const maxInitPayloads = 16

// Stats is a snapshot of the server's counters, for tests. Maps and slices are
// copies owned by the caller.
type Stats struct {
	// ActiveSubscriptions counts subscriptions whose resolver context is
	// still live: it drops when the client sends complete (graphql-transport-ws)
	// or stop (graphql-ws), when the stream ends, or when the connection goes.
	ActiveSubscriptions int
	// ActiveByField is ActiveSubscriptions by root field ("countdown", ...).
	ActiveByField map[string]int
	// SubscriptionsStarted and SubscriptionsEnded count accepted subscriptions
	// since the server started.
	SubscriptionsStarted, SubscriptionsEnded int64
	// SubscriptionsRejected counts subscriptions refused by their resolver
	// (bad arguments); they are answered with an error frame.
	SubscriptionsRejected int64
	// HTTPRequests counts every non-WebSocket request.
	HTTPRequests int64
	// Operations counts the GraphQL operations executed over HTTP by operation
	// name ("" for anonymous ones).
	Operations map[string]int64
	// Fields counts the root fields of the operations executed over HTTP
	// ("messages", "postMessage", "__schema", ...).
	Fields map[string]int64
	// WebSocketsOpen and WebSocketsTotal count accepted WebSocket connections:
	// open now, and since start.
	WebSocketsOpen  int
	WebSocketsTotal int64
	// InitPayloads holds the most recent connection_init payloads (up to 16),
	// oldest first; nil entries are inits without payload.
	InitPayloads []map[string]any
	// Dropped counts messages and ticks not delivered to a subscriber whose
	// queue was full.
	Dropped int64
}

// stats is the live, mutex-guarded form of Stats.
type stats struct {
	mu      sync.Mutex
	s       Stats
	changed chan struct{} // closed and replaced whenever ActiveSubscriptions changes
}

func newStats() *stats {
	return &stats{
		s: Stats{
			ActiveByField: map[string]int{},
			Operations:    map[string]int64{},
			Fields:        map[string]int64{},
		},
		changed: make(chan struct{}),
	}
}

func (st *stats) update(f func(s *Stats)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

// subscription counts one subscription of field as started and active.
func (st *stats) subStarted(field string) {
	st.mu.Lock()
	st.s.ActiveSubscriptions++
	st.s.ActiveByField[field]++
	st.s.SubscriptionsStarted++
	st.notifyLocked()
	st.mu.Unlock()
}

func (st *stats) subEnded(field string) {
	st.mu.Lock()
	st.s.ActiveSubscriptions--
	if st.s.ActiveByField[field]--; st.s.ActiveByField[field] == 0 {
		delete(st.s.ActiveByField, field)
	}
	st.s.SubscriptionsEnded++
	st.notifyLocked()
	st.mu.Unlock()
}

func (st *stats) notifyLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

func (st *stats) initPayload(p map[string]any) {
	st.mu.Lock()
	if len(st.s.InitPayloads) == maxInitPayloads {
		st.s.InitPayloads = st.s.InitPayloads[1:]
	}
	st.s.InitPayloads = append(st.s.InitPayloads, p)
	st.mu.Unlock()
}

// operation counts an HTTP GraphQL operation by name and root fields.
func (st *stats) operation(oc *graphql.OperationContext) {
	st.mu.Lock()
	defer st.mu.Unlock()
	name := oc.OperationName
	if oc.Operation != nil && oc.Operation.Name != "" {
		name = oc.Operation.Name
	}
	st.s.Operations[name]++
	if oc.Operation == nil {
		return
	}
	for _, sel := range oc.Operation.SelectionSet {
		if f, ok := sel.(*ast.Field); ok {
			st.s.Fields[f.Name]++
		}
	}
}

func (st *stats) snapshot() Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := st.s
	out.ActiveByField = maps.Clone(st.s.ActiveByField)
	out.Operations = maps.Clone(st.s.Operations)
	out.Fields = maps.Clone(st.s.Fields)
	out.InitPayloads = make([]map[string]any, len(st.s.InitPayloads))
	for i, p := range st.s.InitPayloads {
		out.InitPayloads[i] = maps.Clone(p)
	}
	return out
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// WaitActive waits until exactly n subscriptions are active (see
// Stats.ActiveSubscriptions) or ctx ends; the error then wraps ctx.Err().
func (s *Server) WaitActive(ctx context.Context, n int) error {
	for {
		s.stats.mu.Lock()
		active, changed := s.stats.s.ActiveSubscriptions, s.stats.changed
		s.stats.mu.Unlock()
		if active == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("demo: waiting for %d active subscriptions, have %d: %w", n, active, ctx.Err())
		}
	}
}
