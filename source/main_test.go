package source

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/event"
	"github.com/fireboom/fireboom/source/sourcetest"
)

// The services the tests use: PostgreSQL and Redis on this machine (as
// scripts/test starts them), NATS in-process; see package sourcetest.
const redisURL = sourcetest.RedisURL

// TestMain fails the package's tests if any goroutine outlives them, and
// drops the test database.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { sourcetest.DropDB() }))
}

func random() string                         { return sourcetest.Random() }
func pgURL(t *testing.T) string              { t.Helper(); return sourcetest.PGURL(t) }
func pgConn(t *testing.T) *pgx.Conn          { t.Helper(); return sourcetest.PGConn(t) }
func redisClient(t *testing.T) *redis.Client { t.Helper(); return sourcetest.RedisClient(t) }
func natsServer(t *testing.T, port int) *server.Server {
	t.Helper()
	return sourcetest.NATSServer(t, port)
}
func natsClient(t *testing.T, url string) *nats.Conn {
	t.Helper()
	return sourcetest.NATSClient(t, url)
}

// newSource starts a source and closes it when the test ends.
func newSource(t *testing.T, kind, url string, opt Options) *Source {
	t.Helper()
	s, err := New("t"+random(), kind, url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	waitFor(t, "the source to connect", func() bool { return s.Ready() == nil })
	return s
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recSink records what a stream writes, as lines: "next <data>",
// "gap <reason>", "end <data>".
type recSink struct {
	ch chan string
}

func newSink() *recSink { return &recSink{ch: make(chan string, 1000)} }

func (r *recSink) Next(data []byte)       { r.ch <- "next " + string(data) }
func (r *recSink) Gap(reason string)      { r.ch <- "gap " + reason }
func (r *recSink) End(final *event.Event) { r.ch <- "end " + string(final.Data) }

var _ event.Sink = (*recSink)(nil)

// expect waits for exactly these lines, in order.
func (r *recSink) expect(t *testing.T, lines ...string) {
	t.Helper()
	for _, want := range lines {
		select {
		case got := <-r.ch:
			if got != want {
				t.Fatalf("got  %s\nwant %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for %s", want)
		}
	}
}

// none checks that nothing more was written.
func (r *recSink) none(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.ch:
		t.Fatalf("unexpected %s", got)
	default:
	}
}

// open opens a stream of s on ch and stops it when the test ends.
func open(t *testing.T, s *Source, ch string, tr Transform, sink *recSink) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop, err := s.Stream(ch, tr).Open(ctx, sink)
	if err != nil {
		t.Fatalf("open %s: %v", ch, err)
	}
	t.Cleanup(stop)
	return stop
}

// known reports whether the source still keeps ch at all.
func (s *Source) known(ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[ch] != nil
}
