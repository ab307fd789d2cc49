package tests

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
)

// `geoscope version` prints what the toolchain stamped into the binary
// (as `go version -m` reads it back), and that version is the one
// /v1/status reports and the ledger records.
func TestVersion(t *testing.T) {
	res := runCLI(t, nil, "version")
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("geoscope version: %v", res)
	}
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("line %q is not \"key: value\"", sc.Text())
		}
		fields[k] = v
	}
	version := fields["Version"]
	if version == "" || version == "dev" {
		t.Fatalf("Version %q:\n%s", version, res.stdout)
	}
	// What an operator compares before a rollback (docs/operations.md).
	if got, want := fields["Ledger-Schema"], strconv.Itoa(ledger.SchemaVersion()); got != want {
		t.Errorf("Ledger-Schema %q, want %s:\n%s", got, want, res.stdout)
	}

	out, err := exec.Command("go", "version", "-m", geoscopeBin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	var modVersion, revision string
	modified := false
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			modVersion = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			revision = strings.TrimPrefix(f[1], "vcs.revision=")
		case len(f) == 2 && f[0] == "build" && f[1] == "vcs.modified=true":
			modified = true
		}
	}
	if got, want := fields["Module"], "github.com/geoscope/geoscope "+modVersion; got != want {
		t.Errorf("Module %q, want %q (from go version -m)", got, want)
	}
	if revision != "" {
		want := revision
		if modified {
			want += " (modified)"
		}
		if fields["Revision"] != want {
			t.Errorf("Revision %q, want %q (from go version -m)", fields["Revision"], want)
		}
	}
	// In a git checkout (a directory .git, as CI's clone; Go does not read
	// worktrees) the binary names the checked-out commit.
	if fi, err := os.Stat(filepath.Join("..", ".git")); err == nil && fi.IsDir() {
		if head, err := exec.Command("git", "-C", "..", "rev-parse", "HEAD").Output(); err == nil {
			if want := strings.TrimSpace(string(head)); revision != want {
				t.Errorf("the binary is stamped with revision %q, the checkout is at %s", revision, want)
			}
		}
	}
	switch {
	case modVersion != "(devel)" && version != modVersion:
		t.Errorf("Version %q, want the module version %q", version, modVersion)
	case modVersion == "(devel)" && revision != "" && !strings.HasPrefix(version, "(devel)+"+revision[:12]):
		t.Errorf("Version %q does not name the revision %s", version, revision)
	}
	t.Logf("geoscope version:\n%s", res.stdout)

	// --version agrees.
	if r := runCLI(t, nil, "--version"); !strings.Contains(r.stdout, version) {
		t.Errorf("--version prints %q, want %q in it", r.stdout, version)
	}

	// /v1/status reports it.
	p := startServe(t, serveOpts{args: []string{"--geoip-db", geotest.Standard(t)}})
	var st struct{ Version, Revision string }
	r := p.get("/v1/status", "")
	if err := json.Unmarshal(r.body, &st); r.status != http.StatusOK || err != nil {
		t.Fatalf("/v1/status: %s", r)
	}
	if st.Version != version || st.Revision != revision {
		t.Errorf("/v1/status version %q revision %q, want %q %q", st.Version, st.Revision, version, revision)
	}

	// The ledger records it.
	data := filepath.Join(t.TempDir(), "data")
	if r := runCLI(t, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--data-dir", data); r.code != 0 {
		t.Fatalf("decide: %v", r)
	}
	export := runCLI(t, nil, "ledger", "export", "--data-dir", data)
	var e struct {
		EngineVersion string `json:"engine_version"`
	}
	if err := json.Unmarshal([]byte(export.stdout), &e); err != nil || e.EngineVersion != version {
		t.Errorf("ledger entry engine_version %q (%v), want %q", e.EngineVersion, err, version)
	}
}
