package tests

// Replicas sharing one PostgreSQL ledger, as separate processes: the chain
// they extend together, a replica killed or frozen in the middle of a
// commit (holding the chain's lock), and what every replica then reads
// back. TestCluster runs the same parts behind HAProxy under a heavier
// load; this test aims its faults at the chain's lock, which a fault at a
// random moment rarely hits.

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// replicaResult is one recorded decision sent to a replica.
type replicaResult struct {
	replica    string
	start, end time.Time
	status     int    // 0: no answer
	code       string // the error's code
	decisionID string
}

// replicaLoad sends decisions that must be recorded (a participant in CN,
// under the embedded registry's order) to each replica until stopped.
type replicaLoad struct {
	mu      sync.Mutex
	results []replicaResult
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startReplicaLoad(reps map[string]*serverProc, perReplica int) *replicaLoad {
	l := &replicaLoad{stop: make(chan struct{})}
	tag := lgRandHex(4)
	for name, p := range reps {
		for w := range perReplica {
			l.wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-l.stop:
						return
					default:
					}
					body := lgRoster("june4-b", "acct-us-b", "US", "",
						lgPerson{fmt.Sprintf("rep-%s-%s-%d-%d-a", tag, name, w, i), lgCN4()},
						lgPerson{fmt.Sprintf("rep-%s-%s-%d-%d-b", tag, name, w, i), lgUS4()})
					r := replicaResult{replica: name, start: time.Now()}
					res, err := p.do(http.MethodPost, "/v1/decisions", "", "application/json", body)
					r.end = time.Now()
					if err == nil {
						r.status = res.status
						var a struct {
							DecisionID string `json:"decision_id"`
							Code       string `json:"code"`
						}
						_ = json.Unmarshal(res.body, &a)
						r.decisionID, r.code = a.DecisionID, a.Code
					}
					l.mu.Lock()
					l.results = append(l.results, r)
					l.mu.Unlock()
					if r.status != http.StatusOK {
						time.Sleep(20 * time.Millisecond) // a replica down: do not spin
					}
				}
			})
		}
	}
	return l
}

func (l *replicaLoad) halt() []replicaResult {
	close(l.stop)
	l.wg.Wait()
	return l.results
}

// answeredSince reports whether replica answered 200 a request it got at
// or after since.
func (l *replicaLoad) answeredSince(replica string, since time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.results, func(r replicaResult) bool {
		return r.replica == replica && r.status == http.StatusOK && !r.start.Before(since)
	})
}

// chainLockHolder names the replica (its connections' application_name)
// whose transaction holds the chain's lock, or "".
func chainLockHolder(t *testing.T, db *sql.DB) string {
	t.Helper()
	var name sql.NullString
	err := db.QueryRow(`SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = 736366 AND l.granted`).Scan(&name)
	if err != nil && err != sql.ErrNoRows {
		t.Fatalf("pg_locks: %v", err)
	}
	return name.String
}

// stopHoldingChainLock stops replica name (SIGSTOP) at a moment it holds
// the chain's lock: in the middle of a commit, between two of its
// statements. The process is left stopped.
func stopHoldingChainLock(t *testing.T, db *sql.DB, p *serverProc, name string) {
	t.Helper()
	pid := p.current().cmd.Process.Pid
	for range 1000 {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the stop is delivered
		if chainLockHolder(t, db) == name {
			return
		}
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(1+lgRandInt(10)) * time.Millisecond)
	}
	t.Fatalf("%s was never caught holding the chain's lock", name)
}

