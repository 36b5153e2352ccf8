// Command fireboom runs the gateway (serve, the default), checks the
// stored operations against the upstream schema (check), and signs
// development tokens (token). It only parses flags and wires packages.
// While serving, SIGHUP reloads the config where safe and the operations,
// and SIGINT or SIGTERM shut down gracefully within shutdownTimeout (see
// lifecycle.go).
package main
