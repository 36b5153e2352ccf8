// Package live runs live queries: a query polled at an interval whose
// result is pushed to clients only when it changed.
//
// A Poller is a source of the topic layer (package topic): Open polls once
// (a failure is returned, so the gateway can answer 502 before any stream
// starts), pushes the result, and keeps polling in a goroutine that stop
// ends and waits for. The topic layer shares one poller between every
// client of the same upstream request, so fifty browsers on one dashboard
// cost one upstream query per interval, not fifty; it also names the
// results, keeps them for resume (a live query's results are states: see
// topic.Spec.State) and hands patch clients the patches Diff computes.
//
// # Patches
//
// With wg_json_patch, a client gets a full result first and then, for each
// change, an RFC 6902 JSON Patch (a JSON array) against the result before
// it, or the full new result (a JSON object) when the patch would not be
// smaller. A client tells them apart by the first byte: '[' is a patch,
// '{' a full result that replaces its state.
//
// # Failures
//
// A poll that fails (upstream unreachable, not JSON) pushes FailedJSON once,
// as an ordinary result (the stream goes on), and the poller backs off:
// twice the interval after the first failure, doubling up to
// Query.MaxBackoff. The first success after it is pushed even if it equals
// the result before the failure.
package live
