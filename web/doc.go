// Package web holds the fireboom dashboard: plain HTML, CSS and JavaScript
// modules embedded in the binary (no build step, no network access needed),
// and the http.Handler that serves them.
//
// Routes (the handler expects the full request path; mount it unstripped):
//
//	GET /                      the dashboard page (also /index.html)
//	GET /assets/<version>/...  versioned assets, cached for a year (immutable)
//	GET /assets/...            the same assets unversioned, revalidated each time
//
// <version> is a hash of every asset, written into the page at start-up, so a
// new binary never mixes old and new scripts in a browser cache. Every answer
// carries a strict Content-Security-Policy (same origin only, no inline
// script or style, Trusted Types enforced so no HTML string can reach the
// DOM), X-Content-Type-Options: nosniff, and Referrer-Policy: no-referrer
// (tokens may sit in EventSource URLs). Directories are never listed; any
// other path is 404 whatever the method, and any method but GET and HEAD on
// a served path is 405.
//
// The page talks to the gateway through these same-origin endpoints:
// GET /operations, GET|POST /operations/<name> (EventSource with
// wg_sse=true for subscriptions and live queries), GET /_/info,
// POST /_/token (development mode only) and GET /_/stats (SSE).
// The list of data-testid attributes for browser tests is at the top of
// static/assets/app.js.
package web
