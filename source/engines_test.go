package source

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/fireboom/fireboom/source/sourcetest"
)

// engineEnv is one kind of server as the shared tests drive it: from
// outside the source (a client of the test's own) and from the server's
// side (who is connected, who is subscribed, cutting a connection).
type engineEnv struct {
	kind string
	url  string
	// channel names a channel or subject for a test, unique to it.
	channel func(name string) string
	// publish sends payload to ch from outside the source.
	publish func(t *testing.T, ch, payload string)
	// receive listens to ch from outside and returns a function that
	// waits for the next payload.
	receive func(t *testing.T, ch string) func() string
	// subscribers is how many connections the server has subscribed to
	// ch, or -1 when the server cannot tell (PostgreSQL).
	subscribers func(t *testing.T, ch string) int
	// conns is how many listening connections the source has open.
	conns func(t *testing.T, s *Source) int
	// kill cuts the source's connection from the server's side.
	kill func(t *testing.T, s *Source)
}

func pgEnv(t *testing.T) *engineEnv {
	url := pgURL(t)
	out := pgConn(t)
	ctx := context.Background()
	prefix := "ch_" + random() + "_"
	byApp := func(s *Source) string { return clientName(s.name) }
	return &engineEnv{
		kind: Postgres, url: url,
		channel: func(name string) string { return prefix + name },
		publish: func(t *testing.T, ch, payload string) {
			if _, err := out.Exec(ctx, "SELECT pg_notify($1, $2)", ch, payload); err != nil {
				t.Fatal(err)
			}
		},
		receive: func(t *testing.T, ch string) func() string {
			l := pgConn(t)
			if _, err := l.Exec(ctx, `LISTEN "`+ch+`"`); err != nil {
				t.Fatal(err)
			}
			return func() string {
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				n, err := l.WaitForNotification(wctx)
				if err != nil {
					t.Fatal(err)
				}
				return n.Payload
			}
		},
		subscribers: func(*testing.T, string) int { return -1 },
		conns: func(t *testing.T, s *Source) int {
			var n int
			if err := out.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", byApp(s)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		},
		kill: func(t *testing.T, s *Source) {
			var n int
			err := out.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", byApp(s)).Scan(&n)
			if err != nil || n != 1 {
				t.Fatalf("terminated %d backends: %v", n, err)
			}
		},
	}
}

func natsEnv(t *testing.T) *engineEnv {
	srv := natsServer(t, 0)
	var mu sync.Mutex
	url := srv.ClientURL()
	current := func() *server.Server { mu.Lock(); defer mu.Unlock(); return srv }
	prefix := "t" + random() + "."
	return &engineEnv{
		kind: NATS, url: url,
		channel: func(name string) string { return prefix + name },
		publish: func(t *testing.T, ch, payload string) {
			// A client per publish: the server may have been restarted.
			nc := natsClient(t, url)
			if err := nc.Publish(ch, []byte(payload)); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		},
		receive: func(t *testing.T, ch string) func() string {
			nc := natsClient(t, url)
			sub, err := nc.SubscribeSync(ch)
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil { // the server knows of it
				t.Fatal(err)
			}
			return func() string {
				m, err := sub.NextMsg(10 * time.Second)
				if err != nil {
					t.Fatal(err)
				}
				return string(m.Data)
			}
		},
		subscribers: func(t *testing.T, ch string) int {
			cz, err := current().Connz(&server.ConnzOptions{Subscriptions: true})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range cz.Conns {
				for _, s := range c.Subs {
					if s == ch {
						n++
					}
				}
			}
			return n
		},
		conns: func(t *testing.T, s *Source) int {
			cz, err := current().Connz(nil)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range cz.Conns {
				if c.Name == clientName(s.name) {
					n++
				}
			}
			return n
		},
		kill: func(t *testing.T, s *Source) {
			// The server goes away and a new one comes up on its port.
			mu.Lock()
			defer mu.Unlock()
			port := srv.Addr().(*net.TCPAddr).Port
			srv.Shutdown()
			srv.WaitForShutdown()
			srv = natsServer(t, port)
		},
	}
}

func redisEnv(t *testing.T) *engineEnv {
	out := redisClient(t)
	ctx := context.Background()
	prefix := "fb:test:" + random() + ":"
	pubsubConns := func(t *testing.T, s *Source) []string { return sourcetest.RedisPubSub(t, out, clientName(s.name)) }
	return &engineEnv{
		kind: Redis, url: redisURL,
		channel: func(name string) string { return prefix + name },
		publish: func(t *testing.T, ch, payload string) {
			if err := out.Publish(ctx, ch, payload).Err(); err != nil {
				t.Fatal(err)
			}
		},
		receive: func(t *testing.T, ch string) func() string {
			ps := redisClient(t).Subscribe(ctx, ch)
			t.Cleanup(func() { _ = ps.Close() })
			if _, err := ps.Receive(ctx); err != nil { // the confirmation
				t.Fatal(err)
			}
			return func() string {
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				m, err := ps.ReceiveMessage(rctx)
				if err != nil {
					t.Fatal(err)
				}
				return m.Payload
			}
		},
		subscribers: func(t *testing.T, ch string) int {
			m, err := out.PubSubNumSub(ctx, ch).Result()
			if err != nil {
				t.Fatal(err)
			}
			return int(m[ch])
		},
		conns: func(t *testing.T, s *Source) int { return len(pubsubConns(t, s)) },
		kill: func(t *testing.T, s *Source) {
			ids := pubsubConns(t, s)
			if len(ids) != 1 {
				t.Fatalf("pub/sub connections %v", ids)
			}
			if err := out.Do(ctx, "CLIENT", "KILL", "ID", ids[0]).Err(); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// eachEngine runs test once per kind of server.
func eachEngine(t *testing.T, test func(t *testing.T, e *engineEnv)) {
	for _, k := range []struct {
		name string
		env  func(*testing.T) *engineEnv
	}{{Postgres, pgEnv}, {NATS, natsEnv}, {Redis, redisEnv}} {
		t.Run(k.name, func(t *testing.T) { test(t, k.env(t)) })
	}
}
