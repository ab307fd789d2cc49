package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// extensionPackage is where the default policy reads the operator's
// extension rules (docs/policy.md, "Extending the default policy without
// forking it").
var extensionPackage = ast.MustParseRef("data.geoscope.extensions")

// extensionRules are the rules the default policy reads from
// extensionPackage.
var extensionRules = []string{"exempt", "withheld", "refusals"}

// extensionWarnings says what is likely wrong with the extension rules of
// a policy that compiled: the mistakes OPA accepts in silence, or accepts
// only until a second extension file is added.
//
//   - A rule named exempt, withheld or refusals that nothing the entry
//     points evaluate reads, because its file declares another package
//     (geoscope.extensions.counsel, geoscope.extension): the default
//     policy never sees it, and enforcement goes on as if the file were
//     not there. opa check and opa test pass; only a test that goes
//     through data.geoscope.decision would notice.
//   - One of them written as a complete rule (exempt := {...}) in
//     geoscope.extensions: it works alone, but every other extension file
//     adds to the same rule with "contains", and the bundle then fails to
//     compile with OPA's "conflicting rules data.geoscope.extensions.exempt
//     found", which says what conflicts but not why (see conflictHint).
//
// Each warning names the file and the row. Test modules are left out:
// they are not part of what a server activates.
func extensionWarnings(c *ast.Compiler, entries []ast.Ref) []string {
	w := &walker{c: c, seen: map[*ast.Rule]bool{}}
	for _, ref := range entries {
		w.walk(c.GetRules(ref))
	}
	var out []string
	for _, id := range slices.Sorted(maps.Keys(c.Modules)) {
		m := c.Modules[id]
		if strings.HasSuffix(id, "_test.rego") || strings.HasSuffix(m.Package.Path.String(), "_test") {
			continue
		}
		for _, r := range m.Rules {
			name := lastName(r.Head.Ref())
			if !slices.Contains(extensionRules, name) {
				continue
			}
			// The file as OPA's errors name it (a module's id in the
			// compiler is prefixed with its bundle's name).
			at := fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
			read := extensionPackage.Append(ast.StringTerm(name))
			switch {
			case r.Ref().Equal(read) && r.Head.RuleKind() != ast.MultiValue:
				out = append(out, fmt.Sprintf("%s: %s is a complete rule (%s := ...): it works alone, but any other extension file adding to %s "+
					"makes the bundle fail to compile (conflicting rules %s); write it as a partial set rule, %s contains ... if ...",
					at, name, name, name, read, name))
			case !r.Ref().Equal(read) && !w.seen[r]:
				out = append(out, fmt.Sprintf("%s: %s in package %s is never read: the default policy reads %s only from package geoscope.extensions, "+
					"so this rule changes no decision; declare package geoscope.extensions in the file (helpers may stay in a package of their own)",
					at, name, strings.TrimPrefix(m.Package.Path.String(), "data."), name))
			}
		}
	}
	return out
}

// lastName is the last term of a rule's head reference as a name, or "".
func lastName(ref ast.Ref) string {
	if len(ref) == 0 {
		return ""
	}
	switch v := ref[len(ref)-1].Value.(type) {
	case ast.Var:
		return string(v)
	case ast.String:
		return string(v)
	}
	return ""
}

// conflictHint is what to add to a compile error of OPA's that names an
// extension rule as conflicting: the error says that the rules conflict,
// not why, and the cause is one extension file writing the rule as a
// complete rule (exempt := ...) beside another that adds to it with
// "contains". "" for any other error.
func conflictHint(err error) string {
	msg := err.Error()
	for _, name := range extensionRules {
		if strings.Contains(msg, "conflicting rules "+extensionPackage.Append(ast.StringTerm(name)).String()+" found") {
			return fmt.Sprintf(" (every extension file must add to %s as a partial set rule, %s contains ... if ...; a file defining it with := or = conflicts with the others)", name, name)
		}
	}
	return ""
}

// problemsRef is the default policy's list of malformed extension
// entries for an input.
var problemsRef = ast.MustParseRef("data.geoscope.extension_problems")

// ExtensionProblems evaluates data.geoscope.extension_problems with input:
// what is wrong with the entries the extension rules returned for it (an
// entry with a misspelt key, which names no order and withholds nothing),
// sorted; nil when nothing is, or when the policy does not define the
// rule. Nothing on the decision path calls it: it is for authors trying a
// policy (geoscope decide), at the cost of a second evaluation.
func (s *Snapshot) ExtensionProblems(ctx context.Context, input ast.Value) ([]string, error) {
	if s.problems == nil {
		return nil, nil
	}
	rs, err := s.problems.Eval(ctx, rego.EvalParsedInput(input), rego.EvalTransaction(s.txn))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	var out []string
	for _, r := range rs {
		for _, e := range r.Expressions {
			items, _ := e.Value.([]any)
			for _, item := range items {
				if text, ok := item.(string); ok {
					out = append(out, text)
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
