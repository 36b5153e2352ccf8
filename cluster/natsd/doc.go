// Package natsd runs a NATS server with JetStream inside the process: the
// real server (github.com/nats-io/nats-server/v2), on a loopback port, with
// its store in a folder of the caller's. Tests, the load tool and the soak
// test use it, so that a cluster needs no NATS service on the machine.
package natsd
