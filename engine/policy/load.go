package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/geoscope/geoscope/internal/patherr"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/topdown/print"
)

// LoadOptions control how bundles are read and compiled.
type LoadOptions struct {
	// Verification, when set, requires every bundle to carry a valid
	// signature made with one of its keys.
	Verification *bundle.VerificationConfig
	// Print, when set, receives the output of the policy's print() calls
	// (see LogPrints and PrintTo). When nil, print() calls are compiled
	// out, so evaluation pays nothing for them.
	Print print.Hook
}

// Source is a bundle ready for activation, with the name it is reported
// under.
type Source struct {
	Name   string
	Bundle *bundle.Bundle
}

// LoadPath reads a bundle from a directory or a .tar.gz file. The bundle is
// named after the file or directory ("registry", "policies.tar.gz" →
// "policies"). Test modules (*_test.rego) are never activated: they belong
// to `opa test`, not to the running decision point (see bundleFiles for
// which files are read).
func LoadPath(path string, opts LoadOptions) (Source, error) {
	// A symlink to a directory (a Kubernetes volume, a "current" link a
	// deployment swaps) is read as the directory it points to: OPA's
	// loader walks a root without following it and would find no file.
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Source{}, fmt.Errorf("%w: bundle %s: %v", ErrBundle, path, patherr.Cause(err))
	}
	var signed map[string]bool
	if opts.Verification != nil {
		if info, err := os.Stat(resolved); err == nil && info.IsDir() {
			signed = signedFiles(os.DirFS(resolved), opts.Verification)
		}
	}
	b, err := newLoader(opts, signed).AsBundle(resolved)
	if err != nil {
		if strings.Contains(err.Error(), path) {
			return Source{}, fmt.Errorf("%w: %v", ErrBundle, err)
		}
		return Source{}, fmt.Errorf("%w: bundle %s: %v", ErrBundle, path, err)
	}
	if err := duplicateNamesAt(resolved); err != nil {
		return Source{}, fmt.Errorf("bundle %s: %w", path, err)
	}
	return Source{Name: nameFromPath(path), Bundle: withoutTests(b)}, nil
}

// loadFS reads a bundle tree from fsys (used for the embedded bundles).
func loadFS(fsys fs.FS, name string, opts LoadOptions) (Source, error) {
	var signed map[string]bool
	if opts.Verification != nil {
		signed = signedFiles(fsys, opts.Verification)
	}
	b, err := newLoader(opts, signed).WithFS(fsys).AsBundle(".")
	if err != nil {
		return Source{}, fmt.Errorf("%w: embedded bundle %s: %v", ErrBundle, name, err)
	}
	files, err := bundle.NewFSLoader(fsys)
	if err == nil {
		err = duplicateNames(files)
	}
	if err != nil {
		return Source{}, fmt.Errorf("embedded bundle %s: %w", name, err)
	}
	return Source{Name: name, Bundle: withoutTests(b)}, nil
}

