// Package upstream talks to the GraphQL server behind the gateway.
//
// Client sends queries and mutations as one HTTP POST each. Hub carries
// subscriptions over pooled WebSocket connections, speaking whichever of the
// two subprotocols the server picks (graphql-transport-ws or the legacy
// graphql-ws), one small exchanger per protocol mapping frames to one
// internal message type.
//
// The hub keys every subscription by exactly what would be sent upstream
// (URL, headers, init payload, query, operation name, variables): identical
// live subscriptions are shared (dedup) and fanned out to many client
// queues, different subscriptions with the same connection identity share
// one WebSocket. Each shared subscription keeps a small ring of its latest
// events so a client reconnecting with Last-Event-ID resumes without gap or
// duplicate, or is told of the gap with one event.Gap.
//
// The hub never blocks on a client: it pushes one shared *event.Event into
// each client's event.Queue, which applies the slow-consumer policy.
package upstream
