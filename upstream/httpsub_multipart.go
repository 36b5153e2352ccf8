package upstream

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"

	"github.com/fireboom/fireboom/event"
)

// readMultipart reads one multipart subscription stream (Apollo's
// multipart HTTP protocol for GraphQL subscriptions) and passes each
// result to next. Every part is one JSON object:
//
//   - {} is a heartbeat, ignored;
//   - {"payload": <execution result>} is one result;
//   - {"payload": null, "errors": [...]} is a fatal transport error: the
//     subscription ends with an Error event holding {"errors":[...]} as
//     sent (a non-null payload beside errors is delivered first);
//   - {"payload": null} alone ends it normally, as Apollo Client reads it;
//   - an object without "payload" that has "data" or "errors" is a bare
//     execution result, as incremental-delivery servers (GraphQL Yoga)
//     stream them.
//
// The closing delimiter ("--graphql--") ends the subscription (DoneEvent).
// A part longer than limit ends it with frameTooLarge. A stream that
// breaks, or ends without the closing delimiter, returns a nil event and
// why: it is requested again.
//
// mime/multipart copes with the framing Apollo Router writes, where each
// chunk ends with "\r\n--graphql" and the delimiter line is finished only
// by the next chunk: a part's JSON is decoded as soon as its last byte
// arrived, without waiting for the next part (see the framing tests).
func readMultipart(r io.Reader, boundary string, limit int64, next func([]byte), log *slog.Logger) (*event.Event, error) {
	mr := multipart.NewReader(r, boundary)
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF { // NextRawPart returns io.EOF itself at the closing delimiter
			return event.DoneEvent, nil
		}
		if err != nil {
			// A stream cut before the closing delimiter ends here as a
			// wrapped io.EOF or io.ErrUnexpectedEOF.
			return nil, err
		}
		lr := &io.LimitedReader{R: p, N: limit + 1}
		var raw json.RawMessage
		err = json.NewDecoder(lr).Decode(&raw)
		switch {
		case lr.N <= 0:
			return frameTooLarge, nil
		case err == io.EOF: // an empty part: Decode returns io.EOF itself
			continue
		case err != nil:
			var se *json.SyntaxError
			if errors.As(err, &se) {
				log.Warn("upstream sent a multipart part that is not JSON; ignored", "err", err)
				continue
			}
			return nil, err
		}
		if final := multipartMessage(raw, next, log); final != nil {
			return final, nil
		}
	}
}

// present is a JSON member that records whether it was there at all, so
// that "payload": null differs from no payload.
type present struct {
	set bool
	raw json.RawMessage
}

func (p *present) UnmarshalJSON(b []byte) error {
	p.set = true
	p.raw = append(p.raw[:0], b...)
	return nil
}

func (p *present) null() bool { return !p.set || string(p.raw) == "null" }

// multipartMessage handles one part's JSON (see readMultipart) and returns
// the final event when it ends the subscription.
func multipartMessage(raw json.RawMessage, next func([]byte), log *slog.Logger) *event.Event {
	var m struct {
		Payload present         `json:"payload"`
		Errors  json.RawMessage `json:"errors"`
		Data    present         `json:"data"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		log.Warn("upstream sent a multipart part that is not a JSON object; ignored", "err", err)
		return nil
	}
	fatal := nonEmptyArray(m.Errors)
	switch {
	case m.Payload.set:
		if !m.Payload.null() {
			next(m.Payload.raw)
		}
		if fatal {
			return &event.Event{Kind: event.Error, Data: normalizeErrors(m.Errors)}
		}
		if m.Payload.null() {
			return event.DoneEvent
		}
	case m.Data.set || fatal:
		next(raw)
	}
	// Anything else, {} above all, is a heartbeat.
	return nil
}
