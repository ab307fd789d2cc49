package ledger

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestMakeDataDirChecksWhatItFinds: the data directory a writer makes is
// its owner's alone, and one found already there (made by another user
// since Validate found none) is checked as Validate checks it.
func TestMakeDataDirChecksWhatItFinds(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("on Windows, permission bits say nothing of who may write a directory")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := makeDataDir(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %v (%v), want mode 0700", fi.Mode(), err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := makeDataDir(dir); !errors.Is(err, ErrConfig) {
		t.Errorf("makeDataDir of a directory of mode 0777 found there = %v, want ErrConfig", err)
	}
}
