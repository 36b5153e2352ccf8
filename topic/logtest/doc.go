// Package logtest is the conformance suite of topic.Log: every
// implementation (the in-memory ring, a broker-backed log) runs the same
// tests, so a topic behaves the same whatever keeps its events.
package logtest
