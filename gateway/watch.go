package gateway

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadDebounce is how long the watcher waits after the last change in
// the operations folder before it reloads: an editor's save or a deploy
// that copies many files becomes one reload.
const reloadDebounce = 200 * time.Millisecond

// watch starts the hot-reload watcher of the operations folder: every
// folder under it is watched (new folders as they appear), and any change
// triggers one debounced Reload. Without a working watcher (no inotify
// left, folder missing) the gateway still serves and SIGHUP still
// reloads; it says so. The goroutine is owned by the Gateway: Close stops
// it through ctx and waits for it.
func (g *Gateway) watch(ctx context.Context) {
	dir := g.cfg.OperationsDir
	w, err := fsnotify.NewWatcher()
	if err != nil {
		g.log.Warn("hot reload is off: cannot watch the operations folder; SIGHUP still reloads", "dir", dir, "err", err)
		return
	}
	if err := addWatches(w, dir); err != nil {
		_ = w.Close()
		g.log.Warn("hot reload is off: cannot watch the operations folder; SIGHUP still reloads", "dir", dir, "err", err)
		return
	}
	g.wg.Add(1)
	go g.watchLoop(ctx, w, dir)
}

// watchLoop turns file events into debounced reloads until ctx ends.
func (g *Gateway) watchLoop(ctx context.Context, w *fsnotify.Watcher, dir string) {
	defer g.wg.Done()
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) && !hidden(ev.Name) {
				// A new folder: watch it and everything already in it,
				// so files written right after mkdir are not missed.
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					if err := addWatches(w, ev.Name); err != nil {
						g.log.Warn("cannot watch a new operations folder", "dir", ev.Name, "err", err)
					}
				}
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			// Every other event counts, hidden names included: a
			// Kubernetes ConfigMap update is a rename of "..data".
			timer.Reset(reloadDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			g.log.Warn("operations watcher", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(reloadDebounce) // events were lost: re-read all
			}
		case <-timer.C:
			// Re-adding is cheap and heals a folder that was replaced
			// as a whole (its old watch died with it).
			if err := addWatches(w, dir); err != nil {
				g.log.Debug("operations folder not watchable", "dir", dir, "err", err)
			}
			_ = g.Reload() // Reload logs its problems itself
		}
	}
}

// addWatches watches root and every folder below it, skipping hidden
// folders as operation.LoadDir does.
func addWatches(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if p != root && hidden(p) {
			return fs.SkipDir
		}
		if err := w.Add(p); err != nil && p == root {
			return err
		}
		return nil
	})
}

func hidden(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") }
