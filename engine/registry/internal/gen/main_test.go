package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

const sample = `{"3166-2": [
  {"code": "UA-43", "name": "Avtonomna Respublika Krym", "type": "Republic"},
  {"code": "AZ-NX", "name": "Naxçıvan", "type": "Autonomous republic"},
  {"code": "AZ-BAB", "name": "Babək", "parent": "NX", "type": "Rayon"},
  {"code": "GB-LND", "name": "London, City of", "parent": "GB-ENG", "type": "City corporation"},
  {"code": "GB-ENG", "name": "England", "type": "Country"},
  {"code": "XX-A", "parent": "B", "type": "made up, two levels deep"},
  {"code": "XX-B", "parent": "C"},
  {"code": "XX-C"}
]}`

// The output keeps codes and full parent codes, sorted, and nothing of the
// names; it compiles as package geoscope.registry and is opa fmt-clean.
func TestGenerate(t *testing.T) {
	out, err := Generate([]byte(sample), "4.15.0-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"from Debian's iso-codes 4.15.0-1", "(8 codes)", `"XX-A": ["XX-B", "XX-C"],`, "package geoscope.registry",
		`"AZ-BAB": ["AZ-NX"],`, `"AZ-NX": [],`, `"GB-ENG": [],`, `"GB-LND": ["GB-ENG"],`, `"UA-43": [],`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"Krym", "England", "Rayon"} {
		if bytes.Contains(out, []byte(name)) {
			t.Errorf("output carries the source's names (%q)", name)
		}
	}
	if i, j := bytes.Index(out, []byte(`"AZ-BAB"`)), bytes.Index(out, []byte(`"UA-43"`)); i > j {
		t.Error("entries are not sorted")
	}
	rs, err := rego.New(rego.Module("iso3166_2.rego", string(out)), rego.Query(`data.geoscope.registry.iso3166_2["AZ-BAB"][0]`)).Eval(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Expressions[0].Value != "AZ-NX" {
		t.Fatalf("the output does not evaluate: %v %v", rs, err)
	}
	again, err := Generate([]byte(sample), "4.15.0-1")
	if err != nil || !bytes.Equal(out, again) {
		t.Error("two runs differ")
	}
	if _, err := ast.ParseModuleWithOpts("x.rego", string(out), ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
		t.Error(err)
	}
}

func TestGenerateRefusesBadSources(t *testing.T) {
	for name, src := range map[string]string{
		"not JSON":         `{`,
		"no entries":       `{"3166-1": []}`,
		"lower-case code":  `{"3166-2": [{"code": "ua-43"}]}`,
		"country code":     `{"3166-2": [{"code": "UA"}]}`,
		"repeated code":    `{"3166-2": [{"code": "UA-43"}, {"code": "UA-43"}]}`,
		"unknown parent":   `{"3166-2": [{"code": "GB-LND", "parent": "GB-ENG"}]}`,
		"foreign parent":   `{"3166-2": [{"code": "GB-LND", "parent": "FR-IDF"}, {"code": "FR-IDF"}]}`,
		"malformed parent": `{"3166-2": [{"code": "GB-LND", "parent": "E N G"}]}`,
		"own parent":       `{"3166-2": [{"code": "GB-LND", "parent": "LND"}]}`,
		"cycle":            `{"3166-2": [{"code": "GB-LND", "parent": "ENG"}, {"code": "GB-ENG", "parent": "LND"}]}`,
	} {
		if _, err := Generate([]byte(src), "1.0"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Generate([]byte(sample), "1.0\n# injected"); err == nil {
		t.Error("a version with a newline was accepted")
	}
}

// The checked-in file is what the generator makes from the iso-codes
// version it names, when that version is installed here (CI installs
// iso-codes; elsewhere the test is skipped).
func TestCheckedInFileIsGenerated(t *testing.T) {
	const installed = "/usr/share/iso-codes/json/iso_3166-2.json"
	checkedIn, err := os.ReadFile("../../iso3166_2.rego")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`from Debian's iso-codes (\S+)\s`).FindSubmatch(checkedIn)
	if m == nil {
		t.Fatal("the checked-in file does not name its iso-codes version")
	}
	src, err := os.ReadFile(installed)
	if err != nil {
		if os.Getenv("GEOSCOPE_REQUIRE_ISO_CODES") == "1" {
			t.Fatalf("iso-codes is not installed: %v", err)
		}
		t.Skipf("iso-codes is not installed (%v)", err)
	}
	v, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "iso-codes").Output()
	if err != nil {
		t.Skipf("cannot tell the installed iso-codes version: %v", err)
	}
	if version := strings.TrimSpace(string(v)); version != string(m[1]) {
		t.Skipf("iso-codes %s is installed; the checked-in file is from %s (regenerate it to update)", version, m[1])
	}
	out, err := Generate(src, string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, checkedIn) {
		t.Error("engine/registry/iso3166_2.rego differs from what the generator makes of the installed iso-codes; regenerate it (see the generator's usage)")
	}
}
