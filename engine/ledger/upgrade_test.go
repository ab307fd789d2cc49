package ledger_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
)

// Data directories written by earlier releases, as their binaries left them
// (testdata/README.md says which commit wrote each and how): a release must
// read and extend them, whatever a stopped process left in its journal.

// fixtureDir copies testdata/name into a new directory, the ledger key
// readable by its owner alone as a data directory's is (git keeps 0644).
func fixtureDir(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", name, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// syncBuffer is a log destination the ledger's goroutines may write to
// while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openFixture opens a writer on dir, logging into the returned buffer, and
// waits until every entry is linked and the chain verifies.
func openFixture(t *testing.T, dir string, want int) (*ledger.Ledger, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: dir, EngineVersion: "test-1.2.3", Replica: "replica-new", FlushInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatalf("Open on a data directory of an earlier release: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := l.Verify(context.Background(), ledger.VerifyOptions{})
		if err == nil && v.Unlinked == 0 && v.Entries == int64(want) && v.ProblemCount == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Verify = %v, %+v; want %d entries, every one linked, no problem", err, v, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return l, logs
}

func countEntries(t *testing.T, l *ledger.Ledger) map[string]int {
	t.Helper()
	byReplica := map[string]int{}
	if err := l.Scan(context.Background(), ledger.Query{}, func(e *ledger.Entry) error {
		byReplica[e.Replica]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return byReplica
}

// A ledger of the first chain's schema (its migration 4 kept the head in a
// table of its own, ledger_chain, and had no index of the entries without
// a link), its server killed with entries in its journal: the journal is
// copied, the entries it chained verify, and the new ones are chained
// after them.
func TestLedgerOfTheFirstChainIsReadAndExtended(t *testing.T) {
	dir := fixtureDir(t, "from-first-chain")
	l, _ := openFixture(t, dir, 8)
	record(t, l, removal(newID(), time.Now(), "p"))
	if got := countEntries(t, l); got["replica-old"] != 8 || got["replica-new"] != 1 {
		t.Errorf("entries by replica = %v, want 8 of the old release and 1 of this one", got)
	}
	if v, err := l.Verify(context.Background(), ledger.VerifyOptions{}); err != nil || v.Entries != 9 || v.ProblemCount != 0 {
		t.Errorf("Verify after recording = %v, %+v; want 9 entries and no problem", err, v)
	}
}

// A rollback to a release from before the journal: this release was killed
// with entries in its journal, and the older one, which neither copies a
// journal nor sees it, recorded later decisions. Rolled forward, the
// journal's entries are copied and chained with the rest, and the log says
// that whatever read the ledger meanwhile left them out: nothing else
// would tell the operator that reports built during the rollback
// undercount.
func TestRollForwardAfterAReleaseWithoutTheJournal(t *testing.T) {
	defer ledger.SetAdoptEvery(20 * time.Millisecond)()
	dir := fixtureDir(t, "rollback-to-before-journal")
	l, logs := openFixture(t, dir, 12)
	if got := countEntries(t, l); got["replica-new"] != 8 || got["replica-old"] != 4 {
		t.Errorf("entries by replica = %v, want 8 journaled by this release and 4 of the old one", got)
	}
	out := logs.String()
	if !strings.Contains(out, "copied into the database only now") || !strings.Contains(out, "entries=8") || !strings.Contains(out, "recorded_after_them=4") {
		t.Errorf("the log does not say that 8 journaled entries were missing while 4 later ones were recorded:\n%s", out)
	}
}

// An ordinary restart after a crash, with nothing recorded by anyone else
// since, copies the journal without that warning.
func TestRestartAfterACrashDoesNotWarnOfALateCopy(t *testing.T) {
	dir := fixtureDir(t, "from-first-chain")
	_, logs := openFixture(t, dir, 8)
	if out := logs.String(); strings.Contains(out, "only now") || !strings.Contains(out, "are in the database") {
		t.Errorf("a restart after a crash logs:\n%s\nwant the copy logged, and no warning of a late one", out)
	}
}

// A ledger of a release before the chain (schema 3), read by this release
// before any server of it has opened it (compliance staff upgrading the
// command line first): every entry counts as one without a link, since the
// first server chains them all, so a report built now says it is not
// pinned. Then a server's Open migrates it and chains them.
func TestLedgerBeforeTheChainIsReadThenChained(t *testing.T) {
	defer ledger.SetAdoptEvery(20 * time.Millisecond)()
	dir := fixtureDir(t, "before-the-chain")
	ro, err := ledger.Open(context.Background(), ledger.Config{DataDir: dir, ReadOnly: true, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("read-only Open on a ledger of schema 3: %v", err)
	}
	if n, err := ro.Unlinked(context.Background(), time.Time{}); err != nil || n != 6 {
		t.Errorf("Unlinked on a ledger without the chain = %d, %v; want its 6 entries", n, err)
	}
	if got := countEntries(t, ro); got["replica-old"] != 6 {
		t.Errorf("entries by replica = %v, want the 6 of the old release", got)
	}
	ro.Close()
	l, _ := openFixture(t, dir, 6)
	if n, err := l.Unlinked(context.Background(), time.Time{}); err != nil || n != 0 {
		t.Errorf("Unlinked once chained = %d, %v; want 0", n, err)
	}
}

// Two processes killed together (a node lost under a server and a
// `geoscope decide` beside it), each with entries left in its journal:
// copying one journal after the other is no late copy, though the journal
// copied second may hold only decisions older than those the first just
// put in the database.
func TestTwoJournalsCopiedTogetherAreNoLateCopy(t *testing.T) {
	b := newBackend(t, "sqlite")
	first, second := b.open(t), b.open(t)
	unlock := lockTables(t, b)
	for i := range 3 {
		record(t, first, removal(newID(), baseTime.Add(time.Duration(i)*time.Second), "p"))
		record(t, second, removal(newID(), baseTime.Add(time.Duration(10+i)*time.Second), "p"))
	}
	dir := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, b.dir, dir)
	unlock()
	// The journal of the older decisions is copied last (journals are
	// copied in the order of their ids).
	older := ""
	for _, f := range journalFilesIn(t, dir) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".1") && bytes.Contains(data, []byte(baseTime.Format(time.RFC3339Nano))) {
			older = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "ledger.journal."), ".1")
		}
	}
	if older == "" {
		t.Fatal("no journal holds the older decisions")
	}
	for _, f := range journalFilesIn(t, dir) {
		if strings.Contains(filepath.Base(f), older) {
			if err := os.Rename(f, strings.Replace(f, older, "ffffffffffffffff", 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	logs := &syncBuffer{}
	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n := 0
	for _, c := range countEntries(t, l) {
		n += c
	}
	if n != 6 {
		t.Errorf("%d entries, want the 6 journaled", n)
	}
	if out := logs.String(); strings.Contains(out, "only now") {
		t.Errorf("two journals copied at one start are taken for a late copy:\n%s", out)
	}
}
