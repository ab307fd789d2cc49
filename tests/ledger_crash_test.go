package tests

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", to check the crashed database
)

// TestLedgerCrash kills the server (SIGKILL) in the middle of a load of
// decisions that must be recorded, restarts it on the same ledger, and
// checks that every decision answered 200 before the kill is in the
// ledger: an answer is only ever given after its entry was committed.
func TestLedgerCrash(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		lgCrash(t, []string{"--data-dir", dir}, func(t *testing.T, answered []string, crashed bool) { lgSQLiteIntegrity(t, dir, answered, crashed) })
	})
	t.Run("postgres", func(t *testing.T) {
		pg := lgPostgres(t)
		lgCrash(t, []string{"--data-dir", t.TempDir(), "--ledger", pg.URL(), "--ledger-key-file", lgKeyFile(t)}, func(t *testing.T, ids []string, _ bool) {
			answered := len(ids)
			db, err := sql.Open("pgx", pg.URL())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_decisions`).Scan(&n); err != nil {
				t.Fatalf("PostgreSQL after the crash: %v", err)
			}
			if n < answered {
				t.Errorf("ledger_decisions holds %d rows; %d decisions were answered", n, answered)
			}
		})
	})
}

// lgSQLiteIntegrity opens the SQLite ledger directly and runs
// PRAGMA integrity_check, then looks for every answered decision: in the
// table, or, right after a crash, in the journal the server commits to
// (which the next start copies into the table).
func lgSQLiteIntegrity(t *testing.T, dir string, answered []string, crashed bool) {
	t.Helper()
	var files []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		files = append(files, e.Name())
	}
	db, err := sql.Open("sqlite", lgSQLiteDSN(filepath.Join(dir, "ledger.db"), "_pragma=busy_timeout(10000)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	var result []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		result = append(result, s)
	}
	rows.Close()
	if strings.Join(result, "\n") != "ok" {
		t.Errorf("PRAGMA integrity_check = %q", result)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_decisions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var journal [][]byte
	segs, _ := filepath.Glob(filepath.Join(dir, "ledger.journal.*"))
	for _, seg := range segs {
		if data, err := os.ReadFile(seg); err == nil {
			journal = append(journal, data)
		}
	}
	inTable, inJournal := 0, 0
	var missing []string
	for _, id := range answered {
		var found int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM ledger_decisions WHERE decision_id = ?`, id).Scan(&found); err != nil {
			t.Fatal(err)
		}
		switch {
		case found == 1:
			inTable++
		case crashed && slices.ContainsFunc(journal, func(data []byte) bool { return bytes.Contains(data, []byte(`"decision_id":"`+id+`"`)) }):
			inJournal++
		default:
			missing = append(missing, id)
		}
	}
	t.Logf("SQLite ledger (files %v): integrity ok, %d entries; of %d answered, %d in the table and %d in the journal only", files, n, len(answered), inTable, inJournal)
	if len(missing) > 0 {
		t.Errorf("%d of %d answered decisions are neither in ledger_decisions nor in the journal, e.g. %v", len(missing), len(answered), missing[:min(5, len(missing))])
	}
	if !crashed && len(segs) > 0 {
		t.Errorf("after a clean stop the journal is still there: %v", segs)
	}
}

func lgCrash(t *testing.T, ledgerArgs []string, checkStore func(t *testing.T, answered []string, crashed bool)) {
	srv := lgStart(t, append([]string{"--log-level", "warn"}, ledgerArgs...)...)
	const workers = 16
	var (
		mu         sync.Mutex
		answered   []string
		unexpected []string
		cut        int // started before the kill, failed
		killed     atomic.Bool
		inflight   atomic.Int64
		stop       = make(chan struct{})
		wg         sync.WaitGroup
		tag        = lgRandHex(4)
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Unique participants on every request; CN addresses, so every
				// answer carries actions and must be recorded one by one.
				body := lgRoster("june4-b", "acct-us-b", "US", "",
					lgPerson{fmt.Sprintf("crash-%s-%d-%d-a", tag, w, i), lgCN4()},
					lgPerson{fmt.Sprintf("crash-%s-%d-%d-b", tag, w, i), lgCN6()},
					lgPerson{fmt.Sprintf("crash-%s-%d-%d-c", tag, w, i), lgUS4()})
				startedAfterKill := killed.Load()
				inflight.Add(1)
				r, err := srv.do(http.MethodPost, "/v1/decisions", "", "application/json", body)
				inflight.Add(-1)
				mu.Lock()
				switch {
				case err == nil && r.status == http.StatusOK:
					var a lgAnswer
					if json.Unmarshal(r.body, &a) != nil || len(a.Actions) == 0 || a.DecisionID == "" {
						unexpected = append(unexpected, "200 without actions: "+string(r.body))
					}
					answered = append(answered, a.DecisionID)
				case startedAfterKill:
				case killed.Load():
					cut++
				default:
					unexpected = append(unexpected, fmt.Sprintf("HTTP %d, %v: %.300s", r.status, err, r.body))
				}
				mu.Unlock()
				if err != nil && killed.Load() {
					return
				}
			}
		})
	}
	// Load for about 1.5s (and at least some answers), then kill.
	deadline := time.Now().Add(20 * time.Second)
	time.Sleep(1500 * time.Millisecond)
	for {
		mu.Lock()
		n := len(answered)
		mu.Unlock()
		if n >= 50 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	killed.Store(true)
	inflightAtKill := inflight.Load()
	srv.stop(syscall.SIGKILL)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("SIGKILL after %d decisions answered 200; %d requests in flight at the kill, %d of them cut off", len(answered), inflightAtKill, cut)
	for _, u := range unexpected[:min(5, len(unexpected))] {
		t.Errorf("before the kill: %s", u)
	}
	if len(answered) < 20 {
		t.Fatalf("only %d decisions answered before the kill; the load did not run", len(answered))
	}

	// The ledger as the crash left it.
	checkStore(t, answered, true)

	// Restart on the same ledger.
	srv.restart()
	exported := lgExport(t, ledgerArgs...)
	found := 0
	var missing []string
	for _, id := range answered {
		if exported[id] {
			found++
		} else {
			missing = append(missing, id)
		}
	}
	t.Logf("answered %d, found %d of them in `geoscope ledger export` (which lists %d entries)", len(answered), found, len(exported))
	if found != len(answered) {
		t.Errorf("%d decisions were answered 200 but are not in the ledger, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	if n := lgCheckRecorded(t, srv, answered); n != len(answered) {
		t.Errorf("GET /v1/ledger/{id}: %d of %d found", n, len(answered))
	}

	// The restarted server records and serves new decisions.
	r := srv.post("/v1/decisions", "", lgRoster("june4-b", "acct-us-b", "US", "", lgPerson{"after-restart-" + tag, lgCN4()}))
	if r.status != http.StatusOK {
		t.Fatalf("after restart: HTTP %d %s", r.status, r.body)
	}
	last := lgDecode(t, r.body).DecisionID
	lgCheckRecorded(t, srv, []string{last})
	srv.stop(syscall.SIGTERM)
	checkStore(t, append(slices.Clone(answered), last), false)
}
