// Package gateway is where a request goes: it routes /operations/<name> to
// a compiled operation, decides identity (package auth) at one point for
// every kind of endpoint, builds the variables, and then either POSTs the
// operation upstream, joins a subscription on the hub (package upstream),
// or joins a shared live-query poller (package live), handing the client's
// event queue to the stream writer (package sse).
//
// It also owns the operation registry (loading, background retry of the
// upstream schema, hot reload and SIGHUP), the index, the OpenAPI
// document, CORS, the request log, health, readiness and metrics.
package gateway
