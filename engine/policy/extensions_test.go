package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withExtensions is the default policy bundle with extension files added
// under geoscope/extensions (name → source).
func withExtensions(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../policies")); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		p := filepath.Join(dir, "geoscope", "extensions", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const counselRule = `
import data.geoscope.people

exempt contains person.id if {
	some person in people.everyone
	person.attributes.legal_counsel == true
}
`

// An extension file in a package the default policy does not read loads
// (OPA accepts it) but changes nothing: the snapshot warns, naming the
// file, the row, the package and the one to declare.
func TestExtensionInAnotherPackageWarns(t *testing.T) {
	for _, pkg := range []string{"geoscope.extensions.counsel", "geoscope.extension", "geoscope"} {
		t.Run(pkg, func(t *testing.T) {
			dir := withExtensions(t, map[string]string{"counsel.rego": "package " + pkg + "\n" + counselRule})
			snap, err := LoadSnapshot(context.Background(), []string{dir, "../../bundles/registry"}, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ws := snap.Warnings()
			if len(ws) != 1 {
				t.Fatalf("warnings %q, want one", ws)
			}
			for _, want := range []string{"counsel.rego:5", "exempt in package " + pkg + " is never read", "declare package geoscope.extensions"} {
				if !strings.Contains(ws[0], want) {
					t.Errorf("warning %q does not say %q", ws[0], want)
				}
			}
		})
	}
}

// The same rule where the default policy reads it, and a helper package
// whose rule named exempt an extension reads, draw no warning; nor does
// the default policy alone, or the shipped examples.
func TestExtensionsWhereTheyAreReadDoNotWarn(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no extension": nil,
		"extension":    {"counsel.rego": "package geoscope.extensions\n" + counselRule},
		"helper package read by an extension": {
			"helper.rego":  "package geoscope.ext_ours\n" + counselRule,
			"counsel.rego": "package geoscope.extensions\n\nexempt contains id if some id in data.geoscope.ext_ours.exempt\n",
		},
	} {
		t.Run(name, func(t *testing.T) {
			snap, err := LoadSnapshot(context.Background(), []string{withExtensions(t, files), "../../bundles/registry"}, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if ws := snap.Warnings(); len(ws) != 0 {
				t.Errorf("warnings %q, want none", ws)
			}
		})
	}
	examples, err := filepath.Glob("../../docs/extensions/*")
	if err != nil || len(examples) == 0 {
		t.Fatalf("no worked examples (%v)", err)
	}
	for _, ex := range examples {
		dir := withExtensions(t, nil)
		if err := os.CopyFS(dir, os.DirFS(ex)); err != nil {
			t.Fatal(err)
		}
		snap, err := LoadSnapshot(context.Background(), []string{dir, "../../bundles/registry"}, LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", ex, err)
		}
		if ws := snap.Warnings(); len(ws) != 0 {
			t.Errorf("%s: warnings %q, want none", ex, ws)
		}
	}
}

// exempt written as a complete rule works alone, with a warning that it
// will not combine; beside a file adding to exempt with contains, the
// bundle is rejected with OPA's error and what to do about it.
func TestCompleteExtensionRule(t *testing.T) {
	const complete = "package geoscope.extensions\n\nexempt := {\"p1\"}\n"
	snap, err := LoadSnapshot(context.Background(), []string{withExtensions(t, map[string]string{"list.rego": complete}), "../../bundles/registry"}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ws := snap.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], "list.rego:3: exempt is a complete rule") || !strings.Contains(ws[0], "exempt contains ... if ...") {
		t.Errorf("warnings %q, want one naming list.rego:3 and the partial set rule to write", ws)
	}

	both := withExtensions(t, map[string]string{"list.rego": complete, "counsel.rego": "package geoscope.extensions\n" + counselRule})
	_, err = LoadSnapshot(context.Background(), []string{both, "../../bundles/registry"}, LoadOptions{})
	if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), "conflicting rules data.geoscope.extensions.exempt found") ||
		!strings.Contains(err.Error(), "every extension file must add to exempt as a partial set rule") {
		t.Errorf("a complete exempt beside a partial one: %v; want OPA's conflict error and the rule to write", err)
	}
	// Any other compile error is left as OPA says it.
	if h := conflictHint(errors.New("conflicting rules data.geoscope.decision found")); h != "" {
		t.Errorf("hint %q for a conflict outside the extension rules", h)
	}
}
