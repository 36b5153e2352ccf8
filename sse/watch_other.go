//go:build !linux

package sse

import "syscall"

// Watcher notices the clients of detached streams leaving without a
// goroutine per stream, on Linux (see watch_linux.go). Elsewhere it watches
// nothing: every detached stream has a reader goroutine.
type Watcher struct{}

type watched interface {
	rawConn() syscall.RawConn
	clientGone()
}

// NewWatcher makes a Watcher.
func NewWatcher() *Watcher { return &Watcher{} }

func (w *Watcher) watch(watched) (uint64, bool) { return 0, false }
func (w *Watcher) unwatch(uint64)               {}

// Close does nothing here.
func (w *Watcher) Close() error { return nil }
