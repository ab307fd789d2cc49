package policy

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// The join-time answer is usually a function of very little: for the
// default policy, the meeting, its host account, the standing orders that
// target them and the joiner's located country. Thousands of people join
// the same meeting from the same few countries, so the admission entry
// point is evaluated once per distinct combination and its answer reused.
//
// Whether that is sound is decided once per activation, from the compiled
// policy (admissionMemo): the answer is reused only when every rule the
// entry point can reach is deterministic (no time, randomness or network),
// and it is keyed by the values of exactly the input paths those rules can
// read. Data cannot change under a snapshot (its store is never written),
// so equal keys give equal answers. A policy that reads the joiner's id (or
// the whole input) is evaluated every time: such a key never repeats.
//
// The trade-off: a snapshot holds up to 2×memoGeneration answers
// (typically a few hundred bytes each), and a policy whose answers cannot
// be reused pays for a key it cannot use only when the analysis cannot see
// that in advance.

// memoGeneration bounds each of the two generations of remembered answers.
// When the current one is full it becomes the old one and the oldest
// answers are forgotten; an answer found in the old one moves back into
// the current one, so answers in use stay.
const memoGeneration = 4096

// joiningIDPath is the joiner's id: a key holding it never repeats.
var joiningIDPath = ast.MustParseRef("input.joining.id")

// nondeterministic are built-ins whose result depends on more than their
// arguments although OPA does not mark them so: they read the clock when
// no time is given.
var nondeterministic = map[string]bool{
	"io.jwt.decode_verify":                                   true,
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
}

// memo remembers the admission entry point's answers by key.
type memo struct {
	// paths are the input paths the entry point can read, sorted, none a
	// prefix of another.
	paths []ast.Ref

	mu       sync.Mutex
	cur, old map[string]*Output
}

func (m *memo) get(key string) (*Output, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if out, ok := m.cur[key]; ok {
		return out, true
	}
	out, ok := m.old[key]
	if ok {
		m.putLocked(key, out)
	}
	return out, ok
}

func (m *memo) put(key string, out *Output) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putLocked(key, out)
}

func (m *memo) putLocked(key string, out *Output) {
	if len(m.cur) >= memoGeneration {
		m.old, m.cur = m.cur, make(map[string]*Output, memoGeneration)
	}
	m.cur[key] = out
}

// key encodes the values found at m.paths in input. The encoding is
// injective (every value is typed and length-prefixed), so two inputs
// share a key only if they hold the same values at every path.
func (m *memo) key(input ast.Value) string {
	return m.keyFrom(func(p ast.Ref) ast.Value { return lookup(input, p) })
}

// keyFrom is key with the input given by a lookup of the value at a path
// (nil when there is none).
func (m *memo) keyFrom(at func(ast.Ref) ast.Value) string {
	b := make([]byte, 0, 128)
	for _, p := range m.paths {
		b = appendValue(b, at(p))
	}
	return string(b)
}

// lookup is the value at path in input (path[0] is input itself), or nil
// when there is none.
func lookup(v ast.Value, path ast.Ref) ast.Value {
	for _, t := range path[1:] {
		obj, ok := v.(ast.Object)
		if !ok {
			return nil
		}
		e := obj.Get(t)
		if e == nil {
			return nil
		}
		v = e.Value
	}
	return v
}

func appendValue(b []byte, v ast.Value) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, '_')
	case ast.Null:
		return append(b, 'n')
	case ast.Boolean:
		if v {
			return append(b, 't')
		}
		return append(b, 'f')
	case ast.Number:
		return appendText(append(b, '#'), string(v))
	case ast.String:
		return appendText(append(b, 's'), string(v))
	case *ast.Array:
		b = strconv.AppendInt(append(b, '['), int64(v.Len()), 10)
		for i := range v.Len() {
			b = appendValue(b, v.Elem(i).Value)
		}
		return b
	case ast.Set:
		b = strconv.AppendInt(append(b, '{'), int64(v.Len()), 10)
		v.Sorted().Foreach(func(t *ast.Term) { b = appendValue(b, t.Value) })
		return b
	case ast.Object:
		keys := v.Keys()
		slices.SortFunc(keys, func(x, y *ast.Term) int { return x.Value.Compare(y.Value) })
		b = strconv.AppendInt(append(b, '<'), int64(len(keys)), 10)
		for _, k := range keys {
			b = appendValue(b, k.Value)
			b = appendValue(b, v.Get(k).Value)
		}
		return b
	}
	// The input is built from JSON-like values only; anything else is
	// written out whole, still typed and length-prefixed.
	return appendText(append(b, '?'), v.String())
}

