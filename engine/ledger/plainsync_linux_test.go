package ledger_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/geoscope/geoscope/internal/proctest"
)

// BenchmarkPlainAppendSync is the floor a durable commit has on this disk
// and kernel with no database at all: a batch of six entries of the size a
// denied admission's takes, appended to a file with one write and made
// durable with fdatasync. It is a reference for BenchmarkRecord (what
// SQLite's commit adds), not something the ledger does.
func BenchmarkPlainAppendSync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const entries, entrySize = 6, 1200
	batch := []byte(strings.Repeat("x", entries*entrySize))
	start := proctest.ProcessCPU()
	for b.Loop() {
		if _, err := f.Write(batch); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(proctest.ProcessCPU()-start)/float64(b.N*entries), "cpu-ns/entry")
}
