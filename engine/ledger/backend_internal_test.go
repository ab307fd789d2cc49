package ledger

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

// TestSQLiteInsertNeedsNoStatementJournal: a multi-row insert into
// SQLite that fails keeps, inside its transaction, the rows it inserted
// before failing (OR FAIL): SQLite then keeps no statement journal (a copy
// of every page a statement changes, spilled to a temporary file). The
// transaction still holds nothing once rolled back, which is what the
// ledger does with a batch that fails.
func TestSQLiteInsertNeedsNoStatementJournal(t *testing.T) {
	ctx := context.Background()
	b, err := openBackend(ctx, Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)}, "test-fingerprint")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.close() })
	db, err := b.(*sqlBackend).conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	valid := []any{"d-1", int64(1), KindAdmission, "m-1", nil, "{}", ""}
	// meeting_id is NOT NULL: the second row fails.
	failing := []any{"d-2", int64(2), KindAdmission, nil, nil, "{}", ""}
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
