//go:build !linux

package ledger

import "os"

// dataSyncer makes a journal segment's written data durable. Outside
// Linux there is no asynchronous flush to hand the wait to (see
// datasync_linux.go): the journaling goroutine makes the plain call and
// the runtime gives its processor to others meanwhile.
type dataSyncer struct {
	// plainBecause says why there is no asynchronous flush (logged once
	// by the ledger).
	plainBecause string
}

func newDataSyncer() *dataSyncer {
	return &dataSyncer{plainBecause: "asynchronous I/O is used on Linux only"}
}

func (s *dataSyncer) sync(f *os.File) error { return fdatasync(f) }

func (s *dataSyncer) close() {}

// fdatasync makes f's written data durable. os.File.Sync is fsync(2), and
// on macOS fcntl(F_FULLFSYNC): fsync there returns before the drive has
// written its cache.
func fdatasync(f *os.File) error { return f.Sync() }
