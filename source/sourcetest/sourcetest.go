package sourcetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// The services on this machine.
const (
	PGAddr     = "127.0.0.1:5432"
	PGAdminURL = "postgres://postgres@" + PGAddr + "/postgres"
	RedisAddr  = "127.0.0.1:6379"
	RedisURL   = "redis://" + RedisAddr + "/0"
)

// Random is a short random name part, so that runs and tests sharing a
// server never see each other's channels, keys or databases.
func Random() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Need skips the test when a service is down, or fails it when CI is set.
func Need(t testing.TB, what, addr string) {
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
	dbOnce sync.Once
	dbName string
	dbErr  error
)

// PGURL creates, once per test process, a fresh database fb_test_<random>
// (DropDB drops it) and returns its URL. NOTIFY reaches only listeners of
// the same database, so runs sharing the server do not meet.
func PGURL(t testing.TB) string {
	t.Helper()
	return "postgres://postgres@" + PGAddr + "/" + PGDatabase(t)
}

// PGDatabase is the name of PGURL's database.
func PGDatabase(t testing.TB) string {
	t.Helper()
	Need(t, "PostgreSQL", PGAddr)
	dbOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, PGAdminURL)
		if err != nil {
			dbErr = err
			return
		}
		defer conn.Close(ctx)
		name := "fb_test_" + Random()
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			dbErr = err
			return
		}
		dbName = name
	})
	if dbErr != nil {
		t.Fatalf("creating the test database: %v", dbErr)
	}
	return dbName
}

// DropDB drops PGURL's database, if one was made, cutting its connections.
func DropDB() {
	if dbName == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PGAdminURL)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
}

// PGConn is a connection of the test's own to PGURL's database, from
// outside the gateway, closed when the test ends.
func PGConn(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), PGURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// RedisClient is a client of the test's own, closed when the test ends.
func RedisClient(t testing.TB) *redis.Client {
	t.Helper()
	Need(t, "Redis", RedisAddr)
	opt, err := redis.ParseURL(RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// RedisPubSub lists the ids of the pub/sub connections named name (a
// source's client name) that c's server holds. The server may be shared
// with others, so connections are found by name, never by type alone.
func RedisPubSub(t testing.TB, c *redis.Client, name string) []string {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name && strings.Contains(f["flags"], "P") {
			ids = append(ids, f["id"])
		}
	}
	return ids
}

// NATSServer runs an in-process NATS server on a free loopback port (or
// on port, to restart one in place), shut down when the test ends.
func NATSServer(t testing.TB, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	return NATSServerWith(t, &server.Options{Port: port})
}

// NATSServerWith runs an in-process NATS server with opts (users and
// permissions, limits), on loopback and quiet; Port 0 means a free port.
func NATSServerWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	o := *opts
	o.Host, o.NoLog, o.NoSigs = "127.0.0.1", true, true
	if o.Port == 0 {
		o.Port = -1
	}
	s, err := server.NewServer(&o)
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

// NATSClient is a client of the test's own, closed when the test ends.
func NATSClient(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// NeedCommand skips the test when a program is not on the PATH, or fails
// it when CI is set, and returns its path.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (%v); scripts/test installs it", name, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Psql runs psql as postgres on PGURL's database (or on db when it is not
// empty) with each argument as one -c command, stopping at the first
// error, and returns its output.
func Psql(t testing.TB, db string, commands ...string) string {
	t.Helper()
	bin := NeedCommand(t, "psql")
	if db == "" {
		db = PGDatabase(t)
	}
	args := []string{"-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt"}
	for _, c := range commands {
		args = append(args, "-c", c)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v\n%s", commands, err, out)
	}
	return string(out)
}
