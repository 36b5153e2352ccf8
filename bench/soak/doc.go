// Command soak runs the gateway against the demo upstream for a long while
// under connect/disconnect churn, restarting the upstream every so often,
// and checks that no client lost an event the gateway did not declare.
//
//	go run ./bench/soak -duration 10m -restart-every 1m
//
// Everything runs in this one process: the demo upstream (ticking the four
// stock symbols every -tick), the gateway (served over loopback like
// cmd/fireboom serves it), and -clients SSE clients. Each client picks a
// symbol and loops: it opens the Ticks stream (with Last-Event-ID once it
// has seen an event, as EventSource does; now and then as a new client
// without), reads a random number of events, leaves, waits a little and
// comes back. The upstream is closed and restarted on the same address
// every -restart-every, staying away a random 0.1 s to -max-away (3 s).
//
// Every client checks each event against the previous one it saw: the
// gateway event id must go on by one within one incarnation, and the
// upstream's own per-symbol seq must go on by one, unless an "event: gap"
// came in between. Anything else counts as lost (or as a duplicate). The
// figures are printed at the end; the exit code is 1 when an event was lost
// outside a declared gap.
package main
