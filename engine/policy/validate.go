package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/geoscope/geoscope/engine/registry"
)

// validationQuery lists registry violations: those of the engine's built-in
// rules (engine/registry/validation.rego) and those a policy bundle adds.
const validationQuery = registry.ValidationQuery

var validationRef = ast.MustParseRef(validationQuery)

// registryRoots are the data documents the built-in rules read.
var registryRoots = []string{"authorities", "orders"}

// builtinValidation compiles the built-in rules once per process, in a
// compiler of their own: nothing in a bundle is compiled with them, so no
// bundle can redefine, extend into or remove them. A compiled compiler is
// only read afterwards, so activations share it.
var builtinValidation = sync.OnceValues(func() (*ast.Compiler, error) {
	modules := map[string]*ast.Module{}
	for name, src := range registry.ValidationModules() {
		mod, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return nil, err
		}
		modules[name] = mod
	}
	c := ast.NewCompiler().WithEnablePrintStatements(false)
	if c.Compile(modules); c.Failed() {
		return nil, c.Errors
	}
	return c, nil
})

// validateRegistry rejects a registry in which the built-in rules, or the
// rules the policy bundle adds to data.geoscope.registry.violations, find
// violations, naming the first few.
func validateRegistry(ctx context.Context, store storage.Store, prepare func(ast.Ref) (*rego.PreparedEvalQuery, error)) error {
	builtin, err := builtinValidationQuery(ctx, store)
	if err != nil {
		return err
	}
	violations, err := evalViolations(ctx, builtin)
	if err != nil {
		return err
	}
	added, err := prepare(validationRef)
	if err != nil {
		return err
	}
	if added != nil {
		more, err := evalViolations(ctx, added)
		if err != nil {
			return err
		}
		violations = append(violations, more...)
	}
	return rejectViolations(violations)
}

// builtinValidationQuery prepares the built-in rules over a store of their
// own that holds the registry documents and nothing else: data a bundle
// places under the rules' package path cannot shadow them. The documents
// are shared with store, not copied (both stores hold AST values and are
// never written again).
func builtinValidationQuery(ctx context.Context, store storage.Store) (*rego.PreparedEvalQuery, error) {
	compiler, err := builtinValidation()
	if err != nil {
		return nil, fmt.Errorf("%w: the built-in registry validation rules do not compile: %v", ErrRegistry, err)
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRegistry, err)
	}
	defer store.Abort(ctx, txn)
	docs := make(map[string]any, len(registryRoots))
	for _, root := range registryRoots {
		v, err := store.Read(ctx, txn, storage.Path{root})
		if storage.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading data.%s: %v", ErrRegistry, root, err)
		}
		docs[root] = v
	}
	pq, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(validationRef)))),
		rego.Compiler(compiler),
		rego.Store(inmem.NewFromObjectWithOpts(docs, inmem.OptReturnASTValuesOnRead(true))),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: preparing the built-in %s: %v", ErrRegistry, validationQuery, err)
	}
	return &pq, nil
}

// evalViolations evaluates a violations query into "path: message" lines.
func evalViolations(ctx context.Context, pq *rego.PreparedEvalQuery) ([]string, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(ast.NewObject()))
	if err != nil {
		return nil, fmt.Errorf("%w: evaluating %s: %v", ErrRegistry, validationQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	// A house rule written as a partial object or a single value (not a
	// set) would otherwise read as "no violations": the registry it meant
	// to check would be accepted unchecked.
	violations, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s must be a set of {\"path\", \"message\"} objects (violations contains {...} if ...), not %s",
			ErrRegistry, validationQuery, jsonKind(rs[0].Expressions[0].Value))
	}
	out := make([]string, 0, len(violations))
	for _, v := range violations {
		out = append(out, violationLine(v))
	}
	return out, nil
}

// violationLine is a violation as "path: message". One that is not a
// {"path", "message"} object of strings (a house rule's mistake: {"path":
// 1}, "msg" for "message") still rejects the registry, the safe way, and
// says what it is, where it printed as "1: <nil>".
func violationLine(v any) string {
	m, ok := v.(map[string]any)
	if ok && len(m) == 2 {
		path, okPath := m["path"].(string)
		msg, okMsg := m["message"].(string)
		if okPath && okMsg {
			return path + ": " + msg
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		raw = []byte(fmt.Sprint(v))
	}
	return fmt.Sprintf("%s: an entry is not a {\"path\": string, \"message\": string} object (a house rule of the policy bundle?): %s", validationQuery, raw)
}

// jsonKind names the JSON kind of a value a policy returned.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "a number"
}

// rejectViolations is nil for no violations, else an ErrRegistry naming
// the first five in path order (a violation both rule sets report counts
// once).
func rejectViolations(violations []string) error {
	if len(violations) == 0 {
		return nil
	}
	slices.Sort(violations)
	violations = slices.Compact(violations)
	shown := violations[:min(len(violations), 5)]
	more := ""
	if len(violations) > len(shown) {
		more = fmt.Sprintf(" (and %d more)", len(violations)-len(shown))
	}
	return fmt.Errorf("%w: %d violations: %s%s", ErrRegistry, len(violations), strings.Join(shown, "; "), more)
}
