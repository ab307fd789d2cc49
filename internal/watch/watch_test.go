package watch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// notified waits for one notification.
func notified(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}

func quiet(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
		t.Fatal("unexpected notification")
	case <-time.After(300 * time.Millisecond):
	}
}

func start(t *testing.T, paths ...string) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan struct{}, 10)
	if err := Watch(ctx, paths, 50*time.Millisecond, func() { ch <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	return ch
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFileReplacedByRenameIsReported(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "db.mmdb")
	write(t, file, "v1")
	ch := start(t, file)

	write(t, filepath.Join(dir, "sibling"), "x")
	quiet(t, ch)

	tmp := filepath.Join(dir, "db.mmdb.new")
	write(t, tmp, "v2")
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	notified(t, ch)
	quiet(t, ch) // one burst, one notification
}

func TestTreeChangesIncludingNewSubdirectories(t *testing.T) {
	root := t.TempDir()
	ch := start(t, root)
	sub := filepath.Join(root, "orders")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	notified(t, ch)
	write(t, filepath.Join(sub, "data.json"), "{}")
	notified(t, ch)
}

func TestMissingPathIsAnError(t *testing.T) {
	if err := Watch(context.Background(), []string{filepath.Join(t.TempDir(), "nope")}, time.Millisecond, func() {}); err == nil {
		t.Fatal("no error")
	}
}
