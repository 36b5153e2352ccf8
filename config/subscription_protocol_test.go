package config

import (
	"testing"
)

func TestUpstreamSubscriptionProtocol(t *testing.T) {
	for _, tc := range []struct {
		upstream, protocol, url string
	}{
		{`{"url":"https://api.example.com/graphql"}`, "ws", "wss://api.example.com/graphql"},
		{`{"url":"https://api.example.com/graphql","subscriptionProtocol":"sse"}`, "sse", "https://api.example.com/graphql"},
		{`{"url":"http://127.0.0.1:4000/graphql","subscriptionProtocol":"multipart"}`, "multipart", "http://127.0.0.1:4000/graphql"},
		{`{"url":"http://127.0.0.1:4000/graphql","subscriptionProtocol":"sse","subscriptionUrl":"http://127.0.0.1:4000/graphql/stream"}`,
			"sse", "http://127.0.0.1:4000/graphql/stream"},
		{`{"demo":true}`, "ws", ""},
	} {
		c, err := Parse([]byte(`{"upstream":`+tc.upstream+`}`), env(nil))
		if err != nil {
			t.Errorf("%s: %v", tc.upstream, err)
			continue
		}
		if c.Upstream.SubscriptionProtocol != tc.protocol || c.Upstream.SubscriptionURL != tc.url {
			t.Errorf("%s: protocol %q url %q, want %q %q", tc.upstream, c.Upstream.SubscriptionProtocol,
				c.Upstream.SubscriptionURL, tc.protocol, tc.url)
		}
	}
	for _, tc := range []struct{ upstream, want string }{
		{`{"url":"http://h/graphql","subscriptionProtocol":"websocket"}`,
			`upstream.subscriptionProtocol: expected "ws", "sse" or "multipart", got "websocket"`},
		{`{"url":"http://h/graphql","subscriptionProtocol":"SSE"}`,
			`upstream.subscriptionProtocol: expected "ws", "sse" or "multipart", got "SSE"`},
		{`{"url":"http://h/graphql","subscriptionProtocol":1}`, `upstream.subscriptionProtocol: expected string`},
		{`{"url":"http://h/graphql","subscriptionProtocol":"sse","subscriptionUrl":"ws://h/graphql"}`,
			`upstream.subscriptionUrl: expected an http(s) URL with subscriptionProtocol "sse", got "ws://h/graphql"`},
		{`{"url":"http://h/graphql","subscriptionUrl":"http://h/graphql"}`,
			`upstream.subscriptionUrl: expected a ws(s) URL, got "http://h/graphql"`},
		{`{"demo":true,"subscriptionProtocol":"multipart"}`,
			`upstream.subscriptionProtocol: the demo upstream serves subscriptions over "ws" only`},
	} {
		_, err := Parse([]byte(`{"upstream":`+tc.upstream+`}`), env(nil))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %q", tc.upstream, err, tc.want)
		}
	}
}
