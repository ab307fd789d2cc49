// Package watch reports changes to files and directory trees. Operators
// replace GeoIP databases and bundle trees in place: by renaming a new file
// or directory over the old one, or (Kubernetes ConfigMaps and Secrets) by
// swapping a symlinked "..data" directory. So a file is watched through its
// parent directory and compared by identity on every event there, a tree's
// parent is watched to notice the tree itself being replaced, and bursts of
// events are coalesced into one notification.
package watch

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

// identity is what tells a file's content may have changed: where its
// path leads (through symlinks), its size and its modification time.
type identity struct {
	target  string
	size    int64
	modTime time.Time
	exists  bool
}

func identify(path string) identity {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return identity{}
	}
	fi, err := os.Stat(target)
	if err != nil {
		return identity{}
	}
	return identity{target: target, size: fi.Size(), modTime: fi.ModTime(), exists: true}
}

type watcher struct {
	w     *fsnotify.Watcher
	files map[string]identity // watched files, by absolute path
	trees map[string]identity // watched tree roots, by absolute path
}

// Watch calls fn once per burst of changes under paths (files or directory
// trees), after the changes have been quiet for debounce, until ctx is
// done. It returns once the watches are in place; fn runs on a goroutine of
// its own, never concurrently with itself.
func Watch(ctx context.Context, paths []string, debounce time.Duration, fn func()) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	w := &watcher{w: fw, files: map[string]identity{}, trees: map[string]identity{}}
	for _, p := range paths {
		if err := w.add(p); err != nil {
			fw.Close()
			return err
		}
	}
	go w.loop(ctx, debounce, fn)
	return nil
}

func (w *watcher) add(p string) error {
	abs, err := filepath.Abs(p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if err := w.w.Add(filepath.Dir(abs)); err != nil {
		return err
	}
	if fi.IsDir() {
		w.trees[abs] = identify(abs)
		return w.addTree(abs)
	}
	w.files[abs] = identify(abs)
	return nil
}

// addTree watches root and its subdirectories, following a root that is a
// symlink.
func (w *watcher) addTree(root string) error {
	target, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.w.Add(p)
		}
		return nil
	})
}

func (w *watcher) loop(ctx context.Context, debounce time.Duration, fn func()) {
	defer w.w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				timer.Reset(debounce)
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			// An overflowed queue means changes may have been missed:
			// treat it as a change.
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce)
			}
		case <-timer.C:
			fn()
		}
	}
}

// relevant decides whether ev may have changed a watched file or tree, and
// keeps the watches on replaced trees and new subdirectories.
func (w *watcher) relevant(ev fsnotify.Event) bool {
	changed := false
	dir := filepath.Dir(ev.Name)
	for f, before := range w.files {
		if ev.Name == f {
			changed = true
		}
		if filepath.Dir(f) == dir {
			if now := identify(f); now != before {
				w.files[f] = now
				changed = true
			}
		}
	}
	for root, before := range w.trees {
		if filepath.Dir(root) == dir {
			// The tree itself may have been replaced (renamed over, or
			// its symlink swapped): watch the new one.
			if now := identify(root); now != before {
				w.trees[root] = now
				if now.exists {
					_ = w.addTree(root)
				}
				changed = true
			}
			continue
		}
		if within(w.treeTarget(root), ev.Name) || within(root, ev.Name) {
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = w.addTree(ev.Name)
				}
			}
			changed = true
		}
	}
	return changed
}

func (w *watcher) treeTarget(root string) string {
	if t := w.trees[root].target; t != "" {
		return t
	}
	return root
}

func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