// duplicateNamesAt runs duplicateNames on the bundle directory or tarball
// at path (already read once by the loader, which reports what cannot be
// read).
func duplicateNamesAt(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if info.IsDir() {
		return duplicateNames(bundle.NewDirectoryLoader(path))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	return duplicateNames(bundle.NewTarballLoaderWithBaseURL(f, path))
}

// newLoader returns a bundle loader. With a verification config every
// bundle must carry a valid signature by one of its keys (a missing
// .signatures.json is an error); without one, signatures are not checked,
// since there is nothing to check them against. signed lists the files a
// directory's signature covers (see bundleFiles).
func newLoader(opts LoadOptions, signed map[string]bool) loader.FileLoader {
	// Annotations are read: the default policy's carries the schemas its
	// packages are type-checked against (schemas.go).
	l := loader.NewFileLoader().WithProcessAnnotation(true).WithFilter(bundleFiles(opts.Verification != nil, signed))
	if opts.Verification != nil {
		return l.WithBundleVerificationConfig(opts.Verification)
	}
	return l.WithSkipBundleVerification(true)
}

// bundleFiles is the loader's filter (true skips a file). OPA verifies
// every file it reads against the bundle's signature, and requires every
// file the signature lists, so under verification the loader must read
// exactly what was signed:
//
//   - Test modules are read and verified (`opa build` signs them unless
//     told to --ignore them), then dropped (withoutTests). Without
//     verification they are skipped unread.
//   - Go files and READMEs are not bundle files, but the bundle source
//     directories hold them (the Go files that embed the bundles).
//     `opa build` never signs them, `opa sign --bundle DIR` signs whatever
//     the directory holds; so in a directory they are read when its
//     signature lists them and skipped otherwise.
//   - A tarball is read whole under verification, as OPA reads it: a file
//     added to a signed tarball is rejected.
func bundleFiles(verifying bool, signed map[string]bool) loader.Filter {
	return func(path string, info fs.FileInfo, _ int) bool {
		if info.IsDir() {
			return false
		}
		name := info.Name()
		if strings.HasSuffix(name, "_test.rego") {
			return !verifying
		}
		if strings.HasSuffix(name, ".go") || strings.EqualFold(name, "README.md") {
			if !verifying {
				return true
			}
			// A tarball's entries are named relative to its root, a
			// directory's by the path it was loaded from.
			if signed == nil {
				return false
			}
			return !signed[strings.TrimPrefix(path, "/")] && !signed[path]
		}
		return false
	}
}

// signedFiles is the set of files a directory bundle's signature lists, as
// OPA names them (a directory's files by the directory's path), or an
// empty set when there is no valid signature; the loader then rejects the
// bundle with OPA's own message.
func signedFiles(fsys fs.FS, vc *bundle.VerificationConfig) map[string]bool {
	signed := map[string]bool{}
	raw, err := fs.ReadFile(fsys, ".signatures.json")
	if err != nil {
		return signed
	}
	var sc bundle.SignaturesConfig
	if err := json.Unmarshal(raw, &sc); err != nil {
		return signed
	}
	files, err := bundle.VerifyBundleSignature(sc, vc)
	if err != nil {
		return signed
	}
	for name := range files {
		signed[name] = true
	}
	return signed
}

// withoutTests drops the test modules a verified bundle carried.
func withoutTests(b *bundle.Bundle) *bundle.Bundle {
	b.Modules = slices.DeleteFunc(b.Modules, func(m bundle.ModuleFile) bool {
		return strings.HasSuffix(m.Path, "_test.rego")
	})
	return b
}

// nameFromPath derives a bundle's name from its path.
func nameFromPath(path string) string {
	base := filepath.Base(filepath.Clean(path))
	for _, ext := range []string{".tar.gz", ".tgz"} {
		if strings.HasSuffix(base, ext) {
			return strings.TrimSuffix(base, ext)
		}
	}
	return base
}

// Revision is the bundle's manifest revision, or, when the manifest has
// none, a digest of its content. A digest keeps "which policy made this
// decision" answerable for bundles built without a revision (the embedded
// defaults, a directory being edited).
func Revision(b *bundle.Bundle) string {
	if b.Manifest.Revision != "" {
		return b.Manifest.Revision
	}
	// Module paths depend on where the bundle was loaded from (a directory,
	// a tarball, the embedded copy), so only module content is hashed, in a
	// canonical order.
	h := sha256.New()
	mods := make([][]byte, len(b.Modules))
	for i, m := range b.Modules {
		mods[i] = m.Raw
	}
	slices.SortFunc(mods, bytes.Compare)
	for _, raw := range mods {
		fmt.Fprintf(h, "module %d\n", len(raw))
		h.Write(raw)
	}
	// encoding/json sorts map keys, so this is canonical for the data tree.
	data, _ := json.Marshal(b.Data)
	fmt.Fprintf(h, "data %d\n", len(data))
	h.Write(data)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}
