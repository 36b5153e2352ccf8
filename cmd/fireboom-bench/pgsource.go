package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The -source postgres mode: the gateway serves one PostgreSQL event
// source alone (no upstream) and the clients stream MyTicks, each user's
// ticks (the token's subject, @fromClaim), -users distinct users spread
// round-robin over the clients. Every tick (-rate per second) the tool
// sends one NOTIFY per user on one channel, in one transaction: each
// NOTIFY is filtered by every user's topic and delivered to the clients of
// one, so a tick makes one event for every client, as in the shared mode.

// pgDefaultURL is the PostgreSQL of scripts/test.
const pgDefaultURL = "postgres://postgres@127.0.0.1:5432/postgres"

// benchUser is the token subject (and payload userId) of user k.
func benchUser(k int) string { return fmt.Sprintf("u%d", k) }

// sourceRun is what a -source postgres run set up.
type sourceRun struct {
	channel string // the NOTIFY channel, unique to the run
	app     string // application_name of the gateway's LISTEN connection
}

func newSourceRun() *sourceRun {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	return &sourceRun{channel: "fireboom_bench_" + id, app: "fireboom-bench-" + id}
}

// writeSourceFiles writes the events schema and the MyTicks operation
// into the gateway's folder dir and adds the source to its config.
func (s *sourceRun) writeSourceFiles(dir string, c *runConfig, cfg map[string]any) error {
	u, err := url.Parse(c.pgURL)
	if err != nil {
		return fmt.Errorf("-pg-url: %w", err)
	}
	q := u.Query()
	q.Set("application_name", s.app) // the LISTEN connection, in pg_stat_activity
	u.RawQuery = q.Encode()
	sdl := `type Query { version: String }
type Tick { userId: ID!  seq: Int!  publishedAt: String!  pad: String }
type Subscription {
  tick(userId: ID!): Tick! @listen(source: "pg", channel: "` + s.channel + `", filter: { userId: "{{ args.userId }}" })
}
`
	op := "# One user's ticks: the token's subject. seq (gaps = lost events) and\n" +
		"# publishedAt (latency) are what the load tool reads.\n" +
		"subscription MyTicks($userId: ID! @fromClaim(name: SUB)) {\n  tick(userId: $userId) { userId seq publishedAt }\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "events.graphql"), []byte(sdl), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "operations", "MyTicks.graphql"), []byte(op), 0o644); err != nil {
		return err
	}
	cfg["sources"] = map[string]any{"pg": map[string]any{"postgres": map[string]any{"url": u.String()}}}
	cfg["events"] = map[string]any{"schemaFile": "events.graphql"}
	return nil
}

// tickPayload is user k's NOTIFY payload of tick seq, padded to size
// bytes (when it is shorter).
func tickPayload(k int, seq int64, at time.Time, size int) string {
	p := fmt.Sprintf(`{"userId":%q,"seq":%d,"publishedAt":%q,"pad":"`, benchUser(k), seq, at.UTC().Format(time.RFC3339Nano))
	return p + strings.Repeat("x", max(size-len(p)-2, 0)) + `"}`
}

// notifier sends the ticks from a connection of its own.
type notifier struct {
	conn   *pgx.Conn
	sent   atomic.Int64 // NOTIFYs committed
	late   atomic.Int64 // ticks skipped because a send outlasted the period
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startNotifier connects to pgURL and sends users NOTIFYs on channel per
// tick, rate ticks per second, until stop.
func startNotifier(ctx context.Context, pgURL, channel string, users int, rate float64, size int) (*notifier, error) {
	cfg, err := pgx.ParseConfig(pgURL)
	if err != nil {
		return nil, fmt.Errorf("-pg-url: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "fireboom-bench-notifier"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &notifier{conn: conn, cancel: cancel}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		period := time.Duration(float64(time.Second) / rate)
		t := time.NewTicker(period)
		defer t.Stop()
		payloads := make([]string, users)
		for seq := int64(1); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			now := time.Now()
			for k := range payloads {
				payloads[k] = tickPayload(k, seq, now, size)
			}
			// One statement, one transaction: the NOTIFYs are delivered
			// together at commit, in order.
			if _, err := conn.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", channel, payloads); err != nil {
				if ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "bench: NOTIFY:", err)
				}
				return
			}
			n.sent.Add(int64(users))
			if d := time.Since(now); d > period {
				n.late.Add(int64(d / period))
			}
		}
	}()
	return n, nil
}

func (n *notifier) stop() {
	n.cancel()
	n.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.conn.Close(ctx)
}

// countListeners counts the gateway's connections (application_name app)
// in pg_stat_activity, on a connection of its own.
func countListeners(ctx context.Context, pgURL, app string) (int, error) {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var c int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&c)
	return c, err
}
