package tests

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/pgtest"
)

// lgOutage drives one ledger through an outage and back. It keeps every
// decision id answered 200, to check at the end that each is recorded.
type lgOutage struct {
	t        *testing.T
	srv      *serverProc
	tag      string
	n        int
	answered []string
}

// decide sends a decision that must be recorded (CN participants of the
// targeted meeting june4-b).
func (o *lgOutage) decide() (int, lgAnswer) {
	o.t.Helper()
	o.n++
	body := lgRoster("june4-b", "acct-us-b", "US", "",
		lgPerson{fmt.Sprintf("outage-%s-%d-a", o.tag, o.n), lgCN4()}, lgPerson{fmt.Sprintf("outage-%s-%d-b", o.tag, o.n), lgUS4()})
	return o.send("/v1/decisions", body)
}

// admitCN sends an admission that is denied, so it must be recorded.
func (o *lgOutage) admitCN() (int, lgAnswer) {
	o.t.Helper()
	o.n++
	return o.send("/v1/admission", lgAdmission("june4-b", "acct-us-b", "US", lgPerson{fmt.Sprintf("outage-%s-%d-j", o.tag, o.n), lgCN6()}))
}

// admitUS sends a plain allowed admission: counted, not recorded one by one.
func (o *lgOutage) admitUS() (int, lgAnswer) {
	o.t.Helper()
	o.n++
	return o.send("/v1/admission", lgAdmission("june4-b", "acct-us-b", "US", lgPerson{fmt.Sprintf("outage-%s-%d-u", o.tag, o.n), lgUS4()}))
}

func (o *lgOutage) send(path string, body []byte) (int, lgAnswer) {
	o.t.Helper()
	r := o.srv.post(path, "", body)
	var a lgAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		o.t.Fatalf("POST %s: HTTP %d, not JSON: %s", path, r.status, r.body)
	}
	if r.status == http.StatusOK {
		if a.DecisionID == "" {
			o.t.Fatalf("POST %s: 200 without a decision id: %s", path, r.body)
		}
		if a.durable() {
			o.answered = append(o.answered, a.DecisionID)
		}
	}
	return r.status, a
}

// up checks that recorded decisions are answered.
func (o *lgOutage) up(what string) {
	o.t.Helper()
	for range 3 {
		if code, a := o.decide(); code != http.StatusOK || len(a.Actions) == 0 {
			o.t.Fatalf("%s: decision answered %d %+v", what, code, a)
		}
		if code, a := o.admitCN(); code != http.StatusOK || a.Allow == nil || *a.Allow {
			o.t.Fatalf("%s: admission from CN answered %d %+v", what, code, a)
		}
	}
}

// down checks, for d, that every decision that must be recorded is
// answered 503 ledger_unavailable, never 200; plain allowed admissions
// are still answered (they are only counted).
func (o *lgOutage) down(what string, d time.Duration) (plain int) {
	o.t.Helper()
	refused := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for _, send := range []func() (int, lgAnswer){o.decide, o.admitCN} {
			code, a := send()
			switch {
			case code == http.StatusOK:
				o.t.Errorf("%s: a decision that must be recorded was answered 200 (%s) while the ledger is unavailable", what, a.DecisionID)
			case code != http.StatusServiceUnavailable || a.Code != "ledger_unavailable":
				o.t.Errorf("%s: answered %d %q, want 503 ledger_unavailable", what, code, a.Code)
			default:
				refused++
			}
		}
		if code, a := o.admitUS(); code != http.StatusOK || a.Allow == nil || !*a.Allow {
			o.t.Errorf("%s: plain admission answered %d %+v; it is only counted and must be answered", what, code, a)
		} else {
			plain++
		}
	}
	o.t.Logf("%s: %d recorded decisions refused with 503 ledger_unavailable, %d plain admissions answered", what, refused, plain)
	return plain
}

