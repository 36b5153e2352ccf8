package topic

import (
	"context"
	"errors"
)

// ErrUnavailable is returned by Join while the Engine cannot take new
// clients (a cluster that lost its broker): the gateway answers 503.
var ErrUnavailable = errors.New("topic: the cluster is unavailable")

// Engine shares topics between the instances of a cluster: each topic's
// source runs on one instance, and every instance with clients for the
// topic reads its events from a log they share. Package cluster implements
// it over NATS JetStream; the topic layer does not know which engine runs.
// Without one (Config.Engine nil) every topic is local to its process.
//
// Only keyed topics are shared; a topic without a key stays local.
type Engine interface {
	// Join makes this instance a member of a topic that starts here (its
	// first local client joined). It is called with the hub's lock held,
	// so it must not block: the work happens in Membership.Start. notify
	// is called, from any goroutine, whenever the log may have events for
	// Log.Take; it must not be called with a lock the log's methods need.
	Join(spec EngineSpec, notify func()) Membership
	// Available reports whether new clients may join: false while the
	// broker has been unreachable for too long (or since the start).
	Available() bool
	// Status reports the engine's state for metrics and stats.
	Status() EngineStatus
}

// EngineSpec is what an engine is told about a topic that starts here.
type EngineSpec struct {
	// Key identifies the topic cluster-wide. It may hold secrets: an
	// engine must never write it into a subject, a key or a log line.
	Key string
	// Kind labels the topic ("subscription", "live", "source").
	Kind string
	// State marks a topic whose results are states (live queries): a
	// new run's first result is complete, so a takeover needs no gap.
	State bool
	// Replay is how many recent events the topic keeps for resume.
	Replay int
	// Source is what to run when this instance runs the topic.
	Source Source
}

// Membership is one instance's part in a shared topic, from Engine.Join
// until Leave.
type Membership interface {
	// Log is the topic's log on this instance: it names events as the
	// engine stores them (Append and Break return nil) and hands them
	// back through Take. It is empty until Start loaded the history.
	Log() Log
	// Start loads the topic's history into Log and makes sure its source
	// runs somewhere in the cluster: here (then it has been opened) or on
	// another instance. It returns once the topic's clients can be
	// served, or with the error to answer them with; after an error the
	// membership is over (Leave is not called).
	Start(ctx context.Context) error
	// Leave ends the membership: this instance has no client left. The
	// engine stops the source, or leaves it running for the clients of
	// other instances. It must not wait for the goroutine that calls
	// notify, which may be the caller.
	Leave()
}

// EngineStatus is an engine's state, for metrics and stats.
type EngineStatus struct {
	// Connected reports whether the broker connection is up now.
	Connected bool
	// Available is Engine.Available.
	Available bool
	// Owned is how many topics run their source on this instance.
	Owned int
	// Takeovers counts the topics this instance took over, by reason
	// ("failover": the previous instance vanished; "handoff": it handed
	// the topic over).
	Takeovers map[string]int64
}

// Syncer is implemented by logs that other instances append to: a client
// may hold an id that another instance has named and this one not read
// yet. Join waits for it before resuming the client.
type Syncer interface {
	// Sync returns once the log has read as far as id, or id is not one
	// of its ids, or ctx ended.
	Sync(ctx context.Context, id string)
}
