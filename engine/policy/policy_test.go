package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildRejects(t *testing.T) {
	ctx := context.Background()
	registry := "../../bundles/registry"
	cases := []struct {
		name  string
		paths func(t *testing.T) []string
		want  error
		text  string
	}{
		{"no policy", func(*testing.T) []string { return []string{registry} }, ErrBundle, "no bundle defines data.geoscope.decision"},
		{"missing path", func(*testing.T) []string { return []string{"does-not-exist"} }, ErrBundle, "does-not-exist"},
		{"parse error", func(t *testing.T) []string {
			return []string{writeBundle(t, map[string]string{"p.rego": "package geoscope\ndecision := {", ".manifest": `{"roots": ["geoscope"]}`}), registry}
		}, ErrBundle, "rego_parse_error"},
		{"compile error", func(t *testing.T) []string {
			return []string{writeBundle(t, map[string]string{"p.rego": "package geoscope\ndecision := x", ".manifest": `{"roots": ["geoscope"]}`}), registry}
		}, ErrBundle, "var x is unsafe"},
		{"overlapping roots", func(t *testing.T) []string {
			return []string{"../../policies", writeBundle(t, map[string]string{"orders/data.json": `{}`, ".manifest": `{"roots": ["orders"]}`}), registry}
		}, ErrBundle, "overlap"},
		{"malformed registry", func(t *testing.T) []string {
			return []string{"../../policies", writeBundle(t, map[string]string{"authorities/data.json": `{"cn": {"jurisdiction": "CN"}}`, ".manifest": `{"roots": ["authorities", "orders"]}`})}
		}, ErrRegistry, "authorities.cn.jurisdiction: jurisdiction must be an array"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSnapshot(ctx, tc.paths(t), LoadOptions{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err = %v, want %v containing %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestSnapshotFromPathsAndDefaultsAgree(t *testing.T) {
	ctx := context.Background()
	fromDirs, err := LoadSnapshot(ctx, []string{"../../policies", "../../bundles/registry"}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := LoadSnapshot(ctx, nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Same content, same revisions: the embedded bundles are the
	// directories, minus tests.
	if a, b := fromDirs.Revisions(), embedded.Revisions(); a["policies"] != b["policies"] || a["registry"] != b["registry"] || a["policies"] == "" {
		t.Errorf("revisions differ: dirs %v, embedded %v", a, b)
	}
	if _, ok := embedded.Registry().Authorities["cn.cac"]; !ok {
		t.Error("example registry has no cn.cac")
	}
}

func TestManifestRevisionWins(t *testing.T) {
	dir := writeBundle(t, map[string]string{"p.rego": "package geoscope\ndecision := {}", ".manifest": `{"roots": ["geoscope"], "revision": "v42"}`})
	snap, err := LoadSnapshot(context.Background(), []string{dir}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Revisions()[filepath.Base(dir)]; got != "v42" {
		t.Errorf("revision = %q", got)
	}
}

func TestNameFromPath(t *testing.T) {
	for in, want := range map[string]string{"policies": "policies", "/x/registry/": "registry", "dist/policy.tar.gz": "policy", "b.tgz": "b"} {
		if got := nameFromPath(in); got != want {
			t.Errorf("nameFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// The bundle holding the default policy and an extension file: the
// extension's packages are type-checked against the input schema, through
// the default policy's annotation, as `opa check --schema` does.
func TestExtensionsAreTypeChecked(t *testing.T) {
	withExtension := func(t *testing.T, src string) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS("../../policies")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "geoscope", "extensions"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "geoscope", "extensions", "hosts.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	const misspelt = "package geoscope.extensions\n\nexempt contains input.joining.id if input.joining.rol == \"host\"\n"
	_, err := LoadSnapshot(context.Background(), []string{withExtension(t, misspelt), "../../bundles/registry"}, LoadOptions{})
	if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), "rego_type_error: undefined ref: input.joining.rol") || !strings.Contains(err.Error(), "hosts.rego:3") {
		t.Errorf("an extension reading input.joining.rol: %v; want a type error naming the file, the line and the member", err)
	}
	spelt := strings.Replace(misspelt, ".rol ", ".role ", 1)
	if _, err := LoadSnapshot(context.Background(), []string{withExtension(t, spelt), "../../bundles/registry"}, LoadOptions{}); err != nil {
		t.Errorf("the same extension reading input.joining.role: %v", err)
	}
	// A policy of one's own, without the default policy's annotation, is
	// not typed (as with opa check).
	own := writeBundle(t, map[string]string{
		"p.rego":    "package geoscope\n\ndecision := {\"actions\": [], \"refused\": []} if input.meeting.nonesuch\n",
		".manifest": `{"roots": ["geoscope"]}`,
	})
	if _, err := LoadSnapshot(context.Background(), []string{own, "../../bundles/registry"}, LoadOptions{}); err != nil {
		t.Errorf("a policy without schema annotations: %v", err)
	}
}

// The embedded schemas are those policy authors check against.
func TestEmbeddedSchemasAreTheDocumented(t *testing.T) {
	for _, name := range []string{"input.json", "registry/authorities.json", "registry/orders.json"} {
		embedded, err := schemaFiles.ReadFile("schemas/" + name)
		if err != nil {
			t.Fatal(err)
		}
		documented, err := os.ReadFile(filepath.Join("../../docs/schemas", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(embedded) != string(documented) {
			t.Errorf("engine/policy/schemas/%s differs from docs/schemas/%s: copy the documented one", name, name)
		}
	}
	entries, err := os.ReadDir("../../docs/schemas/registry")
	if err != nil || len(entries) != 2 {
		t.Errorf("docs/schemas/registry holds %d files (%v), want the two embedded", len(entries), err)
	}
}

// BenchmarkTypeCheck is what a policy from a bundle service costs at
// activation on top of OPA's own compile: the default policy compiled
// again, against the schemas.
func BenchmarkTypeCheck(b *testing.B) {
	src, err := LoadPath("../../policies", LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	c := ast.NewCompiler()
	if c.Compile(src.Bundle.ParsedModules(src.Name)); c.Failed() {
		b.Fatal(c.Errors)
	}
	modules := c.Modules
	for b.Loop() {
		if err := typeCheck(modules); err != nil {
			b.Fatal(err)
		}
	}
}
