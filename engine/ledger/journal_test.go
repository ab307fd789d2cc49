package ledger_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/report"
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
	unlock := lockTables(t, b)
	for range n {
		id := newID()
		record(t, l, removal(id, baseTime, "p-"+id))
		ids = append(ids, id)
	}
	dir = filepath.Join(t.TempDir(), "crashed")
	copyDir(t, b.dir, dir)
	unlock()
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
// how many entries it cannot show (more than one query's worth of ids);
// given the same journal once its entries are in the tables, it says
// nothing.
func TestJournalAfterACrash(t *testing.T) {
	const n = 600
	dir, ids := crashImage(t, n)
	before := journalFilesIn(t, dir)
	if len(before) == 0 {
		t.Fatal("the crash image holds no journal")
	}
	saved := map[string][]byte{}
	for _, f := range before {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		saved[f] = data
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
	// A report built by the reader says it is incomplete, in every format.
	r, err := report.Build(context.Background(), reader, report.Period{Since: baseTime.Add(-time.Hour), Until: baseTime.Add(time.Hour)}, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if reader.Unseen() != n || !strings.Contains(r.Incomplete, fmt.Sprintf("INCOMPLETE: %d recorded entries", n)) {
		t.Errorf("the reader sees %d unseen entries, the report says %q; want %d, and the report incomplete", reader.Unseen(), r.Incomplete, n)
	}
	for _, format := range report.Formats {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "INCOMPLETE") {
			t.Errorf("the %s report does not say it is incomplete", format)
		}
	}
	reader.Close()
	if !strings.Contains(logged.String(), "not in the database yet") || !strings.Contains(logged.String(), fmt.Sprintf("entries=%d", n)) {
		t.Errorf("a reader of the crashed ledger logged %q; want a warning naming the %d entries it cannot show", logged.String(), n)
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

	for f, data := range saved {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logged.Reset()
	reader, err = ledger.Open(context.Background(), ledger.Config{DataDir: dir, ReadOnly: true,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	reader.Close()
	if strings.Contains(logged.String(), "not in the database yet") {
		t.Errorf("a reader given a journal whose entries are all in the tables logged %q", logged.String())
	}
	// A writer copies that journal again: its entries are in the tables
	// already, and keep their places in the chain.
	l = (&backend{name: "sqlite", dir: dir}).open(t)
	v, err := l.Verify(context.Background(), ledger.VerifyOptions{})
	if rows := (&backend{name: "sqlite", dir: dir}).count(t, `SELECT count(*) FROM ledger_decisions`); err != nil || v.Entries != int64(rows) {
		t.Errorf("Verify after copying entries already in the tables: %v, %d entries chained of %d, problems %q", err, v.Entries, rows, v.Problems)
	}
	for _, f := range before {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s, copied again, is still there", filepath.Base(f))
		}
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

// hideDecisions makes every copy into the tables fail at once (the table
// is renamed away), as a database that cannot be written would; the
// returned function puts it back.
func hideDecisions(t *testing.T, b *backend) (restore func()) {
	t.Helper()
	db := b.raw(t)
	if _, err := db.Exec(`ALTER TABLE ledger_decisions RENAME TO ledger_decisions_hidden`); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if _, err := db.Exec(`ALTER TABLE ledger_decisions_hidden RENAME TO ledger_decisions`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJournaledEntriesAreCopiedOnceTheDatabaseRecovers: entries answered
// from the journal while the tables cannot be written are copied once
// they can, without a restart; meanwhile nothing new is recorded.
func TestJournaledEntriesAreCopiedOnceTheDatabaseRecovers(t *testing.T) {
	b := newBackend(t, "sqlite")
	l := b.open(t)
	record(t, l, removal(newID(), baseTime, "warm-up"))
	restore := hideDecisions(t, b)
	var ids []string
	for range 5 {
		id := newID()
		// The copy has not failed yet when the first ones arrive; once it
		// has, records are refused.
		if err := l.Record(context.Background(), removal(id, baseTime, "p-"+id)); err == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		t.Fatal("no record was answered; the test meant some to be journaled before the copy failed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.Health().OK {
		if time.Now().After(deadline) {
			t.Fatal("the ledger stayed healthy while its tables could not be written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := l.Record(context.Background(), removal(newID(), baseTime, "refused")); !errors.Is(err, ledger.ErrUnavailable) {
		t.Errorf("Record while journaled entries cannot be copied = %v, want ErrUnavailable", err)
	}

	restore()
	deadline = time.Now().Add(10 * time.Second)
	for rowsFor(t, b.dir, ids) != len(ids) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d journaled entries copied 10 s after the tables came back", rowsFor(t, b.dir, ids), len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
	id := newID()
	record(t, l, removal(id, baseTime, "after"))
	if _, err := l.Get(context.Background(), id); err != nil {
		t.Errorf("recording after the recovery: %v", err)
	}
	if h := l.Health(); !h.OK {
		t.Errorf("health after the recovery: %+v", h)
	}
}

// TestCloseReturnsWhileTheDatabaseIsLocked: Close does not wait for
// tables that cannot be written (another connection holds SQLite's write
// lock, so each copy waits out the busy timeout, 10 s, and fails); what
// could not be copied stays in the journal and is copied at the next
// start.
func TestCloseReturnsWhileTheDatabaseIsLocked(t *testing.T) {
	b := newBackend(t, "sqlite")
	// A small batch, so that more entries are journaled meanwhile than
	// the writer's queue holds.
	l := b.open(t, func(c *ledger.Config) { c.MaxBatch = 2 })
	record(t, l, removal(newID(), baseTime, "warm-up"))
	unlock := lockTables(t, b)
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			id := newID()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if l.Record(ctx, removal(id, baseTime, "p-"+id)) == nil {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(ids) <= 8 {
		t.Fatalf("%d records answered; the test meant more than the writer's queue (8) to be journaled", len(ids))
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(40 * time.Second):
		t.Fatal("Close did not return within 40 s while the database was locked")
	}
	unlock()
	if rowsFor(t, b.dir, ids) == len(ids) {
		t.Log("every entry was copied before Close returned")
	} else if len(journalFilesIn(t, b.dir)) == 0 {
		t.Fatal("entries that could not be copied left no journal")
	}
	b.open(t).Close()
	if got := rowsFor(t, b.dir, ids); got != len(ids) {
		t.Errorf("after the next start, %d of the %d answered entries are in the tables", got, len(ids))
	}
}
