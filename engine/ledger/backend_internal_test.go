package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/geoscope/geoscope/internal/pgtest"
)

func openTestSQLite(t *testing.T) *sqlBackend {
	t.Helper()
	b, _, err := openBackend(context.Background(), Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}, "test-fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.close() })
	return b.(*sqlBackend)
}

// TestSQLiteWritesStayOnOneConnection: every write (entries and counts)
// is made on the one connection kept for writes, so that connection never
// finds the database changed by another (which would drop its page
// cache). PRAGMA data_version, read on that connection, changes only when
// another connection has committed since.
func TestSQLiteWritesStayOnOneConnection(t *testing.T) {
	ctx := context.Background()
	b := openTestSQLite(t)
	entry := func(id string) []*Entry {
		return []*Entry{{DecisionID: id, Time: time.Now(), Kind: KindAdmission, MeetingID: "m-1",
			Orders: []Order{{OrderID: "o-1", Authority: "a-1"}}}}
	}
	raw := [][]byte{[]byte(`{}`)}
	if err := b.insert(ctx, entry("d-1"), raw); err != nil {
		t.Fatal(err)
	}
	version := func() int64 {
		t.Helper()
		var v int64
		if err := b.writer.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	// Enough writes for the pool to have handed out another connection,
	// had writes used the pool; a reader holds one meanwhile.
	rows, err := b.query(ctx, `SELECT decision_id FROM ledger_decisions`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if err := b.insert(ctx, entry("d-"+string(rune('a'+i))), raw); err != nil {
			t.Fatal(err)
		}
		if _, err := b.addCounts(ctx, &countBatch{writer: "w-1", seq: int64(i + 1), counts: map[countKey]int64{{day: "2026-01-01", kind: KindAdmission, meeting: "m-1", orders: "[]"}: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	if after := version(); after != before {
		t.Fatalf("data_version on the writing connection went from %d to %d: another connection wrote", before, after)
	}
	// Entries are given to SQLite as bytes and stored as text.
	var blobs int
	if err := b.writer.QueryRowContext(ctx, `SELECT count(*) FROM ledger_decisions WHERE typeof(entry) != 'text'`).Scan(&blobs); err != nil {
		t.Fatal(err)
	}
	if blobs != 0 {
		t.Fatalf("%d entries stored as something other than text", blobs)
	}
	// The check can fail: a write through the pool is seen.
	db, err := b.conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM ledger_quiet_counts`); err != nil {
		t.Fatal(err)
	}
	if after := version(); after == before {
		t.Fatal("data_version did not change after a write on another connection")
	}
}

// TestSQLiteBatchInsertIsOrFail: a multi-row insert into SQLite that
// fails keeps, inside its transaction, the rows it inserted before failing
// (OR FAIL, which is what spares SQLite a statement journal: a copy of
// every page a statement changes, spilled to a temporary file). The
// transaction holds nothing once rolled back, which is what the ledger
// does with a batch that fails (TestSQLiteFailedBatchKeepsNothing).
func TestSQLiteBatchInsertIsOrFail(t *testing.T) {
	ctx := context.Background()
	db, err := openTestSQLite(t).conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	valid := []any{"d-1", int64(1), KindAdmission, "m-1", nil, "{}", "", int64(1), "link-1"}
	// meeting_id is NOT NULL: the second row fails.
	failing := []any{"d-2", int64(2), KindAdmission, nil, nil, "{}", "", int64(2), "link-2"}
	_, err = tx.ExecContext(ctx, insertSQL("sqlite", decisionsTable, 2), append(valid, failing...)...)
	if err == nil || !strings.Contains(err.Error(), "NOT NULL") {
		t.Fatalf("inserting a row without a meeting: %v, want a NOT NULL constraint error", err)
	}
	var inTx int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ledger_decisions`).Scan(&inTx); err != nil {
		t.Fatal(err)
	}
	if inTx != 1 {
		t.Fatalf("rows in the transaction after the failed statement: %d, want 1 (the row before the failure, kept by OR FAIL)", inTx)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	var after int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_decisions`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != 0 {
		t.Fatalf("rows after the rollback: %d, want 0", after)
	}
}

// TestSQLiteFailedBatchKeepsNothing: a batch refused part-way (here by a
// trigger, on its second entry) leaves none of its entries in the tables,
// and the next batch is written.
func TestSQLiteFailedBatchKeepsNothing(t *testing.T) {
	ctx := context.Background()
	b := openTestSQLite(t)
	db, err := b.conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TRIGGER refuse_bad BEFORE INSERT ON ledger_decisions
		WHEN NEW.decision_id = 'd-bad' BEGIN SELECT RAISE(FAIL, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	batch := func(ids ...string) ([]*Entry, [][]byte) {
		var entries []*Entry
		var raws [][]byte
		for _, id := range ids {
			entries = append(entries, &Entry{DecisionID: id, Time: time.Now(), Kind: KindAdmission, MeetingID: "m-1",
				Orders: []Order{{OrderID: "o-1", Authority: "a-1"}}})
			raws = append(raws, []byte(`{}`))
		}
		return entries, raws
	}
	count := func(table string) int {
		t.Helper()
		// A failed write closes the database, to reopen it at the next
		// use (see insert).
		db, err := b.conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	entries, raws := batch("d-ok-1", "d-bad", "d-ok-2")
	if err := b.insert(ctx, entries, raws); err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("inserting a batch the trigger refuses: %v", err)
	}
	if n, m := count("ledger_decisions"), count("ledger_decision_orders"); n != 0 || m != 0 {
		t.Fatalf("after a refused batch: %d decisions and %d cited orders kept, want none", n, m)
	}
	entries, raws = batch("d-ok-1", "d-ok-2")
	if err := b.insert(ctx, entries, raws); err != nil {
		t.Fatalf("the batch after a refused one: %v", err)
	}
	if n := count("ledger_decisions"); n != 2 {
		t.Fatalf("after the next batch: %d decisions, want 2", n)
	}
}

// TestSQLiteWritingConnectionReplacedWhenItBreaks: a writing connection
// that can no longer begin a transaction is dropped, so the next write
// (here a flush of counts, which does not reopen the database on every
// error) gets another instead of failing for good.
func TestSQLiteWritingConnectionReplacedWhenItBreaks(t *testing.T) {
	ctx := context.Background()
	b := openTestSQLite(t)
	counts := map[countKey]int64{{day: "2026-01-01", kind: KindAdmission, meeting: "m-1", orders: "[]"}: 1}
	if _, err := b.addCounts(ctx, &countBatch{writer: "w-1", seq: 1, counts: counts}); err != nil {
		t.Fatal(err)
	}
	b.writer.Close() // as database/sql does with a connection it finds broken
	second := &countBatch{writer: "w-1", seq: 2, counts: counts}
	if _, err := b.addCounts(ctx, second); err == nil {
		t.Fatal("a write on a closed connection succeeded")
	}
	if _, err := b.addCounts(ctx, second); err != nil {
		t.Fatalf("the write after the connection broke: %v", err)
	}
	db, err := b.conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT n FROM ledger_quiet_counts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("count %d, want 2 (the write that failed added nothing)", n)
	}
}

// A commit's PostgreSQL transaction ends itself when idle for 5 s (a
// replica hung in a commit holds the chain's lock), set in the statement
// that takes the lock, whatever the URL says.
func TestPostgresCommitsEndWhenIdleInTransaction(t *testing.T) {
	ctx := context.Background()
	b, _, err := openBackend(ctx, Config{URL: pgtest.Shared(t).NewSchema(t), Logger: slog.New(slog.DiscardHandler)}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	sb := b.(*sqlBackend)
	db, err := sb.conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, done, err := sb.beginWrite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	defer tx.Rollback() //nolint:errcheck
	if _, err := sb.lockHead(ctx, tx); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := tx.QueryRowContext(ctx, `SHOW idle_in_transaction_session_timeout`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != "5s" {
		t.Errorf("idle_in_transaction_session_timeout in a commit: %q, want 5s", got)
	}
}

// Each pool keeps the connections a burst of reads opened, for the next
// burst, rather than closing all but two of them as each read ends and
// opening them again: on PostgreSQL a backend started, and the client
// authenticated, per read; on SQLite the files opened and the schema read
// again.
func TestPoolsKeepTheirConnectionsIdle(t *testing.T) {
	for _, tc := range []struct {
		name, slow string
		open       func(*testing.T) *sqlBackend
	}{
		{"postgres", `SELECT pg_sleep(0.2)`, func(t *testing.T) *sqlBackend {
			b, _, err := openBackend(context.Background(), Config{URL: pgtest.Shared(t).NewSchema(t), Logger: slog.New(slog.DiscardHandler)}, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.close() })
			return b.(*sqlBackend)
		}},
		{"sqlite", `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT count(*) FROM c`, openTestSQLite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, err := tc.open(t).conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			burst := func() {
				t.Helper()
				var wg sync.WaitGroup
				errs := make(chan error, 16)
				for range 16 {
					wg.Go(func() {
						_, err := db.ExecContext(ctx, tc.slow)
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
			}
			burst()
			burst()
			if st := db.Stats(); st.MaxIdleClosed > 0 || st.Idle != st.MaxOpenConnections-st.InUse {
				t.Errorf("after two bursts of 16 reads: %d of %d connections idle, %d in use, %d closed for want of room among the idle ones; want every one not in use kept, none closed",
					st.Idle, st.MaxOpenConnections, st.InUse, st.MaxIdleClosed)
			}
		})
	}
}

// The PG* variables are refused by what a URL states, whatever way it
// states it, and all of them when the URL cannot be read to tell.
func TestCheckEnvironmentReadsTheURLAsTheDriverDoes(t *testing.T) {
	for _, tc := range []struct {
		url, env string
		refused  bool
	}{
		{"postgres://geo@db/geoscope?sslmode=verify-full", "PGSSLMODE", false},
		{"postgres://geo@db/geoscope", "PGSSLMODE", true},
		// The driver reads dbname as the database and ssl=true as sslmode=require.
		{"postgres://geo@db?dbname=geoscope&sslmode=verify-full", "PGDATABASE", false},
		{"postgres://geo@db/geoscope?ssl=true", "PGSSLMODE", false},
		{"postgres://geo@db/geoscope?ssl=false", "PGSSLMODE", true},
		// net/url refuses these and the driver takes them: nothing counts as stated.
		{"postgres://geo:s#cr3t@db/geoscope?sslmode=verify-full", "PGSSLMODE", true},
		{"postgres://geo@db1:5432,db2:5432/geoscope?sslmode=verify-full", "PGOPTIONS", true},
		// An empty password is none to the driver.
		{"postgres://geo:@db/geoscope?sslmode=verify-full", "PGPASSWORD", true},
		{"postgres://geo:pw@db/geoscope?sslmode=verify-full", "PGPASSWORD", false},
		// net/url takes these and splits them otherwise than the driver,
		// which ends the user information at the first "@" before the
		// first "/": the sslmode, the port and the password net/url reads
		// are part of the driver's password.
		{"postgres://geo:5432?sslmode=verify-full@db/geoscope", "PGSSLMODE", true},
		{"postgres://geo:?sslmode=verify-full@db:5432/geoscope", "PGSSLMODE", true},
		{"postgres://geo:12#x@db/geoscope?sslmode=verify-full", "PGPORT", true},
		{"postgres://geo:p@ss@db:5432/geoscope?sslmode=verify-full", "PGPASSWORD", true},
		{"postgres://geo@db:5432/geoscope?sslmode=verify-full&application_name=a@b", "PGAPPNAME", false},
	} {
		t.Run(tc.url+" "+tc.env, func(t *testing.T) {
			for name := range pgEnvironment {
				t.Setenv(name, "") // restored after the test
				os.Unsetenv(name)
			}
			t.Setenv(tc.env, "set-by-the-test")
			err := checkEnvironment(tc.url)
			if refused := err != nil; refused != tc.refused {
				t.Fatalf("checkEnvironment: %v; want refused %v", err, tc.refused)
			}
			if err != nil && (!strings.Contains(err.Error(), tc.env) || strings.Contains(err.Error(), "set-by-the-test")) {
				t.Errorf("error %q: want %s named and its value not shown", err, tc.env)
			}
		})
	}
}

// Whatever a URL looks like, a PG* variable checkEnvironment lets through
// changes nothing the driver connects with: the setting it is for is
// stated in the URL, as the driver reads the URL.
func TestCheckEnvironmentLetsThroughNothingTheDriverApplies(t *testing.T) {
	urls := []string{
		"postgres://geo@db/geoscope",
		"postgres://geo:pw@db:5432/geoscope?sslmode=verify-full&application_name=geoscope&options=-c%20x%3Dy",
		"postgres://geo:@db:5432/geoscope?sslmode=require",
		"postgres://geo:5432?sslmode=verify-full@db/geoscope",
		"postgres://geo:?sslmode=verify-full&dbname=x&port=5432@db/",
		"postgres://geo:12#x@db/geoscope?sslmode=require",
		"postgres://geo:12?x=1&port=6@db/geoscope?sslmode=require",
		"postgres://geo:p@ss@db:5432/geoscope?sslmode=require",
		"postgres://geo:pw@db:5432?dbname=geoscope&ssl=true",
		"postgres://geo:pw@db:5432/geoscope?ssl=true&ssl=false",
		"postgres://geo:pw@db:5432/geoscope?ssl=false&ssl=true",
		"postgres://geo:pw@db:5432/geoscope?sslmode=require&ssl=true",
		"postgres://db?user=geo&password=pw&port=5432&dbname=geoscope&sslmode=require&host=db",
		"postgres://db/geoscope#?sslmode=require",
		"postgres://geo:pw@db:5432/geoscope?sslmode=require&application_name=a@b",
		"postgres://geo:pw@[::1]:5432/geoscope?sslmode=require",
		"postgres://geo:pw@db:/geoscope?sslmode=require",
		"postgres://%67eo:p%77@db:5432/geo%73cope?ssl%6dode=require",
		"postgresql://geo:pw@db:5432/geoscope?sslmode=require&host=other",
	}
	type applied func(*pgconn.Config) bool
	vars := []struct {
		name, value string
		applied     applied
	}{
		{"PGHOST", "sentinel.invalid", func(c *pgconn.Config) bool { return c.Host == "sentinel.invalid" }},
		{"PGPORT", "6543", func(c *pgconn.Config) bool { return c.Port == 6543 }},
		{"PGDATABASE", "sentinel_db", func(c *pgconn.Config) bool { return c.Database == "sentinel_db" }},
		{"PGUSER", "sentinel_user", func(c *pgconn.Config) bool { return c.User == "sentinel_user" }},
		{"PGPASSWORD", "sentinel-pw", func(c *pgconn.Config) bool { return c.Password == "sentinel-pw" }},
		{"PGSSLMODE", "disable", func(c *pgconn.Config) bool { return c.TLSConfig == nil }},
		{"PGAPPNAME", "sentinel-app", func(c *pgconn.Config) bool { return c.RuntimeParams["application_name"] == "sentinel-app" }},
		{"PGOPTIONS", "-c search_path=sentinel", func(c *pgconn.Config) bool { return strings.Contains(c.RuntimeParams["options"], "sentinel") }},
	}
	for _, u := range urls {
		for _, v := range vars {
			for name := range pgEnvironment {
				t.Setenv(name, "") // restored after the test
				os.Unsetenv(name)
			}
			os.Setenv(v.name, v.value)
			if checkEnvironment(u) != nil {
				continue // refused
			}
			cfg, err := pgconn.ParseConfig(u)
			if err != nil {
				continue // refused when parsed (checkURL)
			}
			if v.applied(cfg) {
				t.Errorf("%s with %s=%s: let through, and the driver applies it", u, v.name, v.value)
			}
		}
	}
}

// A batch of counts sent again adds nothing once an attempt wrote it (on
// both databases: the upsert that records the batch reports no row
// changed), the writer's next batch adds, and the rows of writers that
// wrote nothing for countWritersKept are deleted by a writer's first
// batch, that writer's own row kept.
func TestCountsBatchSentAgainAddsNothing(t *testing.T) {
	ctx := context.Background()
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			var b *sqlBackend
			if dialect == "sqlite" {
				b = openTestSQLite(t)
			} else {
				bb, _, err := openBackend(ctx, Config{URL: pgtest.Shared(t).NewSchema(t), Logger: slog.New(slog.DiscardHandler)}, "")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { bb.close() })
				b = bb.(*sqlBackend)
			}
			db, err := b.conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			stale := time.Now().Add(-countWritersKept - time.Hour).UnixNano()
			if _, err := db.ExecContext(ctx, b.rebind(`INSERT INTO ledger_count_flushes (writer, batch, flushed_at) VALUES ('stopped', 7, ?), ('recent', 3, ?)`), stale, time.Now().UnixNano()); err != nil {
				t.Fatal(err)
			}
			k := countKey{day: "2026-01-01", kind: KindAdmission, meeting: "m-1", orders: "o-1"}
			other := countKey{day: "2026-01-02", kind: KindDecision}
			total := func() (n int64) {
				t.Helper()
				if err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM ledger_quiet_counts`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			first := &countBatch{writer: "w-1", seq: 1, counts: map[countKey]int64{k: 5, other: 1}}
			for attempt, wantAlready := range []bool{false, true, true} {
				already, err := b.addCounts(ctx, first)
				if err != nil || already != wantAlready {
					t.Fatalf("attempt %d of batch 1: already %v, %v; want %v", attempt+1, already, err, wantAlready)
				}
				if n := total(); n != 6 {
					t.Fatalf("after attempt %d of batch 1: %d counted, want 6", attempt+1, n)
				}
			}
			// Another writer's batch 1 is another batch.
			if already, err := b.addCounts(ctx, &countBatch{writer: "w-2", seq: 1, counts: map[countKey]int64{k: 2}}); err != nil || already {
				t.Fatalf("another writer's first batch: already %v, %v", already, err)
			}
			if already, err := b.addCounts(ctx, &countBatch{writer: "w-1", seq: 2, counts: map[countKey]int64{k: 3}}); err != nil || already {
				t.Fatalf("batch 2: already %v, %v", already, err)
			}
			if n := total(); n != 11 {
				t.Fatalf("%d counted, want 11", n)
			}
			var writers []string
			rows, err := db.QueryContext(ctx, `SELECT writer FROM ledger_count_flushes ORDER BY writer`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var w string
				if err := rows.Scan(&w); err != nil {
					t.Fatal(err)
				}
				writers = append(writers, w)
			}
			rows.Close()
			if got := strings.Join(writers, " "); got != "recent w-1 w-2" {
				t.Errorf("writers recorded: %s, want recent w-1 w-2 (the stopped writer's row deleted)", got)
			}
		})
	}
}

// Replicas flushing counts of the same meetings at once take the counts'
// rows in one order, so that no two of them wait for each other: taken in
// a map's order, two replicas' flushes of the same rows deadlocked, and
// PostgreSQL ended one of them.
func TestCountsOfReplicasAtOnceDoNotDeadlock(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewSchema(t)
	var replicas []*sqlBackend
	for range 4 {
		b, _, err := openBackend(ctx, Config{URL: url, Logger: slog.New(slog.DiscardHandler)}, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.close() })
		replicas = append(replicas, b.(*sqlBackend))
	}
	const flushes, meetings = 40, 30
	var wg sync.WaitGroup
	errs := make(chan error, len(replicas)*flushes)
	for r, b := range replicas {
		wg.Go(func() {
			for seq := range int64(flushes) {
				counts := map[countKey]int64{}
				for m := range meetings {
					counts[countKey{day: "2026-01-01", kind: KindAdmission, meeting: fmt.Sprintf("m-%d", m)}] = 1
				}
				if _, err := b.addCounts(ctx, &countBatch{writer: fmt.Sprintf("replica-%d", r), seq: seq + 1, counts: counts}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed == 1 {
			t.Errorf("a flush failed: %v", err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d flushes failed", failed, len(replicas)*flushes)
	}
	db, err := replicas[0].conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM ledger_quiet_counts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if want := int64(len(replicas)*flushes*meetings - failed*meetings); n != want {
		t.Errorf("counted %d, want %d", n, want)
	}
}
