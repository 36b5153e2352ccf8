package main

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A short soak: churning clients across upstream restarts. run fails on
// any event lost outside a declared gap or any duplicate; the report must
// show the restart happened and events flowed, so the figures of a long
// run mean what they say.
func TestShortSoak(t *testing.T) {
	var out, errs bytes.Buffer
	err := run([]string{"-duration", "5s", "-restart-every", "1s", "-max-away", "300ms", "-clients", "5", "-max-events", "30"}, &out, &errs)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("soak: %v\n%s", err, errs.String())
	}
	number := func(re string) int {
		t.Helper()
		m := regexp.MustCompile(re).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no %q in the report", re)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	if n := number(`upstream restarts: (\d+)`); n < 1 {
		t.Errorf("%d upstream restarts, want at least 1", n)
	}
	// Streams open across a restart: the gateway reconnected for them.
	if n := number(`upstream reconnects by the gateway: (\d+)`); n < 1 {
		t.Errorf("%d upstream reconnects, want at least 1", n)
	}
	if n := number(`streams served: (\d+)`); n < 5 {
		t.Errorf("%d streams served", n)
	}
	if n := number(`events received: (\d+)`); n == 0 {
		t.Error("no events received")
	}
	if n := number(`events lost outside declared gaps: (\d+)`); n != 0 {
		t.Errorf("%d events lost", n)
	}
}
