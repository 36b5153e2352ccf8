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
	peer = plain(peer)
	if !ps.trusted(peer) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hopAddr(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		peer = a
		if !ps.trusted(peer) {
			break
		}
	}
	return peer.String()
}

// hopAddr reads one X-Forwarded-For entry: an address, or an address with
// a port (some balancers add it: 1.2.3.4:5678, [2001:db8::1]:5678).
func hopAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return plain(a), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return plain(ap.Addr()), true
	}
	return netip.Addr{}, false
}

// plain drops what would keep an address from matching a prefix: the
// IPv4-in-IPv6 mapping and an IPv6 zone.
func plain(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }
