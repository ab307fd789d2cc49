//go:build !windows

package secretfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each mode is read or refused as the package comment says, through a
// symlink too (judged by its target), and the error names the file, its
// mode and the chmod that fixes it.
func TestModes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode                fs.FileMode
		private, unwritable bool
	}{
		{0o600, true, true},
		{0o400, true, true},
		{0o640, true, true},
		{0o440, true, true},
		{0o660, true, false},
		{0o644, false, true},
		{0o604, false, true},
		{0o602, false, false},
		{0o601, false, true},
		{0o666, false, false},
	} {
		path := filepath.Join(dir, tc.mode.String())
		if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		link := path + ".link"
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, link} {
			b, err := ReadPrivate(p, "--key "+p, "whoever reads it can do harm")
			switch {
			case tc.private && (err != nil || string(b) != "secret"):
				t.Errorf("ReadPrivate of mode %04o: %q, %v; want it read", tc.mode, b, err)
			case !tc.private && (err == nil || !strings.Contains(err.Error(), "--key "+p) || !strings.Contains(err.Error(), fmt.Sprintf("(mode %04o)", tc.mode)) ||
				!strings.Contains(err.Error(), "chmod 600 "+p)):
				t.Errorf("ReadPrivate of mode %04o: %v; want it refused, naming the file and the chmod", tc.mode, err)
			}
			b, err = ReadUnwritable(p, "--list "+p, "whoever writes it is trusted")
			switch {
			case tc.unwritable && (err != nil || string(b) != "secret"):
				t.Errorf("ReadUnwritable of mode %04o: %q, %v; want it read", tc.mode, b, err)
			case !tc.unwritable && (err == nil || !strings.Contains(err.Error(), "--list "+p) || !strings.Contains(err.Error(), "chmod go-w "+p)):
				t.Errorf("ReadUnwritable of mode %04o: %v; want it refused, naming the file and the chmod", tc.mode, err)
			}
		}
	}
	if _, err := ReadPrivate(filepath.Join(dir, "missing"), "--key", ""); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}
