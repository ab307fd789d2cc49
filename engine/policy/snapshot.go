// Package policy evaluates the operator's Rego policy with embedded OPA.
//
// A Snapshot is one activated set of bundles: a private in-memory store
// holding exactly their data, the compiled policy, the prepared query, and a
// typed, indexed copy of the registry. Snapshots are immutable. Reloading
// builds a new one and swaps it in whole, so every decision is made with one
// complete set of bundles (old or new, never a mix) and the Go guard checks
// actions against the same registry the policy saw.
package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/print"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/reuse"
)

// Entry points of the policy.
const (
	// Query decides demands against a meeting.
	Query = "data.geoscope.decision"
	// AdmissionQuery answers the join-time question alone.
	AdmissionQuery = "data.geoscope.admission"
)

var (
	queryRef          = ast.MustParseRef(Query)
	admissionQueryRef = ast.MustParseRef(AdmissionQuery)
)

// Snapshot is an immutable, ready-to-evaluate set of bundles.
type Snapshot struct {
	query rego.PreparedEvalQuery
	// admission is nil when the policy defines no admission entry point.
	admission *rego.PreparedEvalQuery
	// txn is one read transaction shared by every evaluation. The store is
	// never written after the snapshot is built, so nothing waits on it,
	// and each evaluation is spared opening and closing its own.
	txn       storage.Transaction
	registry  *registry.Registry
	revisions map[string]string
	activated time.Time
	// readsParticipants is whether a rule reachable from an entry point
	// may read input.meeting.participants (see readsInput).
	readsParticipants bool
	// admissionMemo remembers the admission entry point's answers (see
	// memo.go); nil when they cannot be reused.
	admissionMemo *memo
	// problems lists what is wrong with the extension rules' entries for
	// an input (data.geoscope.extension_problems); nil when the policy
	// does not define it.
	problems *rego.PreparedEvalQuery
	// extensionWarnings are the extension rules the policy has in a form
	// that compiles but does not do what was meant (see
	// extensionWarnings).
	extensionWarnings []string
}

// AdmissionKey reports whether the admission entry point's answers are
// reused, and the input paths they are keyed by (see memo.go).
func (s *Snapshot) AdmissionKey() (paths []string, reused bool) {
	if s.admissionMemo == nil {
		return nil, false
	}
	for _, p := range s.admissionMemo.paths {
		paths = append(paths, p.String())
	}
	return paths, true
}

// ReadsParticipants reports whether the policy may read
// input.meeting.participants, one object per participant. When it cannot,
// the engine does not build it: a policy that works on by_country pays
// nothing for it.
func (s *Snapshot) ReadsParticipants() bool { return s.readsParticipants }

// Registry is the registry the policy evaluates against.
func (s *Snapshot) Registry() *registry.Registry { return s.registry }

// Revisions maps each bundle name to its revision. The map is shared by
// every decision made with the snapshot (a copy per decision was a third
// of an untargeted admission's allocations): it must not be modified.
func (s *Snapshot) Revisions() map[string]string { return s.revisions }

// Warnings describe what is likely wrong with a snapshot that is valid:
// it cannot enforce anything (no registry), or an extension rule is in a
// package the default policy does not read, or written so that it will
// not combine with other extension files. Empty when nothing is.
func (s *Snapshot) Warnings() []string {
	var out []string
	if len(s.registry.Authorities) == 0 {
		out = append(out, "the bundles hold no authorities (data.authorities): no standing order applies and every submitted order is refused; is the registry bundle missing?")
	}
	return append(out, s.extensionWarnings...)
}

// Activated is when the snapshot was built.
func (s *Snapshot) Activated() time.Time { return s.activated }

// build activates the bundles into a fresh store, compiles them, and
// prepares the decision query. Bundles must have disjoint roots. The result
// is not used anywhere until build returns without error, which is what
// makes a failed reload harmless. Of opts only Print applies (the bundles
// are already read).
func build(ctx context.Context, opts LoadOptions, sources ...Source) (*Snapshot, error) {
	if len(sources) == 0 {
		return nil, fmt.Errorf("%w: no bundles given", ErrBundle)
	}
	bundles := make(map[string]*bundle.Bundle, len(sources))
	revisions := make(map[string]string, len(sources))
	for _, src := range sources {
		if _, dup := bundles[src.Name]; dup {
			return nil, fmt.Errorf("%w: two bundles are named %q", ErrBundle, src.Name)
		}
		bundles[src.Name] = src.Bundle
		revisions[src.Name] = Revision(src.Bundle)
	}

	// Data is converted to AST once, at activation, instead of on every
	// read during evaluation.
	store := inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true))
	// print() calls are compiled in only when their output has somewhere
	// to go; otherwise the compiler erases them and evaluation pays nothing.
	compiler, err := typed(ast.NewCompiler().WithEnablePrintStatements(opts.Print != nil))
	if err != nil {
		return nil, err
	}
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	err = bundle.Activate(&bundle.ActivateOpts{
		Ctx:      ctx,
		Store:    store,
		Txn:      txn,
		Compiler: compiler,
		Metrics:  metrics.New(),
		Bundles:  bundles,
	})
	if err != nil {
		store.Abort(ctx, txn)
		return nil, fmt.Errorf("%w: %v%s", ErrBundle, err, conflictHint(err))
	}
	if err := store.Commit(ctx, txn); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	return finish(ctx, compiler, store, revisions, opts.Print)
}

// FromStore builds a snapshot from bundles some other loader activated (OPA's
// bundle plugin, for remote bundles): the compiled policy and a copy of the
// data tree. The copy goes into a private store, so the snapshot stays
// consistent however the source store changes afterwards. Of opts only
// Print applies, and only if the compiler was built with print statements
// enabled (plugins.EnablePrintStatements).
func FromStore(ctx context.Context, compiler *ast.Compiler, data map[string]any, revisions map[string]string, opts LoadOptions) (*Snapshot, error) {
	if compiler == nil {
		return nil, fmt.Errorf("%w: no policy is compiled", ErrBundle)
	}
	// OPA's bundle plugin compiled it without the schemas.
	if err := typeCheck(compiler.Modules); err != nil {
		return nil, err
	}
	return finish(ctx, compiler, inmem.NewFromObjectWithOpts(data, inmem.OptReturnASTValuesOnRead(true)), maps.Clone(revisions), opts.Print)
}

// finish reads and validates the registry, then prepares the entry points.
// printHook, when set, receives the policy's print() output.
func finish(ctx context.Context, compiler *ast.Compiler, store storage.Store, revisions map[string]string, printHook print.Hook) (*Snapshot, error) {
	prepare := func(ref ast.Ref) (*rego.PreparedEvalQuery, error) {
		if len(compiler.GetRulesForVirtualDocument(ref)) == 0 {
			return nil, nil
		}
		pq, err := rego.New(
			rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
			rego.Compiler(compiler),
			rego.Store(store),
			rego.PrintHook(printHook),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: preparing %s: %v", ErrBundle, ref, err)
		}
		return &pq, nil
	}
	// The validation rules see the registry first: their messages name the
	// offending order or authority, where a typed decode could only say
	// which Go type did not fit.
	if err := validateRegistry(ctx, store, prepare); err != nil {
		return nil, err
	}
	reg, err := readRegistry(ctx, store)
	if err != nil {
		return nil, err
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	snap := &Snapshot{registry: reg, revisions: revisions, activated: time.Now().UTC(), txn: txn,
		readsParticipants: readsInput(compiler, []ast.Ref{queryRef, admissionQueryRef}, participantsPath),
		extensionWarnings: extensionWarnings(compiler, []ast.Ref{queryRef, admissionQueryRef})}
	query, err := prepare(queryRef)
	if err == nil && query == nil {
		err = fmt.Errorf("%w: no bundle defines %s", ErrBundle, Query)
	}
	if err != nil {
		return nil, err
	}
	snap.query = *query
	if snap.admission, err = prepare(admissionQueryRef); err != nil {
		return nil, err
	}
	// Without the print hook: its output comes from the decision's own
	// evaluation, once.
	if len(compiler.GetRulesForVirtualDocument(problemsRef)) > 0 {
		pq, err := rego.New(
			rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(problemsRef)))),
			rego.Compiler(compiler),
			rego.Store(store),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: preparing %s: %v", ErrBundle, problemsRef, err)
		}
		snap.problems = &pq
	}
	// print() output is a side effect an answer reused would not repeat.
	if snap.admission != nil && printHook == nil {
		snap.admissionMemo = admissionMemo(ctx, compiler, store, txn)
	}
	return snap, nil
}

// readRegistry decodes data.authorities and data.orders from the store
// into typed form. Absent roots mean an empty registry (every order is then
// refused as coming from an unknown authority).
func readRegistry(ctx context.Context, store storage.Store) (*registry.Registry, error) {
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRegistry, err)
	}
	defer store.Abort(ctx, txn)
	var authorities map[string]registry.Authority
	var orders map[string]registry.Order
	var found, missing []string
	for _, root := range []struct {
		path string
		dst  any
	}{{"/authorities", &authorities}, {"/orders", &orders}} {
		v, err := store.Read(ctx, txn, storage.MustParsePath(root.path))
		if storage.IsNotFound(err) {
			missing = append(missing, "data"+strings.ReplaceAll(root.path, "/", "."))
			continue
		}
		found = append(found, "data"+strings.ReplaceAll(root.path, "/", "."))
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", ErrRegistry, root.path, err)
		}
		// The store returns AST values (see OptReturnASTValuesOnRead).
		if av, ok := v.(ast.Value); ok {
			if v, err = ast.JSON(av); err != nil {
				return nil, fmt.Errorf("%w: data%s: %v", ErrRegistry, root.path, err)
			}
		}
		raw, err := json.Marshal(v)
		if err == nil {
			err = json.Unmarshal(raw, root.dst)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: data%s: %v", ErrRegistry, root.path, err)
		}
	}
	// The validation rules have checked every date; parsing them here as
	// the engine will (registry.Order.Validity) makes sure both read them
	// alike, rather than leaving an order the rules accepted silently out
	// of force.
	for _, id := range slices.Sorted(maps.Keys(orders)) {
		if _, err := orders[id].Validity(); err != nil {
			return nil, fmt.Errorf("%w: orders.%s.%v", ErrRegistry, id, err)
		}
	}
	// An id with a control character inside (the validation rules refuse
	// empty and padded ids) is refused here: a regular expression per id
	// in the rules cost a tenth of a 100,000-order registry's activation.
	if err := controlCharacterID("authorities", maps.Keys(authorities)); err != nil {
		return nil, err
	}
	if err := controlCharacterID("orders", maps.Keys(orders)); err != nil {
		return nil, err
	}
	// A registry is both roots or neither (a policy-only set of bundles).
	// A version that lost one of them (an orders/ directory left out of a
	// build) would otherwise drop every standing order without a word.
	if len(found) == 1 {
		return nil, fmt.Errorf("%w: %s is missing although %s is present: a registry holds both (an empty object when there is nothing to list)",
			ErrRegistry, missing[0], found[0])
	}
	return registry.New(authorities, orders), nil
}

// controlCharacterID is an error naming an id of root (authorities,
// orders) with a control character inside, or nil.
func controlCharacterID(root string, ids iter.Seq[string]) error {
	for id := range ids {
		if strings.IndexFunc(id, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: %s.%s: the id %s contains a control character", ErrRegistry, root, strings.ToValidUTF8(id, "?"), strconv.QuoteToASCII(id))
		}
	}
	return nil
}

// Output is what the policy returned, before the guard.
type Output struct {
	Actions []decision.Action
	Refused []decision.Refusal
}

// Eval evaluates the decision query with input, which the caller builds as
// an ast.Value directly (converting from map[string]any would dominate the
// cost for large rosters).
func (s *Snapshot) Eval(ctx context.Context, input ast.Value) (*Output, error) {
	return s.eval(ctx, &s.query, Query, input)
}

