//go:build !linux

package proctest

import "syscall"

// StopWithParent does nothing here: a parent-death signal is Linux's. A
// server whose test binary died must be stopped by hand.
func StopWithParent(*syscall.SysProcAttr, syscall.Signal) {}
