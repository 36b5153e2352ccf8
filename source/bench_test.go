package source

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/operation"
	"github.com/fireboom/fireboom/source/sourcetest"
)

// BenchmarkPostgresListen measures how many messages per second one
// PostgreSQL LISTEN connection carries into the gateway: b.N NOTIFYs of
// 200 bytes, sent from another connection in transactions of 1,000, each
// decoded once and given to every stream of the channel, which filters it
// by user and applies MyOrders' selection set, as the gateway does. The
// time runs from the first send to the last delivery (msgs/s); sent-msgs/s
// is how fast the sender went: when it is well above msgs/s, the LISTEN
// connection is what limits.
//
//	go test ./source/ -run '^$' -bench PostgresListen -benchtime 200000x
func BenchmarkPostgresListen(b *testing.B) {
	for _, users := range []int{1, 100} {
		b.Run(fmt.Sprintf("users=%d", users), func(b *testing.B) { benchListen(b, users) })
	}
}

func benchListen(b *testing.B, users int) {
	url, out := sourcetest.PGURL(b), sourcetest.PGConn(b)
	s, err := New("bench"+random(), Postgres, url, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	for deadline := time.Now().Add(10 * time.Second); s.Ready() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the source did not connect")
		}
	}
	ch := "bench_" + random()
	op := myOrders(b, ch)
	var got atomic.Int64
	done := make(chan struct{})
	want := int64(b.N)
	for u := range users {
		r, err := op.Event.Resolve([]byte(`{"userId":"u` + fmt.Sprint(u) + `"}`))
		if err != nil {
			b.Fatal(err)
		}
		sink := countSink{n: &got, want: want, done: done}
		stop, err := s.Stream(ch, r.Apply).Open(context.Background(), sink)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(stop)
	}
	// Payloads of 200 bytes, each a user's (round-robin), each distinct:
	// PostgreSQL folds identical notifications of one transaction.
	payload := func(i int) string {
		p := fmt.Sprintf(`{"id":%d,"userId":"u%d","status":"paid","total":12.5,"note":"`, i, i%users)
		return p + strings.Repeat("x", 200-len(p)-2) + `"}`
	}
	if n := len(payload(123456)); n != 200 {
		b.Fatalf("payload of %d bytes", n)
	}
	const batch = 1000
	b.SetBytes(200)
	b.ResetTimer()
	start := time.Now()
	errs := make(chan error, 1)
	var sentIn atomic.Int64 // how long sending took: if far less than the whole, the listener is the bottleneck
	go func() {
		ctx := context.Background()
		ps := make([]string, 0, batch)
		for i := 0; i < b.N; i += batch {
			ps = ps[:0]
			for j := i; j < min(i+batch, b.N); j++ {
				ps = append(ps, payload(j))
			}
			if _, err := out.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", ch, ps); err != nil {
				errs <- err
				return
			}
		}
		sentIn.Store(int64(time.Since(start)))
	}()
	select {
	case <-done:
	case err := <-errs:
		b.Fatal(err)
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d messages delivered", got.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if d := time.Duration(sentIn.Load()); d > 0 {
		b.ReportMetric(float64(b.N)/d.Seconds(), "sent-msgs/s")
	}
	if st := s.Stats(); st.BadMessages != 0 {
		b.Errorf("%d bad messages", st.BadMessages)
	}
}

// myOrders compiles the contract's MyOrders (without the claim) over a
// channel: what the gateway hands to Stream for each user.
func myOrders(b *testing.B, ch string) *operation.Operation {
	sdl := `type Query { v: String }
type OrderEvent { id: ID!  userId: ID!  status: String!  total: Float }
type Subscription {
  orderUpdated(userId: ID!): OrderEvent! @listen(source: "src", channel: "` + ch + `", filter: { userId: "{{ args.userId }}" })
}`
	schema, probs, err := operation.BuildSchema(nil, &operation.EventsSchema{File: "events.graphql", SDL: []byte(sdl), Sources: map[string]string{"src": Postgres}})
	if err != nil || len(probs) > 0 {
		b.Fatalf("schema: %v %v", err, probs)
	}
	op, probs := operation.Compile("orders/MyOrders", "MyOrders.graphql",
		[]byte(`subscription MyOrders($userId: ID!) { orderUpdated(userId: $userId) { id status total } }`), schema)
	if len(probs) > 0 {
		b.Fatal(probs)
	}
	return op
}

// countSink counts deliveries and closes done at want.
type countSink struct {
	n    *atomic.Int64
	want int64
	done chan struct{}
}

func (c countSink) Next([]byte) {
	if c.n.Add(1) == c.want {
		close(c.done)
	}
}
func (c countSink) Gap(string)       {}
func (c countSink) End(*event.Event) {}
