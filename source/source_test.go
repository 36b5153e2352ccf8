package source

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/fireboom/fireboom/operation"
)

// ordersFor compiles the contract's MyOrders over an events schema whose
// orderUpdated listens on ch of e's kind, resolved for user u1: the
// Transform the gateway will hand to Stream.
func ordersFor(t *testing.T, e *engineEnv, ch string) *operation.Resolved {
	t.Helper()
	target := `channel: "` + ch + `"`
	if e.kind == NATS {
		target = `subject: "` + ch + `"`
	}
	sdl := `type Query { v: String }
type OrderEvent { id: ID!  userId: ID!  status: String!  total: Float }
type Subscription {
  orderUpdated(userId: ID!): OrderEvent! @listen(source: "src", ` + target + `, filter: { userId: "{{ args.userId }}" })
}`
	schema, probs, err := operation.BuildSchema(nil, &operation.EventsSchema{File: "events.graphql", SDL: []byte(sdl), Sources: map[string]string{"src": e.kind}})
	if err != nil || len(probs) > 0 {
		t.Fatalf("schema: %v %v", err, probs)
	}
	op, probs := operation.Compile("orders/MyOrders", "MyOrders.graphql",
		[]byte(`subscription MyOrders($userId: ID!) { orderUpdated(userId: $userId) { id status total } }`), schema)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r, err := op.Event.Resolve([]byte(`{"userId":"u1"}`))
	if err != nil || r.Channel != ch {
		t.Fatalf("resolve: %v %+v", err, r)
	}
	return r
}

// raw delivers every payload as it came (its JSON re-encoded).
func raw(v any) ([]byte, error) { return []byte(fmt.Sprint(v)), nil }

// A message published from outside reaches the stream as the operation's
// result, exact bytes, after the filter and the selection set; bad
// messages are dropped and counted, and the stream goes on.
func TestDeliverFilterAndShape(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *engineEnv) {
		s := newSource(t, e.kind, e.url, Options{})
		ch := e.channel("orders")
		r := ordersFor(t, e, ch)
		sink := newSink()
		open(t, s, ch, r.Apply, sink)
		for _, p := range []string{
			`{"id":6,"userId":"u2","status":"paid","total":1}`, // another user's: filtered
			`{"id":7,"userId":"u1","status":"paid","total":12.5,"note":"x"}`,
			`not json`,               // bad
			`{"id":8,"userId":"u1"}`, // bad: no status
			`{"id":"9","userId":"u1","status":"new"}`,
		} {
			e.publish(t, ch, p)
		}
		sink.expect(t,
			`next {"data":{"orderUpdated":{"id":"7","status":"paid","total":12.5}}}`,
			`next {"data":{"orderUpdated":{"id":"9","status":"new","total":null}}}`)
		sink.none(t)
		if st := s.Stats(); st != (Stats{Messages: 5, BadMessages: 2, Connected: true}) {
			t.Errorf("stats %+v", st)
		}
	})
}

// One connection serves every stream, whatever their number; a channel
// is listened to once, and un-listened when its last stream stops.
func TestOneConnectionAndUnlisten(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *engineEnv) {
		s := newSource(t, e.kind, e.url, Options{})
		a, b := e.channel("a"), e.channel("b")
		sinks := make([]*recSink, 6)
		stops := make([]func(), 6)
		for i := range sinks {
			sinks[i] = newSink()
			ch := a
			if i >= 4 {
				ch = b
			}
			stops[i] = open(t, s, ch, raw, sinks[i])
		}
		if n := e.conns(t, s); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
		if n := e.subscribers(t, a); n != -1 && n != 1 {
			t.Errorf("%d subscriptions to a, want 1", n)
		}
		e.publish(t, a, `"to a"`)
		e.publish(t, b, `"to b"`)
		for i, sk := range sinks {
			if i < 4 {
				sk.expect(t, "next to a")
			} else {
				sk.expect(t, "next to b")
			}
		}

		// Three of a's four streams stop: a is still listened to.
		for _, stop := range stops[:3] {
			stop()
		}
		e.publish(t, a, `"again"`)
		sinks[3].expect(t, "next again")
		for _, sk := range sinks[:3] {
			sk.none(t)
		}
		// The last one stops: a is un-listened.
		stops[3]()
		waitFor(t, "a to be un-listened", func() bool { return !s.known(a) })
		if n := e.subscribers(t, a); n != -1 && n != 0 {
			t.Errorf("%d subscriptions to a after the last stream stopped", n)
		}
		// A message on a no longer reaches the connection: only b's
		// message, published after it, is counted.
		before := s.Stats().Messages
		e.publish(t, a, `"nobody"`)
		e.publish(t, b, `"sentinel"`)
		sinks[4].expect(t, "next sentinel")
		if got := s.Stats().Messages - before; got != 1 {
			t.Errorf("%d messages reached the connection, want 1", got)
		}
		if n := e.conns(t, s); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
}

