// Package backoff is the reconnect delay every connection of the gateway
// uses (upstream WebSocket and HTTP subscriptions, event sources): attempt
// n waits a random time between half and all of min(Min·2ⁿ, Max), so that
// many gateways do not knock on a restarted server in step.
package backoff
