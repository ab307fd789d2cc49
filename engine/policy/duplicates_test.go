package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A member named twice in one object of a data file is refused, naming
// where in data it is; OPA's loader alone keeps the last one silently.
func TestDuplicateNamesRefused(t *testing.T) {
	files := map[string]string{
		".manifest": `{"roots": ["authorities", "orders"]}`,
		// The second cn.cac widens the jurisdiction to HK and TW.
		"authorities/data.json": `{"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]},
			"cn.cac": {"name": "CAC", "jurisdiction": ["CN", "HK", "TW"]}}`,
		"orders/data.json": `{}`,
	}
	dir := writeBundle(t, files)
	tarball := filepath.Join(t.TempDir(), "registry.tar.gz")
	writeTarball(t, tarball, files)
	for name, p := range map[string]string{"directory": dir, "tarball": tarball} {
		_, err := LoadPath(p, LoadOptions{})
		if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), "authorities/data.json: authorities.cn.cac is given twice") {
			t.Errorf("%s: %v; want ErrBundle naming authorities.cn.cac", name, err)
		}
	}

	for _, c := range []struct{ file, raw, want string }{
		{"orders/data.json", `{"A": {"authority": "x", "expires": "2026-01-01", "expires": "2027-01-01"}}`, "orders.A.expires"},
		{"/data.json", `{"orders": {"A": {}, "B": {}, "A": {}}}`, "orders.A"},
		{"data.json", `{"a": 1, "a": 1}`, "a"},
		// Invalid UTF-8 before the second name, which OPA's decoder takes.
		{"authorities/data.json", "{\"cn.cac\": {\"notes\": \"\xff\"}, \"cn.cac\": {}}", "authorities.cn.cac"},
	} {
		err := duplicateName(c.file, []byte(c.raw))
		if !errors.Is(err, ErrBundle) || !strings.Contains(err.Error(), " "+c.want+" is given twice") {
			t.Errorf("%s %s: %v; want it to name %s", c.file, c.raw, err, c.want)
		}
	}
	// Names alike but for case, or alike once unescaped, in different
	// objects, and invalid JSON (the loader's to report) pass this check.
	for _, raw := range []string{`{"a": 1, "A": 1}`, `{"a": {"x": 1}, "b": {"x": 1}}`, `{"a": 1,`} {
		if err := duplicateName("data.json", []byte(raw)); err != nil {
			t.Errorf("%s: %v", raw, err)
		}
	}
	if err := duplicateName("data.json", []byte(`{"a": 1, "\u0061": 2}`)); err == nil {
		t.Errorf(`"a" and "\u0061" are the same name: not refused`)
	}
}

func writeTarball(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkDuplicateNames is the check over the orders of a 100,000-order
// registry's data.json, once per activation from files.
func BenchmarkDuplicateNames(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 100_000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"ORD-%06d": {"authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m-%d"]}, "legal_basis": "Art. 1 of the Example Law", "received": "2026-06-01"}`, i, i)
	}
	sb.WriteString("}")
	raw := []byte(sb.String())
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := duplicateName("orders/data.json", raw); err != nil {
			b.Fatal(err)
		}
	}
}
