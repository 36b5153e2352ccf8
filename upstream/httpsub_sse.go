package upstream

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"math"

	sse "github.com/tmaxmax/go-sse"

	"github.com/fireboom/fireboom/event"
)

// sseFieldBytes is what an SSE event may hold beyond its data within the
// parser's limit: the field names, "event: next", line ends.
const sseFieldBytes = 4 << 10

// errNoComplete is a GraphQL-over-SSE stream that ended without its
// complete event: the upstream went away, so the stream is requested again.
var errNoComplete = errors.New("upstream: event stream ended without complete")

// sseRead parses an event stream with go-sse, holding at most about limit
// bytes of one event in memory; a longer event is a bufio.ErrTooLong.
func sseRead(r io.Reader, limit int64) func(func(sse.Event, error) bool) {
	size := int64(math.MaxInt32)
	if limit < size-sseFieldBytes {
		size = limit + sseFieldBytes
	}
	return sse.Read(r, &sse.ReadConfig{MaxEventSize: int(size)})
}

// readSSE reads one GraphQL-over-SSE stream (the graphql-sse protocol,
// distinct connections mode) and passes each result to next:
//
//   - "event: next" with "data: <execution result>" is one result;
//   - "event: complete" ends the subscription (DoneEvent);
//   - an event without a name whose data is a result is the legacy form
//     (GraphQL Yoga before it adopted the protocol), which had no complete
//     event: such a stream that ends cleanly has completed;
//   - comments (":" heartbeats) and other event names are ignored.
//
// An event whose data passes limit ends the subscription with
// frameTooLarge. Otherwise a stream that breaks, or ends without complete,
// returns a nil event and why: it is requested again.
func readSSE(r io.Reader, limit int64, next func([]byte), log *slog.Logger) (*event.Event, error) {
	legacy := false
	for ev, err := range sseRead(r, limit) {
		if err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return frameTooLarge, nil
			}
			return nil, err
		}
		switch ev.Type {
		case "complete":
			return event.DoneEvent, nil
		case "next":
		case "":
			legacy = legacy || ev.Data != ""
		default:
			log.Debug("upstream sent an unknown SSE event; ignored", "event", ev.Type)
			continue
		}
		if ev.Data == "" {
			continue
		}
		if int64(len(ev.Data)) > limit {
			return frameTooLarge, nil
		}
		next([]byte(ev.Data))
	}
	// sse.Read ends without an error only at a clean end of the body
	// (a cut connection is an error such as io.ErrUnexpectedEOF).
	if legacy {
		return event.DoneEvent, nil
	}
	return nil, errNoComplete
}
