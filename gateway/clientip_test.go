package gateway

import (
	"net/http/httptest"
	"testing"
)

func TestClientIP(t *testing.T) {
	lb := newProxies([]string{"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::ffff:172.16.0.0/108", "fe80::/10"})
	for _, tc := range []struct {
		name    string
		proxies proxies
		peer    string
		xff     []string // X-Forwarded-For header lines
		want    string
	}{
		{"no proxies: the peer, header ignored", nil, "203.0.113.9:4000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"untrusted peer: header ignored", lb, "203.0.113.9:4000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer: the client it saw", lb, "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged entry left of the real one", lb, "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"a chain of trusted proxies", lb, "10.1.2.3:4000", []string{"198.51.100.1, 192.168.1.7, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines read as one list", lb, "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"trusted peer without the header", lb, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"only trusted hops: the leftmost", lb, "10.1.2.3:4000", []string{"10.7.7.7, 10.8.8.8"}, "10.7.7.7"},
		{"a malformed entry stops the walk", lb, "10.1.2.3:4000", []string{"198.51.100.1, junk, 10.9.9.9"}, "10.9.9.9"},
		{"an empty header", lb, "10.1.2.3:4000", []string{""}, "10.1.2.3"},
		{"an entry with a port", lb, "10.1.2.3:4000", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		{"an IPv6 entry with a port", lb, "10.1.2.3:4000", []string{"[2001:db8::5]:5555"}, "2001:db8::5"},
		{"a trusted hop with a port", lb, "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9:80"}, "198.51.100.1"},
		{"a mapped prefix matches the IPv4 peer", lb, "172.16.0.9:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a zoned link-local peer", lb, "[fe80::1%eth0]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"IPv6 proxy and client", lb, "[fd00::1]:4000", []string{"2001:db8::5"}, "2001:db8::5"},
		{"IPv4-mapped peer", lb, "[::ffff:10.1.2.3]:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"one trusted address, not its neighbour", lb, "192.168.1.8:4000", []string{"198.51.100.1"}, "192.168.1.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.proxies.clientIP(r); got != tc.want {
				t.Errorf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}