// EvalAdmission evaluates the admission entry point: deny_join actions for
// input.joining, nothing about the meeting as a whole. The entry point is an
// optional fast path; a policy without one has its decision evaluated and
// everything but the deny_join actions dropped.
//
// When the policy allows it (see memo.go), an answer is reused for every
// input that holds the same values at the paths the entry point reads. The
// Output returned is then shared: callers must not modify it.
func (s *Snapshot) EvalAdmission(ctx context.Context, input ast.Value) (*Output, error) {
	if m := s.admissionMemo; m != nil {
		key := m.key(input)
		if out, ok := m.get(key); ok {
			return out, nil
		}
		out, err := s.eval(ctx, s.admission, AdmissionQuery, input)
		if err != nil {
			return nil, err
		}
		m.put(key, out)
		return out, nil
	}
	if s.admission != nil {
		return s.eval(ctx, s.admission, AdmissionQuery, input)
	}
	out, err := s.eval(ctx, &s.query, Query, input)
	if err != nil {
		return nil, err
	}
	out.Actions = slices.DeleteFunc(out.Actions, func(a decision.Action) bool { return a.Type != decision.DenyJoin })
	out.Refused = nil
	return out, nil
}

// RememberedAdmissionAt is the admission entry point's answer when one is
// remembered (see memo.go), which EvalAdmission would return without
// evaluating. The input is given by a lookup of the value at a path of it
// (nil when there is none): a caller that can answer for the few paths an
// answer is keyed by need not build the whole input to find it. at must
// answer as the input itself would. The Output is shared: callers must
// not modify it.
func (s *Snapshot) RememberedAdmissionAt(at func(path ast.Ref) ast.Value) (*Output, bool) {
	if s.admissionMemo == nil {
		return nil, false
	}
	return s.admissionMemo.get(s.admissionMemo.keyFrom(at))
}

// noMetrics spares every evaluation a fresh metrics registry nobody reads.
var noMetrics = metrics.NoOp()

// keepTerm hands the result back as the *ast.Term itself. The default
// conversion to map[string]any (with sets sorted) would cost as much as the
// evaluation for a decision with thousands of actions.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// evalTime is the context key of the time an evaluation reads as now.
type evalTime struct{}

// At returns ctx with t as the time the policy reads (time.now_ns, and the
// expiry checks of io.jwt.decode_verify and the X.509 built-ins): the
// decision's time, which chose the orders in force and which its record
// states, or the time decide --at decides as of. Without it OPA reads the
// machine's clock at the start of the evaluation.
func At(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, evalTime{}, t)
}

func (s *Snapshot) eval(ctx context.Context, pq *rego.PreparedEvalQuery, query string, input ast.Value) (*Output, error) {
	opts := make([]rego.EvalOption, 0, 5)
	opts = append(opts, rego.EvalParsedInput(input), rego.EvalGenerateJSON(keepTerm),
		rego.EvalTransaction(s.txn), rego.EvalMetrics(noMetrics))
	if t, ok := ctx.Value(evalTime{}).(time.Time); ok {
		opts = append(opts, rego.EvalTime(t))
	}
	rs, err := pq.Eval(ctx, opts...)
	if err != nil {
		var te *topdown.Error
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.Canceled) ||
			(errors.As(err, &te) && te.Code == topdown.CancelErr) {
			return nil, fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("%w: %s is undefined", ErrEvaluation, query)
	}
	var obj ast.Object
	if t, ok := rs[0].Expressions[0].Value.(*ast.Term); ok {
		obj, _ = t.Value.(ast.Object)
	}
	if obj == nil {
		return nil, fmt.Errorf("%w: %s is not an object", ErrEvaluation, query)
	}
	return decodeOutput(obj, query)
}

// actionArrays keeps the actions' arrays of large outputs for later
// decisions (see package reuse and ReleaseActions).
var actionArrays reuse.Slices[decision.Action]

// ReleaseActions gives back an array of actions that nothing else holds:
// an output of Eval's, once the decision made from it (whose actions are
// that array, checked in place) has been answered and recorded, or a copy
// of an output's. Nothing may use the array afterwards. Outputs shared
// between decisions (a remembered admission's) are never given back.
func ReleaseActions(actions []decision.Action) { actionArrays.Put(actions) }

