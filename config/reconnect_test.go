package config

import (
	"strings"
	"testing"
	"time"
)

func TestUpstreamReconnectTimeout(t *testing.T) {
	c, err := Parse([]byte(`{"upstream":{"demo":true}}`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.ReconnectTimeout.D() != 30*time.Second {
		t.Errorf("default %v", c.Upstream.ReconnectTimeout)
	}
	c, err = Parse([]byte(`{"upstream":{"demo":true,"reconnectTimeout":"2m"}}`), env(nil))
	if err != nil || c.Upstream.ReconnectTimeout.D() != 2*time.Minute {
		t.Errorf("2m: %v %v", c, err)
	}
	for _, tc := range []struct{ v, want string }{
		{`"50ms"`, "upstream.reconnectTimeout: must be at least 100ms"},
		{`"-1s"`, `upstream.reconnectTimeout: bad duration "-1s"`},
		{`30`, "upstream.reconnectTimeout: expected a duration string"},
	} {
		_, err := Parse([]byte(`{"upstream":{"demo":true,"reconnectTimeout":`+tc.v+`}}`), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.v, err, tc.want)
		}
	}
}
