// Package proctest holds what tests that run servers (a geoscope binary,
// a container's filesystem, a load balancer, the server in-process) need
// in every package that does: a buffer to collect output while the test
// reads it, a loopback port to give a process, the CPU time the test
// process has used (benchmarks report it per operation), and a
// self-signed TLS pair to serve.
package proctest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ReportCPU reports the CPU time the process used per operation (user and
// system, the garbage collector's included) as cpu-ns/op, measured from
// its call to the returned function's: on a machine shared with other
// work, wall time per operation moves with that work; CPU time much less.
func ReportCPU(b *testing.B) func() {
	start := ProcessCPU()
	return func() { b.ReportMetric(float64(ProcessCPU()-start)/float64(b.N), "cpu-ns/op") }
}

// ProcessCPU is the CPU time (user and system, every thread's, the
// garbage collector's included) this process has used so far; 0 if it
// cannot be read.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
//
// With GEOSCOPE_TEST_PORTS set to a range ("21300-21399"), the port is one
// of that range, for machines where tests must keep to the ports given
// to them; otherwise the system chooses one. Give a range below the
// system's ephemeral ports (/proc/sys/net/ipv4/ip_local_port_range,
// 32768-60999 by default): inside it, a server that a test stops and
// starts again on its port (PostgreSQL in the outage tests) can find the
// port taken meanwhile by an outgoing connection, the client's own
// attempts to reach it among them, and fail with "Address already in
// use".
func FreePort(t testing.TB) string {
	t.Helper()
	port, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Port is FreePort for code that has no testing.TB to fail (a helper
// that starts a server for many tests, such as internal/pgtest).
func Port() (string, error) {
	if r := os.Getenv("GEOSCOPE_TEST_PORTS"); r != "" {
		return portInRange(r)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// portInRange returns a port of r ("LO-HI") free on the loopback
// interface, trying them from a random one on, so that tests running at
// once rarely try the same.
func portInRange(r string) (string, error) {
	lo, hi, ok := strings.Cut(r, "-")
	first, err1 := strconv.Atoi(lo)
	last, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
		return "", fmt.Errorf("GEOSCOPE_TEST_PORTS=%q: want a range LO-HI of ports", r)
	}
	n := last - first + 1
	start := rand.IntN(n)
	for i := range n {
		port := strconv.Itoa(first + (start+i)%n)
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			continue
		}
		ln.Close()
		return port, nil
	}
	return "", fmt.Errorf("GEOSCOPE_TEST_PORTS=%q: no port of the range is free", r)
}
