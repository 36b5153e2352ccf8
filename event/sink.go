package event

// Sink is where a source of events puts what it produces: an upstream
// subscription (WebSocket, SSE, multipart), a live-query poller, an event
// source (PostgreSQL, NATS, Redis). Package topic implements it: it names
// the events (ids), keeps them for replay and fans them out to client
// queues, so a source knows nothing of clients, ids or replay.
//
// A Sink never blocks on a client. Its methods may be called from any one
// goroutine at a time per source; calls after End, or after the source was
// stopped, are ignored.
type Sink interface {
	// Next delivers one result: a JSON value (for GraphQL, the execution
	// result {"data":...,"errors":...}). The sink may keep data: the
	// caller must not modify it afterwards.
	Next(data []byte)
	// Gap says that results may have been lost since the last Next: the
	// source's connection dropped and was re-established ("reconnected"),
	// or another instance took the source over ("failover", "handoff").
	// The stream goes on.
	Gap(reason string)
	// End ends the stream for every client: final is DoneEvent (the source
	// completed) or an Error event (the upstream's error, or why the source
	// could not go on, such as UpstreamUnavailable). Nothing follows it.
	End(final *Event)
}
