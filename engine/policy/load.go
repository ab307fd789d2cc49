package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/loader"
)

// LoadOptions control how bundles are read.
type LoadOptions struct {
	// Verification, when set, requires every bundle to carry a valid
	// signature made with one of its keys.
	Verification *bundle.VerificationConfig
}

// Source is a bundle ready for activation, with the name it is reported
// under.
type Source struct {
	Name   string
	Bundle *bundle.Bundle
}

// LoadPath reads a bundle from a directory or a .tar.gz file. The bundle is
// named after the file or directory ("registry", "policies.tar.gz" →
// "policies"). Test files (*_test.rego) are skipped: they belong to CI, not
// to the running decision point.
func LoadPath(path string, opts LoadOptions) (Source, error) {
	// A symlink to a directory (a Kubernetes volume, a "current" link a
	// deployment swaps) is read as the directory it points to: OPA's
	// loader walks a root without following it and would find no file.
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Source{}, fmt.Errorf("%w: bundle %s: %v", ErrBundle, path, unwrapPathError(err))
	}
	b, err := newLoader(opts).AsBundle(resolved)
	if err != nil {
		if strings.Contains(err.Error(), path) {
			return Source{}, fmt.Errorf("%w: %v", ErrBundle, err)
		}
		return Source{}, fmt.Errorf("%w: bundle %s: %v", ErrBundle, path, err)
	}
	return Source{Name: NameFromPath(path), Bundle: b}, nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// LoadFS reads a bundle tree from fsys (used for the embedded bundles).
func LoadFS(fsys fs.FS, name string, opts LoadOptions) (Source, error) {
	b, err := newLoader(opts).WithFS(fsys).AsBundle(".")
	if err != nil {
		return Source{}, fmt.Errorf("%w: embedded bundle %s: %v", ErrBundle, name, err)
	}
	return Source{Name: name, Bundle: b}, nil
}

// newLoader returns a bundle loader. With a verification config every
// bundle must carry a valid signature by one of its keys (a missing
// .signatures.json is an error); without one, signatures are not checked,
// since there is nothing to check them against.
func newLoader(opts LoadOptions) loader.FileLoader {
	l := loader.NewFileLoader().WithFilter(skipNonBundleFiles)
	if opts.Verification != nil {
		return l.WithBundleVerificationConfig(opts.Verification)
	}
	return l.WithSkipBundleVerification(true)
}

// skipNonBundleFiles keeps tests and Go sources (the bundle directories hold
// the Go files that embed them) out of the activated bundle.
func skipNonBundleFiles(_ string, info fs.FileInfo, _ int) bool {
	if info.IsDir() {
		return false
	}
	name := info.Name()
	return strings.HasSuffix(name, "_test.rego") || strings.HasSuffix(name, ".go") || strings.EqualFold(name, "README.md")
}

// NameFromPath derives a bundle's name from its path.
func NameFromPath(path string) string {
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
