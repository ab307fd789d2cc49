package proctest

import "syscall"

// StopWithParent has the kernel send sig to a child process when the
// test binary that started it dies (a timeout's panic, a kill), so that
// no server outlives its test.
func StopWithParent(attr *syscall.SysProcAttr, sig syscall.Signal) { attr.Pdeathsig = sig }
