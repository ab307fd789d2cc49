package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// ParticipantsPath is the part of the policy input that costs one object
// per participant to build.
var ParticipantsPath = ast.MustParseRef("input.meeting.participants")

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
	seen := map[*ast.Rule]bool{}
	var queue []*ast.Rule
	for _, ref := range entries {
		queue = append(queue, c.GetRules(ref)...)
	}
	for len(queue) > 0 {
		r := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[r] {
			continue
		}
		seen[r] = true
		if refersTo(r, path) {
			return true
		}
		for dep := range c.Graph.Dependencies(r) {
			if d, ok := dep.(*ast.Rule); ok && !seen[d] {
				queue = append(queue, d)
			}
		}
	}
	return false
}

// refersTo reports whether a rule (with its else branches) refers to path.
func refersTo(r *ast.Rule, path ast.Ref) bool {
	found := false
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		if found {
			return true
		}
		t, ok := x.(*ast.Term)
		if !ok {
			return false
		}
		switch v := t.Value.(type) {
		case ast.Var:
			// A bare "input": the whole document.
			found = v.Equal(path[0].Value)
			return true
		case ast.Ref:
			if found = overlaps(v, path); !found {
				// The head of a ref is not a bare variable; its other
				// terms may hold refs of their own (input.a[input.b]).
				for _, sub := range v[1:] {
					vis.Walk(sub)
				}
			}
			return true
		}
		return false
	})
	vis.Walk(r)
	return found
}

// overlaps reports whether ref may select path, an ancestor or a
// descendant of it.
func overlaps(ref, path ast.Ref) bool {
	if len(ref) == 0 || !ref[0].Equal(path[0]) {
		return false
	}
	for i := 1; i < len(ref) && i < len(path); i++ {
		if _, ok := ref[i].Value.(ast.String); !ok {
			return true // a variable or a computed key could select it
		}
		if !ref[i].Equal(path[i]) {
			return false
		}
	}
	return true
}
