// Package selfsigned makes throwaway TLS certificates: for tests that serve
// HTTPS over loopback, and for the load tool's HTTP/2 mode. Nothing here is
// fit to protect anything; a real deployment brings its own certificate.
package selfsigned
