// Package live runs live queries: a query polled at an interval whose
// result is pushed to clients only when it changed.
//
// Clients that ask for the same upstream request (Query.Key: URL, headers,
// document, variables, interval) share one poller, so fifty browsers on one
// dashboard cost one upstream query per interval, not fifty. A poller is a
// goroutine owned by the Hub; it starts with its first client, polls at
// once, and stops when its last client leaves (or the Hub closes).
//
// Results reach clients the way subscription events do: as event.Next
// events pushed without blocking into one event.Queue per client, so the
// gateway writes them with sse.Serve unchanged (heartbeats, ids, once,
// expiry, slow-consumer policy).
//
// # Results, ids and resume
//
// Every pushed result gets an id "<incarnation>-<seq>", opaque to clients.
// A live query's results are states, not a log: a client that resumes with
// Last-Event-ID gets nothing when it already holds the newest result, the
// patches it missed (patch mode, when they are in the ring and smaller than
// the newest result), and otherwise the newest result alone.
//
// # Patches
//
// With JoinOptions.Patch, a client gets a full result first and then, for
// each change, an RFC 6902 JSON Patch (a JSON array) against the result
// before it, or the full new result (a JSON object) when the patch would not
// be smaller. A client tells them apart by the first byte: '[' is a patch,
// '{' a full result that replaces its state.
//
// # Failures
//
// A poll that fails (upstream unreachable, not JSON) pushes FailedJSON once,
// as an ordinary event (the stream goes on), and the poller backs off:
// twice the interval after the first failure, doubling up to
// Config.MaxBackoff. The first success after it is pushed even if it equals
// the result before the failure. When the very first poll fails nothing is
// pushed: Join reports the error, so the gateway can answer 502 before any
// stream starts.
package live
