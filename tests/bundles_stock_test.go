package tests

// Bundles built and signed with OPA's own CLI, the way OPA's documentation
// teaches (`opa build -b DIR --signing-key K`, which takes the *_test.rego
// files too; `opa sign --bundle DIR` for a directory), load under
// --verification-key locally, remotely and through the Go API, as they do
// with stock `opa run`; tampering with any file, a test file included, is
// still rejected.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/policy"
)

// opaCLI runs `go tool opa ARGS...` from the module root (the opa command
// is a tool of this module).
func opaCLI(t *testing.T, args ...string) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"tool", "opa"}, args...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool opa %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// stockBundles are a policy and a registry bundle made by `opa build`,
// signed with the development ES256 key.
type stockBundles struct {
	key                bndKey
	policies, registry string // .tar.gz paths
	registryDir        string // the registry's source directory
}

func buildStockBundles(t *testing.T) stockBundles {
	t.Helper()
	key := bndDevKey(t, "dev-es256", "ES256")
	priv, err := filepath.Abs(filepath.Join("..", "bundles", "keys", "dev-es256.pem"))
	if err != nil {
		t.Fatal(err)
	}
	policies, err := filepath.Abs(filepath.Join("..", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(policies, "geoscope", "decision_test.rego")); err != nil {
		t.Fatalf("the policy's tests are what this is about: %v", err)
	}
	out := t.TempDir()
	regDir := filepath.Join(t.TempDir(), "registry")
	data := bndRegistryData("ORD-stock", remoteMeeting, remoteAccount)
	for name, doc := range map[string]any{
		".manifest":             map[string]any{"roots": []string{"authorities", "orders"}},
		"authorities/data.json": data["authorities"],
		"orders/data.json":      data["orders"],
	} {
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(regDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sb := stockBundles{key: key, policies: filepath.Join(out, "policies.tar.gz"), registry: filepath.Join(out, "registry.tar.gz"), registryDir: regDir}
	opaCLI(t, "build", "-b", policies, "--revision", "stock-pol", "--signing-key", priv, "--signing-alg", "ES256", "-o", sb.policies)
	opaCLI(t, "build", "-b", regDir, "--revision", "stock-reg", "--signing-key", priv, "--signing-alg", "ES256", "-o", sb.registry)
	return sb
}

// tarNames lists a .tar.gz bundle's files.
func tarNames(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	bndRetar(t, raw, func(name string, body []byte) []byte {
		names = append(names, name)
		return body
	})
	return names
}

// decideRevisions runs geoscope decide on validRequest and returns the
// bundle revisions of the decision.
func decideRevisions(t *testing.T, db string, args ...string) (map[string]string, cliResult) {
	t.Helper()
	res := runCLI(t, []byte(validRequest), append([]string{"decide", "--ledger", "off", "--geoip-db", db}, args...)...)
	if res.code != 0 {
		return nil, res
	}
	var d struct {
		Bundles map[string]string `json:"bundles"`
	}
	if err := json.Unmarshal(singleJSONObject(t, res.stdout), &d); err != nil {
		t.Fatal(err)
	}
	return d.Bundles, res
}

func TestBundlesStockBuiltLoad(t *testing.T) {
	sb := buildStockBundles(t)
	if names := strings.Join(tarNames(t, sb.policies), " "); !strings.Contains(names, "decision_test.rego") || !strings.Contains(names, ".signatures.json") {
		t.Fatalf("opa build did not sign the tests into the bundle: %s", names)
	}
	db := geotest.Standard(t)
	verify := []string{"--verification-key", sb.key.pubPath}

	t.Run("tarballs with decide", func(t *testing.T) {
		revs, res := decideRevisions(t, db, append(verify, "--bundle", sb.policies, "--bundle", sb.registry)...)
		if res.code != 0 {
			t.Fatalf("rejected:\n%v", res)
		}
		if revs["policies"] != "stock-pol" || revs["registry"] != "stock-reg" {
			t.Errorf("revisions %v", revs)
		}
	})

	t.Run("tampered test file rejected", func(t *testing.T) {
		raw, err := os.ReadFile(sb.policies)
		if err != nil {
			t.Fatal(err)
		}
		tampered := writeTemp(t, "policies.tar.gz", bndRetar(t, raw, func(name string, body []byte) []byte {
			if strings.HasSuffix(name, "decision_test.rego") {
				return append(body, "\n# changed after signing\n"...)
			}
			return body
		}))
		_, res := decideRevisions(t, db, append(verify, "--bundle", tampered, "--bundle", sb.registry)...)
		wantBadInput(t, res, "", "bundle rejected", "decision_test.rego", "digest mismatch")
	})

	t.Run("test file added after signing rejected", func(t *testing.T) {
		raw, err := os.ReadFile(sb.policies)
		if err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		bndRetar(t, raw, func(name string, body []byte) []byte {
			files[name] = string(body)
			return body
		})
		files["geoscope/extra_test.rego"] = "package geoscope.extra_test\n\ntest_x if true\n"
		added := writeTemp(t, "policies.tar.gz", bndTar(t, files))
		_, res := decideRevisions(t, db, append(verify, "--bundle", added, "--bundle", sb.registry)...)
		wantBadInput(t, res, "", "bundle rejected", "extra_test.rego", "not included in bundle signature")
	})

	// A directory signed in place with `opa sign`: every file it holds is
	// signed, the tests, the Go file and a README included.
	t.Run("directory signed with opa sign", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "policies")
		bndCopyDir(t, filepath.Join("..", "policies"), dir)
		if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# policy\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		priv, _ := filepath.Abs(filepath.Join("..", "bundles", "keys", "dev-es256.pem"))
		opaCLI(t, "sign", "--bundle", dir, "--signing-key", priv, "--signing-alg", "ES256", "-o", dir)
		revs, res := decideRevisions(t, db, append(verify, "--bundle", dir, "--bundle", sb.registry)...)
		if res.code != 0 {
			t.Fatalf("rejected:\n%v", res)
		}
		if !strings.HasPrefix(revs["policies"], "sha256:") || revs["registry"] != "stock-reg" {
			t.Errorf("revisions %v", revs)
		}
		test := filepath.Join(dir, "geoscope", "decision_test.rego")
		raw, err := os.ReadFile(test)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(test, append(raw, "\n# changed after signing\n"...), 0o600); err != nil {
			t.Fatal(err)
		}
		_, res = decideRevisions(t, db, append(verify, "--bundle", dir, "--bundle", sb.registry)...)
		wantBadInput(t, res, "", "bundle rejected", "decision_test.rego", "digest mismatch")
	})

	t.Run("Go API", func(t *testing.T) {
		opts, err := verificationOptions(sb.key.pubPath)
		if err != nil {
			t.Fatal(err)
		}
		src, err := policy.LoadPath(sb.policies, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range src.Bundle.Modules {
			if strings.HasSuffix(m.Path, "_test.rego") {
				t.Errorf("test module %s is activated", m.Path)
			}
		}
		snap, err := policy.LoadSnapshot(context.Background(), []string{sb.policies, sb.registry}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := snap.Revisions(); got["policies"] != "stock-pol" || got["registry"] != "stock-reg" {
			t.Errorf("revisions %v", got)
		}
	})

	t.Run("serve", func(t *testing.T) {
		srv := bndStart(t, append(verify, "--bundle", sb.policies, "--bundle", sb.registry)...)
		srv.waitStatus(t, "ready with the stock-built bundles", 30*time.Second, func(st bndStatus) bool {
			return st.Ready && st.revision("policies") == "stock-pol" && st.revision("registry") == "stock-reg"
		})
		a := srv.admit(t, "", remoteMeeting, remoteAccount)
		if a.Bundles["policies"] != "stock-pol" || strings.Join(a.OrderIDs, ",") != "ORD-stock" {
			t.Errorf("answer %+v", a)
		}
	})

	t.Run("remote", func(t *testing.T) {
		bs := newBundleServer(t)
		for name, path := range map[string]string{"policies.tar.gz": sb.policies, "registry.tar.gz": sb.registry} {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bs.set(name, raw)
		}
		cfg := opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": sb.key}, "release")
		srv := bndStart(t, "--config", cfg)
		srv.waitStatus(t, "ready with the stock-built bundles", 30*time.Second, func(st bndStatus) bool {
			return st.Ready && st.revision("policies") == "stock-pol" && st.revision("registry") == "stock-reg"
		})
		a := srv.admit(t, "", remoteMeeting, remoteAccount)
		if a.Bundles["policies"] != "stock-pol" || strings.Join(a.OrderIDs, ",") != "ORD-stock" {
			t.Errorf("answer %+v", a)
		}
	})
}

// verificationOptions is what --verification-key FILE configures.
func verificationOptions(pub string) (policy.LoadOptions, error) {
	vc, err := policy.VerificationKey(pub, "", "")
	if err != nil {
		return policy.LoadOptions{}, err
	}
	return policy.LoadOptions{Verification: vc}, nil
}
