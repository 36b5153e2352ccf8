package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	for attempt, hi := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, Max, Max} {
		for range 100 {
			if d := Delay(attempt); d < hi/2 || d > hi {
				t.Fatalf("attempt %d: %v not in [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
	if d := Delay(1000); d < Max/2 || d > Max {
		t.Fatalf("attempt 1000: %v", d)
	}
}
