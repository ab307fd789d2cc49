package patherr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCause(t *testing.T) {
	_, err := os.Open(filepath.Join(t.TempDir(), "missing"))
	got := Cause(fmt.Errorf("loading: %w", err))
	if !errors.Is(got, fs.ErrNotExist) || got.Error() != "no such file or directory" {
		t.Errorf("Cause(open of a missing file) = %v, want the bare cause", got)
	}
	other := errors.New("not about a path")
	if Cause(other) != other {
		t.Errorf("Cause(%v) changed an error that is not about a path", other)
	}
}
