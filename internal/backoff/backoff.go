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