func appendText(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	return append(append(b, ':'), s...)
}

// admissionMemo decides whether the admission entry point's answers can be
// reused, and on which input paths they depend; nil when they cannot.
func admissionMemo(ctx context.Context, c *ast.Compiler, store storage.Store, txn storage.Transaction) *memo {
	entry := c.GetRules(admissionQueryRef)
	if len(entry) == 0 {
		return nil
	}
	r := inputReads(ctx, c, store, txn, entry)
	if r.whole || r.nondeterministic {
		return nil
	}
	if slices.ContainsFunc(r.paths, func(read ast.Ref) bool { return selects(read, joiningIDPath) }) {
		return nil
	}
	return &memo{paths: r.paths, cur: map[string]*Output{}, old: map[string]*Output{}}
}

// reads is what the rules reachable from an entry point can read of the
// input, and whether any of them is nondeterministic.
type reads struct {
	// paths are input paths, cut at the first part that is not a constant
	// string (input.meeting.by_country[c] reads input.meeting.by_country).
	paths []ast.Ref
	// whole: the input as a whole may be read (a bare input, or input[x]).
	whole bool
	// nondeterministic: a reachable rule calls a built-in whose result
	// depends on more than its arguments.
	nondeterministic bool
}

// inputReads walks every rule reachable from entry and collects what it
// can read of the input. A rule body that cannot succeed in this snapshot
// is skipped, with what only it reaches: one that requires a rule which
// does not depend on the input at all and is undefined or false with this
// snapshot's data (the default policy's `exempting` when no extension
// exempts anybody). Evaluating such a rule once here is what makes the
// answer depend on less than the rule text mentions. When any reachable
// rule uses `with` (which could make such a rule true after all) no body
// is skipped.
func inputReads(ctx context.Context, c *ast.Compiler, store storage.Store, txn storage.Transaction, entry []*ast.Rule) reads {
	w := &walker{c: c, seen: map[*ast.Rule]bool{}}
	w.walk(entry)
	if w.with {
		return w.reads()
	}
	// Second pass, skipping bodies that cannot succeed.
	constants := map[string]bool{} // ref → undefined or false in this snapshot
	independent := map[*ast.Rule]bool{}
	w2 := &walker{c: c, seen: map[*ast.Rule]bool{}}
	w2.dead = func(e *ast.Expr) bool {
		if e.Negated || len(e.With) > 0 {
			return false
		}
		t, ok := e.Terms.(*ast.Term)
		if !ok {
			return false
		}
		ref, ok := t.Value.(ast.Ref)
		if !ok || !ref.HasPrefix(ast.DefaultRootRef) || !ref.IsGround() {
			return false
		}
		key := ref.String()
		if v, ok := constants[key]; ok {
			return v
		}
		rules := c.GetRulesExact(ref)
		v := len(rules) > 0 && !slices.ContainsFunc(rules, func(r *ast.Rule) bool {
			return len(r.Head.Args) > 0 || !inputIndependent(c, r, independent)
		}) && undefinedOrFalse(ctx, c, store, txn, ref)
		constants[key] = v
		return v
	}
	w2.walk(entry)
	return w2.reads()
}

// undefinedOrFalse evaluates ref in the snapshot.
func undefinedOrFalse(ctx context.Context, c *ast.Compiler, store storage.Store, txn storage.Transaction, ref ast.Ref) bool {
	rs, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(c),
		rego.Store(store),
		rego.Transaction(txn),
	).Eval(ctx)
	if err != nil {
		return false
	}
	if len(rs) == 0 {
		return true
	}
	b, ok := rs[0].Expressions[0].Value.(bool)
	return ok && !b
}

