package ledger_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
)

// crashImage records n entries that the SQLite ledger answers from its
// journal but cannot copy into its tables (another connection holds the
// database's write lock), then copies the data directory as a crash would
// leave it. It returns the copy and the entries' ids.
func crashImage(t *testing.T, n int) (dir string, ids []string) {
	t.Helper()
	b := newBackend(t, "sqlite")
	l := b.open(t)
	record(t, l, removal(newID(), baseTime, "warm-up"))
	// The warm-up's checkpoint is done before the files are copied.
	time.Sleep(2 * 250 * time.Millisecond)
	ctx := context.Background()
	conn, err := b.raw(t).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	for range n {
		id := newID()
		record(t, l, removal(id, baseTime, "p-"+id))
		ids = append(ids, id)
	}
	dir = filepath.Join(t.TempDir(), "crashed")
	copyDir(t, b.dir, dir)
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	return dir, ids
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func journalFilesIn(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ledger.journal.*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func rowsFor(t *testing.T, dir string, ids []string) int {
	t.Helper()
	db := (&backend{name: "sqlite", dir: dir}).raw(t)
	found := 0
	for _, id := range ids {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ledger_decisions WHERE decision_id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		found += n
	}
	return found
}

// TestJournalAfterACrash: what a crash leaves in the journal (answered,
// not yet in the tables) is in the tables once the ledger next opens for
// writing, and the journal it was in is gone. Before that, a reader says
// how many entries it cannot show.
func TestJournalAfterACrash(t *testing.T) {
	const n = 40
	dir, ids := crashImage(t, n)
	before := journalFilesIn(t, dir)
	if len(before) == 0 {
		t.Fatal("the crash image holds no journal")
	}
	if got := rowsFor(t, dir, ids); got != 0 {
		t.Fatalf("%d of the %d entries were in the tables at the crash; the test meant none", got, n)
	}

	var logged bytes.Buffer
	reader, err := ledger.Open(context.Background(), ledger.Config{DataDir: dir, ReadOnly: true,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	reader.Close()
	if !strings.Contains(logged.String(), "not in the database yet") || !strings.Contains(logged.String(), "entries=40") {
		t.Errorf("a reader of the crashed ledger logged %q; want a warning naming the 40 entries it cannot show", logged.String())
	}

	l := (&backend{name: "sqlite", dir: dir}).open(t)
	if got := rowsFor(t, dir, ids); got != n {
		t.Errorf("after reopening, %d of the %d answered entries are in the tables", got, n)
	}
	for _, id := range ids {
		if _, err := l.Get(context.Background(), id); err != nil {
			t.Errorf("Get(%s) after reopening: %v", id, err)
		}
	}
	after := journalFilesIn(t, dir)
	for _, f := range before {
		for _, g := range after {
			if f == g {
				t.Errorf("%s is still there after its entries were copied", filepath.Base(f))
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if left := journalFilesIn(t, dir); len(left) > 0 {
		t.Errorf("after Close, journal files are left: %v", left)
	}
}

// TestJournalOfALiveProcessIsLeftToIt: a ledger opening on a directory
// copies only the journals of stopped processes; one whose lock is held
// belongs to a process that copies it itself (`geoscope decide` beside a
// running server).
func TestJournalOfALiveProcessIsLeftToIt(t *testing.T) {
	dir, ids := crashImage(t, 5)
	locks, _ := filepath.Glob(filepath.Join(dir, "ledger.journal.*.lock"))
	if len(locks) != 1 {
		t.Fatalf("lock files %v, want one", locks)
	}
	f, err := os.Open(locks[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	other := (&backend{name: "sqlite", dir: dir}).open(t)
	if got := rowsFor(t, dir, ids); got != 0 {
		t.Errorf("%d entries of a live process's journal were copied by another", got)
	}
	id := newID()
	record(t, other, removal(id, baseTime, "p"))
	if _, err := other.Get(context.Background(), id); err != nil {
		t.Errorf("the second process records beside the first: %v", err)
	}
	other.Close()

	f.Close() // the "live" process stops
	(&backend{name: "sqlite", dir: dir}).open(t).Close()
	if got := rowsFor(t, dir, ids); got != len(ids) {
		t.Errorf("once its process stopped, %d of its %d entries were copied", got, len(ids))
	}
}
