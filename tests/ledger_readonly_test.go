package tests

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLedgerExportWriteProtected exports a SQLite ledger whose directory
// cannot be written (a backup, a read-only mount, or a full or failing
// disk during an outage): `geoscope ledger export` only reads.
func TestLedgerExportWriteProtected(t *testing.T) {
	lgRequireChattr(t)
	dir := filepath.Join(t.TempDir(), "data")
	srv := lgStart(t, "--log-level", "warn", "--data-dir", dir)
	var ids []string
	for _, p := range []string{"ro-1", "ro-2", "ro-3"} {
		r := srv.post("/v1/decisions", "", lgRoster("june4-b", "acct-us-b", "US", "", lgPerson{p + "-" + lgRandHex(3), lgCN4()}))
		if r.status != http.StatusOK {
			t.Fatalf("HTTP %d %s", r.status, r.body)
		}
		ids = append(ids, lgDecode(t, r.body).DecisionID)
	}
	srv.stop(syscall.SIGTERM)

	lgChattr(t, "+i", dir)
	t.Cleanup(func() { _ = exec.Command("chattr", "-R", "-i", dir).Run() })
	exported := lgExport(t, "--data-dir", dir)
	for _, id := range ids {
		if !exported[id] {
			t.Errorf("%s is not in the export", id)
		}
	}
}
