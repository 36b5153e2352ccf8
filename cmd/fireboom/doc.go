// Command fireboom runs the gateway (serve, the default), checks the
// stored operations against the upstream schema (check), and signs
// development tokens (token). It only parses flags and wires packages.
package main