// Publish sends exact bytes that an outside listener receives.
func TestPublish(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *engineEnv) {
		s := newSource(t, e.kind, e.url, Options{})
		ch := e.channel("pub")
		next := e.receive(t, ch)
		sink := newSink()
		open(t, s, ch, raw, sink)
		payload := `{"celsius":21.5,"at":"<now>"}`
		if err := s.Publish(context.Background(), ch, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if got := next(); got != payload {
			t.Errorf("outside got %s, want %s", got, payload)
		}
		sink.expect(t, "next map[at:<now> celsius:21.5]")
	})
}

// A lost connection is re-dialled: each stream gets one gap, then the
// events published after the reconnect.
func TestReconnect(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *engineEnv) {
		s := newSource(t, e.kind, e.url, Options{})
		ch, other := e.channel("r"), e.channel("other")
		s1, s2, s3 := newSink(), newSink(), newSink()
		open(t, s, ch, raw, s1)
		open(t, s, ch, raw, s2)
		open(t, s, other, raw, s3)
		e.publish(t, ch, `"before"`)
		s1.expect(t, "next before")
		s2.expect(t, "next before")

		e.kill(t, s)
		s1.expect(t, "gap reconnected")
		s2.expect(t, "gap reconnected")
		s3.expect(t, "gap reconnected")
		e.publish(t, ch, `"after"`)
		e.publish(t, other, `"after"`)
		s1.expect(t, "next after")
		s2.expect(t, "next after")
		s3.expect(t, "next after")
		for _, sk := range []*recSink{s1, s2, s3} {
			sk.none(t)
		}
		if n := e.conns(t, s); n != 1 {
			t.Errorf("%d connections after the reconnect, want 1", n)
		}
	})
}

// Streams opening and stopping from many goroutines while messages flow
// leave nothing listened to.
func TestConcurrentOpenStop(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *engineEnv) {
		s := newSource(t, e.kind, e.url, Options{})
		chs := []string{e.channel("c0"), e.channel("c1"), e.channel("c2")}
		var wg sync.WaitGroup
		for g := range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 8 {
					ch := chs[(g+i)%len(chs)]
					stop, err := s.Stream(ch, raw).Open(context.Background(), newSink())
					if err != nil {
						t.Error(err)
						return
					}
					stop()
				}
			}()
		}
		for i := range 20 {
			e.publish(t, chs[i%len(chs)], `1`)
		}
		wg.Wait()
		for _, ch := range chs {
			waitFor(t, ch+" to be un-listened", func() bool { return !s.known(ch) })
			if n := e.subscribers(t, ch); n != -1 && n != 0 {
				t.Errorf("%s: %d subscriptions left", ch, n)
			}
		}
	})
}

func TestOpenInvalidChannel(t *testing.T) {
	eachEngine(t, func(t *testing.T, e *engineEnv) {
		s := newSource(t, e.kind, e.url, Options{})
		_, err := s.Stream("", raw).Open(context.Background(), newSink())
		if !errors.Is(err, ErrInvalidChannel) {
			t.Errorf("empty channel: %v", err)
		}
		if err := s.Publish(context.Background(), "", []byte("1")); !errors.Is(err, ErrInvalidChannel) {
			t.Errorf("publish to an empty channel: %v", err)
		}
	})
}
