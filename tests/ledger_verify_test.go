package tests

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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