// TestLedgerReplicasOneChain: three replicas record concurrently into one
// PostgreSQL ledger, one is killed (SIGKILL) and another stopped (SIGSTOP,
// as a frozen VM or a node cut off the network) each while it holds the
// chain's lock. Then:
//
//   - the others go on recording: at once after the kill (the database
//     sees the connection close and ends the transaction), and after the
//     idle bound of a commit's transaction (5 s) while one is frozen, not
//     after a minute;
//   - no decision answered 200 is missing, and the chain has one entry per
//     number, without a gap or a fork: `geoscope ledger verify` passes,
//     with the head a report printed, on the database and on the export;
//   - every replica reads the same: the same report, the same ledger head,
//     the same listing.
func TestLedgerReplicasOneChain(t *testing.T) {
	pg := lgPostgres(t)
	key := lgKeyFile(t)
	names := []string{"replica-1", "replica-2", "replica-3"}
	reps := map[string]*serverProc{}
	for _, name := range names {
		// application_name names the replica's sessions in
		// pg_stat_activity, so that the test knows who holds the lock.
		reps[name] = lgStart(t, "--log-level", "warn", "--replica-id", name,
			"--ledger", pg.URL()+"&application_name="+name, "--ledger-key-file", key)
	}
	db, err := sql.Open("pgx", pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	load := startReplicaLoad(reps, 2)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.halt()
		}
	}()
	loadStart := time.Now()
	poll(t, pollTimeout, "every replica to answer", func() bool {
		return load.answeredSince("replica-1", loadStart) && load.answeredSince("replica-2", loadStart) && load.answeredSince("replica-3", loadStart)
	})
	time.Sleep(time.Second)

	// 1. SIGKILL replica-2 in the middle of a commit.
	stopHoldingChainLock(t, db, reps["replica-2"], "replica-2")
	kill := window{name: "replica-2 killed holding the chain's lock", from: time.Now()}
	reps["replica-2"].stop(syscall.SIGKILL)
	afterKill := time.Now()
	poll(t, pollTimeout, "replica-1 and replica-3 to record after the kill", func() bool {
		return load.answeredSince("replica-1", afterKill) && load.answeredSince("replica-3", afterKill)
	})
	t.Logf("after the kill, replica-1 and replica-3 recorded again within %v", time.Since(afterKill).Round(time.Millisecond))
	reps["replica-2"].restart()
	kill.to = time.Now()
	time.Sleep(time.Second)

	// 2. SIGSTOP replica-3 in the middle of a commit: the lock is held
	// until PostgreSQL ends the idle transaction.
	stopHoldingChainLock(t, db, reps["replica-3"], "replica-3")
	freeze := window{name: "replica-3 frozen holding the chain's lock", from: time.Now()}
	deadline := freeze.from.Add(20 * time.Second)
	for !(load.answeredSince("replica-1", freeze.from) && load.answeredSince("replica-2", freeze.from)) && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	othersBack := time.Since(freeze.from)
	if err := syscall.Kill(reps["replica-3"].current().cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica-3 frozen holding the chain's lock: replica-1 and replica-2 recorded again after %v", othersBack.Round(time.Millisecond))
	// The idle bound (5 s), its detection, and a request already waiting.
	if bound := 9 * time.Second; othersBack > bound {
		t.Errorf("with replica-3 frozen in a commit, the other replicas recorded nothing for %v; want them back within %v (the commit's idle bound, 5 s, and a margin)", othersBack.Round(time.Millisecond), bound)
	}
	resumed := time.Now()
	poll(t, pollTimeout, "replica-3 to record again once resumed", func() bool { return load.answeredSince("replica-3", resumed) })
	freeze.to = time.Now()
	time.Sleep(time.Second)
	results := load.halt()

	// Errors only where the faults allow them: any on the killed replica
	// until it is back, 503 ledger_unavailable on any replica while the
	// lock was held, any on the frozen one until it records again.
	acked := map[string]replicaResult{}
	var bad []string
	errorsIn := map[string]int{}
	for _, r := range results {
		if r.status == http.StatusOK {
			acked[r.decisionID] = r
			continue
		}
		overlaps := func(w window) bool { return r.start.Before(w.to) && r.end.After(w.from) }
		switch {
		case r.replica == "replica-2" && overlaps(kill):
			errorsIn[kill.name]++
		case overlaps(freeze) && (r.replica == "replica-3" || r.status == http.StatusServiceUnavailable && r.code == "ledger_unavailable"):
			errorsIn[freeze.name]++
		default:
			bad = append(bad, fmt.Sprintf("%s at +%.2fs: HTTP %d %s", r.replica, r.start.Sub(loadStart).Seconds(), r.status, r.code))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d errors outside the faults, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	t.Logf("%d recorded decisions answered; errors: %v", len(acked), errorsIn)

	// Every replica reads the same report, head and listing.
	var first string
	for _, name := range names {
		r := reps[name].get("/v1/report?since=2000-01-01&until=2100-01-01", "")
		var rep map[string]any
		if r.status != http.StatusOK || json.Unmarshal(r.body, &rep) != nil {
			t.Fatalf("%s GET /v1/report: HTTP %d %.300s", name, r.status, r.body)
		}
		if rep["ledger_head"] == nil {
			t.Errorf("%s: the report prints no ledger head", name)
		}
		delete(rep, "generated_at")
		raw, _ := json.Marshal(rep)
		if first == "" {
			first = string(raw)
		} else if string(raw) != first {
			t.Errorf("%s's report differs from replica-1's:\n%s\n%s", name, raw, first)
		}
	}
	var report struct {
		Head string `json:"ledger_head"`
	}
	_ = json.Unmarshal([]byte(first), &report)
	listings := map[string][]string{}
	for _, name := range names {
		// Each page from the next replica: a cursor is no replica's own.
		cursor := ""
		for i := 0; ; i++ {
			p := reps[names[(slices.Index(names, name)+i)%len(names)]]
			path := "/v1/ledger?limit=1000"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			r := p.get(path, "")
			var page struct {
				Entries []struct {
					DecisionID string `json:"decision_id"`
				} `json:"entries"`
				NextCursor string `json:"next_cursor"`
			}
			if r.status != http.StatusOK || json.Unmarshal(r.body, &page) != nil {
				t.Fatalf("GET %s: HTTP %d %.300s", path, r.status, r.body)
			}
			for _, e := range page.Entries {
				listings[name] = append(listings[name], e.DecisionID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
	}
	for _, name := range names[1:] {
		if !slices.Equal(listings[name], listings[names[0]]) {
			t.Errorf("GET /v1/ledger paged from %s lists %d entries, from %s %d, or in another order", name, len(listings[name]), names[0], len(listings[names[0]]))
		}
	}
	for _, name := range names {
		if code := reps[name].stop(syscall.SIGTERM); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", name, code)
		}
	}

	// One chain: a number per entry, none missing, none twice.
	var rows, maxSeq, distinct, unlinked int64
	if err := db.QueryRow(`SELECT count(*), COALESCE(max(chain_seq), 0), count(DISTINCT chain_seq), count(*) FILTER (WHERE chain_seq IS NULL) FROM ledger_decisions`).Scan(&rows, &maxSeq, &distinct, &unlinked); err != nil {
		t.Fatal(err)
	}
	if rows != maxSeq || distinct != rows || unlinked != 0 {
		t.Errorf("%d entries, numbered up to %d, %d distinct numbers, %d without a link: want one number per entry from 1", rows, maxSeq, distinct, unlinked)
	}
	env := []string{"GEOSCOPE_LEDGER=" + pg.URL()}
	if v := runBoundedEnv(t, time.Minute, env, "ledger", "verify", "--head", report.Head); v.code != 0 {
		t.Errorf("geoscope ledger verify --head %s: %s", report.Head, v)
	}
	exp := runBoundedEnv(t, time.Minute, env, "ledger", "export")
	if exp.code != 0 {
		t.Fatalf("geoscope ledger export: %s", exp)
	}
	if v := runBoundedEnv(t, time.Minute, nil, "ledger", "verify", "--export", writeTemp(t, "entries.jsonl", []byte(exp.stdout)), "--head", report.Head); v.code != 0 {
		t.Errorf("geoscope ledger verify --export: %s", v)
	}
	exported := map[string]bool{}
	orphans := map[string]int{}
	for line := range strings.Lines(exp.stdout) {
		var e struct {
			DecisionID string    `json:"decision_id"`
			Time       time.Time `json:"time"`
			Replica    string    `json:"replica"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export: %v", err)
		}
		exported[e.DecisionID] = true
		if _, ok := acked[e.DecisionID]; ok {
			continue
		}
		// Recorded but never answered 200: only a decision of the killed
		// replica before the kill, or one whose commit waited for the
		// frozen replica's lock (its answer gave up after 5 s, the commit
		// went on), may be.
		switch {
		case e.Replica == "replica-2" && !e.Time.After(kill.from):
			orphans[kill.name]++
		case window{from: freeze.from.Add(-time.Second), to: freeze.to}.holds(e.Time):
			orphans[freeze.name]++
		default:
			t.Errorf("entry %s (%s at %s) was recorded but never answered, outside the faults", e.DecisionID, e.Replica, e.Time.Format(time.RFC3339Nano))
		}
	}
	if int64(len(exported)) != rows {
		t.Errorf("the export lists %d entries; the table holds %d", len(exported), rows)
	}
	var missing []string
	for id := range acked {
		if !exported[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d decisions answered 200 are not in the ledger, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	t.Logf("chain: %d entries numbered 1 to %d; recorded but never answered: %v; verify passes with the report's head %s…", rows, maxSeq, orphans, report.Head[:min(12, len(report.Head))])
}
