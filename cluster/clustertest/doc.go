// Package clustertest holds the multi-process test of a fireboom cluster
// (CONTRACT §9): an in-process NATS JetStream server, the demo upstream,
// three gateway processes built from ./cmd/fireboom, a real nginx in front
// of them, and SSE clients that behave like EventSource (go-sse's Client:
// reconnect with Last-Event-ID). Every scenario asserts what each client
// received, event by event.
//
//	go test -v ./cluster/clustertest
//
// It needs nginx (Debian's nginx-light, which scripts/test installs) and
// skips without it.
package clustertest
