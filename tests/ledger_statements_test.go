package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLedgerStatementsOfOnePerson: a person the meeting platform knows by
// their id asks why they were removed. `geoscope ledger statements` finds
// the decisions that acted on them, by the pseudonym the ledger's key
// makes of the id, and gives the statements of reasons of their actions
// only; the id is in none of them.
func TestLedgerStatementsOfOnePerson(t *testing.T) {
	s := startServe(t, serveOpts{ready: true})
	decided := func(path string, body []byte) string {
		t.Helper()
		r := s.post(path, "", body)
		var d struct {
			DecisionID string `json:"decision_id"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &d) != nil || d.DecisionID == "" {
			t.Fatalf("POST %s: %d %s", path, r.status, r.body)
		}
		return d.DecisionID
	}
	// The README's example meeting: p-cn in mainland China, p-hk in Hong
	// Kong, as the embedded database locates them.
	meeting := []byte(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
		"participants": [{"id": "p-cn", "ip": "202.96.128.86"}, {"id": "p-hk", "ip": "147.8.2.58"}]}}`)
	first, second := decided("/v1/decisions", meeting), decided("/v1/decisions", meeting)
	denied := decided("/v1/admission", []byte(`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a", "account_country": "US"}},
		"participant": {"id": "joiner-cn", "ip": "202.96.128.86"}}`))
	// Read through the server first: its reads wait for what it recorded
	// to be copied from its journal into the database the CLI reads.
	for _, id := range []string{first, second, denied} {
		if r := s.get("/v1/ledger/"+id, ""); r.status != http.StatusOK {
			t.Fatalf("GET /v1/ledger/%s: %d %s", id, r.status, r.body)
		}
	}

	type found struct {
		DecisionID string `json:"decision_id"`
		Kind       string `json:"kind"`
		Statements []struct {
			Action struct {
				Type    string `json:"type"`
				Subject string `json:"subject"`
			} `json:"action"`
			LegalGround string `json:"legal_ground"`
			Redress     string `json:"redress"`
		} `json:"statements"`
	}
	statements := func(args ...string) []found {
		t.Helper()
		res := runCLI(t, nil, append([]string{"ledger", "statements", "--data-dir", s.dataDir}, args...)...)
		if res.code != 0 {
			t.Fatalf("ledger statements %v: %s", args, res)
		}
		for _, id := range []string{"p-cn", "p-hk", "joiner-cn", "acct-us-b"} {
			if strings.Contains(res.stdout, `"`+id+`"`) {
				t.Errorf("ledger statements %v: the output holds the id %s", args, id)
			}
		}
		var out []found
		for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
			if line == "" {
				continue
			}
			var f found
			if err := json.Unmarshal([]byte(line), &f); err != nil {
				t.Fatalf("ledger statements %v: %v in %s", args, err, line)
			}
			out = append(out, f)
		}
		return out
	}

	removed := statements("--participant", "p-cn")
	if len(removed) != 2 || removed[0].DecisionID != first || removed[1].DecisionID != second {
		t.Fatalf("statements for p-cn: %+v; want the decisions %s and %s", removed, first, second)
	}
	for _, f := range removed {
		if len(f.Statements) != 1 || f.Statements[0].Action.Type != "remove_participant" || !strings.HasPrefix(f.Statements[0].Action.Subject, "ps:") ||
			f.Statements[0].LegalGround == "" || !strings.Contains(f.Statements[0].Redress, f.DecisionID) {
			t.Errorf("statements for p-cn in %s: %+v; want one, for their removal", f.DecisionID, f.Statements)
		}
	}
	if joiner := statements("--participant", "joiner-cn"); len(joiner) != 1 || joiner[0].DecisionID != denied || joiner[0].Kind != "admission" ||
		len(joiner[0].Statements) != 1 || joiner[0].Statements[0].Action.Type != "deny_join" {
		t.Errorf("statements for joiner-cn: %+v; want the denial %s", joiner, denied)
	}
	// Not acted on: in Hong Kong, and the account whose suspension was
	// refused.
	if none := statements("--participant", "p-hk"); len(none) != 0 {
		t.Errorf("statements for p-hk, who was not acted on: %+v", none)
	}
	if none := statements("--account", "acct-us-b"); len(none) != 0 {
		t.Errorf("statements for acct-us-b, which was not suspended: %+v", none)
	}

	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--participant", "p-cn", "--ledger-key-file", other}, "not this ledger's key"},
		{nil, "--participant or --account"},
		{[]string{"--participant", "p-cn", "--account", "acct-us-b"}, "--participant or --account"},
		{[]string{"--participant", "p-cn", "--since", "2026-07-01", "--until", "2026-01-01"}, "--until"},
		// pflag keeps the last of a flag given twice: statements for one
		// person would be answered as if asked for the other alone.
		{[]string{"--participant", "p-cn", "--participant", "p-hk"}, "--participant is given 2 times"},
		{[]string{"--account", "acct-us-b", "--account", "acct-us-b"}, "--account is given 2 times"},
		// An id no meeting server can send (a line pasted with its
		// carriage return, a byte that is not UTF-8, more than an id's
		// 256 bytes) was recorded on no one: said, not answered with
		// nothing as for a person nothing was decided on.
		{[]string{"--participant", "p-cn\r"}, "--participant contains a control character"},
		{[]string{"--participant", "p-cn\xff"}, "--participant is not valid UTF-8"},
		{[]string{"--account", "p-cn" + strings.Repeat("x", 300)}, "--account is 304 bytes long"},
		{[]string{"--account", "p-cn\u202e"}, "--account contains a bidirectional control character"},
	} {
		res := runCLI(t, nil, append([]string{"ledger", "statements", "--data-dir", s.dataDir}, tc.args...)...)
		if res.code != 2 || res.stdout != "" || !strings.Contains(res.stderr, tc.want) || strings.Contains(res.stderr, "p-cn") {
			t.Errorf("ledger statements %v: %s; want exit 2 naming %q, and not the id", tc.args, res, tc.want)
		}
	}

	// The ledger's own key, read from --data-dir when no key is given, is
	// named as what it is, not as a flag the operator did not give.
	keyPath := filepath.Join(s.dataDir, "ledger.key")
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{{0o600, "not this ledger's key"}, {0o644, "open to other users"}} {
		if err := os.WriteFile(keyPath, []byte(strings.Repeat("cd", 32)+"\n"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(keyPath, tc.mode); err != nil {
			t.Fatal(err)
		}
		res := runCLI(t, nil, "ledger", "statements", "--data-dir", s.dataDir, "--participant", "p-cn")
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "the ledger key "+keyPath) || strings.Contains(res.stderr, "--ledger-key-file") {
			t.Errorf("ledger statements with the data directory's key %v: %s; want exit 2 naming the ledger key %s as %q, and no flag", tc.mode, res, keyPath, tc.want)
		}
	}
}
