package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/fireboom/fireboom/config"
)

// Serving: the protocols fireboom.json asks for, and the certificate that
// SIGHUP replaces.
//
// Over HTTP/2 a stream is served in its handler: sse's detached streams
// (which take an HTTP/1.1 connection over from net/http) do not apply, as
// the connection carries other streams. Everything else a stream does
// (heartbeats, deadlines, endings, limits) goes through http.ResponseWriter
// and http.ResponseController, which HTTP/2 implements.

// certificate is the serving certificate. Each TLS handshake reads the
// current one, so swapping it changes what new connections get while open
// connections, and the streams on them, keep going.
type certificate struct {
	cur atomic.Pointer[tls.Certificate]
}

// get is the tls.Config.GetCertificate of the server.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// loadCertificate reads the tls files of cfg; nil without tls.
func loadCertificate(cfg *config.Config) (*certificate, error) {
	if !cfg.TLS.Enabled() {
		return nil, nil
	}
	pair, err := config.LoadKeyPair(cfg.TLS)
	if err != nil {
		return nil, err
	}
	c := &certificate{}
	c.cur.Store(&pair)
	return c, nil
}

// Serve serves g on ln through srv (whose timeouts and error log the
// caller chose; its Handler defaults to g) in the protocols the config
// asks for:
//
//   - tls: HTTPS, HTTP/2 and HTTP/1.1 chosen by ALPN, with the current
//     certificate (see ReloadConfig);
//   - http2.cleartext: HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on
//     plain TCP;
//   - neither: HTTP/1.1.
//
// It returns what http.Server.Serve returns.
func (g *Gateway) Serve(srv *http.Server, ln net.Listener) error {
	if srv.Handler == nil {
		srv.Handler = g
	}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(g.cfg.HTTP2.Cleartext)
	srv.Protocols = p
	if g.cert == nil {
		return srv.Serve(ln)
	}
	p.SetHTTP2(true)
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: g.cert.get}
	return srv.ServeTLS(ln, "", "")
}

// Scheme is "https" when the gateway serves TLS, else "http".
func (g *Gateway) Scheme() string {
	if g.cert != nil {
		return "https"
	}
	return "http"
}

// certReloads reports whether ReloadConfig applies the tls settings of
// next: the certificate files are re-read as long as TLS stays on (it
// cannot be turned on or off without a restart: the listener would change
// protocol).
func (g *Gateway) certReloads(next *config.Config) bool {
	return g.cert != nil && next.TLS.Enabled()
}

// reloadCertificate re-reads the certificate files of next (on every
// SIGHUP: a renewed certificate usually keeps its file names). A file that
// does not load keeps the running certificate, and says why.
func (g *Gateway) reloadCertificate(next *config.Config) {
	if !g.certReloads(next) {
		return
	}
	pair, err := config.LoadKeyPair(next.TLS)
	if err != nil {
		g.log.Error("certificate not reloaded; serving the running one", "err", err)
		return
	}
	g.cert.cur.Store(&pair)
	g.logCertificate("certificate reloaded", pair.Leaf)
}

// logCertificate logs what a certificate is for and until when, and warns
// when it has expired or is about to.
func (g *Gateway) logCertificate(msg string, leaf *x509.Certificate) {
	if leaf == nil {
		return
	}
	names := leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	attrs := []any{"subject", leaf.Subject.CommonName, "names", names, "notAfter", leaf.NotAfter.UTC().Format(time.RFC3339)}
	switch left := time.Until(leaf.NotAfter); {
	case left <= 0:
		g.log.Warn(msg+"; it has expired", attrs...)
	case left < 7*24*time.Hour:
		g.log.Warn(msg+"; it expires within a week", attrs...)
	default:
		g.log.Info(msg, attrs...)
	}
}
