//go:build !unix

package ledger

import (
	"errors"
	"fmt"
	"os"
)

// tryLock fails: the SQLite ledger's journal tells a stopped process's
// journal from a running one's by flock(2), which releases a lock when
// its process ends, however it ends; it is not implemented for other
// systems. There the SQLite ledger does not open (the error names this),
// and the PostgreSQL ledger or --ledger off are what runs.
func tryLock(*os.File) (bool, error) {
	return false, fmt.Errorf("the journal's file locks need a Unix system: %w", errors.ErrUnsupported)
}