// waitDown sends recorded decisions until one is refused with 503
// ledger_unavailable (within timeout), and returns how long that took.
func (o *lgOutage) waitDown(what string, timeout time.Duration) time.Duration {
	o.t.Helper()
	start := time.Now()
	for {
		code, a := o.decide()
		if code == http.StatusServiceUnavailable && a.Code == "ledger_unavailable" {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			o.t.Fatalf("%s: still answered %d %q after %s, want 503 ledger_unavailable", what, code, a.Code, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUp sends decisions until one is answered 200 (within timeout) and
// returns how long that took.
func (o *lgOutage) waitUp(what string, timeout time.Duration) time.Duration {
	o.t.Helper()
	start := time.Now()
	for {
		code, a := o.decide()
		if code == http.StatusOK {
			return time.Since(start)
		}
		if code != http.StatusServiceUnavailable || a.Code != "ledger_unavailable" {
			o.t.Errorf("%s: answered %d %q while recovering", what, code, a.Code)
		}
		if time.Since(start) > timeout {
			o.t.Fatalf("%s: no recovery within %s (last answer %d %q)", what, timeout, code, a.Code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledgerHealth reads the ledger's health from /v1/status.
func (o *lgOutage) ledgerHealth() (ok bool, lastError string) {
	o.t.Helper()
	r := o.srv.get("/v1/status", "")
	var st struct {
		Ledger *struct {
			OK        bool   `json:"ok"`
			LastError string `json:"last_error"`
		} `json:"ledger"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil || st.Ledger == nil {
		o.t.Fatalf("/v1/status: %d %s", r.status, r.body)
	}
	return st.Ledger.OK, st.Ledger.LastError
}

// finish checks that every decision answered 200 is in the ledger.
func (o *lgOutage) finish() {
	o.t.Helper()
	found := lgCheckRecorded(o.t, o.srv, o.answered)
	o.t.Logf("answered 200: %d recorded decisions; found in the ledger: %d", len(o.answered), found)
}

// lgRequireChattr probes whether `chattr +i` stops root from writing on
// the filesystem of the test's temporary directories.
func lgRequireChattr(t *testing.T) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("GEOSCOPE_REQUIRE_CHATTR") == "1" {
			t.Fatalf("%s (GEOSCOPE_REQUIRE_CHATTR=1)", msg)
		}
		t.Skipf("%s; set GEOSCOPE_REQUIRE_CHATTR=1 to make this a failure", msg)
	}
	if _, err := exec.LookPath("chattr"); err != nil {
		fail("chattr not found (Debian: e2fsprogs)")
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
		fail("chattr +i is not supported here: %v %s", err, out)
	}
	defer exec.Command("chattr", "-i", probe).Run()
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		f.Close()
		fail("chattr +i does not stop this user from writing")
	}
	if !errors.Is(err, os.ErrPermission) {
		fail("writing an immutable file: %v", err)
	}
}

func lgChattr(t *testing.T, flag, dir string) {
	t.Helper()
	if out, err := exec.Command("chattr", "-R", flag, dir).CombinedOutput(); err != nil {
		t.Fatalf("chattr -R %s %s: %v %s", flag, dir, err, out)
	}
}

// TestLedgerOutageSQLite makes the SQLite ledger unwritable while the
// server runs (chattr +i: root cannot write either) and then writable
// again, without a restart.
func TestLedgerOutageSQLite(t *testing.T) {
	lgRequireChattr(t)
	dir := filepath.Join(t.TempDir(), "data")
	srv := lgStart(t, "--log-level", "warn", "--data-dir", dir)
	t.Cleanup(func() { _ = exec.Command("chattr", "-R", "-i", dir).Run() }) // before the directory is removed
	o := &lgOutage{t: t, srv: srv, tag: lgRandHex(4)}
	o.up("before the outage")

	lgChattr(t, "+i", dir)
	o.waitDown("data directory immutable", 5*time.Second)
	plain := o.down("data directory immutable", 2*time.Second)
	if ok, lastErr := o.ledgerHealth(); ok || lastErr == "" {
		t.Errorf("/v1/status ledger ok=%v last_error=%q during the outage", ok, lastErr)
	}

	lgChattr(t, "-i", dir)
	took := o.waitUp("data directory writable again", 15*time.Second)
	t.Logf("recovered %s after chattr -i, without a restart", took.Round(time.Millisecond))
	o.up("after the outage")
	if ok, lastErr := o.ledgerHealth(); !ok {
		t.Errorf("/v1/status ledger not ok after recovery: %s", lastErr)
	}
	o.finish()

	// The plain admissions answered during the outage were counted, and
	// the counts reach the ledger once it can be written.
	o.waitCounts("sqlite", lgSQLiteDSN(filepath.Join(dir, "ledger.db"), "_pragma=busy_timeout(10000)"), plain)
}

// waitCounts waits until the ledger's aggregate counts hold exactly the
// plain admissions answered (every one of them during the outage).
func (o *lgOutage) waitCounts(driver, dsn string, plain int) {
	o.t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		o.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var n int
		err := db.QueryRow(`SELECT COALESCE(SUM(n), 0) FROM ledger_quiet_counts WHERE kind = 'admission' AND meeting_id = 'june4-b'`).Scan(&n)
		if err == nil && n > plain {
			o.t.Fatalf("quiet counts %d; only %d plain admissions were answered: counted twice", n, plain)
		}
		if err == nil && n == plain {
			o.t.Logf("quiet counts after recovery: %d admissions (%d answered during the outage)", n, plain)
			return
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("quiet counts %d (%v); %d plain admissions were answered during the outage", n, err, plain)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLedgerOutagePostgres stops the PostgreSQL server under a running
// geoscope, then starts it again.
func TestLedgerOutagePostgres(t *testing.T) {
	pg := lgPostgres(t)
	srv := lgStart(t, "--log-level", "warn", "--data-dir", t.TempDir(), "--ledger", pg.URL(), "--ledger-key-file", lgKeyFile(t))
	o := &lgOutage{t: t, srv: srv, tag: lgRandHex(4)}
	o.up("before the outage")

	pg.Stop()
	stopped := time.Now()
	took := o.waitDown("PostgreSQL stopped", 15*time.Second)
	t.Logf("first 503 ledger_unavailable %s after PostgreSQL stopped", took.Round(time.Millisecond))
	plain := o.down("PostgreSQL stopped", 2*time.Second)
	if ok, lastErr := o.ledgerHealth(); ok || lastErr == "" {
		t.Errorf("/v1/status ledger ok=%v last_error=%q during the outage", ok, lastErr)
	}
	// What the alerts read (deploy/prometheus/alerts.yaml).
	metrics := scrapeFamilies(t, srv, "")
	for _, c := range []struct {
		name   string
		labels map[string]string
		down   bool // want 0, else more than 0
	}{
		{"geoscope_ledger_up", nil, true},
		{"geoscope_ledger_commit_failures_total", map[string]string{"kind": "entries"}, false},
		{"geoscope_ledger_commit_failures_total", map[string]string{"kind": "counts"}, false},
		{"geoscope_http_errors_total", map[string]string{"endpoint": "/v1/decisions", "error_code": "ledger_unavailable"}, false},
		{"geoscope_ready", nil, false},
	} {
		if v, ok := sampleValue(metrics, c.name, c.labels); !ok || (v == 0) != c.down {
			t.Errorf("during the outage %s%v = %v (present %v)", c.name, c.labels, v, ok)
		}
	}

	pg.Start()
	took = o.waitUp("PostgreSQL started again", 30*time.Second)
	outage := time.Since(stopped)
	t.Logf("recovered %s after PostgreSQL came back, without a restart", took.Round(time.Millisecond))
	o.up("after the outage")
	if v, _ := sampleValue(scrapeFamilies(t, srv, ""), "geoscope_ledger_up", nil); v != 1 {
		t.Errorf("after the outage geoscope_ledger_up = %v", v)
	}
	// The counts that could not be written are said once every 10 s, not
	// at every flush (once a second) for as long as the outage lasts.
	if n, most := strings.Count(srv.logs.String(), "aggregate counts not written yet"), 1+int(outage/(10*time.Second)); n > most {
		t.Errorf("%d warnings of counts not written in an outage of %s; want at most %d", n, outage.Round(time.Second), most)
	}
	o.finish()
	o.waitCounts("pgx", pg.URL(), plain)
}

// lgStartWithPostgresDown starts geoscope on a PostgreSQL ledger that is
// down, and checks that /v1/status says so before any decision.
func lgStartWithPostgresDown(t *testing.T) (*pgtest.Server, *lgOutage) {
	t.Helper()
	pg := lgPostgres(t)
	pg.Stop()
	srv := lgStart(t, "--log-level", "warn", "--data-dir", t.TempDir(), "--ledger", pg.URL(), "--ledger-key-file", lgKeyFile(t))
	o := &lgOutage{t: t, srv: srv, tag: lgRandHex(4)}
	if ok, lastErr := o.ledgerHealth(); ok || lastErr == "" {
		t.Errorf("/v1/status ledger ok=%v last_error=%q with PostgreSQL down since start", ok, lastErr)
	}
	return pg, o
}

// TestLedgerPostgresDownAtStart starts geoscope while PostgreSQL is down:
// it starts and is ready, refuses what must be recorded, and recovers when
// the database comes up.
func TestLedgerPostgresDownAtStart(t *testing.T) {
	pg, o := lgStartWithPostgresDown(t)
	srv := o.srv
	plain := o.down("PostgreSQL down since start", time.Second)
	if !strings.Contains(srv.logs.String(), "ledger not reachable yet") {
		t.Errorf("no log line says the ledger is not reachable:\n%s", srv.logs.String())
	}

	pg.Start()
	took := o.waitUp("PostgreSQL started", 30*time.Second)
	t.Logf("recovered %s after PostgreSQL came up", took.Round(time.Millisecond))
	o.up("after PostgreSQL came up")
	o.finish()
	o.waitCounts("pgx", pg.URL(), plain)
}

// TestLedgerPostgresBackBeforeAnyDecision starts geoscope while
// PostgreSQL is down and starts PostgreSQL before any decision is
// recorded: /v1/status says the ledger is down, then, without a decision
// to show it, that it is back.
func TestLedgerPostgresBackBeforeAnyDecision(t *testing.T) {
	pg, o := lgStartWithPostgresDown(t)
	pg.Start()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if ok, _ := o.ledgerHealth(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/v1/status still says the ledger is down 15 s after PostgreSQL came up, no decision recorded")
		}
	}
	o.up("after PostgreSQL came up")
	o.finish()
}

// TestLedgerPostgresHangsAtStart starts geoscope against a "PostgreSQL"
// that accepts connections and never answers (as a host whose packets are
// dropped, or a wedged server, behaves): it comes up and is ready within
// the bound on the first connection, says the ledger is not reachable,
// and refuses what must be recorded. Waiting on it, serve answered
// nothing at all, /health included, for as long as the connection hung.
func TestLedgerPostgresHangsAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	start := time.Now()
	srv := lgStart(t, "--log-level", "warn", "--data-dir", t.TempDir(),
		"--ledger", "postgres://geoscope:dev-password@"+ln.Addr().String()+"/geoscope?sslmode=disable", "--ledger-key-file", lgKeyFile(t))
	t.Logf("ready after %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(srv.logs.String(), "ledger not reachable yet") {
		t.Errorf("no log line says the ledger is not reachable:\n%s", srv.logs.String())
	}
	o := &lgOutage{t: t, srv: srv, tag: lgRandHex(4)}
	if code, a := o.admitCN(); code != http.StatusServiceUnavailable || a.Code != "ledger_unavailable" {
		t.Errorf("a denial while the ledger hangs: %d %q, want 503 ledger_unavailable", code, a.Code)
	}
	// A reader (run from cron) gives up too, instead of waiting forever.
	for _, cmd := range [][]string{{"report"}, {"ledger", "export"}} {
		args := append(cmd, "--ledger", "postgres://geoscope:dev-password@"+ln.Addr().String()+"/geoscope?sslmode=disable")
		if res := runCLI(t, nil, args...); res.code == 0 || !strings.Contains(res.stderr, "ledger") {
			t.Errorf("%v against a server that never answers: %s", cmd, res)
		}
	}
}

// lgStartThenLockDatabase starts a server with a SQLite ledger, records a
// decision, then makes the database and its log immutable (chattr +i)
// while the journal beside them stays writable. The files are made
// writable again at the end of the test.
func lgStartThenLockDatabase(t *testing.T) (srv *serverProc, db []string, o *lgOutage) {
	t.Helper()
	lgRequireChattr(t)
	dir := filepath.Join(t.TempDir(), "data")
	srv = lgStart(t, "--log-level", "warn", "--data-dir", dir)
	db = []string{filepath.Join(dir, "ledger.db"), filepath.Join(dir, "ledger.db-wal")}
	t.Cleanup(func() { _ = exec.Command("chattr", append([]string{"-i"}, db...)...).Run() })
	o = &lgOutage{t: t, srv: srv, tag: lgRandHex(4)}
	o.up("before the database is made unwritable")
	// A read waits until those decisions are copied into the database. A
	// copy of them still to come when it is locked would fail at once,
	// and every decision after it would be refused, none answered from
	// the journal (a loaded machine's copy came after the lock).
	if r := srv.get("/v1/ledger?limit=1", ""); r.status != http.StatusOK {
		t.Fatalf("reading the ledger before the database is made unwritable: %s", r)
	}

	if out, err := exec.Command("chattr", append([]string{"+i"}, db...)...).CombinedOutput(); err != nil {
		t.Fatalf("chattr +i: %v %s", err, out)
	}
	return srv, db, o
}

// TestLedgerReadsWhileCopiesFail makes only the SQLite database unwritable
// while its journal stays writable: decisions are still answered (the
// journal holds them), but reads through the server, which would leave
// them out (a listing without them, a report "proving" zero from
// nothing), answer 503 ledger_unavailable until the copies succeed again.
func TestLedgerReadsWhileCopiesFail(t *testing.T) {
	srv, db, o := lgStartThenLockDatabase(t)
	code, a := o.decide()
	if code != http.StatusOK {
		t.Fatalf("a decision with the journal writable: %d", code)
	}
	unavailable := func(path string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := srv.get(path, "")
			if r.status == http.StatusServiceUnavailable && strings.Contains(string(r.body), `"ledger_unavailable"`) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s while the journal's entries cannot be copied: %s", path, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	unavailable("/v1/ledger")
	unavailable("/v1/ledger/" + a.DecisionID)
	unavailable("/v1/report")

	if out, err := exec.Command("chattr", append([]string{"-i"}, db...)...).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := srv.get("/v1/ledger/"+a.DecisionID, "")
		if r.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the decision answered during the failure, once copies succeed again: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
	o.finish()
}

// TestLedgerStopWhileCopiesFail stops the server (SIGTERM) while decisions
// it answered are in its journal and cannot be copied into the SQLite
// database: it exits 0 within --shutdown-timeout, its log says how many
// entries stay in the journal (it said only "stopped"), and the next
// start, with the database writable again, copies them: each decision
// answered is read back.
func TestLedgerStopWhileCopiesFail(t *testing.T) {
	srv, db, o := lgStartThenLockDatabase(t)
	// The journal takes records until a copy has failed; then they are
	// refused.
	var answered []string
	for deadline := time.Now().Add(15 * time.Second); ; {
		code, a := o.decide()
		if code != http.StatusOK {
			break
		}
		answered = append(answered, a.DecisionID)
		if time.Now().After(deadline) {
			t.Fatal("decisions are still answered 15 s after the database was made unwritable")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(answered) == 0 {
		t.Fatal("no decision was answered from the journal")
	}
	start := time.Now()
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the stop took %v, past --shutdown-timeout's 10 s", took)
	}
	said := false
	for _, l := range srv.logLines() {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "ledger: entries answered but not copied") {
			said = true
			// Those answered since the copies failed, and any answered
			// before whose copy was still to come.
			if n, _ := l["entries"].(float64); int(n) < len(answered) || int(n) > len(o.answered) {
				t.Errorf("the log says %v entries stay in the journal; %d were answered since the copies failed, %d in all", l["entries"], len(answered), len(o.answered))
			}
		}
	}
	if !said {
		t.Error("the stop's log does not say that answered entries stay in the journal")
	}

	if out, err := exec.Command("chattr", append([]string{"-i"}, db...)...).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v %s", err, out)
	}
	srv.restart()
	for _, id := range answered {
		if r := srv.get("/v1/ledger/"+id, ""); r.status != http.StatusOK {
			t.Errorf("a decision answered before the stop, after the restart: %s", r)
		}
	}
	o.finish()
}
