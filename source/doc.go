// Package source connects the gateway to event sources (CONTRACT §10):
// PostgreSQL LISTEN/NOTIFY, NATS subjects and Redis pub/sub channels.
//
// A Source is one configured source. It keeps one connection that listens
// (one LISTEN connection per PostgreSQL source, one connection per NATS or
// Redis source), whatever the number of streams: a channel or subject is
// listened to while at least one stream wants it and un-listened when the
// last one stops. A lost connection is re-dialled with exponential backoff
// and jitter; everything still wanted is listened to again and each stream
// is told once with Gap("reconnected"). Past the reconnect timeout every
// stream ends with an UpstreamUnavailable error.
//
// A Stream is one distinct event stream (one topic of the gateway): a
// channel and a Transform. Open registers it and returns once the source
// listens; each message of the channel is decoded once and given to the
// Transform of every stream of the channel, which filters it and applies
// the operation's selection set. A message that is not JSON, or that a
// Transform refuses, is dropped, logged without its content, and counted;
// the stream goes on.
//
// Publish sends one payload: pg_notify on PostgreSQL (payloads over 8,000
// bytes are refused before anything is sent), a NATS publish followed by a
// flush (so a refusal is seen), a Redis PUBLISH. PostgreSQL and NATS
// publish on the listening connection; Redis, whose subscribed connections
// cannot PUBLISH, on a small pool of its own opened on first use.
//
// Errors wrap ErrUnavailable (the gateway answers 502 UpstreamUnavailable),
// ErrPayloadTooLarge (413) or ErrInvalidChannel (400).
package source
