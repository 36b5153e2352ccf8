// Command fireboom-bench is fireboom's load tool. It measures what one
// gateway costs when it fans a subscription out to many SSE clients:
//
//   - it starts the embedded demo upstream ticking at -rate events/s and a
//     gateway as a separate process (built from ./cmd/fireboom), so that the
//     gateway's CPU and RSS can be read from /proc apart from the tool's own;
//   - it opens -clients SSE streams over loopback from worker processes
//     (each below the open-file limit), spread over source addresses
//     127.0.0.x so that ephemeral ports do not run out, ramped up at -ramp
//     clients/s;
//   - each client parses the SSE frames and records the publish→read
//     latency from the event's publishedAt, and the gaps in its seq numbers;
//   - it prints clients connected, upstream subscriptions and connections
//     (counted at the upstream), deliveries per second, lost events,
//     p50/p99/max latency, gateway RSS per stream, goroutines and gateway
//     CPU per delivered event.
//
// With -http2 the gateway serves HTTPS with a certificate the tool makes,
// and the clients are HTTP/2 streams, -http2-streams to a connection (see
// http2.go).
//
// With -source postgres the gateway serves a PostgreSQL event source
// instead (no upstream): the clients are -users users, each stream one
// user's (a token of its own, a per-user filter), and every tick the tool
// NOTIFYs once per user.
//
// Every run ends by itself; only loopback addresses are used.
package main
