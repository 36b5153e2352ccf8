package config

import (
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	a, err := Parse([]byte(`{"upstream": {"url": "http://x/graphql", "headers": {"K": "v"}}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Upstream.Headers = map[string]string{"K": "w"}
	b.Log.Level = "debug"
	b.Subscriptions.Heartbeat = 1
	b.Dir = "elsewhere" // not a setting
	if got, want := Diff(a, &b), []string{"log.level", "subscriptions.heartbeat", "upstream.headers"}; !slices.Equal(got, want) {
		t.Errorf("Diff %v, want %v", got, want)
	}
	if got := Diff(a, a); len(got) != 0 {
		t.Errorf("Diff of equal configs %v", got)
	}
}
