package ledger

import (
	"encoding/hex"
	"time"
)

// SetMaxPageBytes sets the byte bound of a List page for a test and
// returns a function restoring it.
func SetMaxPageBytes(n int) (restore func()) {
	old := maxPageBytes
	maxPageBytes = n
	return func() { maxPageBytes = old }
}

// SetWALSizeLimit sets the size SQLite's write-ahead log file is cut back
// to (see walSizeLimit) for the ledgers a test opens next, and returns a
// function restoring it.
func SetWALSizeLimit(n int) (restore func()) {
	old := walSizeLimit
	walSizeLimit = n
	return func() { walSizeLimit = old }
}

// ChainLink is the link of entry seq whose text is raw, after the link
// prev (hex; "" before the first entry): what a test rewriting the chain,
// as someone covering their tracks would, computes.
func ChainLink(prev string, seq int64, raw string) string {
	var p [32]byte
	if prev != "" {
		b, err := hex.DecodeString(prev)
		if err != nil || len(b) != 32 {
			panic("ChainLink: bad prev " + prev)
		}
		copy(p[:], b)
	}
	l := link(p, seq, []byte(raw))
	return hex.EncodeToString(l[:])
}

// SetAdoptEvery sets how often writers look for entries without a link
// (10 s otherwise), for a test that adds some and waits for them, and
// returns a function restoring it.
func SetAdoptEvery(d time.Duration) (restore func()) {
	old := adoptEvery.Swap(int64(d))
	return func() { adoptEvery.Store(old) }
}

// Rebind writes q's placeholders as dialect's ("?" for SQLite, "$1"... for
// PostgreSQL), as the ledger's own statements are.
func Rebind(dialect, q string) string { return rebind(dialect, q) }

// SetMaxExportLine sets the bound of a line VerifyExport reads, for a test
// that passes it without writing a gigabyte, and returns a function
// restoring it.
func SetMaxExportLine(n int) (restore func()) {
	old := maxExportLine
	maxExportLine = n
	return func() { maxExportLine = old }
}
