// Package demo is the embedded demo GraphQL upstream of fireboom: a real
// gqlgen server used by the default configuration ("upstream": {"demo": true})
// and by the project's tests.
//
// Its schema (SchemaSDL) holds a small chat (messages, postMessage,
// messageCreated), a countdown subscription and a stock ticker whose prices
// tick on one shared publisher goroutine. Queries and mutations are served
// over HTTP POST (and GET); subscriptions over WebSocket on the same path,
// speaking graphql-transport-ws and the legacy graphql-ws protocol, or only
// the ones listed in Options.Protocols.
//
// Tests observe the server through Stats and WaitActive: active subscriptions
// are counted by the lifetime of their resolver's context, so a subscription
// completed or stopped by the client is seen to end at the upstream.
// Close stops the listener, closes every WebSocket and waits for every
// goroutine the server started.
package demo

//go:generate go run github.com/99designs/gqlgen generate --config gqlgen.yml
