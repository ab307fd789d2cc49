package tests

// Each worked extension's README says how to install it. Its commands are
// run here as written, with a development key for path/to/key.pem and
// EDITOR=true, from a directory holding the repository's policies and docs
// (and go.mod, for `go tool opa`), and the bundle they build is then
// verified and loaded by geoscope.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

func TestExtensionREADMEInstallRunsAsWritten(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readmes, err := filepath.Glob(filepath.Join(root, "docs", "extensions", "*", "README.md"))
	if err != nil || len(readmes) == 0 {
		t.Fatalf("no extension READMEs (%v)", err)
	}
	key, pub, registry := signedRegistry(t, root)
	db := geotest.Standard(t)

	for _, readme := range readmes {
		t.Run(filepath.Base(filepath.Dir(readme)), func(t *testing.T) {
			dir := installDir(t, root)
			runInstall(t, dir, installScript(t, readme, key))

			res := runIn(t, dir, nil, []byte(validRequest), "decide", "--geoip-db", db,
				"--bundle", "dist/policies.tar.gz", "--bundle", registry, "--verification-key", pub)
			if res.code != 0 {
				t.Fatalf("decide with the bundle the README builds: %v", res)
			}
		})
	}
}

// signedRegistry builds the example registry into a bundle signed with
// the development key, whose private and public key files it returns
// beside the bundle's path.
func signedRegistry(t *testing.T, root string) (key, pub, registry string) {
	t.Helper()
	key = filepath.Join(root, "bundles", "keys", "dev-es256.pem")
	pub = filepath.Join(root, "bundles", "keys", "dev-es256.pub.pem")
	registry = filepath.Join(t.TempDir(), "registry.tar.gz")
	opaCLI(t, "build", "-b", filepath.Join(root, "bundles", "registry"),
		"--signing-key", key, "--signing-alg", "ES256", "-o", registry)
	return key, pub, registry
}

// installScript is the install commands of a README, signing with key.
func installScript(t *testing.T, readme, key string) string {
	t.Helper()
	script := installCommands(t, readme)
	if !strings.Contains(script, "path/to/key.pem") {
		t.Fatalf("%s: the install commands no longer sign with path/to/key.pem:\n%s", readme, script)
	}
	return strings.ReplaceAll(script, "path/to/key.pem", key)
}

// installDir is a directory to run install commands in: it holds the
// repository's policies and docs (symlinked) and go.mod, for `go tool opa`.
func installDir(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"go.mod", "go.sum"} {
		raw, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"policies", "docs"} {
		if err := os.Symlink(filepath.Join(root, d), filepath.Join(dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runInstall runs a README's install commands in dir, with EDITOR=true.
func runInstall(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "EDITOR=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the README's install commands fail: %v\n%s\ncommands:\n%s", err, out, script)
	}
}

// installCommands returns the shell block of a README's "Install" section.
func installCommands(t *testing.T, readme string) string {
	t.Helper()
	raw, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Install\n")
	if !ok {
		t.Fatalf("%s has no Install section", readme)
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatalf("%s: the Install section has no sh block", readme)
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatalf("%s: the Install section's sh block is not closed", readme)
	}
	return block
}