// decodeOutput reads the policy's answer leniently: the guard, not the
// decoder, is what stands between a policy and enforcement, so a malformed
// action is kept (with whatever fields could be read) for the guard to
// block and report rather than silently lost.
//
// The answer's own keys are held strictly: a key other than "actions" and
// "refused" (a misspelt "action") is an evaluation error, where it would
// otherwise read as an answer with no actions, in silence.
func decodeOutput(obj ast.Object, query string) (*Output, error) {
	if k := unknownKey(obj); k != nil {
		return nil, fmt.Errorf("%w: %s has the key %v, which an answer does not have: its keys are actions and refused", ErrEvaluation, query, k)
	}
	var out Output
	n := 0
	_ = each(obj, "actions", query, func(v ast.Value) error {
		m, _ := v.(ast.Object)
		if batch := batchOf(m); batch != nil {
			n += batch.Len()
		} else {
			n++
		}
		return nil
	})
	out.Actions = actionArrays.Get(n)
	err := each(obj, "actions", query, func(v ast.Value) error {
		m, _ := v.(ast.Object)
		a := decision.Action{
			Type:          str(m, "type"),
			MeetingID:     str(m, "meeting_id"),
			ParticipantID: str(m, "participant_id"),
			AccountID:     str(m, "account_id"),
			Host:          field(m, "host") == ast.Boolean(true),
			OrderID:       str(m, "order_id"),
			Jurisdiction:  claims(m, "jurisdiction"),
			Country:       claim(m, "country"),
			LocatedBy:     claim(m, "located_by"),
			Subdivisions:  claims(m, "subdivisions"),
			Reason:        str(m, "reason"),
		}
		// A batch ("participant_ids") stands for one action per id; the
		// guard then checks every one of them on its own.
		batch := batchOf(m)
		if batch == nil {
			out.Actions = append(out.Actions, a)
			return nil
		}
		batch.Foreach(func(t *ast.Term) {
			one := a
			one.ParticipantID = ""
			if id, ok := t.Value.(ast.String); ok {
				one.ParticipantID = string(id)
			}
			out.Actions = append(out.Actions, one)
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = each(obj, "refused", query, func(v ast.Value) error {
		r, err := decodeRefusal(v)
		if err != nil {
			return fmt.Errorf("%w: %s.refused: %v", ErrEvaluation, query, err)
		}
		out.Refused = append(out.Refused, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// decodeRefusal reads one refusal strictly. Unlike an action, a refusal
// reaches no guard: it goes as stated into the answer, the ledger and the
// transparency report, where a code that is not a string would count as
// a refusal without a reason and a misspelt key would lose what it says.
// A malformed one is therefore an evaluation error naming the member,
// as a misspelt key of the answer is.
func decodeRefusal(v ast.Value) (decision.Refusal, error) {
	m, ok := v.(ast.Object)
	if !ok {
		return decision.Refusal{}, fmt.Errorf("an entry is %s, not an object", ast.ValueName(v))
	}
	var r decision.Refusal
	var err error
	m.Foreach(func(k, t *ast.Term) {
		if err != nil {
			return
		}
		name, _ := k.Value.(ast.String)
		switch name {
		case "order_id", "code":
			s, ok := t.Value.(ast.String)
			if !ok || s == "" {
				err = fmt.Errorf("%s must be a non-empty string", string(name))
			} else if name == "code" {
				if !refusalCode(string(s)) {
					err = errors.New("code must be lower_snake_case and at most 64 bytes (it labels a row of the transparency report)")
				}
				r.Code = string(s)
			} else {
				r.OrderID = string(s)
			}
		case "demand", "reason":
			s, ok := t.Value.(ast.String)
			if !ok {
				err = fmt.Errorf("%s must be a string", string(name))
			} else if name == "demand" {
				r.Demand = string(s)
			} else {
				r.Reason = string(s)
			}
		case "affected_outside":
			n, ok := t.Value.(ast.Number)
			count, exact := n.Int()
			if !ok || !exact || count < 0 {
				err = fmt.Errorf("affected_outside must be a count (a whole number, 0 or more)")
			}
			r.AffectedOutside = count
		default:
			err = fmt.Errorf("an entry has the key %v; a refusal's keys are order_id, demand, code, reason and affected_outside", k)
		}
	})
	if err == nil && (r.OrderID == "" || r.Code == "") {
		err = errors.New("an entry must name order_id and code")
	}
	if id := str(m, "order_id"); err != nil && id != "" {
		// The order's id is the registry's, not a person's; the rest of
		// the entry (its reason) may name people and is not repeated.
		err = fmt.Errorf("%w (a refusal of order %s)", err, strconv.Quote(id))
	}
	return r, err
}

// refusalCode reports whether code has the shape of a refusal code:
// lower_snake_case, at most 64 bytes. Codes are the labels of the
// transparency report's rows, published, so a policy's free text (a name,
// an id) must not pass for one; the default policy holds an operator's
// refusal codes to the same shape.
func refusalCode(code string) bool {
	if len(code) == 0 || len(code) > 64 || code[0] < 'a' || code[0] > 'z' || code[len(code)-1] == '_' {
		return false
	}
	for i := 1; i < len(code); i++ {
		c := code[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && (c != '_' || code[i-1] == '_') {
			return false
		}
	}
	return true
}

// unknownKey is a key of the answer other than actions and refused, or
// nil. Counting the known keys present spares the walk in the usual case.
func unknownKey(obj ast.Object) *ast.Term {
	known := 0
	for _, k := range []string{"actions", "refused"} {
		if field(obj, k) != nil {
			known++
		}
	}
	if obj.Len() == known {
		return nil
	}
	var unknown *ast.Term
	obj.Foreach(func(k, _ *ast.Term) {
		if s, ok := k.Value.(ast.String); unknown == nil && (!ok || s != "actions" && s != "refused") {
			unknown = k
		}
	})
	return unknown
}

// termCollection is what an ast.Set and an *ast.Array both are.
type termCollection interface {
	Foreach(func(*ast.Term))
	Len() int
}

// batchOf is an action's participant_ids, an array or, as a set
// comprehension gives them, a set; nil when it has none.
func batchOf(action ast.Object) termCollection {
	switch ids := field(action, "participant_ids").(type) {
	case *ast.Array:
		return ids
	case ast.Set:
		return ids
	}
	return nil
}

// each calls fn for every element of the set or array obj[key]; an absent
// key is an empty collection.
func each(obj ast.Object, key, query string, fn func(ast.Value) error) error {
	var err error
	switch c := field(obj, key).(type) {
	case nil:
	case ast.Set:
		c.Foreach(func(t *ast.Term) {
			if err == nil {
				err = fn(t.Value)
			}
		})
	case *ast.Array:
		c.Foreach(func(t *ast.Term) {
			if err == nil {
				err = fn(t.Value)
			}
		})
	default:
		err = fmt.Errorf("%w: %s.%s must be a set or an array", ErrEvaluation, query, key)
	}
	return err
}

func field(m ast.Object, key string) ast.Value {
	if m == nil {
		return nil
	}
	t := m.Get(ast.InternedTerm(key))
	if t == nil {
		return nil
	}
	return t.Value
}

func str(m ast.Object, key string) string {
	s, _ := field(m, key).(ast.String)
	return string(s)
}

// claim reads a fact an action claims (a country, how a person was
// located). A claim that is not a string reads as NotAString, which no
// fact equals: the guard then blocks it as misstated rather than letting
// it pass as if the policy had claimed nothing. Its value is not kept: a
// policy that puts an object there may have put anything in it (a
// participant's id and attributes), and a blocked action is stated in the
// answer, the ledger and the decision logs.
func claim(m ast.Object, key string) string {
	switch v := field(m, key).(type) {
	case nil, ast.Null:
		return ""
	case ast.String:
		return string(v)
	default:
		return NotAString
	}
}

// NotAString stands for a claim that is not a string (see claim).
const NotAString = "(not a string)"

// claims reads a list of facts an action claims (a jurisdiction,
// subdivisions), as claim does: a claim that is not an array reads as one
// NotAString, a member that is not a string as NotAString.
func claims(m ast.Object, key string) []string {
	v := field(m, key)
	if _, null := v.(ast.Null); v == nil || null {
		return nil
	}
	a, ok := v.(*ast.Array)
	if !ok {
		return []string{NotAString}
	}
	out := make([]string, 0, a.Len())
	a.Foreach(func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			out = append(out, string(s))
		} else {
			out = append(out, NotAString)
		}
	})
	return out
}
