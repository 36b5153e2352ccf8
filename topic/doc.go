// Package topic is the one place where a stream of events is shared by
// many clients. A topic is one key (what makes two streams the same: an
// upstream subscription's exact request, a live query's poll, an event
// source's channel and filter) with one running Source, one Log, and the
// queues of its clients.
//
// A Source produces payloads and says when it broke (a gap) or ended; it
// knows nothing of clients, ids or replay (upstream subscriptions over
// WebSocket, SSE or multipart, live-query pollers and event sources are
// sources). It writes into the topic through event.Sink. The topic:
//
//   - starts the source for the first client (Hub.Join) and stops it when
//     the last client leaves, or ResumeHold after a last client the gateway
//     itself ended (stream lifetime, slow-consumer cut) so that its resume
//     finds the topic;
//   - names every event through its Log (ids come from the log) and keeps
//     the newest ones for replay: Last-Event-ID / wg_last_event_id resumes
//     after exactly that event, or gets one gap event when it can't;
//   - fans every event out into each client's event.Queue without ever
//     blocking on a client (the queue applies the slow-consumer policy);
//   - keeps a topic the source completed for ResumeHold, so that a client
//     that was away when it completed gets what it missed and done.
//
// # Logs and states
//
// A topic is a log of events (subscriptions, event sources: a resume gets
// every event after its id) or, with Spec.State, a sequence of states (live
// queries: a resume gets the newest state, or the patches from the state it
// held when they are smaller). The Log interface has one implementation
// here, the in-memory ring; its ids are "<incarnation>-<seq base36>", where
// the incarnation differs for every topic run and every process, so an id
// of another run is recognised as such ("restarted").
//
// # Encode once
//
// Every event is one *event.Event shared by pointer between all clients of
// the topic; the stream writer frames it once (event.Event.Frame) and every
// client writes the same bytes. Per delivery the topic does one
// non-blocking queue push.
package topic
