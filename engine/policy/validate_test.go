package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A policy bundle of the operator's own: a decision and nothing else, in
// particular no registry validation rules.
var customPolicy = map[string]string{
	".manifest":       `{"roots": ["geoscope"]}`,
	"geoscope/p.rego": "package geoscope\n\ndecision := {\"actions\": set(), \"refused\": set()}\n",
}

// badJurisdiction is a registry the built-in rules reject three times over:
// a lower-case code and a reserved one.
func badJurisdiction(t *testing.T) string {
	return writeBundle(t, map[string]string{
		".manifest":             `{"roots": ["authorities", "orders"]}`,
		"authorities/data.json": `{"ru.rkn": {"name": "Roskomnadzor", "jurisdiction": ["RU", "ru", "UK"]}}`,
		"orders/data.json":      `{}`,
	})
}

func wantRegistryErr(t *testing.T, err error, texts ...string) {
	t.Helper()
	if !errors.Is(err, ErrRegistry) {
		t.Fatalf("err = %v, want ErrRegistry", err)
	}
	for _, text := range texts {
		if !strings.Contains(err.Error(), text) {
			t.Errorf("error %q does not mention %q", err, text)
		}
	}
}

// The validation rules are the engine's: a policy bundle without them, or
// one that tries to switch them off, still has the registry validated.
func TestBuiltinValidationWhateverThePolicy(t *testing.T) {
	ctx := context.Background()
	with := func(extra map[string]string) map[string]string {
		files := map[string]string{}
		for k, v := range customPolicy {
			files[k] = v
		}
		for k, v := range extra {
			files[k] = v
		}
		return files
	}
	for name, policy := range map[string]map[string]string{
		"no validation rules": customPolicy,
		"violations redefined as empty": with(map[string]string{
			"geoscope/registry/v.rego": "package geoscope.registry\n\nviolations := set()\n\nvalid := true\n",
		}),
		"rules' own names redefined": with(map[string]string{
			"geoscope/registry/v.rego": "package geoscope.registry\n\niso3166_alpha2 := {\"RU\", \"ru\", \"UK\"}\n\nsuspect_authorities := {}\n",
		}),
		"data under the rules' package": with(map[string]string{
			"geoscope/registry/data.json": `{"iso3166_alpha2": ["RU", "ru", "UK"], "suspect_authorities": {}}`,
		}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadSnapshot(ctx, []string{writeBundle(t, policy), badJurisdiction(t)}, LoadOptions{})
			wantRegistryErr(t, err, "2 violations",
				`authorities.ru.rkn.jurisdiction[1]: "ru" is not an ISO 3166-1 alpha-2 code; codes are upper case: "RU"`,
				`authorities.ru.rkn.jurisdiction[2]: "UK" is not an assigned ISO 3166-1 alpha-2 code`)
		})
	}

	// The default policy no longer carries the rules; the engine does.
	t.Run("default policy", func(t *testing.T) {
		_, err := LoadSnapshot(ctx, []string{"../../policies", badJurisdiction(t)}, LoadOptions{})
		wantRegistryErr(t, err, `jurisdiction[1]: "ru"`)
	})

	// Bundles activated by another loader (OPA's bundle plugin) are
	// validated the same way.
	t.Run("FromStore", func(t *testing.T) {
		compiler, err := ast.CompileModules(map[string]string{"p.rego": customPolicy["geoscope/p.rego"]})
		if err != nil {
			t.Fatal(err)
		}
		data := map[string]any{"authorities": map[string]any{
			"ru.rkn": map[string]any{"name": "Roskomnadzor", "jurisdiction": []any{"RU", "ru", "UK"}},
		}}
		_, err = FromStore(ctx, compiler, data, map[string]string{"policies": "1"}, LoadOptions{})
		wantRegistryErr(t, err, `jurisdiction[1]: "ru"`, `jurisdiction[2]: "UK"`)
	})

	t.Run("valid registry accepted", func(t *testing.T) {
		if _, err := LoadSnapshot(ctx, []string{writeBundle(t, customPolicy), "../../bundles/registry"}, LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

// A policy bundle may add violations of its own (partial rules of
// data.geoscope.registry.violations); they reject a registry the built-in
// rules accept, and are reported with the built-in ones.
func TestPolicyAddsViolations(t *testing.T) {
	ctx := context.Background()
	policy := map[string]string{
		".manifest":       `{"roots": ["geoscope"]}`,
		"geoscope/p.rego": customPolicy["geoscope/p.rego"],
		// Orders must cite a letter reference: a house rule.
		"geoscope/registry/house.rego": `package geoscope.registry

violations contains {"path": sprintf("orders.%s.legal_basis", [id]), "message": "must cite a letter reference (ref. ...)"} if {
	some id, o in data.orders
	not contains(o.legal_basis, "ref.")
}
`,
	}
	// The example registry's orders cite no reference.
	_, err := LoadSnapshot(ctx, []string{writeBundle(t, policy), "../../bundles/registry"}, LoadOptions{})
	wantRegistryErr(t, err, "2 violations",
		"orders.CN-2020-0601.legal_basis: must cite a letter reference (ref. ...)",
		"orders.CN-2020-0602.legal_basis: must cite a letter reference (ref. ...)")

	// With a registry that also breaks a built-in rule, both are reported.
	bad := writeBundle(t, map[string]string{
		".manifest":             `{"roots": ["authorities", "orders"]}`,
		"authorities/data.json": `{"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}}`,
		"orders/data.json":      `{"O-1": {"authority": "cn.cac", "demands": ["ban_user"], "targets": {"meetings": ["m"]}, "legal_basis": "letter"}}`,
	})
	_, err = LoadSnapshot(ctx, []string{writeBundle(t, policy), bad}, LoadOptions{})
	wantRegistryErr(t, err, "2 violations",
		"orders.O-1.demands[0]: unknown demand",
		"orders.O-1.legal_basis: must cite a letter reference")

	// Added rules that fail to evaluate reject the registry: an unchecked
	// registry is never activated.
	policy["geoscope/registry/house.rego"] = `package geoscope.registry

one := 1

one := 2

violations contains {"path": "x", "message": "y"} if one == 3
`
	_, err = LoadSnapshot(ctx, []string{writeBundle(t, policy), "../../bundles/registry"}, LoadOptions{})
	wantRegistryErr(t, err, "evaluating data.geoscope.registry.violations", "conflict")

	// Added rules of another shape than a set reject the registry too: as
	// a partial object, they read as no violations at all.
	for name, rule := range map[string]string{
		"a partial object": `violations[sprintf("orders.%s.legal_basis", [id])] := "must cite a letter reference" if {
	some id, o in data.orders
	not contains(o.legal_basis, "ref.")
}`,
		"a boolean": `violations := true`,
	} {
		policy["geoscope/registry/house.rego"] = "package geoscope.registry\n\n" + rule + "\n"
		_, err = LoadSnapshot(ctx, []string{writeBundle(t, policy), "../../bundles/registry"}, LoadOptions{})
		if err == nil {
			t.Errorf("house rules as %s: the registry was accepted", name)
			continue
		}
		wantRegistryErr(t, err, "data.geoscope.registry.violations must be a set")
	}

	// Entries of another shape reject the registry, and say what they are
	// (they printed as "1: <nil>").
	for name, entry := range map[string]string{
		"a path that is a number": `{"path": 1}`,
		"msg for message":         `{"path": "x", "msg": "y"}`,
		"a string":                `"orders are wrong"`,
	} {
		policy["geoscope/registry/house.rego"] = "package geoscope.registry\n\nviolations contains " + entry + "\n"
		_, err = LoadSnapshot(ctx, []string{writeBundle(t, policy), "../../bundles/registry"}, LoadOptions{})
		if err == nil || strings.Contains(err.Error(), "<nil>") {
			t.Errorf("an entry %s: %v; want the registry rejected, saying what the entry is", name, err)
			continue
		}
		wantRegistryErr(t, err, `an entry is not a {"path": string, "message": string} object`)
	}
}

// The built-in rules compile (they are embedded; a mistake there would
// reject every registry).
func TestBuiltinValidationCompiles(t *testing.T) {
	c, err := builtinValidation()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.GetRulesForVirtualDocument(validationRef)) == 0 {
		t.Fatalf("the built-in rules define no %s", validationQuery)
	}
}

// An authority or order id with a control character inside is refused by
// the engine (the validation rules refuse empty and padded ids).
func TestRegistryIDsWithControlCharacters(t *testing.T) {
	// Inside an id, and as its first or last character (which trimming
	// spaces, as the rules do, leaves).
	for _, tc := range []struct{ root, data string }{
		{"authorities", `{"authorities": {"cn\u0000cac": {"name": "CAC", "jurisdiction": ["CN"]}}, "orders": {}}`},
		{"authorities", `{"authorities": {"\u0007cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}}, "orders": {}}`},
		{"orders", `{"authorities": {"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}}, "orders": {"O\u00071": {"authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x"}}}`},
		{"orders", `{"authorities": {"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}}, "orders": {"\u0001O1": {"authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x"}}}`},
		{"orders", `{"authorities": {"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}}, "orders": {"O1\u007f": {"authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x"}}}`},
	} {
		reg := writeBundle(t, map[string]string{".manifest": `{"roots": ["authorities", "orders"]}`, "data.json": tc.data})
		_, err := LoadSnapshot(context.Background(), []string{"../../policies", reg}, LoadOptions{})
		wantRegistryErr(t, err, tc.root+".", "contains a control character")
	}
}
