package policy

// Signed bundles with --verification-key semantics: VerificationKey builds
// the verification config, LoadPath/LoadSnapshot enforce it. The bundles
// are built and signed with OPA's Go API (what `opa build --signing-key`
// does), then written as .tar.gz files or extracted into directories.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/geoscope/geoscope/internal/bundletest"
)

// sigKey is a signing key pair in PEM form.
type sigKey struct {
	name      string
	priv, pub []byte
	alg       string
}

// sigDevKey reads a development key pair from bundles/keys.
func sigDevKey(t *testing.T, name, alg string) sigKey {
	t.Helper()
	dir := filepath.Join("..", "..", "bundles", "keys")
	priv, err := os.ReadFile(filepath.Join(dir, name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile(filepath.Join(dir, name+".pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return sigKey{name: name, priv: priv, pub: pub, alg: alg}
}

// sigGenKey generates a key pair: "ES256", "ES384" or "RS256". The private
// key is PKCS#8 ("PRIVATE KEY"), the public key PKIX ("PUBLIC KEY").
func sigGenKey(t *testing.T, alg string) (sigKey, crypto.Signer) {
	t.Helper()
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		signer, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("sigGenKey: no %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return sigKey{
		name: "generated-" + alg,
		priv: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}),
		pub:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		alg:  alg,
	}, signer
}

// sigWriteFile writes data to name in a fresh temporary directory.
func sigWriteFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sigTree reads the bundle files of a directory (what `opa build
// --ignore '*_test.rego'` would take): Rego modules and data.json files,
// keyed by slash path relative to dir.
func sigTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		if strings.HasSuffix(name, "_test.rego") || (!strings.HasSuffix(name, ".rego") && name != "data.json") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		raw, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = raw
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// sigBuild makes a bundle of files (Rego modules and data.json files by
// slash path) with a manifest naming revision and roots.
func sigBuild(t *testing.T, files map[string][]byte, revision string, roots ...string) *bundle.Bundle {
	t.Helper()
	b := &bundle.Bundle{
		Manifest: bundle.Manifest{Revision: revision, Roots: &roots},
		Data:     map[string]any{},
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		raw := files[name]
		switch {
		case strings.HasSuffix(name, ".rego"):
			b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, RelativePath: name, Raw: raw})
		case path.Base(name) == "data.json":
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			node := b.Data
			dir := path.Dir(name)
			if dir == "." {
				obj, ok := v.(map[string]any)
				if !ok {
					t.Fatalf("%s: root data must be an object", name)
				}
				for k, x := range obj {
					node[k] = x
				}
				continue
			}
			parts := strings.Split(dir, "/")
			for _, p := range parts[:len(parts)-1] {
				next, ok := node[p].(map[string]any)
				if !ok {
					next = map[string]any{}
					node[p] = next
				}
				node = next
			}
			node[parts[len(parts)-1]] = v
		default:
			t.Fatalf("sigBuild: unexpected file %s", name)
		}
	}
	return b
}

// sigSign signs b with key under key id kid.
func sigSign(t *testing.T, b *bundle.Bundle, key sigKey, kid string) *bundle.Bundle {
	t.Helper()
	if err := b.GenerateSignature(bundle.NewSigningConfig(string(key.priv), key.alg, ""), kid, false); err != nil {
		t.Fatalf("signing with %s: %v", key.name, err)
	}
	return b
}

// sigTarball writes b as a .tar.gz bundle.
func sigTarball(t *testing.T, b *bundle.Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(*b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sigEntry is one file of a bundle tarball.
type sigEntry struct {
	name string
	body []byte
}

// sigEntries reads a .tar.gz into its files, in order.
func sigEntries(t *testing.T, tarball []byte) []sigEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []sigEntry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sigEntry{name: strings.TrimPrefix(h.Name, "/"), body: body})
	}
}

// sigPack writes entries as a .tar.gz (the layout OPA's writer uses).
func sigPack(t *testing.T, entries []sigEntry) []byte {
	t.Helper()
	files := make([]bundletest.File, len(entries))
	for i, e := range entries {
		files[i] = bundletest.File{Name: e.name, Body: e.body}
	}
	return bundletest.Tarball(t, files...)
}

// An edit changes a bundle's files after signing.
type sigEditFn func(t *testing.T, es []sigEntry) []sigEntry

