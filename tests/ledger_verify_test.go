package tests

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLedgerVerifyCLI: `geoscope ledger verify` on a ledger, then on the
// same ledger changed behind geoscope's back, and pinned by the head a
// report printed before the change.
func TestLedgerVerifyCLI(t *testing.T) {
	dir := t.TempDir()
	rptSeed(t, dir)
	ledgerArgs := []string{"--data-dir", dir}

	res := runCLI(t, nil, append([]string{"report", "--format", "json", "--since", "2026-01-01", "--until", "2026-07-01"}, ledgerArgs...)...)
	if res.code != 0 {
		t.Fatalf("report: %s", res)
	}
	var published struct {
		LedgerHead string `json:"ledger_head"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &published); err != nil || len(published.LedgerHead) != 64 {
		t.Fatalf("the report's ledger_head: %q, %v", published.LedgerHead, err)
	}
	head := published.LedgerHead

	// The command the report prints, run as printed.
	res = runCLI(t, nil, append([]string{"report", "--since", "2026-01-01", "--until", "2026-07-01"}, ledgerArgs...)...)
	cmd := regexp.MustCompile("`geoscope (ledger verify --head [0-9a-f]{64} --since \\S+ --until \\S+)`").FindStringSubmatch(res.stdout)
	if res.code != 0 || cmd == nil {
		t.Fatalf("the Markdown report prints no verify command with its period: %s", res)
	}
	if res := runCLI(t, nil, append(strings.Fields(cmd[1]), ledgerArgs...)...); res.code != 0 || !strings.HasPrefix(res.stdout, "verified\n") {
		t.Fatalf("the report's own command, %q: %s", cmd[1], res)
	}

	res = runCLI(t, nil, append([]string{"ledger", "verify", "--head", head}, ledgerArgs...)...)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "verified\n") || !strings.Contains(res.stdout, "link "+head) || !strings.Contains(res.stdout, "pinned: entry ") {
		t.Fatalf("ledger verify --head <the report's>: %s", res)
	}
	res = runCLI(t, nil, append([]string{"ledger", "verify", "--format", "json"}, ledgerArgs...)...)
	var v struct {
		Head struct {
			Seq  int64  `json:"seq"`
			Link string `json:"link"`
		} `json:"head"`
		Entries  int64    `json:"entries"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &v); res.code != 0 || err != nil || v.Head.Link != head || v.Entries != v.Head.Seq || v.Entries < 5 || len(v.Problems) != 0 {
		t.Fatalf("ledger verify --format json: %+v, %v; %s", v, err, res)
	}

	db, err := sql.Open("sqlite", lgSQLiteDSN(filepath.Join(dir, "ledger.db"), "_pragma=busy_timeout(10000)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// An entry appended, linked as docs/operations.md describes the link:
	// a copy of the second entry, with another id and the time given.
	var lastLink, text string
	if err := db.QueryRow(`SELECT chain_link FROM ledger_decisions WHERE chain_seq = ?`, v.Head.Seq).Scan(&lastLink); err != nil {
		t.Fatal(err)
	}
	var kind, meeting, replica string
	if err := db.QueryRow(`SELECT entry, kind, meeting_id, replica FROM ledger_decisions WHERE chain_seq = 2`).Scan(&text, &kind, &meeting, &replica); err != nil {
		t.Fatal(err)
	}
	var second struct {
		DecisionID string    `json:"decision_id"`
		Time       time.Time `json:"time"`
	}
	if err := json.Unmarshal([]byte(text), &second); err != nil {
		t.Fatal(err)
	}
	seq := v.Head.Seq + 1
	appendForged := func(when time.Time) {
		t.Helper()
		forged := strings.Replace(text, second.DecisionID, "00000000-0000-7000-8000-0000000f0f0f", 1)
		forged = strings.Replace(forged, `"time":"`+second.Time.Format(time.RFC3339Nano)+`"`, `"time":"`+when.UTC().Format(time.RFC3339Nano)+`"`, 1)
		prev, err := hex.DecodeString(lastLink)
		if err != nil {
			t.Fatal(err)
		}
		entrySum := sha256.Sum256([]byte(forged))
		linkInput := append(append([]byte("geoscope ledger chain v1\x00"), prev...), binary.BigEndian.AppendUint64(nil, uint64(seq))...)
		forgedLink := sha256.Sum256(append(linkInput, entrySum[:]...))
		if _, err := db.Exec(`DELETE FROM ledger_decisions WHERE chain_seq = ?`, seq); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO ledger_decisions (decision_id, decided_at, kind, meeting_id, entry, replica, chain_seq, chain_link) VALUES ('00000000-0000-7000-8000-0000000f0f0f', ?, ?, ?, ?, ?, ?, ?)`,
			when.UnixNano(), kind, meeting, forged, replica, seq, hex.EncodeToString(forgedLink[:])); err != nil {
			t.Fatal(err)
		}
		// Its orders indexed as the ledger indexes them: nothing but its
		// time and place is left for verify to find.
		var cites struct {
			Orders []struct {
				OrderID   string `json:"order_id"`
				Authority string `json:"authority"`
			} `json:"orders"`
		}
		if err := json.Unmarshal([]byte(forged), &cites); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`DELETE FROM ledger_decision_orders WHERE decision_id = '00000000-0000-7000-8000-0000000f0f0f'`); err != nil {
			t.Fatal(err)
		}
		for _, o := range cites.Orders {
			if _, err := db.Exec(`INSERT INTO ledger_decision_orders (decision_id, order_id, authority, decided_at) VALUES ('00000000-0000-7000-8000-0000000f0f0f', ?, ?, ?)`,
				o.OrderID, o.Authority, when.UnixNano()); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Dated in the report's period, after the entries the head covers:
	// the head alone cannot show it, the report's period does.
	appendForged(time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC))
	if res := runCLI(t, nil, append([]string{"ledger", "verify", "--head", head}, ledgerArgs...)...); res.code != 0 {
		t.Errorf("ledger verify --head, after an entry was appended after the head's entries: %s; a head alone cannot show it", res)
	}
	res = runCLI(t, nil, append([]string{"ledger", "verify", "--head", head, "--since", "2026-01-01", "--until", "2026-07-01"}, ledgerArgs...)...)
	if res.code != 3 || !strings.Contains(res.stdout, "was decided in the pinned report's period") || !strings.Contains(res.stdout, "added to the period since the report was built") {
		t.Errorf("ledger verify --head --since --until, after an entry was appended into the period: %s; want exit 3 naming it", res)
	}
	// Dated before the entries the head covers (in the report's period,
	// or in an earlier one): the head shows it, whatever the period.
	for _, when := range []time.Time{second.Time, time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)} {
		appendForged(when)
		res = runCLI(t, nil, append([]string{"ledger", "verify", "--head", head}, ledgerArgs...)...)
		if res.code != 3 || !strings.Contains(res.stdout, "chained after the head: added to the ledger's past since the report was built") {
			t.Errorf("ledger verify --head, after an entry dated %s was appended: %s; want exit 3 naming it", when, res)
		}
	}
	res = runCLI(t, nil, append([]string{"ledger", "verify", "--head", head, "--since", "2026-01-01", "--until", "2026-07-01"}, ledgerArgs...)...)
	if res.code != 3 || !strings.Contains(res.stdout, "added to the ledger's past since the report was built") {
		t.Errorf("ledger verify --head --since --until, after an entry was appended before the period: %s; want exit 3 naming it", res)
	}
	if _, err := db.Exec(`DELETE FROM ledger_decisions WHERE chain_seq = ?`, seq); err != nil {
		t.Fatal(err)
	}

	// The last entry removed: the chain alone still holds, the report's
	// head shows it.
	if _, err := db.Exec(`DELETE FROM ledger_decisions WHERE chain_seq = ?`, v.Head.Seq); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, nil, append([]string{"ledger", "verify"}, ledgerArgs...)...); res.code != 0 {
		t.Errorf("ledger verify without a head, after the last entry was removed: %s (a chain alone cannot show it)", res)
	}
	res = runCLI(t, nil, append([]string{"ledger", "verify", "--head", head}, ledgerArgs...)...)
	if res.code != 3 || !strings.HasPrefix(res.stdout, "NOT VERIFIED: 1 problem(s)\n") || !strings.Contains(res.stdout, "the link "+head+" is no entry's in an unbroken chain") {
		t.Errorf("ledger verify --head <the report's>, after the last entry was removed: %s; want exit 3 naming the head", res)
	}

	// An entry removed from the middle shows without any head.
	if _, err := db.Exec(`DELETE FROM ledger_decisions WHERE chain_seq = 2`); err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, nil, append([]string{"ledger", "verify"}, ledgerArgs...)...)
	if res.code != 3 || !strings.Contains(res.stdout, "entry 2 is missing") {
		t.Errorf("ledger verify after an entry was removed: %s; want exit 3 naming it", res)
	}

	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--head", "xyz"}, "--head"},
		{[]string{"--head", strings.Repeat("0", 63)}, "--head"},
		{[]string{"--format", "yaml"}, "--format"},
		{[]string{"--head", head, "--since", "yesterday"}, "--since"},
		{[]string{"--since", "2026-01-01"}, "--head"},
		{[]string{"--head", head, "--head", strings.Repeat("0", 64), "--since", "2026-01-01"}, "--head"},
		{[]string{"--head", head, "--since", "2026-07-01", "--until", "2026-01-01"}, "--until"},
		{[]string{"--ledger", "off"}, "--ledger"},
		{[]string{"--data-dir", filepath.Join(dir, "nothing-here")}, "--data-dir"},
	} {
		res := runCLI(t, nil, append(append([]string{"ledger", "verify"}, ledgerArgs...), tc.args...)...)
		line := strings.TrimSpace(res.stderr)
		if res.code != 2 || res.stdout != "" || strings.Contains(line, "\n") || !strings.Contains(line, tc.flag) {
			t.Errorf("ledger verify %v: %s; want exit 2 naming %s on one line", tc.args, res, tc.flag)
		}
	}
}

// TestLedgerExportForAnAuditor: what an auditor is given (the export of
// every entry, the aggregate counts, a published report) is checked
// without the database: the export against the report's head, and the
// report's figures against the export and the counts.
func TestLedgerExportForAnAuditor(t *testing.T) {
	dir := t.TempDir()
	rptSeed(t, dir)
	ledgerArgs := []string{"--data-dir", dir}
	res := runCLI(t, nil, append([]string{"report", "--format", "json", "--min-count", "1", "--since", "2026-01-01", "--until", "2026-07-01"}, ledgerArgs...)...)
	var published struct {
		LedgerHead string `json:"ledger_head"`
		Summary    struct {
			Decisions       int `json:"decisions_recorded"`
			Admissions      int `json:"admissions_recorded"`
			PlainAdmissions int `json:"plain_admissions"`
			QuietDecisions  int `json:"quiet_decisions"`
		} `json:"summary"`
	}
	if res.code != 0 || json.Unmarshal([]byte(res.stdout), &published) != nil || len(published.LedgerHead) != 64 {
		t.Fatalf("report: %s", res)
	}

	export := runCLI(t, nil, append([]string{"ledger", "export"}, ledgerArgs...)...)
	if export.code != 0 || export.stdout == "" {
		t.Fatalf("ledger export: %s", export)
	}
	path := filepath.Join(t.TempDir(), "entries.jsonl")
	if err := os.WriteFile(path, []byte(export.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	period := []string{"--since", "2026-01-01", "--until", "2026-07-01"}
	res = runCLI(t, nil, append([]string{"ledger", "verify", "--export", path, "--head", published.LedgerHead}, period...)...)
	if res.code != 0 || !strings.HasPrefix(res.stdout, "verified\n") || !strings.Contains(res.stdout, "pinned: entry ") {
		t.Errorf("ledger verify --export <the export> --head <the report's>: %s", res)
	}
	res = runCLI(t, []byte(export.stdout), "ledger", "verify", "--export", "-", "--head", published.LedgerHead)
	if res.code != 0 {
		t.Errorf("ledger verify --export - (the export on stdin): %s", res)
	}
	// The check docs/operations.md gives, for an auditor without geoscope.
	if python, err := exec.LookPath("python3"); err != nil {
		t.Log("python3 not found: the check docs/operations.md gives in Python is not run")
	} else {
		doc, err := os.ReadFile("../docs/operations.md")
		if err != nil {
			t.Fatal(err)
		}
		section := string(doc)[strings.Index(string(doc), "### For an auditor"):]
		script := regexp.MustCompile("(?s)```python\n(.*?)```").FindStringSubmatch(section)
		if script == nil {
			t.Fatal("docs/operations.md, For an auditor: no Python check")
		}
		out, err := exec.Command(python, "-c", script[1], path, published.LedgerHead).CombinedOutput()
		if err != nil || !regexp.MustCompile(`the head is entry \d+; every entry up to it is as it was`).Match(out) {
			t.Errorf("the documented Python check of the export: %v\n%s", err, out)
		}
		tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
		if err := os.WriteFile(tampered, []byte(strings.Replace(export.stdout, `"country":"CN"`, `"country":"HK"`, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(python, "-c", script[1], tampered, published.LedgerHead).CombinedOutput(); err == nil || !strings.Contains(string(out), "was altered") {
			t.Errorf("the documented Python check of an altered export: %v\n%s", err, out)
		}
		// A head that is no entry's link, and an export without entries,
		// fail the check with its message rather than pass in silence or
		// end in a traceback.
		empty := filepath.Join(t.TempDir(), "empty.jsonl")
		if err := os.WriteFile(empty, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		otherHead := strings.Repeat("0", 64)
		for file, head := range map[string]string{path: otherHead, empty: published.LedgerHead} {
			if out, err := exec.Command(python, "-c", script[1], file, head).CombinedOutput(); err == nil || !strings.Contains(string(out), "the head is the link of no entry") || strings.Contains(string(out), "Traceback") {
				t.Errorf("the documented Python check of %s against head %s: %v\n%s", filepath.Base(file), head, err, out)
			}
		}
	}
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	if err := os.WriteFile(tampered, []byte(strings.Replace(export.stdout, `"country":"CN"`, `"country":"HK"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	res = runCLI(t, nil, "ledger", "verify", "--export", tampered, "--head", published.LedgerHead)
	if res.code != 3 || !strings.Contains(res.stdout, "is no entry's in an unbroken chain") {
		t.Errorf("ledger verify --export <an altered export>: %s; want exit 3", res)
	}
	partial := runCLI(t, nil, append([]string{"ledger", "export", "--since", "2026-03-01"}, ledgerArgs...)...)
	res = runCLI(t, []byte(partial.stdout), "ledger", "verify", "--export", "-", "--head", published.LedgerHead)
	if partial.code != 0 || res.code != 3 || !strings.Contains(res.stdout, "are missing") {
		t.Errorf("ledger verify --export <an export of part of the period>: %s; want exit 3, the entries left out missing", res)
	}
	res = runCLI(t, nil, append([]string{"ledger", "verify", "--export", path}, ledgerArgs...)...)
	if res.code != 2 || !strings.Contains(res.stderr, "--export") {
		t.Errorf("ledger verify --export with --data-dir: %s; want exit 2", res)
	}
	// An answer that could not be written is not "verified" (exit 0) to
	// a script that kept it, in text as in JSON.
	if full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0); err != nil {
		t.Logf("/dev/full: %v: verify writing to a full disk is not checked", err)
	} else {
		for _, format := range []string{"text", "json"} {
			cmd := exec.Command(geoscopeBin, "ledger", "verify", "--export", path, "--head", published.LedgerHead, "--format", format)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = full, &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "no space left") {
				t.Errorf("ledger verify --format %s onto a full disk: exit %d, %q; want exit 1 saying the answer could not be written", format, code, stderr.String())
			}
		}
		full.Close()
	}
	// A directory, and two files of which pflag would check the last
	// alone, are the flag's mistakes (exit 2), not a ledger that could not
	// be read (1), nor a verification of the other file.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--export", t.TempDir()}, "is a directory"},
		{[]string{"--export", tampered, "--export", path}, "--export is given 2 times"},
	} {
		res := runCLI(t, nil, append([]string{"ledger", "verify"}, tc.args...)...)
		if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("ledger verify %v: %s; want exit 2 saying %q", tc.args, res, tc.want)
		}
	}

	// The report's summary, worked out from the export and the counts.
	var decisions, admissions int
	for _, line := range strings.Split(strings.TrimSpace(export.stdout), "\n") {
		var e struct {
			Kind     string `json:"kind"`
			Preview  bool   `json:"preview"`
			ChainSeq int64  `json:"chain_seq"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.ChainSeq == 0 {
			t.Fatalf("an exported line: %v, %s", err, line)
		}
		switch {
		case e.Preview:
		case e.Kind == "admission":
			admissions++
		default:
			decisions++
		}
	}
	counts := runCLI(t, nil, append([]string{"ledger", "export", "--counts"}, append(period, ledgerArgs...)...)...)
	var plain, quiet int
	for _, line := range strings.Split(strings.TrimSpace(counts.stdout), "\n") {
		var c struct {
			Day  string `json:"day"`
			Kind string `json:"kind"`
			N    int    `json:"n"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil || c.Day == "" {
			t.Fatalf("ledger export --counts: %v, %s", err, counts)
		}
		if c.Kind == "admission" {
			plain += c.N
		} else {
			quiet += c.N
		}
	}
	s := published.Summary
	if decisions != s.Decisions || admissions != s.Admissions || plain != s.PlainAdmissions || quiet != s.QuietDecisions || plain == 0 {
		t.Errorf("from the export: %d decisions, %d admissions recorded, %d plain admissions, %d with nothing to do; the report: %+v",
			decisions, admissions, plain, quiet, s)
	}
	if res := runCLI(t, nil, append([]string{"ledger", "export", "--counts", "--authority", "cn.cac"}, ledgerArgs...)...); res.code != 2 || !strings.Contains(res.stderr, "--authority") {
		t.Errorf("ledger export --counts --authority: %s; want exit 2 naming it", res)
	}
}

// A line of an export longer than any entry a ledger stores (1 GiB and
// 1 KiB) is refused at that line, naming the file, the line and the
// bound, exit 3: not read whole, as it was, into memory that a crafted
// line of gigabytes would exhaust. The file is sparse: it takes no disk,
// and the check reads its zeros up to the bound.
func TestLedgerVerifyExportBoundsALine(t *testing.T) {
	const bound = 1<<30 + 1<<10
	path := filepath.Join(t.TempDir(), "crafted.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 + bound + 1); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, nil, "ledger", "verify", "--export", path)
	want := fmt.Sprintf("--export %s: the ledger does not verify: line 2 is longer than %d bytes", path, bound)
	if res.code != 3 || !strings.Contains(res.stderr, want) {
		t.Errorf("ledger verify --export <a line of 1 GiB and more>: %s; want exit 3 saying %q", res, want)
	}
}