// inputIndependent reports whether r, and every rule it reaches, never
// reads the input and is deterministic.
func inputIndependent(c *ast.Compiler, r *ast.Rule, memo map[*ast.Rule]bool) bool {
	if v, ok := memo[r]; ok {
		return v
	}
	w := &walker{c: c, seen: map[*ast.Rule]bool{}}
	w.walk([]*ast.Rule{r})
	v := !w.whole && len(w.paths) == 0 && !w.nondeterministic && !w.with
	memo[r] = v
	return v
}

// walker collects what reachable rules read.
type walker struct {
	c    *ast.Compiler
	seen map[*ast.Rule]bool
	// dead, when set, tells an expression that makes its body fail in
	// this snapshot.
	dead func(*ast.Expr) bool

	paths            []ast.Ref
	whole            bool
	nondeterministic bool
	with             bool
}

func (w *walker) reads() reads {
	// Sorted, and a path under another one is covered by it.
	slices.SortFunc(w.paths, func(a, b ast.Ref) int { return a.Compare(b) })
	var out []ast.Ref
	for _, p := range w.paths {
		if len(out) > 0 && p.HasPrefix(out[len(out)-1]) {
			continue
		}
		out = append(out, p)
	}
	return reads{paths: out, whole: w.whole, nondeterministic: w.nondeterministic}
}

func (w *walker) walk(rules []*ast.Rule) {
	queue := slices.Clone(rules)
	for len(queue) > 0 {
		r := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if w.seen[r] {
			continue
		}
		w.seen[r] = true
		// The rule and its else branches. A body that cannot succeed is
		// evaluated up to the expression that fails (what comes before it
		// may still raise an error, so what it reads counts); its head is
		// never produced, and the next branch is taken.
		for b := r; b != nil; b = b.Else {
			if i := w.deadAt(b.Body); i >= 0 {
				for _, e := range b.Body[:i] {
					queue = w.visit(e, queue)
				}
				continue
			}
			queue = w.visit(b.Head, queue)
			queue = w.visit(b.Body, queue)
		}
	}
}

// deadAt is the index of the first expression of body that fails in this
// snapshot whatever the input, or -1.
func (w *walker) deadAt(body ast.Body) int {
	if w.dead == nil {
		return -1
	}
	return slices.IndexFunc(body, w.dead)
}

// visit collects the input paths, the rules and the built-ins x refers to,
// and appends the rules not seen yet to queue.
func (w *walker) visit(x any, queue []*ast.Rule) []*ast.Rule {
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.With:
			w.with = true
			return false
		case *ast.Term:
			switch v := x.Value.(type) {
			case ast.Var:
				if v.Equal(ast.InputRootDocument.Value) {
					w.whole = true
				}
				return true
			case ast.Ref:
				w.ref(v, &queue)
				// The head of a ref is not a bare variable; its other
				// terms may hold refs of their own (input.a[input.b]).
				for _, sub := range v[1:] {
					vis.Walk(sub)
				}
				return true
			}
		}
		return false
	})
	vis.Walk(x)
	return queue
}

func (w *walker) ref(ref ast.Ref, queue *[]*ast.Rule) {
	switch {
	case ref.HasPrefix(ast.InputRootRef):
		n := 1
		for n < len(ref) {
			if _, ok := ref[n].Value.(ast.String); !ok {
				break
			}
			n++
		}
		if n == 1 {
			w.whole = true
			return
		}
		w.paths = append(w.paths, ref[:n].Copy())
	case ref.HasPrefix(ast.DefaultRootRef):
		for _, r := range w.c.GetRulesDynamicWithOpts(ref, ast.RulesOptions{IncludeHiddenModules: true}) {
			if !w.seen[r] {
				*queue = append(*queue, r)
			}
		}
	default:
		name := ref.String()
		if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic || nondeterministic[name] {
			w.nondeterministic = true
		}
	}
}
