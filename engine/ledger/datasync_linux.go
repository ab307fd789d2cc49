package ledger

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dataSyncer makes a journal segment's written data durable, as
// fdatasync(2) does, without holding a thread of the Go runtime in the
// kernel for the time the disk takes.
//
// Why: fdatasync is a system call that blocks for the disk's flush (0.3 to
// 1 ms on the test machine). The runtime takes the processor from a
// goroutine blocked that long and starts another thread to run it; when
// the call returns, the journaling goroutine's thread has no processor,
// sleeps, and the goroutine waits behind request handlers for one before
// it can answer anyone. Every durable answer waits for that.
//
// How: Linux's asynchronous I/O runs the same flush (IOCB_CMD_FDSYNC: the
// kernel's vfs_fsync with datasync, on the same open file, so with the
// same write-back error reporting) on a kernel worker, and signals its
// completion on an eventfd that the Go runtime's network poller waits on:
// the journaling goroutine is parked like one waiting for a socket, no
// thread blocks, and none is started or put to sleep around each flush
// (measured in docs/benchmarks.md, *The copy's statement journal, one
// writing connection, and the flush through asynchronous I/O*). Where
// asynchronous I/O is not available (kernel built without it, a seccomp
// profile that refuses io_setup, a file system whose files refuse it),
// the plain system call is used, from then on.
//
// No maintained Go package offers Linux AIO's fsync (io_uring libraries
// exist, but io_uring is refused by the default seccomp profiles of the
// container runtimes this runs under); the four system calls are here.
//
// One sync at a time: the journaling goroutine is the only caller.
type dataSyncer struct {
	mu      sync.Mutex
	seq     uint64   // the last flush submitted
	aioCtx  uintptr  // 0: plain fdatasync
	event   *os.File // the eventfd, in the network poller
	eventFD int      // its descriptor (event.Fd() would make it blocking)
	// plainBecause says why a syncer set up without asynchronous I/O
	// has none (logged once by the ledger).
	plainBecause string
}

// Linux AIO's ABI (include/uapi/linux/aio_abi.h), 64-bit little endian.
const (
	iocbCmdFdsync = 3
	iocbFlagResFD = 1 << 0
)

type aioControlBlock struct {
	data   uint64 // returned in the event: which flush completed
	_      uint32 // aio_key
	_      uint32 // aio_rw_flags
	opcode uint16
	_      int16 // aio_reqprio
	fildes uint32
	_      uint64 // aio_buf
	_      uint64 // aio_nbytes
	_      int64  // aio_offset
	_      uint64 // aio_reserved2
	flags  uint32
	resFD  uint32
}

type aioEvent struct {
	data uint64
	_    uint64 // obj
	res  int64
	_    int64 // res2
}

// newDataSyncer sets up asynchronous I/O, or returns a syncer that makes
// the plain system call when it cannot.
func newDataSyncer() *dataSyncer {
	s := &dataSyncer{}
	if unsafe.Sizeof(aioControlBlock{}) != 64 || unsafe.Sizeof(uintptr(0)) != 8 {
		s.plainBecause = "not a 64-bit platform"
		return s
	}
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		s.plainBecause = "io_setup: " + e.Error()
		return s
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0) //nolint:errcheck
		s.plainBecause = "eventfd: " + err.Error()
		return s
	}
	// A non-blocking descriptor given to os.NewFile is read through the
	// network poller.
	s.aioCtx, s.eventFD, s.event = ctx, fd, os.NewFile(uintptr(fd), "ledger-journal-sync")
	return s
}

// sync makes f's written data durable.
func (s *dataSyncer) sync(f *os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aioCtx == 0 {
		return fdatasync(f)
	}
	err := s.aioSync(f)
	switch {
	case errors.Is(err, errAIORefused):
		// Nothing was submitted: the plain call, now and from then on.
		s.closeLocked()
		return fdatasync(f)
	case errors.Is(err, errAIOLost):
		// Submitted, but its outcome is unknown: closing the context waits
		// for it. A flush that failed may already have reported the
		// failure to it, so the plain call could report success for the
		// same data: the batch fails, and later ones use the plain call.
		s.closeLocked()
	}
	return err
}

var (
	// errAIORefused: asynchronous I/O did not take the flush.
	errAIORefused = errors.New("asynchronous fdatasync refused")
	// errAIOLost: a flush was submitted but its completion could not be
	// collected.
	errAIOLost = errors.New("asynchronous fdatasync lost")
)

// aioSync submits one flush of f and waits for it. It returns nil, the
// flush's own error, or an error wrapping errAIORefused or errAIOLost.
func (s *dataSyncer) aioSync(f *os.File) error {
	s.seq++
	seq := s.seq
	cb := aioControlBlock{data: seq, opcode: iocbCmdFdsync, fildes: uint32(f.Fd()), flags: iocbFlagResFD, resFD: uint32(s.eventFD)}
	cbs := [1]*aioControlBlock{&cb}
	for {
		// The kernel copies the control block and the array during the
		// call and keeps no pointer to either.
		_, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, s.aioCtx, 1, uintptr(unsafe.Pointer(&cbs[0])))
		if e == unix.EINTR {
			continue
		}
		if e == unix.EBADF {
			// Not submitted, and the plain call would say the same.
			return fmt.Errorf("submitting fdatasync: %w", e)
		}
		if e != 0 {
			return fmt.Errorf("%w: %v", errAIORefused, e)
		}
		break
	}
	for {
		// Completion adds to the eventfd's counter once the event is in
		// the ring; reading parks this goroutine in the poller until then.
		var counter [8]byte
		if _, err := io.ReadFull(s.event, counter[:]); err != nil {
			return fmt.Errorf("%w: waiting: %v", errAIOLost, err)
		}
		var events [4]aioEvent
		n, err := s.collect(events[:])
		if err != nil {
			return fmt.Errorf("%w: collecting: %v", errAIOLost, err)
		}
		// Only this flush's own completion answers it: one that belonged
		// to an earlier flush (none is ever left behind, but nothing
		// else would tell them apart) is passed over.
		for _, ev := range events[:n] {
			if ev.data == seq {
				if ev.res < 0 {
					return syscall.Errno(-ev.res)
				}
				return nil
			}
		}
	}
}

// collect reads the completions already in the ring into events, without
// waiting for any.
func (s *dataSyncer) collect(events []aioEvent) (int, error) {
	var noWait unix.Timespec
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, s.aioCtx, 0, uintptr(len(events)), uintptr(unsafe.Pointer(&events[0])), uintptr(unsafe.Pointer(&noWait)), 0)
		if e != unix.EINTR {
			if e != 0 {
				return 0, e
			}
			return int(n), nil
		}
	}
}

// close releases the asynchronous I/O context (waiting for a sync in
// flight, if any).
func (s *dataSyncer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *dataSyncer) closeLocked() {
	if s.aioCtx == 0 {
		return
	}
	unix.Syscall(unix.SYS_IO_DESTROY, s.aioCtx, 0, 0) //nolint:errcheck
	s.event.Close()
	s.aioCtx, s.event, s.eventFD = 0, nil, -1
}

// fdatasync makes f's written data durable with the plain system call.
func fdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
