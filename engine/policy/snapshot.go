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
	"maps"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
)

// Query is the policy's entry point.
const Query = "data.geoscope.decision"

var queryRef = ast.MustParseRef(Query)

// Snapshot is an immutable, ready-to-evaluate set of bundles.
type Snapshot struct {
	query     rego.PreparedEvalQuery
	registry  *registry.Registry
	revisions map[string]string
	activated time.Time
}

// Registry is the registry the policy evaluates against.
func (s *Snapshot) Registry() *registry.Registry { return s.registry }

// Revisions maps each bundle name to its revision.
func (s *Snapshot) Revisions() map[string]string { return maps.Clone(s.revisions) }

// Activated is when the snapshot was built.
func (s *Snapshot) Activated() time.Time { return s.activated }

// Build activates the bundles into a fresh store, compiles them, and
// prepares the decision query. Bundles must have disjoint roots. The result
// is not used anywhere until Build returns without error, which is what
// makes a failed reload harmless.
func Build(ctx context.Context, sources ...Source) (*Snapshot, error) {
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

	store := inmem.New()
	compiler := ast.NewCompiler().WithEnablePrintStatements(false)
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
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	reg, err := readRegistry(ctx, store, txn)
	if err != nil {
		store.Abort(ctx, txn)
		return nil, err
	}
	if err := store.Commit(ctx, txn); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	if len(compiler.GetRulesForVirtualDocument(queryRef)) == 0 {
		return nil, fmt.Errorf("%w: no bundle defines %s", ErrBundle, Query)
	}

	pq, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(queryRef)))),
		rego.Compiler(compiler),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: preparing %s: %v", ErrBundle, Query, err)
	}
	return &Snapshot{query: pq, registry: reg, revisions: revisions, activated: time.Now().UTC()}, nil
}

// readRegistry decodes data.authorities and data.orders from the store
// into typed form. Absent roots mean an empty registry (every order is then
// refused as coming from an unknown authority).
func readRegistry(ctx context.Context, store storage.Store, txn storage.Transaction) (*registry.Registry, error) {
	var authorities map[string]registry.Authority
	var orders map[string]registry.Order
	for _, root := range []struct {
		path string
		dst  any
	}{{"/authorities", &authorities}, {"/orders", &orders}} {
		v, err := store.Read(ctx, txn, storage.MustParsePath(root.path))
		if storage.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", ErrRegistry, root.path, err)
		}
		raw, err := json.Marshal(v)
		if err == nil {
			err = json.Unmarshal(raw, root.dst)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: data%s: %v", ErrRegistry, root.path, err)
		}
	}
	return registry.New(authorities, orders), nil
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
	rs, err := s.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		var te *topdown.Error
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.Canceled) ||
			(errors.As(err, &te) && te.Code == topdown.CancelErr) {
			return nil, fmt.Errorf("%w: %v", ErrTimeout, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrEvaluation, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return nil, fmt.Errorf("%w: %s is undefined", ErrEvaluation, Query)
	}
	obj, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not an object", ErrEvaluation, Query)
	}
	return decodeOutput(obj)
}

// decodeOutput reads the policy's answer leniently: the guard, not the
// decoder, is what stands between a policy and enforcement, so a malformed
// action is kept (with whatever fields could be read) for the guard to
// block and report rather than silently lost.
func decodeOutput(obj map[string]any) (*Output, error) {
	var out Output
	acts, err := list(obj, "actions")
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		m, _ := a.(map[string]any)
		out.Actions = append(out.Actions, decision.Action{
			Type:          str(m, "type"),
			MeetingID:     str(m, "meeting_id"),
			ParticipantID: str(m, "participant_id"),
			AccountID:     str(m, "account_id"),
			Host:          m["host"] == true,
			OrderID:       str(m, "order_id"),
			Jurisdiction:  strs(m, "jurisdiction"),
			Country:       str(m, "country"),
			Reason:        str(m, "reason"),
		})
	}
	refs, err := list(obj, "refused")
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: refused entries must be objects", ErrEvaluation)
		}
		n, _ := m["affected_outside"].(json.Number)
		affected, _ := n.Int64()
		out.Refused = append(out.Refused, decision.Refusal{
			OrderID:         str(m, "order_id"),
			Demand:          str(m, "demand"),
			Code:            str(m, "code"),
			Reason:          str(m, "reason"),
			AffectedOutside: int(affected),
		})
	}
	return &out, nil
}

func list(obj map[string]any, key string) ([]any, error) {
	v, ok := obj[key]
	if !ok {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s must be a set or an array", ErrEvaluation, Query, key)
	}
	return l, nil
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func strs(m map[string]any, key string) []string {
	l, _ := m[key].([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
