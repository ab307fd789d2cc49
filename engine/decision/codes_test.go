package decision

import (
	"io/fs"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/geoscope/geoscope/policies"
)

// TestRefusalCodesAreTheDefaultPolicys: every refusal code the default
// policy writes as a literal has its constant here, and every constant is
// written by the policy, so that the list a client compares codes against
// is the policy's.
func TestRefusalCodesAreTheDefaultPolicys(t *testing.T) {
	constants := map[string]bool{
		RefusedUnknownAuthority: true, RefusedNoLegalBasis: true, RefusedUnknownDemand: true,
		RefusedNotTargeted: true, RefusedNoParticipants: true, RefusedAffectsOutside: true,
		RefusedServiceWide: true, RefusedExempt: true, RefusedWithheld: true,
	}
	written := map[string]bool{}
	err := fs.WalkDir(policies.Bundle, "geoscope", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return err
		}
		src, err := fs.ReadFile(policies.Bundle, path)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(path, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		// refused contains refusal(id, demand, "code", reason, affected),
		// and the same in the extensions' rules
		ast.WalkRules(m, func(r *ast.Rule) bool {
			if r.Head.Key == nil {
				return false
			}
			call, ok := r.Head.Key.Value.(ast.Call)
			if !ok || len(call) != 6 || call[0].String() != "refusal" {
				return false
			}
			if code, ok := call[3].Value.(ast.String); ok {
				written[string(code)] = true
			}
			return false
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var missing, unwritten []string
	for c := range written {
		if !constants[c] {
			missing = append(missing, c)
		}
	}
	for c := range constants {
		if !written[c] {
			unwritten = append(unwritten, c)
		}
	}
	slices.Sort(missing)
	slices.Sort(unwritten)
	if len(written) == 0 || len(missing) > 0 || len(unwritten) > 0 {
		t.Errorf("the default policy writes refusal codes %v; without a constant: %v; constants it never writes: %v", slices.Sorted(maps.Keys(written)), missing, unwritten)
	}
}
