package tests

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
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

	// The last entry removed: the chain alone still holds, the report's
	// head shows it.
	db, err := sql.Open("sqlite", lgSQLiteDSN(filepath.Join(dir, "ledger.db"), "_pragma=busy_timeout(10000)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
