package geo

import (
	"fmt"
	"sync"

	"github.com/geoscope/geoscope/engine/geo/dbip"
)

// embedded opens the built-in database once per process: it is immutable and
// safe for concurrent use, so there is no reason for callers to pay for (or
// keep) more than one copy of its 32 KiB record cache and decoded metadata.
var embedded = sync.OnceValues(func() (*DB, error) {
	db, err := OpenBytes(dbip.Database)
	if err != nil {
		return nil, fmt.Errorf("geo: embedded %s database: %w", dbip.SourcePackage, err)
	}
	db.shared = true
	return db, nil
})

// Embedded returns the default database compiled into the binary: DB-IP's
// "IP to Country Lite" (see package dbip for its provenance and
// dbip.Attribution for the CC BY 4.0 attribution any deployment must show).
// Every call returns the same *DB; its Close is a no-op.
func Embedded() (*DB, error) { return embedded() }
