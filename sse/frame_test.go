package sse

import (
	"encoding/json"
	"testing"

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
		{"multi-line data", &event.Event{Kind: event.Next, ID: "2", Data: []byte("{\n\"a\": 1\r\n,\r\"b\":2}\n")}, "id: 2\ndata: {\ndata: \"a\": 1\ndata: ,\ndata: \"b\":2}\ndata: \n\n"},
		{"empty data", &event.Event{Kind: event.Next}, "data: \n\n"},
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

func FuzzAppendData(f *testing.F) {
	f.Add([]byte("a\r\nb\rc\n"))
	f.Add([]byte(`{"x":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Parse the data lines back as the WHATWG algorithm does.
		out := appendData(nil, data)
		var got []byte
		for line := range splitLines(out) {
			if len(line) < 6 || string(line[:6]) != "data: " {
				t.Fatalf("bad line %q", line)
			}
			got = append(got, line[6:]...)
			got = append(got, '\n')
		}
		got = got[:len(got)-1]
		want := normalize(data)
		if string(got) != string(want) {
			t.Fatalf("round trip: got %q want %q", got, want)
		}
	})
}

// splitLines yields the LF-terminated lines of b (appendData only emits LF).
func splitLines(b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			i := 0
			for b[i] != '\n' {
				i++
			}
			if !yield(b[:i]) {
				return
			}
			b = b[i+1:]
		}
	}
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
