package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// geoscopeBin is the geoscope binary built once by TestMain from this
// checkout's ./cmd/geoscope.
var geoscopeBin string

// scratchDir is TestMain's temporary directory, removed when the tests end:
// for files shared by several tests (see extendedPolicyBundle).
var scratchDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "geoscope-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	scratchDir = dir

	// Every geoscope the tests start records into a scratch ledger, never
	// into the checkout.
	os.Setenv("GEOSCOPE_DATA_DIR", filepath.Join(dir, "data"))

	geoscopeBin = filepath.Join(dir, "geoscope")
	// Built as a release is, with the revision stamped (TestVersion reads
	// it back), overriding a GOFLAGS=-buildvcs=false. Where git cannot
	// tell the revision (no checkout, a directory owned by someone else),
	// the binary is built without it.
	build := exec.Command("go", "build", "-buildvcs=auto", "-o", geoscopeBin, "./cmd/geoscope")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		build = exec.Command("go", "build", "-buildvcs=false", "-o", geoscopeBin, "./cmd/geoscope")
		build.Dir = root
		if out2, err2 := build.CombinedOutput(); err2 != nil {
			fmt.Fprintf(os.Stderr, "tests: go build ./cmd/geoscope: %v\n%s", err2, out2)
			return 1
		}
		fmt.Fprintf(os.Stderr, "tests: built without version-control stamps: %v\n%s", err, out)
	}
	return m.Run()
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	// Fall back to walking up from the package directory.
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

// cliResult is one run of the geoscope binary.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary with args in the package directory (so relative
// paths such as ../policies resolve against tests/), feeding stdin.
func runCLI(t *testing.T, stdin []byte, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(geoscopeBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	} else {
		cmd.Stdin = strings.NewReader("")
	}
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running geoscope %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// writeTemp writes data to a new file in t's temporary directory.
func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// singleJSONObject checks that s holds exactly one JSON object (and nothing
// else but whitespace) and returns its bytes.
func singleJSONObject(t *testing.T, s string) []byte {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, s)
	}
	if len(raw) == 0 || raw[0] != '{' {
		t.Fatalf("stdout is not a JSON object:\n%s", s)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("stdout holds more than one JSON value (next: %s, err %v):\n%s", extra, err, s)
	}
	return raw
}
