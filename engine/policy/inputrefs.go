package policy

import (
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// participantsPath is the part of the policy input that costs one object
// per participant to build.
var participantsPath = ast.MustParseRef("input.meeting.participants")

// readsInput reports whether a rule reachable from the entry points may read
// the input document at path: a reference to it or below it, to one of its
// ancestors as a whole (input, input.meeting), or through a variable that
// could select it (input.meeting[k]).
//
// It is decided once per activation from the compiled policy, so that the
// engine builds an expensive part of the input only for a policy that can
// read it. The answer errs on the side of "yes": a false "no" would hide
// part of the input from a policy, a false "yes" only costs time.
func readsInput(c *ast.Compiler, entries []ast.Ref, path ast.Ref) bool {
	// The same walk as the one that keys remembered join-time answers
	// (see walker), with no body skipped: every input path a reachable
	// rule refers to, cut where a key stops being a constant string.
	w := &walker{c: c, seen: map[*ast.Rule]bool{}}
	var rules []*ast.Rule
	for _, ref := range entries {
		rules = append(rules, c.GetRules(ref)...)
	}
	w.walk(rules)
	return w.whole || slices.ContainsFunc(w.paths, func(read ast.Ref) bool { return selects(read, path) })
}

// selects reports whether reading read, an input path of constant keys
// (see walker), may read path: read is path, below it, or an ancestor of
// it (input.meeting, read whole or through a variable key).
func selects(read, path ast.Ref) bool { return read.HasPrefix(path) || path.HasPrefix(read) }
