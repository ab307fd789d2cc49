package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// aioAvailable reports whether this process may set up an asynchronous
// I/O context: the kernel has them, no seccomp profile refuses them, and
// the system-wide limit has room.
func aioAvailable(t *testing.T) bool {
	t.Helper()
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		t.Logf("io_setup: %v", e)
		return false
	}
	unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0) //nolint:errcheck
	return true
}

// async reports whether syncs go through asynchronous I/O.
func (s *dataSyncer) async() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aioCtx != 0
}

// TestDataSyncerSyncsThroughAsynchronousIO: where the kernel has
// asynchronous I/O, a sync goes through it and succeeds, many times over
// on one context, and a closed syncer still syncs (with the plain call).
func TestDataSyncerSyncsThroughAsynchronousIO(t *testing.T) {
	if !aioAvailable(t) {
		t.Skip("this process cannot set up asynchronous I/O")
	}
	s := newDataSyncer()
	if !s.async() || s.plainBecause != "" {
		t.Fatalf("asynchronous I/O is available but the syncer does not use it (%q)", s.plainBecause)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "segment"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 50 {
		if _, err := f.Write([]byte("entry\n")); err != nil {
			t.Fatal(err)
		}
		if err := s.sync(f); err != nil {
			t.Fatalf("sync %d: %v", i, err)
		}
	}
	if !s.async() {
		t.Fatal("the syncer fell back to the plain call after syncs that succeeded")
	}
	s.close()
	if s.async() {
		t.Fatal("a closed syncer still has its context")
	}
	if err := s.sync(f); err != nil {
		t.Fatalf("sync after close: %v", err)
	}
}

// TestDataSyncerReportsErrors: a sync that cannot be made is an error,
// never a silent success: a closed file, and a file that has nothing to
// sync (a pipe: asynchronous I/O refuses it, the plain call then reports
// EINVAL, and the syncer keeps the plain call from then on).
func TestDataSyncerReportsErrors(t *testing.T) {
	s := newDataSyncer()
	defer s.close()
	f, err := os.Create(filepath.Join(t.TempDir(), "segment"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := s.sync(f); err == nil {
		t.Fatal("syncing a closed file succeeded")
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := s.sync(w); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("syncing a pipe: %v, want EINVAL", err)
	}
	if s.async() {
		t.Fatal("after asynchronous I/O refused a file, the syncer still uses it")
	}
}
