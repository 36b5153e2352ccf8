// Package gateway is where a request goes: it routes /operations/<name> to
// a compiled operation, decides identity (package auth) at one point for
// every kind of endpoint, builds the variables, and then either POSTs the
// operation upstream or joins a subscription on the hub (package upstream)
// and hands its queue to the stream writer (package sse).
//
// It also owns the operation registry (loading, background retry of the
// upstream schema, hot reload), the index, health, readiness and metrics.
package gateway
