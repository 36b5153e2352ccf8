//go:build linux

package sse

import (
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Watcher notices the clients of detached streams leaving, without a
// goroutine per stream: one goroutine of its own waits on an epoll instance
// (besides Go's netpoller, which keeps the connections too) for every
// watched connection to become readable. A client of a stream has nothing
// to say, so readable means it closed or reset the connection, or sent
// something: what it sends is read and dropped, up to maxClientBytes in
// all, past which it is cut off. Either way the stream ends with
// ReasonClientGone.
//
// The goroutine and the epoll instance are made by the first watched
// stream. Close stops them; close the Watcher once the streams it watches
// have ended (a stream still watched then goes unwatched: it notices its
// client leaving at its next write). A nil *Watcher, another OS, or a
// connection without a file descriptor (TLS) leave each stream with a
// reader goroutine instead.
//
// File descriptor numbers are reused as soon as a connection is closed, so
// the Watcher never acts on a number it remembers: every epoll operation
// and every read goes through the connection's syscall.RawConn (which holds
// the descriptor open while it runs, and fails once the connection is
// closed), and the epoll data of a connection is an id that is never
// reused, not its descriptor. A stream unwatches its connection before it
// closes it; readiness reported for an id no longer watched is ignored.
type Watcher struct {
	mu      sync.Mutex
	started bool // the epoll instance was made (epfd < 0 if that failed)
	closed  bool
	epfd    int
	evfd    int // an eventfd, written by Close to stop the goroutine
	next    uint64
	conns   map[uint64]watchEntry
	done    chan struct{} // closed when the goroutine returned
}

// watched is what a Watcher watches: a detached stream.
type watched interface {
	rawConn() syscall.RawConn
	// clientGone is called once, on the Watcher's goroutine, when the
	// client closed the connection, reset it or sent too much. It must not
	// block.
	clientGone()
}

type watchEntry struct {
	c    watched
	sent int // bytes the client sent so far
}

// wakeID is the epoll data of the Watcher's eventfd; connections' ids start
// at 1.
const wakeID = 0

// NewWatcher makes a Watcher; it starts nothing until a stream uses it.
func NewWatcher() *Watcher { return &Watcher{epfd: -1, evfd: -1} }

// watch starts watching c's connection. It reports false when it cannot:
// nil or closed Watcher, no epoll, or a connection already closed.
func (w *Watcher) watch(c watched) (id uint64, ok bool) {
	if w == nil {
		return 0, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || !w.startLocked() {
		return 0, false
	}
	w.next++
	id = w.next
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var err error
	// Inside Control the descriptor is the connection's and stays open.
	if cerr := c.rawConn().Control(func(fd uintptr) {
		err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil || err != nil {
		return 0, false
	}
	w.conns[id] = watchEntry{c: c}
	return id, true
}

// unwatch stops watching the connection of id; clientGone is not called
// after it returned. A stream calls it before it closes its connection.
// Unwatching an id twice, or 0, does nothing.
func (w *Watcher) unwatch(id uint64) {
	if w == nil || id == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removeLocked(id)
}

// removeLocked forgets id and takes its connection out of the epoll set.
// If the connection was closed already, the kernel took it out.
func (w *Watcher) removeLocked(id uint64) bool {
	e, ok := w.conns[id]
	if !ok {
		return false
	}
	delete(w.conns, id)
	if !w.closed {
		_ = e.c.rawConn().Control(func(fd uintptr) {
			_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
	return true
}

// startLocked makes the epoll instance and starts the goroutine, once.
func (w *Watcher) startLocked() bool {
	if w.started {
		return w.epfd >= 0
	}
	w.started = true
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return false
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return false
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return false
	}
	w.epfd, w.evfd = epfd, evfd
	w.conns = map[uint64]watchEntry{}
	w.done = make(chan struct{})
	go w.loop()
	return true
}

// Close stops the Watcher's goroutine and waits for it. Streams watched
// later read for themselves.
func (w *Watcher) Close() error {
	w.mu.Lock()
	done := w.done
	if !w.closed {
		w.closed = true
		if w.epfd >= 0 {
			// Under w.mu, where the goroutine closes the eventfd: the
			// number is still ours. The write cannot block.
			one := [8]byte{1}
			_, _ = unix.Write(w.evfd, one[:])
		}
	}
	w.mu.Unlock()
	if done != nil {
		<-done
	}
	return nil
}

func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	buf := make([]byte, 4<<10)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		stop := err != nil // cannot happen with a valid epfd; stop rather than spin
		for _, ev := range events[:max(n, 0)] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == wakeID {
				stop = true
				continue
			}
			w.ready(id, buf)
		}
		if stop {
			// Close woke us (only Close writes the eventfd). After an
			// error, watch and unwatch find the Watcher closed too.
			w.mu.Lock()
			w.closed = true
			_ = unix.Close(w.evfd)
			_ = unix.Close(w.epfd)
			w.epfd, w.evfd = -1, -1
			w.mu.Unlock()
			return
		}
	}
}

// ready reads and drops what the client of id sent, once, without
// waiting; EOF, an error or too much ends the stream.
func (w *Watcher) ready(id uint64, buf []byte) {
	w.mu.Lock()
	e, ok := w.conns[id]
	w.mu.Unlock()
	if !ok {
		return // unwatched meanwhile
	}
	gone := false
	n := 0
	err := e.c.rawConn().Read(func(fd uintptr) bool {
		var rerr error
		n, rerr = syscall.Read(int(fd), buf)
		switch {
		case rerr == syscall.EAGAIN || rerr == syscall.EINTR:
			n = 0 // nothing after all; reported again if there is
		case rerr != nil || n == 0: // reset, or EOF
			n, gone = 0, true
		}
		return true // one attempt: never wait
	})
	if err != nil {
		gone = true // closed: the stream is ending
	}
	w.mu.Lock()
	if cur, ok := w.conns[id]; ok {
		if cur.sent += n; cur.sent > maxClientBytes {
			gone = true
		}
		if gone {
			w.removeLocked(id)
			// Under w.mu: once unwatch returned, it is not called.
			cur.c.clientGone()
		} else if n > 0 {
			w.conns[id] = cur
		}
	}
	w.mu.Unlock()
}
