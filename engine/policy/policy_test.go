package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		if got := NameFromPath(in); got != want {
			t.Errorf("NameFromPath(%q) = %q, want %q", in, got, want)
		}
	}
}
