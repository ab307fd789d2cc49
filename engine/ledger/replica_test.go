package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/internal/pgtest"
)

// Replicas sharing one ledger: every entry names the replica that decided
// it, in the entry and in its own column.
func TestEntriesNameTheirReplica(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		want := map[string]string{} // decision id → replica
		for _, replica := range []string{"geoscope-7d9f-a", "geoscope-7d9f-b"} {
			l := b.open(t, func(c *ledger.Config) { c.Replica = replica })
			for i := range 3 {
				id := newID()
				want[id] = replica
				record(t, l, removal(id, baseTime, fmt.Sprintf("p-%d", i)))
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}
		l := b.open(t)
		n := 0
		err := l.Scan(context.Background(), ledger.Query{}, func(e *ledger.Entry) error {
			n++
			if e.Replica != want[e.DecisionID] {
				t.Errorf("entry %s names replica %q, want %q", e.DecisionID, e.Replica, want[e.DecisionID])
			}
			return nil
		})
		if err != nil || n != len(want) {
			t.Fatalf("Scan: %d entries, %v; want %d", n, err, len(want))
		}
		rows, err := b.raw(t).Query(`SELECT decision_id, replica FROM ledger_decisions`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id, replica string
			if err := rows.Scan(&id, &replica); err != nil {
				t.Fatal(err)
			}
			if replica != want[id] {
				t.Errorf("column replica of %s = %q, want %q", id, replica, want[id])
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDefaultReplicaIsTheHostName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	def := ledger.DefaultReplica()
	if ledger.ValidReplica(host) == nil && def != host {
		t.Errorf("DefaultReplica() = %q, want the host name %q", def, host)
	}
	if err := ledger.ValidReplica(def); err != nil {
		t.Errorf("DefaultReplica() = %q is not a valid replica name: %v", def, err)
	}
	b := newBackend(t, "sqlite")
	l := b.open(t) // Config.Replica empty
	id := newID()
	record(t, l, removal(id, baseTime, "p"))
	e, err := l.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if e.Replica != def {
		t.Errorf("entry names replica %q, want the default %q", e.Replica, def)
	}
}

func TestBadReplicaIsConfigError(t *testing.T) {
	for _, name := range []string{"two words", "pod/a", "pödd", "a\nb", strings.Repeat("a", ledger.MaxReplicaLen+1)} {
		b := newBackend(t, "sqlite")
		cfg := b.config()
		cfg.Replica = name
		l, err := ledger.Open(context.Background(), cfg)
		if err == nil {
			l.Close()
		}
		if !errors.Is(err, ledger.ErrConfig) || !strings.Contains(err.Error(), "--replica-id") {
			t.Errorf("Replica %q: Open = %v, want ErrConfig naming --replica-id", name, err)
		}
		if _, err := os.Stat(b.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Replica %q: the refused Open created %s", name, b.dir)
		}
	}
	for _, name := range []string{"a", "geoscope-5f7c9d8b6-x2x7q", "host.example.org", "replica_3", strings.Repeat("a", ledger.MaxReplicaLen)} {
		if err := ledger.ValidReplica(name); err != nil {
			t.Errorf("ValidReplica(%q) = %v", name, err)
		}
	}
}

// schema1 is the ledger as the first release created it (migration 1 and
// its bookkeeping), kept here as a fixture: an upgrade must migrate it.
var schema1 = []string{
	`CREATE TABLE ledger_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`,
	`CREATE TABLE ledger_decisions (decision_id TEXT PRIMARY KEY, decided_at BIGINT NOT NULL, kind TEXT NOT NULL, meeting_id TEXT NOT NULL, allow_join INTEGER, entry TEXT NOT NULL)`,
	`CREATE INDEX ledger_decisions_time ON ledger_decisions (decided_at, decision_id)`,
	`CREATE TABLE ledger_decision_orders (decision_id TEXT NOT NULL, order_id TEXT NOT NULL, authority TEXT NOT NULL, decided_at BIGINT NOT NULL, PRIMARY KEY (decision_id, order_id))`,
	`CREATE INDEX ledger_decision_orders_order ON ledger_decision_orders (order_id, decided_at)`,
	`CREATE INDEX ledger_decision_orders_authority ON ledger_decision_orders (authority, decided_at)`,
	`CREATE TABLE ledger_quiet_counts (day TEXT NOT NULL, kind TEXT NOT NULL, meeting_id TEXT NOT NULL, order_ids TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (day, kind, meeting_id, order_ids))`,
	`INSERT INTO ledger_migrations (version, applied_at) VALUES (1, 0)`,
}

// insertAsSchema1 writes an entry the way code of schema 1 does: without
// the replica column.
func insertAsSchema1(t *testing.T, b *backend, id string) {
	t.Helper()
	entry := fmt.Sprintf(`{"decision_id":%q,"time":"2026-06-04T12:00:00Z","kind":"decision","meeting_id":"m-1","account":"ps:00","orders":[],"actions":[],"refused":[],"guard_blocked":[],"bundles":{},"geo":{"database":"x","build":"2026-06-01T00:00:00Z"},"engine_version":"0.1"}`, id)
	q := `INSERT INTO ledger_decisions (decision_id, decided_at, kind, meeting_id, allow_join, entry) VALUES ('` + id + `', 1780574400000000000, 'decision', 'm-1', NULL, '` + entry + `')`
	if _, err := b.raw(t).Exec(q); err != nil {
		t.Fatalf("insert as schema 1: %v", err)
	}
}

// A ledger of the first release is migrated in place: its entries stay
// readable (naming no replica), and a replica still running the first
// release keeps writing into the migrated schema, as during a rolling
// upgrade.
func TestUpgradeFromSchema1(t *testing.T) {
	defer ledger.SetAdoptEvery(20 * time.Millisecond)()
	forEachBackend(t, func(t *testing.T, b *backend) {
		if err := os.MkdirAll(b.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		db := b.raw(t)
		for _, stmt := range schema1 {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		old := newID()
		insertAsSchema1(t, b, old)
		// The first release generated its key beside the database.
		if err := os.WriteFile(filepath.Join(b.dir, "ledger.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}

		l := b.open(t, func(c *ledger.Config) { c.Replica = "new-1" })
		fresh := newID()
		record(t, l, removal(fresh, baseTime, "p"))
		if n := b.count(t, `SELECT count(*) FROM ledger_migrations`); n != ledger.SchemaVersion() {
			t.Errorf("%d migrations recorded, want %d", n, ledger.SchemaVersion())
		}
		if n := b.count(t, `SELECT compatible_from FROM ledger_migrations WHERE version = 2`); n != 1 {
			t.Errorf("migration 2 compatible from %d, want 1", n)
		}

		during := newID()
		insertAsSchema1(t, b, during) // an old replica, after the migration
		got := map[string]string{}
		if err := l.Scan(context.Background(), ledger.Query{}, func(e *ledger.Entry) error {
			got[e.DecisionID] = e.Replica
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{old: "", during: "", fresh: "new-1"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("entries and their replicas = %v, want %v", got, want)
		}
		// The entries from before the chain, and the old replica's, are
		// linked after the new one by the writer.
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, err := l.Verify(context.Background(), ledger.VerifyOptions{})
			if err == nil && v.Unlinked == 0 && v.Entries == 3 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Verify = %v, %+v; want the 3 entries linked", err, v)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// A schema newer than this code is used when every step this code does not
// know declares itself compatible with this code's version; otherwise it is
// refused (TestNewerSchemaIsConfigError).
func TestNewerCompatibleSchemaIsUsed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b *backend) {
		l := b.open(t)
		record(t, l, removal(newID(), baseTime, "p"))
		l.Close()
		v := ledger.SchemaVersion()
		if _, err := b.raw(t).Exec(fmt.Sprintf(`INSERT INTO ledger_migrations (version, applied_at, compatible_from) VALUES (%d, 0, %d)`, v+1, v)); err != nil {
			t.Fatal(err)
		}
		l = b.open(t)
		record(t, l, removal(newID(), baseTime, "p"))
		l.Close()
		ro, err := ledger.Open(context.Background(), ledger.Config{URL: b.url, DataDir: b.dir, ReadOnly: true, Logger: quietLogger()})
		if err != nil {
			t.Fatalf("read-only Open on a compatible newer schema: %v", err)
		}
		ro.Close()

		if _, err := b.raw(t).Exec(fmt.Sprintf(`INSERT INTO ledger_migrations (version, applied_at, compatible_from) VALUES (%d, 0, %d)`, v+2, v+1)); err != nil {
			t.Fatal(err)
		}
		l, err = ledger.Open(context.Background(), b.config())
		if err == nil {
			l.Close()
		}
		if !errors.Is(err, ledger.ErrConfig) || !strings.Contains(err.Error(), "not compatible") {
			t.Errorf("Open with a step incompatible with this code = %v, want ErrConfig", err)
		}
		if n := b.count(t, `SELECT count(*) FROM ledger_decisions`); n != 2 {
			t.Errorf("%d entries, want 2", n)
		}
	})
}

// A PostgreSQL server that answers that the ledger's settings cannot work
// (no such database, no such role) refuses the start (ErrConfig, exit 2)
// instead of starting a replica that is ready and refuses every record;
// a server that is down is waited for (TestLedgerPostgresDownAtStart).
func TestSettingsRefusedForGoodAtStart(t *testing.T) {
	srv := pgtest.Shared(t)
	noRole, err := url.Parse(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	noRole.User = url.User("nobody_" + strings.ReplaceAll(newID(), "-", ""))
	for name, u := range map[string]string{
		"no such database": srv.DatabaseURL("nodb_" + strings.ReplaceAll(newID(), "-", "")),
		"no such role":     noRole.String(),
	} {
		for _, readOnly := range []bool{false, true} {
			b := &backend{name: "postgres", url: u, dir: filepath.Join(t.TempDir(), "data")}
			cfg := b.config()
			cfg.ReadOnly = readOnly
			l, err := ledger.Open(context.Background(), cfg)
			if err == nil {
				l.Close()
			}
			// A reader says there is no ledger there, as it did already.
			if !errors.Is(err, ledger.ErrConfig) || (!readOnly && !strings.Contains(err.Error(), "refused this ledger's settings")) {
				t.Errorf("%s (read-only %v): Open = %v, want ErrConfig", name, readOnly, err)
			}
		}
	}
}
