package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fireboom/fireboom/internal/selfsigned"
)

// HTTP/2 mode (-http2). The tool starts the gateway with a TLS config it
// makes (a self-signed certificate for 127.0.0.1, in the gateway's
// temporary folder), and each worker opens its clients as HTTP/2 streams,
// -http2-streams of them on each connection, instead of one HTTP/1.1
// connection per client. An HTTP/2 stream is served in its handler (sse's
// detached streams need a connection of their own), so with -idle the
// figures say what an idle HTTP/2 stream costs the gateway.

// maxH2Streams is net/http's default limit of concurrent streams on one
// HTTP/2 connection (the gateway does not change it).
const maxH2Streams = 250

// h2Flags registers the HTTP/2 flags of "run".
func (c *runConfig) h2Flags(fs *flag.FlagSet) {
	fs.BoolVar(&c.http2, "http2", false, "serve the gateway over TLS and open the clients as HTTP/2 streams")
	fs.IntVar(&c.h2Streams, "http2-streams", 100, fmt.Sprintf("with -http2: streams per connection (at most %d)", maxH2Streams))
}

// h2Check validates the HTTP/2 flags.
func (c *runConfig) h2Check() error {
	switch {
	case !c.http2:
		return nil
	case c.gatewayURL != "":
		return errors.New("-http2 starts its own gateway (with a certificate it makes); not with -gateway")
	case c.h2Streams < 1 || c.h2Streams > maxH2Streams:
		return fmt.Errorf("-http2-streams must be between 1 and %d", maxH2Streams)
	}
	return nil
}

// h2Gateway gives the gateway to start a certificate: it writes one into
// dir, names it in the gateway's config cfg, and makes the tool's own HTTP
// clients (readiness, /metrics), which use http.DefaultTransport, trust
// it. It returns the scheme of the gateway's base URL.
func (c *runConfig) h2Gateway(dir string, cfg map[string]any) (string, error) {
	if !c.http2 {
		return "http", nil
	}
	cert, err := selfsigned.New("127.0.0.1")
	if err != nil {
		return "", err
	}
	certFile, keyFile, err := cert.WriteFiles(dir, "gateway")
	if err != nil {
		return "", err
	}
	cfg["tls"] = map[string]any{"certFile": certFile, "keyFile": keyFile}
	c.h2CA = certFile
	http.DefaultTransport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: cert.Pool()}
	return "https", nil
}

// h2WorkerArgs are the worker flags of the HTTP/2 mode.
func (c *runConfig) h2WorkerArgs() []string {
	if !c.http2 {
		return nil
	}
	return []string{"-http2-ca", c.h2CA, "-http2-streams", strconv.Itoa(c.h2Streams)}
}

// hostPort is base (http:// or https://) without its scheme.
func hostPort(base string) string {
	_, hp, _ := strings.Cut(base, "://")
	return hp
}

// h2WorkerOpts are a worker's HTTP/2 flags.
type h2WorkerOpts struct {
	ca      string
	streams int
}

func h2WorkerFlags(fs *flag.FlagSet) *h2WorkerOpts {
	o := &h2WorkerOpts{}
	fs.StringVar(&o.ca, "http2-ca", "", "HTTP/2 mode: the gateway's certificate (PEM) to trust")
	fs.IntVar(&o.streams, "http2-streams", 100, "HTTP/2 mode: streams per connection")
	return o
}

// pool is the worker's HTTP/2 connection pool; nil without -http2-ca.
func (o *h2WorkerOpts) pool(c workerConfig) (*h2Pool, error) {
	if o.ca == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(filepath.Clean(o.ca))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) || o.streams < 1 {
		return nil, errors.New("clients: bad HTTP/2 flags")
	}
	return &h2Pool{base: "https://" + c.addr, perConn: o.streams, sources: c.sources, roots: roots, groups: map[int]*h2Group{}}, nil
}

// h2Pool holds one HTTP/2-only transport per group of perConn clients:
// each keeps one connection (the gateway allows more streams on it than
// perConn), dialled from a source address of its own.
type h2Pool struct {
	base    string // https://host:port
	perConn int
	sources int
	roots   *x509.CertPool

	mu     sync.Mutex
	groups map[int]*h2Group
}

// h2Group is the transport of one group of clients.
type h2Group struct {
	t *http.Transport
	// ready is closed once the group's first request has its answer. The
	// others wait for it: a transport dials a connection for each request
	// it cannot send at once, and a ramp would make it dial one per client
	// (thousands of TLS handshakes) before the first connection is up.
	ready chan struct{}
}

// group is client i's group; first is true for the client that made it.
func (p *h2Pool) group(i int) (g *h2Group, first bool) {
	k := i / p.perConn
	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.groups[k]; g != nil {
		return g, false
	}
	protos := new(http.Protocols)
	protos.SetHTTP2(true)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+k%p.sources))}, Timeout: 15 * time.Second}
	g = &h2Group{ready: make(chan struct{}), t: &http.Transport{
		Protocols:             protos,
		DialContext:           d.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: p.roots},
		ResponseHeaderTimeout: 30 * time.Second,
	}}
	p.groups[k] = g
	return g, true
}

// close drops the pool's connections once its streams have ended.
func (p *h2Pool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, g := range p.groups {
		g.t.CloseIdleConnections()
	}
}

// clientH2 is client for the HTTP/2 mode: one stream on the connection of
// client i's group, read until ctx ends or the gateway ends it.
func (w *worker) clientH2(ctx context.Context, i int) {
	target := strings.ReplaceAll(w.cfg.path, "{i}", strconv.Itoa(i))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.h2.base+target, nil)
	if err != nil {
		w.fail("request", err)
		return
	}
	req.Header.Set("Accept", "text/event-stream")
	if w.cfg.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+w.cfg.bearer)
	}
	g, first := w.h2.group(i)
	if !first {
		select {
		case <-g.ready:
		case <-ctx.Done():
			return
		}
	}
	resp, err := g.t.RoundTrip(req)
	if first {
		close(g.ready)
	}
	if err != nil {
		if ctx.Err() == nil {
			w.fail("response", err)
		}
		return
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusOK:
		w.fail(strconv.Itoa(resp.StatusCode), fmt.Errorf("status %s", resp.Status))
		return
	case resp.ProtoMajor != 2:
		w.fail("not-http2", fmt.Errorf("served over %s", resp.Proto))
		return
	}
	w.connected.Add(1)
	reason := w.read(resp.Body)
	if ctx.Err() == nil {
		w.connected.Add(-1)
		w.end(reason)
	}
}
