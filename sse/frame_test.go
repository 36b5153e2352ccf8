package sse

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	gosse "github.com/tmaxmax/go-sse"

	"github.com/fireboom/fireboom/event"
)

func TestAppendSSE(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    *event.Event
		want string
	}{
		{"next with id", &event.Event{Kind: event.Next, ID: "a:1", Data: []byte(`{"data":1}`)}, "id: a:1\ndata: {\"data\":1}\n\n"},
		{"next without id", &event.Event{Kind: event.Next, Data: []byte(`{}`)}, "data: {}\n\n"},
		{"id with newline is dropped", &event.Event{Kind: event.Next, ID: "a\nb", Data: []byte(`1`)}, "data: 1\n\n"},
		{"multi-line data", &event.Event{Kind: event.Next, ID: "2", Data: []byte("{\n\"a\": 1\r\n,\r\"b\":2}")}, "id: 2\ndata: {\ndata: \"a\": 1\ndata: ,\ndata: \"b\":2}\n\n"},
		{"gap", event.NewGap(event.GapData{Missed: 3, LastEventID: "x:9", Reason: "slow-consumer"}), "id: x:9\nevent: gap\ndata: {\"missed\":3,\"lastEventId\":\"x:9\",\"reason\":\"slow-consumer\"}\n\n"},
		{"error", event.NewError("Boom", "bad"), "data: {\"errors\":[{\"message\":\"bad\",\"extensions\":{\"code\":\"Boom\"}}]}\n\nevent: done\ndata: done\n\n"},
		{"done", event.DoneEvent, "event: done\ndata: done\n\n"},
	}
	for _, tt := range tests {
		if got := string(appendSSE(nil, tt.e)); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	t.Parallel()
	gap := event.NewGap(event.GapData{Missed: 3, LastEventID: "x:9", Reason: "slow-consumer"})
	tests := []struct {
		name string
		e    *event.Event
		want string
	}{
		{"next", &event.Event{Kind: event.Next, ID: "1", Data: []byte(`{"data":1}`)}, "{\"data\":1}\n\n"},
		{"newlines become spaces", &event.Event{Kind: event.Next, Data: []byte("{\n\"a\":\r\n1}")}, "{ \"a\":  1}\n\n"},
		{"error", event.NewError("Boom", "bad"), "{\"errors\":[{\"message\":\"bad\",\"extensions\":{\"code\":\"Boom\"}}]}\n\n"},
		{"done", event.DoneEvent, ""},
		{"gap", gap, `{"errors":[{"message":"events were missed","extensions":{"code":"Gap","missed":3,"lastEventId":"x:9","reason":"slow-consumer"}}]}` + "\n\n"},
		{"empty gap", &event.Event{Kind: event.Gap, Data: []byte(`{}`)}, `{"errors":[{"message":"events were missed","extensions":{"code":"Gap"}}]}` + "\n\n"},
		{"gap without data", &event.Event{Kind: event.Gap}, `{"errors":[{"message":"events were missed","extensions":{"code":"Gap"}}]}` + "\n\n"},
	}
	for _, tt := range tests {
		got := appendJSON(nil, tt.e)
		if string(got) != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
		if len(got) > 0 && !json.Valid(got) {
			t.Errorf("%s: not valid JSON: %q", tt.name, got)
		}
	}
}

// Any data survives the trip through the frame and go-sse's parser, the
// one Go clients use: data lines split at CR, LF and CRLF, rejoined with
// LF. (go-sse drops one trailing line break; results are compact JSON,
// which has none.)
func FuzzSSEData(f *testing.F) {
	f.Add([]byte("a\r\nb\rc\n"))
	f.Add([]byte(`{"x":1}`))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return // an event without data is not an event
		}
		frame := appendSSE(nil, &event.Event{Kind: event.Next, ID: "r-1", Data: data})
		var got []string
		for e, err := range gosse.Read(bytes.NewReader(frame), nil) {
			if err != nil {
				t.Fatalf("parse %q: %v", frame, err)
			}
			if e.LastEventID != "r-1" || e.Type != "" {
				t.Fatalf("event %+v from %q", e, frame)
			}
			got = append(got, e.Data)
		}
		want := strings.TrimSuffix(string(normalize(data)), "\n")
		if len(got) != 1 || got[0] != want {
			t.Fatalf("round trip of %q: got %q want %q", data, got, want)
		}
	})
}

// normalize turns CRLF and CR into LF.
func normalize(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\n')
			i++
		case b[i] == '\r':
			out = append(out, '\n')
		default:
			out = append(out, b[i])
		}
	}
	return out
}
