package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/fireboom/fireboom/config"
	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/source"
)

// The wiring helpers against a real (in-process) NATS server: a @publish
// mutation answers its result and the payload reaches a subscriber; a
// @listen subscription's stream delivers shaped results; errors map to
// the contract's statuses.
func TestEventWiring(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf(`{"sources":{"bus":{"nats":{"url":%q}}},"events":{"schemaFile":"e.graphql"}}`, srv.ClientURL())), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	sources, err := newSources(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sources.Close()
	schema, probs, err := operation.BuildSchema(nil, &operation.EventsSchema{File: "e.graphql", Sources: cfg.SourceKinds(), SDL: []byte(`
type Query { v: String }
type Reading { deviceId: ID! celsius: Float! }
type PublishResult { success: Boolean! }
input ReadingInput { celsius: Float! }
type Subscription { reading(deviceId: ID!): Reading! @listen(source: "bus", subject: "sensors.{{ args.deviceId }}") }
type Mutation {
  report(deviceId: ID!, input: ReadingInput!): PublishResult!
    @publish(source: "bus", subject: "sensors.{{ args.deviceId }}", payload: "{\"deviceId\": {{ args.deviceId }}, \"celsius\": {{ args.input.celsius }}}")
}`)})
	if err == nil && len(probs) == 0 {
		t.Fatalf("a payload placeholder naming a field of an argument was accepted")
	}
	schema, probs, err = operation.BuildSchema(nil, &operation.EventsSchema{File: "e.graphql", Sources: cfg.SourceKinds(), SDL: []byte(`
type Query { v: String }
type Reading { deviceId: ID! celsius: Float! }
type PublishResult { success: Boolean! }
input ReadingInput { deviceId: ID! celsius: Float! }
type Subscription { reading(deviceId: ID!): Reading! @listen(source: "bus", subject: "sensors.{{ args.deviceId }}") }
type Mutation {
  report(deviceId: ID!, input: ReadingInput!): PublishResult!
    @publish(source: "bus", subject: "sensors.{{ args.deviceId }}", payload: "{{ args.input }}")
}`)})
	if err != nil || len(probs) > 0 {
		t.Fatalf("%v %v", err, probs)
	}
	compile := func(src string) *operation.EventOp {
		op, probs := operation.Compile("x", "x.graphql", []byte(src), schema)
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		return op.Event
	}
	listen := compile(`subscription($d: ID!) { reading(deviceId: $d) { celsius } }`)
	publish := compile(`mutation($d: ID!, $in: ReadingInput!) { report(deviceId: $d, input: $in) { success } }`)
	waitFor := func(cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("timed out")
			}
		}
	}
	waitFor(func() bool { return sources.Ready() == nil })

	st, key, apiErr := eventStream(sources, listen, json.RawMessage(`{"d":"d1"}`))
	if apiErr != nil || key == "" {
		t.Fatalf("stream: %v %q", apiErr, key)
	}
	if _, key2, _ := eventStream(sources, listen, json.RawMessage(`{"d":"d1"}`)); key2 != key {
		t.Error("equal requests have different keys")
	}
	if _, key3, _ := eventStream(sources, listen, json.RawMessage(`{"d":"d2"}`)); key3 == key {
		t.Error("different devices share a key")
	}
	sink := &chanSink{ch: make(chan string, 10)}
	stop, err := st.Open(context.Background(), sink)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("sensors.d1")
	if err != nil || nc.Flush() != nil {
		t.Fatal(err)
	}

	body, apiErr := publishEvent(context.Background(), sources, publish, json.RawMessage(`{"d":"d1","in":{"celsius":21.5,"deviceId":"d1"}}`))
	if apiErr != nil || string(body) != `{"data":{"report":{"success":true}}}` {
		t.Fatalf("publish: %s %v", body, apiErr)
	}
	if m, err := sub.NextMsg(10 * time.Second); err != nil || string(m.Data) != `{"celsius":21.5,"deviceId":"d1"}` {
		t.Fatalf("subscriber got %v %v", m, err)
	}
	select {
	case got := <-sink.ch:
		if got != `{"data":{"reading":{"celsius":21.5}}}` {
			t.Errorf("stream got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event on the stream")
	}

	// A client may not widen the subject: 400 naming the variable.
	_, _, apiErr = eventStream(sources, listen, json.RawMessage(`{"d":">"}`))
	if apiErr == nil || apiErr.status != http.StatusBadRequest || apiErr.Code != codeInput || len(apiErr.Errors) != 1 || apiErr.Errors[0].PropertyPath != "/d" {
		t.Errorf("wildcard device: %+v", apiErr)
	}
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", source.ErrPayloadTooLarge), 413, codeTooLarge},
		{fmt.Errorf("x: %w", source.ErrUnavailable), 502, codeUnavailable},
		{fmt.Errorf("x: %w", source.ErrInvalidChannel), 400, codeInput},
		{errors.New("other"), 500, codeInternal},
	} {
		if e := eventError(tc.err); e.status != tc.status || e.Code != tc.code {
			t.Errorf("%v: %d %s", tc.err, e.status, e.Code)
		}
	}

	// Down: a publish is a 502 before anything is sent.
	srv.Shutdown()
	srv.WaitForShutdown()
	waitFor(func() bool { return sources.Ready() != nil })
	if _, apiErr := publishEvent(context.Background(), sources, publish, json.RawMessage(`{"d":"d1","in":{"celsius":1,"deviceId":"d1"}}`)); apiErr == nil || apiErr.status != 502 {
		t.Errorf("publish while down: %+v", apiErr)
	}
}

type chanSink struct{ ch chan string }

func (s *chanSink) Next(data []byte) { s.ch <- string(data) }
func (s *chanSink) Gap(string)       {}
func (s *chanSink) End(*event.Event) {}