func sigEdit(file string, edit func([]byte) []byte) sigEditFn {
	return func(t *testing.T, es []sigEntry) []sigEntry {
		t.Helper()
		for i := range es {
			if es[i].name == file {
				es[i].body = edit(es[i].body)
				return es
			}
		}
		t.Fatalf("no %s in the bundle", file)
		return nil
	}
}

func sigAdd(file, body string) sigEditFn {
	return func(_ *testing.T, es []sigEntry) []sigEntry {
		return append(es, sigEntry{name: file, body: []byte(body)})
	}
}

func sigRemove(file string) sigEditFn {
	return func(t *testing.T, es []sigEntry) []sigEntry {
		t.Helper()
		n := len(es)
		es = slices.DeleteFunc(es, func(e sigEntry) bool { return e.name == file })
		if len(es) == n {
			t.Fatalf("no %s in the bundle", file)
		}
		return es
	}
}

// sigWriteTree writes entries into dir, replacing whatever it held.
func sigWriteTree(t *testing.T, dir string, entries []sigEntry) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, e.body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// sigReadTree reads every file under dir, by slash path relative to dir.
func sigReadTree(t *testing.T, dir string) []sigEntry {
	t.Helper()
	var out []sigEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		body, err := os.ReadFile(p)
		out = append(out, sigEntry{name: filepath.ToSlash(rel), body: body})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sigSignDir signs a bundle directory in place, as `opa sign --bundle DIR
// -o DIR` does: every file is hashed under its path as given (OPA names
// the files of a directory bundle by their URL, the directory path
// included), and .signatures.json is written into the directory.
func sigSignDir(t *testing.T, dir string, key sigKey, kid string) {
	t.Helper()
	h, err := bundle.NewSignatureHasher(bundle.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	dl := bundle.NewDirectoryLoader(dir)
	var files []bundle.FileInfo
	for {
		f, err := dl.NextFile()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if bundle.IsSignaturesFile(f.Path()) {
			continue
		}
		var buf bytes.Buffer
		if _, err := f.Read(&buf, bundle.DefaultSizeLimitBytes); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		f.Close()
		var value any = buf.Bytes()
		if bundle.IsStructuredDoc(f.URL()) {
			if err := util.Unmarshal(buf.Bytes(), &value); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := h.HashFile(value)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, bundle.NewFile(strings.TrimPrefix(f.URL(), "/"), hex.EncodeToString(sum), string(bundle.SHA256)))
	}
	token, err := bundle.GenerateSignedToken(files, bundle.NewSigningConfig(string(key.priv), key.alg, ""), kid)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string][]string{"signatures": {token}})
	if err := os.WriteFile(filepath.Join(dir, ".signatures.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// sigSplitData lays a tarball's root data.json out as a directory bundle
// is written by hand: one ROOT/data.json per top-level key.
func sigSplitData(t *testing.T, es []sigEntry) []sigEntry {
	t.Helper()
	var out []sigEntry
	for _, e := range es {
		if e.name != "data.json" {
			out = append(out, e)
			continue
		}
		var data map[string]json.RawMessage
		if err := json.Unmarshal(e.body, &data); err != nil {
			t.Fatal(err)
		}
		for k, v := range data {
			out = append(out, sigEntry{name: k + "/data.json", body: v})
		}
	}
	return out
}

// sigPlace signs b with key (unless key is nil), applies edits, and writes
// the result as name.tar.gz or, for form "dir", as a directory called name
// (signed in place, where it is loaded from), in a fresh temporary
// directory.
func sigPlace(t *testing.T, form, name string, b *bundle.Bundle, key *sigKey, kid string, edits ...sigEditFn) string {
	t.Helper()
	root := t.TempDir()
	unsigned := *b
	unsigned.Signatures = bundle.SignaturesConfig{}
	if form == "tar.gz" {
		if key != nil {
			sigSign(t, &unsigned, *key, kid)
		}
		es := sigEntries(t, sigTarball(t, &unsigned))
		for _, e := range edits {
			es = e(t, es)
		}
		p := filepath.Join(root, name+".tar.gz")
		if err := os.WriteFile(p, sigPack(t, es), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir := filepath.Join(root, name)
	sigWriteTree(t, dir, sigSplitData(t, sigEntries(t, sigTarball(t, &unsigned))))
	if key != nil {
		sigSignDir(t, dir, *key, kid)
	}
	if len(edits) > 0 {
		es := sigReadTree(t, dir)
		for _, e := range edits {
			es = e(t, es)
		}
		sigWriteTree(t, dir, es)
	}
	return dir
}

// sigPair is a policy and a registry bundle, built from the repository's
// policies and example registry.
type sigPair struct {
	policies, registry *bundle.Bundle
}

func sigRepoPair(t *testing.T, rev string) sigPair {
	t.Helper()
	return sigPair{
		policies: sigBuild(t, sigTree(t, "../../policies"), "pol-"+rev, "geoscope"),
		registry: sigBuild(t, sigTree(t, "../../bundles/registry"), "reg-"+rev, "authorities", "orders"),
	}
}

func sigVerification(t *testing.T, key sigKey, keyID, alg string) LoadOptions {
	t.Helper()
	vc, err := VerificationKey(sigWriteFile(t, "verify.pem", key.pub), keyID, alg)
	if err != nil {
		t.Fatalf("VerificationKey(%s): %v", key.name, err)
	}
	return LoadOptions{Verification: vc}
}

// wantKeyErr checks an error refusing a verification key: ErrKey, not
// ErrBundle (no bundle was looked at), mentioning texts.
func wantKeyErr(t *testing.T, err error, texts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a refusal mentioning %q", texts)
	}
	if !errors.Is(err, ErrKey) || errors.Is(err, ErrBundle) || strings.Contains(err.Error(), "bundle rejected") {
		t.Errorf("error %q: want ErrKey, not a bundle rejection", err)
	}
	for _, text := range texts {
		if !strings.Contains(err.Error(), text) {
			t.Errorf("error %q does not mention %q", err, text)
		}
	}
}

func wantBundleErr(t *testing.T, err error, texts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a rejection mentioning %q", texts)
	}
	if !errors.Is(err, ErrBundle) {
		t.Errorf("error %q is not ErrBundle", err)
	}
	for _, text := range texts {
		if !strings.Contains(err.Error(), text) {
			t.Errorf("error %q does not mention %q", err, text)
		}
	}
}

func TestSignedBundlesAcceptedAndTamperingRejected(t *testing.T) {
	ctx := context.Background()
	keys := []sigKey{sigDevKey(t, "dev-es256", "ES256"), sigDevKey(t, "dev-rs256", "RS256")}
	// A module edit that keeps the policy valid: only the signature can
	// tell.
	comment := func(b []byte) []byte { return append(b, "\n# changed after signing\n"...) }
	// The tarball holds the registry's data in one data.json (OPA's
	// writer); the directory keeps the bundle's layout.
	regData := map[string]string{"tar.gz": "data.json", "dir": "authorities/data.json"}
	mutations := []struct {
		name   string
		bundle string // "policies" or "registry"
		edit   func(form string) sigEditFn
		want   []string
	}{
		{"data changed", "registry", func(form string) sigEditFn {
			return sigEdit(regData[form], func(b []byte) []byte { return bytes.Replace(b, []byte(`"CN"`), []byte(`"US"`), 1) })
		}, []string{"data.json", "digest mismatch"}},
		{"module changed", "policies", func(string) sigEditFn { return sigEdit("geoscope/decision.rego", comment) },
			[]string{"geoscope/decision.rego", "digest mismatch"}},
		{"manifest changed", "registry", func(string) sigEditFn {
			return sigEdit(".manifest", func(b []byte) []byte { return bytes.Replace(b, []byte(`reg-1`), []byte(`reg-9`), 1) })
		}, []string{".manifest", "digest mismatch"}},
		{"module added", "policies", func(string) sigEditFn { return sigAdd("geoscope/extra.rego", "package geoscope.extra\n\nx := 1\n") },
			[]string{"geoscope/extra.rego", "not included in bundle signature"}},
		{"data file added", "registry", func(string) sigEditFn { return sigAdd("orders/extra/data.json", `{"x": 1}`) },
			[]string{"orders/extra/data.json", "not included in bundle signature"}},
		{"module removed", "policies", func(string) sigEditFn { return sigRemove("geoscope/decision.rego") },
			[]string{"geoscope/decision.rego", "specified in bundle signatures but not found"}},
		{"signature removed", "registry", func(string) sigEditFn { return sigRemove(".signatures.json") },
			[]string{"missing .signatures.json", "registry"}},
	}
	for _, key := range keys {
		for _, form := range []string{"tar.gz", "dir"} {
			t.Run(key.alg+"/"+form, func(t *testing.T) {
				t.Parallel()
				pair := sigRepoPair(t, "1")
				opts := sigVerification(t, key, "", "")

				t.Run("signed accepted", func(t *testing.T) {
					paths := []string{sigPlace(t, form, "policies", pair.policies, &key, "default"), sigPlace(t, form, "registry", pair.registry, &key, "default")}
					snap, err := LoadSnapshot(ctx, paths, opts)
					if err != nil {
						t.Fatal(err)
					}
					if got := snap.Revisions(); got["policies"] != "pol-1" || got["registry"] != "reg-1" {
						t.Errorf("revisions = %v", got)
					}
					if _, ok := snap.Registry().Orders["CN-2020-0601"]; !ok {
						t.Error("the signed registry's orders are missing")
					}
				})

				t.Run("unsigned rejected", func(t *testing.T) {
					paths := []string{sigPlace(t, form, "policies", pair.policies, nil, ""), sigPlace(t, form, "registry", pair.registry, &key, "default")}
					_, err := LoadSnapshot(ctx, paths, opts)
					wantBundleErr(t, err, "missing .signatures.json", "policies")
				})

				for _, m := range mutations {
					t.Run(m.name+" after signing rejected", func(t *testing.T) {
						var pe, re []sigEditFn
						if m.bundle == "policies" {
							pe = append(pe, m.edit(form))
						} else {
							re = append(re, m.edit(form))
						}
						_, err := LoadSnapshot(ctx, []string{
							sigPlace(t, form, "policies", pair.policies, &key, "default", pe...),
							sigPlace(t, form, "registry", pair.registry, &key, "default", re...),
						}, opts)
						wantBundleErr(t, err, m.want...)
					})
				}

				// Under verification the loader reads every file the
				// signature can cover. A module added after signing is
				// rejected even when named like a test (it would break
				// compilation if it were activated).
				t.Run("test module added after signing rejected", func(t *testing.T) {
					_, err := LoadSnapshot(ctx, []string{
						sigPlace(t, form, "policies", pair.policies, &key, "default",
							sigAdd("geoscope/evil_test.rego", "package geoscope\n\ndecision := {\"actions\": 1}\n")),
						sigPlace(t, form, "registry", pair.registry, &key, "default"),
					}, opts)
					wantBundleErr(t, err, "geoscope/evil_test.rego", "not included in bundle signature")
				})

				// Go files and READMEs are not bundle files. A directory
				// (a bundle source directory holds them) skips those its
				// signature does not list; a tarball is read whole, as OPA
				// reads it, so one added to a signed tarball is rejected.
				t.Run("README and Go file added after signing", func(t *testing.T) {
					snap, err := LoadSnapshot(ctx, []string{
						sigPlace(t, form, "policies", pair.policies, &key, "default",
							sigAdd("README.md", "not signed"), sigAdd("geoscope/x.go", "package x")),
						sigPlace(t, form, "registry", pair.registry, &key, "default"),
					}, opts)
					if form == "tar.gz" {
						wantBundleErr(t, err, "not included in bundle signature")
						return
					}
					if err != nil {
						t.Fatalf("rejected: %v", err)
					}
					if snap.Revisions()["policies"] != "pol-1" {
						t.Errorf("revisions = %v", snap.Revisions())
					}
				})

				// A signature is bound to its bundle's files: the
				// registry's signature does not sign the policy.
				t.Run("signature of another bundle rejected", func(t *testing.T) {
					regPath := sigPlace(t, form, "registry", pair.registry, &key, "default")
					var regSig []byte
					if form == "tar.gz" {
						raw, err := os.ReadFile(regPath)
						if err != nil {
							t.Fatal(err)
						}
						for _, e := range sigEntries(t, raw) {
							if e.name == ".signatures.json" {
								regSig = e.body
							}
						}
					} else {
						var err error
						if regSig, err = os.ReadFile(filepath.Join(regPath, ".signatures.json")); err != nil {
							t.Fatal(err)
						}
					}
					polPath := sigPlace(t, form, "policies", pair.policies, &key, "default",
						sigEdit(".signatures.json", func([]byte) []byte { return regSig }))
					_, err := LoadSnapshot(ctx, []string{polPath, regPath}, opts)
					wantBundleErr(t, err, "policies")
				})
			})
		}
	}
}

// A directory bundle's signature names its files by the path the
// directory was signed at (OPA's `opa sign --bundle DIR` hashes each file
// under its URL). The same tree copied elsewhere no longer verifies: sign
// directories where they are served from, or ship tarballs, whose
// signatures name files relative to the bundle root.
func TestSignedDirectoryIsBoundToItsPath(t *testing.T) {
	key := sigDevKey(t, "dev-es256", "ES256")
	pair := sigRepoPair(t, "1")
	signed := sigPlace(t, "dir", "registry", pair.registry, &key, "default")
	moved := filepath.Join(t.TempDir(), "registry")
	sigWriteTree(t, moved, sigReadTree(t, signed))
	pol := sigPlace(t, "tar.gz", "policies", pair.policies, &key, "default")
	opts := sigVerification(t, key, "", "")
	if _, err := LoadSnapshot(context.Background(), []string{pol, signed}, opts); err != nil {
		t.Fatalf("in place: %v", err)
	}
	_, err := LoadSnapshot(context.Background(), []string{pol, moved}, opts)
	wantBundleErr(t, err, "not included in bundle signature")
}

// A bundle signed with its test files included, as `opa build -b DIR
// --signing-key K` makes it (it takes *_test.rego unless told to --ignore
// them), verifies: the test modules are read and verified like every other
// file, then left out of the activated policy. The extra test module here
// calls a function nobody defines, so activating it would fail to compile.
func TestSignedBundleWithTestFilesAccepted(t *testing.T) {
	key := sigDevKey(t, "dev-es256", "ES256")
	files := sigTree(t, "../../policies")
	files["geoscope/decision_test.rego"] = sigRead(t, "../../policies/geoscope/decision_test.rego")
	files["geoscope/extra_test.rego"] = []byte("package geoscope.extra_test\n\ntest_x if no_such_function(1)\n")
	pol := sigBuild(t, files, "pol-1", "geoscope")
	reg := sigBuild(t, sigTree(t, "../../bundles/registry"), "reg-1", "authorities", "orders")
	opts := sigVerification(t, key, "", "")
	for _, form := range []string{"tar.gz", "dir"} {
		t.Run(form, func(t *testing.T) {
			paths := []string{sigPlace(t, form, "policies", pol, &key, "default"), sigPlace(t, form, "registry", reg, &key, "default")}
			snap, err := LoadSnapshot(context.Background(), paths, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := snap.Revisions()["policies"]; got != "pol-1" {
				t.Errorf("policies revision %q", got)
			}
			src, err := LoadPath(paths[0], opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range src.Bundle.Modules {
				if strings.HasSuffix(m.Path, "_test.rego") {
					t.Errorf("test module %s is activated", m.Path)
				}
			}
			policies := 0
			for name := range files {
				if strings.HasSuffix(name, ".rego") && !strings.HasSuffix(name, "_test.rego") {
					policies++
				}
			}
			if len(src.Bundle.Modules) != policies {
				t.Errorf("%d modules activated, want the %d policy modules alone", len(src.Bundle.Modules), policies)
			}

			// A signed test module is still covered by the signature.
			tampered := sigPlace(t, form, "policies", pol, &key, "default",
				sigEdit("geoscope/decision_test.rego", func(b []byte) []byte { return append(b, "\n# changed after signing\n"...) }))
			_, err = LoadSnapshot(context.Background(), []string{tampered, paths[1]}, opts)
			wantBundleErr(t, err, "geoscope/decision_test.rego", "digest mismatch")
			removed := sigPlace(t, form, "policies", pol, &key, "default", sigRemove("geoscope/extra_test.rego"))
			_, err = LoadSnapshot(context.Background(), []string{removed, paths[1]}, opts)
			wantBundleErr(t, err, "geoscope/extra_test.rego", "specified in bundle signatures but not found")
		})
	}
}

// A directory signed in place (`opa sign --bundle DIR`) has every file it
// holds in its signature, Go files and READMEs included: they are read and
// verified, so a changed README is tampering like any other change.
func TestSignedSourceDirectory(t *testing.T) {
	key := sigDevKey(t, "dev-es256", "ES256")
	opts := sigVerification(t, key, "", "")
	reg := sigPlace(t, "tar.gz", "registry", sigRepoPair(t, "1").registry, &key, "default")
	dir := filepath.Join(t.TempDir(), "policies")
	sigWriteTree(t, dir, []sigEntry{
		{".manifest", []byte(`{"revision": "src-1", "roots": ["geoscope"]}`)},
		{"embed.go", sigRead(t, "../../policies/embed.go")},
		{"README.md", []byte("# the policy\n")},
		{"geoscope/decision.rego", sigRead(t, "../../policies/geoscope/decision.rego")},
		{"geoscope/decision_test.rego", sigRead(t, "../../policies/geoscope/decision_test.rego")},
	})
	sigSignDir(t, dir, key, "default")
	snap, err := LoadSnapshot(context.Background(), []string{dir, reg}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Revisions()["policies"]; got != "src-1" {
		t.Errorf("policies revision %q", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("# changed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSnapshot(context.Background(), []string{dir, reg}, opts)
	wantBundleErr(t, err, "README.md", "digest mismatch")
}

func sigRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVerificationKeys(t *testing.T) {
	ctx := context.Background()
	es := sigDevKey(t, "dev-es256", "ES256")
	rs := sigDevKey(t, "dev-rs256", "RS256")
	signedPaths := func(t *testing.T, key sigKey, kid string) []string {
		t.Helper()
		pair := sigRepoPair(t, "1")
		return []string{sigPlace(t, "tar.gz", "policies", pair.policies, &key, kid), sigPlace(t, "tar.gz", "registry", pair.registry, &key, kid)}
	}

	t.Run("generated ES384 key inferred and accepted", func(t *testing.T) {
		key, _ := sigGenKey(t, "ES384")
		opts := sigVerification(t, key, "", "")
		if got := opts.Verification.PublicKeys[DefaultKeyID].Algorithm; got != "ES384" {
			t.Errorf("inferred algorithm %s, want ES384", got)
		}
		if _, err := LoadSnapshot(ctx, signedPaths(t, key, "default"), opts); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("certificate accepted", func(t *testing.T) {
		key, signer := sigGenKey(t, "ES256")
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bundle signer"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
		if err != nil {
			t.Fatal(err)
		}
		cert := key
		cert.pub = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if _, err := LoadSnapshot(ctx, signedPaths(t, key, "default"), sigVerification(t, cert, "", "")); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("wrong key rejected", func(t *testing.T) {
		other, _ := sigGenKey(t, "ES256")
		_, err := LoadSnapshot(ctx, signedPaths(t, es, "default"), sigVerification(t, other, "", ""))
		wantBundleErr(t, err, "failed to verify JWT signature")
	})

	t.Run("key of the other type rejected", func(t *testing.T) {
		_, err := LoadSnapshot(ctx, signedPaths(t, es, "default"), sigVerification(t, rs, "", ""))
		wantBundleErr(t, err, "failed to verify JWT signature")
	})

	// --signing-alg of the wrong family for the key is refused when the
	// key is read, before any bundle.
	for _, tc := range []struct {
		key  sigKey
		alg  string
		want string
	}{
		{es, "RS256", "does not fit the key"},
		{rs, "ES256", "does not fit the key"},
		{rs, "HS256", "is not one of"},
		{es, "none", "is not one of"},
	} {
		t.Run("--signing-alg "+tc.alg+" with "+tc.key.name+" refused", func(t *testing.T) {
			_, err := VerificationKey(sigWriteFile(t, "k.pem", tc.key.pub), "", tc.alg)
			wantKeyErr(t, err, tc.want, "--signing-alg")
		})
	}

	// Within a family the algorithm is not checked against the key, so a
	// wrong choice surfaces when the first bundle is verified: every bundle
	// is rejected.
	t.Run("--signing-alg PS256 for an RS256 signature rejects the bundle", func(t *testing.T) {
		_, err := LoadSnapshot(ctx, signedPaths(t, rs, "default"), sigVerification(t, rs, "", "PS256"))
		wantBundleErr(t, err, "failed to verify JWT signature")
	})
	// An ECDSA key has exactly one algorithm (its curve's): ES384 for a
	// P-256 key is refused up front, like RS256 for an ECDSA key.
	t.Run("--signing-alg ES384 for a P-256 key refused", func(t *testing.T) {
		_, err := VerificationKey(sigWriteFile(t, "k.pem", es.pub), "", "ES384")
		wantKeyErr(t, err, "--signing-alg ES384 does not fit")
	})

	t.Run("private keys refused", func(t *testing.T) {
		_, rsaSigner := sigGenKey(t, "RS256")
		pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaSigner.(*rsa.PrivateKey))})
		for _, tc := range []struct {
			name  string
			pem   []byte
			block string
		}{
			{"dev-es256.pem (SEC 1)", es.priv, "EC PRIVATE KEY"},
			{"dev-rs256.pem (PKCS#8)", rs.priv, "PRIVATE KEY"},
			{"PKCS#1 RSA", pkcs1, "RSA PRIVATE KEY"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := VerificationKey(sigWriteFile(t, "k.pem", tc.pem), "", "")
				wantKeyErr(t, err, "--verification-key", `"`+tc.block+`" block is not a public key`, "a private key does not belong on a verifying server")
			})
		}
	})

	// The refusal looks at the first PEM block only: a file that holds the
	// public key followed by the private key is taken, and the whole file,
	// private key included, becomes the verification key material (and,
	// with --config, is written into the OPA configuration).
	t.Run("private key after the public key refused", func(t *testing.T) {
		both := slices.Concat(es.pub, es.priv)
		_, err := VerificationKey(sigWriteFile(t, "k.pem", both), "", "")
		if err == nil {
			t.Fatal("VerificationKey accepts a PEM file holding a public key followed by a private key " +
				"(input: dev-es256.pub.pem + dev-es256.pem concatenated; expected: refused like a lone private key; " +
				"actual: accepted, the private key is kept in the verification config); it checks the first PEM block only")
		}
		wantKeyErr(t, err, "more than one PEM block")
	})

	t.Run("not PEM and missing file refused", func(t *testing.T) {
		_, err := VerificationKey(sigWriteFile(t, "k.pem", []byte("not a key")), "", "")
		wantKeyErr(t, err, "not a PEM file")
		_, err = VerificationKey(filepath.Join(t.TempDir(), "absent.pem"), "", "")
		wantKeyErr(t, err, "--verification-key", "absent.pem")
	})

	// The key id is a label. With --verification-key the configured id is
	// the one OPA looks the key up by (VerificationConfig.KeyID), so the
	// "kid" a bundle was signed under is not consulted: a bundle signed
	// under another key id verifies when the key is right, and is rejected
	// when it is not, whatever the ids.
	t.Run("key id mismatch", func(t *testing.T) {
		opts := sigVerification(t, es, "prod-2026", "")
		if opts.Verification.KeyID != "prod-2026" {
			t.Fatalf("KeyID = %q", opts.Verification.KeyID)
		}
		if _, err := LoadSnapshot(ctx, signedPaths(t, es, "release-key"), opts); err != nil {
			t.Errorf("signed under kid release-key, verified under prod-2026 with the same key: %v", err)
		}
		if _, err := LoadSnapshot(ctx, signedPaths(t, es, "prod-2026"), sigVerification(t, rs, "prod-2026", "")); err == nil {
			t.Error("same key id, wrong key: accepted")
		}
		if got := sigVerification(t, es, "", "").Verification.KeyID; got != DefaultKeyID {
			t.Errorf("default key id = %q, want %q", got, DefaultKeyID)
		}
	})

	t.Run("without a key signatures are not checked", func(t *testing.T) {
		paths := signedPaths(t, es, "default")
		snap, err := LoadSnapshot(ctx, paths, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if snap.Revisions()["registry"] != "reg-1" {
			t.Errorf("revisions = %v", snap.Revisions())
		}
		// Not even a tampered one: without --verification-key nothing is
		// verified.
		reg := sigPlace(t, "tar.gz", "registry", sigRepoPair(t, "1").registry, &es, "default",
			sigEdit("data.json", func(b []byte) []byte { return bytes.Replace(b, []byte(`"CN"`), []byte(`"HK"`), 1) }))
		snap, err = LoadSnapshot(ctx, []string{paths[0], reg}, LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if j := snap.Registry().Authorities["cn.cac"].Jurisdiction; !slices.Equal(j, []string{"HK"}) {
			t.Errorf("jurisdiction = %v, want the tampered [HK]", j)
		}
	})
}
