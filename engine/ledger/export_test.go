package ledger

// SetMaxPageBytes sets the byte bound of a List page for a test and
// returns a function restoring it.
func SetMaxPageBytes(n int) (restore func()) {
	old := maxPageBytes
	maxPageBytes = n
	return func() { maxPageBytes = old }
}
