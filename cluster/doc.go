// Package cluster shares the gateway's topics between several instances
// over NATS JetStream (CONTRACT §9). It implements topic.Engine; only the
// topic layer and the command's wiring know it exists.
//
// Each topic (an upstream subscription, a live-query poller, an event
// source subscription: anything joined through topic.Hub with a key) has
//
//   - a subject in one JetStream stream, named by a hash of the topic key
//     (keys hold secrets: they never appear in a subject, a KV key or a
//     log line), bounded by replay.maxEvents per subject and replay.maxAge;
//   - a lease in a JetStream KV bucket with a TTL: the instance holding it
//     runs the topic's source and publishes its events (the owner);
//   - interest keys in the same bucket, one per instance with clients for
//     the topic, refreshed like the lease.
//
// Every instance with clients, the owner included, reads the topic's
// subject with an ordered consumer and fans it out locally: an event is
// named once, by its stream sequence, so ids are the same on every
// instance and a Last-Event-ID resumes exactly on any of them.
//
// # Records
//
// A message on a topic subject is a record: a result, a gap, the end of
// the topic (done or error), a start (an owner begins a term) or a stop
// (an owner let go: "idle" when no instance had clients left, "handoff"
// when others may go on). Each carries its owner's term (the KV revision
// of the lease it won) and instance. Every instance applies the same
// records in the same order with the same rules, so they agree:
//
//   - a record of a term older than the newest start seen is dropped: an
//     owner that lost its lease cannot slip events in after its successor
//     started (fencing);
//   - a start after records of another instance that did not stop is a
//     failover; after a stop "handoff", a handoff; after a stop "idle", a
//     restart: each is a gap, told live to clients that were following
//     the topic, and replayed to resumes across it (state topics, whose
//     next result is complete, get none);
//   - results carry an ordinal, one more than the result before: a hole
//     (a publish lost in a NATS outage) is a gap ("reconnected"), and an
//     expired resume knows how many events it missed.
//
// Ids are "<tag>-<stream seq>.<ordinal>", base 36, where the tag names the
// stream's incarnation and the topic; they are opaque to clients.
//
// # Ownership
//
// The first instance with clients creates the lease (KV Create fails with
// "key exists" while another holder's lease lives). The owner refreshes it
// every leaseTTL/4; an instance with clients that sees no refresh for
// leaseTTL tries to create it, so a killed owner is replaced within
// leaseTTL plus a tick. The owner keeps running the source while any
// instance shows interest, and stops it (the upstream subscription is
// completed) when none does. Closing the engine (SIGTERM) stops every
// source it runs with a "handoff" stop and deletes the leases, so that
// the other instances take over at once.
package cluster
