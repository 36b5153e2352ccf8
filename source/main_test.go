package source

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/fireboom/fireboom/event"
)

// The services the tests use: PostgreSQL and Redis on this machine (as
// scripts/test starts them), NATS in-process.
const (
	pgAdminURL = "postgres://postgres@127.0.0.1:5432/postgres"
	redisURL   = "redis://127.0.0.1:6379/0"
)

// TestMain fails the package's tests if any goroutine outlives them, and
// drops the test database.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { dropTestDB() }))
}

// random is a short random name part, so that runs and tests sharing a
// server never see each other's channels, keys or databases.
func random() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// need skips the test when a service is down, or fails it when CI is set:
// CI must run every test.
func need(t *testing.T, what, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	msg := fmt.Sprintf("%s is not reachable at %s (%v); scripts/test installs and starts it", what, addr, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var (
	testDBOnce sync.Once
	testDB     string
	testDBErr  error
)

// pgURL creates, once per run, a fresh database fb_test_<random> (dropped
// by TestMain) and returns its URL. NOTIFY reaches only listeners of the
// same database, so runs sharing the server do not meet.
func pgURL(t *testing.T) string {
	t.Helper()
	need(t, "PostgreSQL", "127.0.0.1:5432")
	testDBOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgAdminURL)
		if err != nil {
			testDBErr = err
			return
		}
		defer conn.Close(ctx)
		name := "fb_test_" + random()
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			testDBErr = err
			return
		}
		testDB = name
	})
	if testDBErr != nil {
		t.Fatalf("creating the test database: %v", testDBErr)
	}
	return "postgres://postgres@127.0.0.1:5432/" + testDB
}

func dropTestDB() {
	if testDB == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgAdminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+testDB+" WITH (FORCE)")
}

// pgConn is a connection of the test's own, from outside the source.
func pgConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), pgURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// redisClient is a client of the test's own, from outside the source.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	need(t, "Redis", "127.0.0.1:6379")
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// natsServer runs an in-process NATS server on a free port (or on port,
// to restart one in place).
func natsServer(t *testing.T, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// natsClient is a client of the test's own, from outside the source.
func natsClient(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
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

// listening reports whether the source listens to ch on its connection.
func (s *Source) listening(ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[ch]
	return c != nil && c.listened && !c.unlistening
}

// known reports whether the source still keeps ch at all.
func (s *Source) known(ch string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[ch] != nil
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
