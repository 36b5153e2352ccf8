// Package event holds the one event type that flows from the upstream hub to
// a client stream, and the bounded per-client queue between them.
//
// The hub (package upstream) pushes into a Queue without ever blocking; the
// stream writer (package sse) drains it. The queue applies the slow-consumer
// policy, so neither side needs to know about the other.
package event
