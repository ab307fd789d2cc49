// Package watch reports changes to files and directory trees. Operators
// replace GeoIP databases and bundle trees in place (often by renaming a new
// file over the old one), so a file is watched through its parent
// directory, and bursts of events are coalesced into one notification.
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

// Watch calls fn once per burst of changes under paths (files or directory
// trees), after the changes have been quiet for debounce, until ctx is
// done. It returns once the watches are in place; fn runs on a goroutine of
// its own, never concurrently with itself.
func Watch(ctx context.Context, paths []string, debounce time.Duration, fn func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	files := map[string]bool{} // absolute file paths watched through their directory
	var trees []string         // absolute directory roots watched whole
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			w.Close()
			return err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			w.Close()
			return err
		}
		if fi.IsDir() {
			if err := addTree(w, abs); err != nil {
				w.Close()
				return err
			}
			trees = append(trees, abs)
			continue
		}
		files[abs] = true
		if err := w.Add(filepath.Dir(abs)); err != nil {
			w.Close()
			return err
		}
	}
	go loop(ctx, w, files, trees, debounce, fn)
	return nil
}

func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return w.Add(p)
		}
		return nil
	})
}

func loop(ctx context.Context, w *fsnotify.Watcher, files map[string]bool, trees []string, debounce time.Duration, fn func()) {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if !relevant(w, files, trees, ev) {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
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

// relevant filters events to the watched files (a directory watched for a
// file reports its siblings too) and trees, and starts watching new
// subdirectories of watched trees.
func relevant(w *fsnotify.Watcher, files map[string]bool, trees []string, ev fsnotify.Event) bool {
	if files[ev.Name] {
		return true
	}
	for _, root := range trees {
		if rel, err := filepath.Rel(root, ev.Name); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = addTree(w, ev.Name)
				}
			}
			return true
		}
	}
	return false
}
