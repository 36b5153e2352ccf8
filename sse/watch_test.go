package sse

import (
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// watchedConn is a server-side connection as a Watcher sees it.
type watchedConn struct {
	conn  *net.TCPConn
	raw   syscall.RawConn
	gone  chan struct{}
	calls atomic.Int32
}

func (c *watchedConn) rawConn() syscall.RawConn { return c.raw }
func (c *watchedConn) clientGone() {
	if c.calls.Add(1) == 1 {
		close(c.gone)
	}
}

func (c *watchedConn) fd(t *testing.T) int {
	t.Helper()
	fd := -1
	if err := c.raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// loopbackPair connects a client to a listener and returns both ends;
// before, if set, runs after the dial and before the accept.
func loopbackPair(t *testing.T, ln net.Listener, before ...func()) (client net.Conn, server *watchedConn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	for _, f := range before {
		f()
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return client, &watchedConn{conn: sc.(*net.TCPConn), raw: raw, gone: make(chan struct{})}
}

func newWatcherTest(t *testing.T) (*Watcher, net.Listener) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the Watcher watches on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := NewWatcher()
	t.Cleanup(func() {
		ln.Close()
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w, ln
}

func mustWatch(t *testing.T, w *Watcher, c *watchedConn) uint64 {
	t.Helper()
	id, ok := w.watch(c)
	if !ok {
		t.Fatal("watch refused a TCP connection")
	}
	return id
}

func expectGone(t *testing.T, c *watchedConn, what string) {
	t.Helper()
	select {
	case <-c.gone:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: clientGone was not called", what)
	}
}

// expectCalls checks that clientGone was called calls times on c, once
// the Watcher handled whatever was reported before a barrier: another
// client that leaves now (epoll reports ready connections in the order
// they became ready, and the Watcher handles them in that order).
func expectCalls(t *testing.T, w *Watcher, ln net.Listener, c *watchedConn, calls int32, what string) {
	t.Helper()
	client, barrier := loopbackPair(t, ln)
	mustWatch(t, w, barrier)
	client.Close()
	expectGone(t, barrier, "barrier")
	if n := c.calls.Load(); n != calls {
		t.Fatalf("%s: clientGone called %d times, want %d", what, n, calls)
	}
}

func TestWatcherClientCloses(t *testing.T) {
	w, ln := newWatcherTest(t)
	client, c := loopbackPair(t, ln)
	other, c2 := loopbackPair(t, ln)
	mustWatch(t, w, c)
	mustWatch(t, w, c2)
	client.Close()
	expectGone(t, c, "client closed")
	// Half-closing (shutdown of its write side) is leaving too.
	_ = other.(*net.TCPConn).CloseWrite()
	expectGone(t, c2, "client half-closed")
	if n := c.calls.Load() + c2.calls.Load(); n != 2 {
		t.Fatalf("clientGone called %d times, want once each", n)
	}
}

func TestWatcherClientSends(t *testing.T) {
	w, ln := newWatcherTest(t)
	client, c := loopbackPair(t, ln)
	mustWatch(t, w, c)
	// A little is read and dropped.
	if _, err := client.Write([]byte(strings.Repeat("x", maxClientBytes))); err != nil {
		t.Fatal(err)
	}
	expectCalls(t, w, ln, c, 0, "4 KB sent")
	// One byte more is too much.
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	expectGone(t, c, "more than maxClientBytes sent")
	// The connection is no longer watched: closing it calls nothing more.
	client.Close()
	expectCalls(t, w, ln, c, 1, "closed after the cut")
}

func TestWatcherUnwatch(t *testing.T) {
	w, ln := newWatcherTest(t)
	client, c := loopbackPair(t, ln)
	id := mustWatch(t, w, c)
	w.unwatch(id)
	w.unwatch(id) // twice: nothing
	w.unwatch(0)
	client.Close()
	expectCalls(t, w, ln, c, 0, "unwatched")
}

// A descriptor number is reused once its connection is closed: nothing the
// Watcher remembers of the old connection may touch the new one.
func TestWatcherDescriptorReuse(t *testing.T) {
	w, ln := newWatcherTest(t)
	_, a := loopbackPair(t, ln)
	idA := mustWatch(t, w, a)
	fdA := a.fd(t)
	// A stream breaking the rule: its connection closed while watched,
	// and its descriptor number reused by the next connection accepted.
	clientB, b := loopbackPair(t, ln, func() { a.conn.Close() })
	if fd := b.fd(t); fd != fdA {
		t.Logf("descriptor %d not reused (got %d): the test still checks ids", fdA, fd)
	}
	idB := mustWatch(t, w, b)
	// The old id's unwatch goes through the old connection, which is
	// closed: it must not take the new one out of the epoll set.
	w.unwatch(idA)
	// A readiness report for the old id, as if it had been pending.
	w.ready(idA, make([]byte, 64))
	expectCalls(t, w, ln, a, 0, "stale id")
	expectCalls(t, w, ln, b, 0, "stale id")
	clientB.Close()
	expectGone(t, b, "the new connection's client closed")
	if a.calls.Load() != 0 {
		t.Fatal("the old connection was told its client left")
	}
	w.unwatch(idB)
}

func TestWatcherLifecycle(t *testing.T) {
	var nilW *Watcher
	if _, ok := nilW.watch(nil); ok {
		t.Fatal("a nil Watcher watched")
	}
	nilW.unwatch(1)
	w, ln := newWatcherTest(t)
	if err := NewWatcher().Close(); err != nil { // never started
		t.Fatal(err)
	}
	_, c := loopbackPair(t, ln)
	mustWatch(t, w, c)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, c2 := loopbackPair(t, ln)
	if _, ok := w.watch(c2); ok {
		t.Fatal("a closed Watcher watched")
	}
}
