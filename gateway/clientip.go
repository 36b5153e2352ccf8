package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/fireboom/fireboom/config"
)

// proxies are the trustedProxies of the config: load balancers whose
// X-Forwarded-For is believed.
type proxies []netip.Prefix

// newProxies reads cfg.TrustedProxies (already validated by config).
func newProxies(entries []string) proxies {
	var ps proxies
	for _, e := range entries {
		if p, err := config.ParseProxy(e); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

func (ps proxies) trusted(a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address of the client that sent r: the TCP peer or, when
// the peer is a trusted proxy, the nearest address in X-Forwarded-For that
// is not itself a trusted proxy, read from the right (each proxy appends
// the peer it saw, so entries left of the first untrusted one may be
// forged by the client). A malformed entry stops the walk at the last
// address known good.
func (ps proxies) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || len(ps) == 0 {
		return host
	}
	peer = peer.Unmap()
	if !ps.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		peer = a.Unmap()
		if !ps.trusted(peer) {
			break
		}
	}
	return peer.String()
}
