//go:build unix

package server

import (
	"os"
	"syscall"
)

// openFiles returns the process's limit of open files (the soft one,
// which Go raises to the hard one at start) and how many are open.
func openFiles() (limit, inUse uint64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, false
	}
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if fds, err := os.ReadDir(dir); err == nil {
			return uint64(rl.Cur), uint64(len(fds)), true
		}
	}
	return uint64(rl.Cur), 0, true
}
