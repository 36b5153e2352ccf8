package upstream

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/fireboom/fireboom/event"
)

// fuzzLimit is the read limit of the fuzzed readers: small, so that the
// limit is crossed often.
const fuzzLimit = 256

// checkReader runs a stream reader and checks what any reader must hold:
// every result delivered (after compaction, as run does) is one JSON value
// within the limit, and the end is either a final event or an error,
// never both.
func checkReader(t *testing.T, read func(next func([]byte)) (*event.Event, error)) {
	final, err := read(compacted(func(b []byte) {
		if !json.Valid(b) {
			t.Fatalf("result is not JSON: %q", b)
		}
		if len(b) > fuzzLimit {
			t.Fatalf("result of %d bytes passed the %d-byte limit", len(b), fuzzLimit)
		}
	}, slog.New(slog.DiscardHandler)))
	if (final == nil) == (err == nil) {
		t.Fatalf("final %v, err %v: want exactly one", final, err)
	}
	if final != nil && !final.Kind.Terminal() {
		t.Fatalf("final event of kind %s", final.Kind)
	}
}

func FuzzReadMultipart(f *testing.F) {
	f.Add("\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{}\r\n--graphql\r\ncontent-type: application/json\r\n\r\n{\"payload\":{\"data\":1}}\r\n--graphql--\r\n")
	f.Add("--graphql\r\nContent-Type: application/json\r\n\r\n{\"payload\":null,\"errors\":[{\"message\":\"x\"}]}\r\n--graphql--")
	f.Add("--graphql\r\n\r\n{\"data\":{\"n\":1}}\r\n--graphql\r\n\r\n{\"payload\":null}")
	f.Add("--graphql\r\n\r\n{\"payload\":\"" + strings.Repeat("x", fuzzLimit) + "\"}\r\n--graphql--")
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, in string) {
		checkReader(t, func(next func([]byte)) (*event.Event, error) {
			return readMultipart(strings.NewReader(in), "graphql", fuzzLimit, next, log)
		})
	})
}

func FuzzReadSSE(f *testing.F) {
	f.Add(":\n\nevent: next\ndata: {\"data\":1}\n\nevent: complete\ndata:\n\n")
	f.Add("data: {\"data\":\ndata: 1}\n\ndata: [1]\r\n\r\n")
	f.Add("event: next\ndata: " + strings.Repeat("x", 2*fuzzLimit) + "\n\n")
	f.Add("event: ping\ndata: {}\n\nevent: next\ndata: {\"a\"")
	log := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, in string) {
		checkReader(t, func(next func([]byte)) (*event.Event, error) {
			return readSSE(strings.NewReader(in), fuzzLimit, next, log)
		})
	})
}
