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
// When an upstream WebSocket drops without the gateway asking, the
// connection is re-dialled with exponential backoff and jitter for up to
// HubConfig.ReconnectTimeout, and its subscriptions are re-sent on the new
// WebSocket: the shared subscriptions, their client queues and their event
// ids go on, and each client is told once with an event.Gap of reason
// "reconnected". An upstream complete is held for a short grace so that a
// server completing everything as it shuts down does not end the streams.
//
// The hub never blocks on a client: it pushes one shared *event.Event into
// each client's event.Queue, which applies the slow-consumer policy.
package upstream
