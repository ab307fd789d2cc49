// Package proctest holds what tests that run servers (a geoscope binary,
// a container's filesystem, a load balancer, the server in-process) need
// in every package that does: a buffer to collect output while the test
// reads it, and a loopback port to give a process.
package proctest

import (
	"bytes"
	"net"
	"strconv"
	"sync"
	"testing"
)

// LockedBuffer is a bytes.Buffer safe for concurrent writers (a process's
// stdout or stderr, a logger) and readers (the test, its log).
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreePort returns a loopback port that was free a moment ago. Another
// process may take it before it is used; callers that cannot retry
// should listen themselves and hand the listener over.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
