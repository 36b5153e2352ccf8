// Package backoff is the reconnect delay every connection of the gateway
// uses (upstream WebSocket and HTTP subscriptions, event sources): attempt
// n waits a random time between half and all of min(Min·2ⁿ, Max), so that
// many gateways do not knock on a restarted server in step.
package backoff

import (
	"math/rand/v2"
	"time"
)

// The bounds of the delay.
const (
	Min = 100 * time.Millisecond
	Max = 5 * time.Second
)

// Delay is how long to wait before reconnect attempt n (0 first).
func Delay(attempt int) time.Duration {
	d := Max
	if attempt < 16 {
		d = min(Min<<attempt, Max)
	}
	return d/2 + rand.N(d/2+1)
}
