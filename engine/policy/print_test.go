package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// printingPolicy prints the meeting it decides about (line 4).
var printingPolicy = map[string]string{
	".manifest": `{"roots": ["geoscope"]}`,
	"geoscope/p.rego": `package geoscope

decision := {"actions": set(), "refused": set()} if {
	print("deciding", input.meeting.id)
}
`,
}

func printInput() ast.Value {
	return ast.MustParseTerm(`{"meeting": {"id": "m-print"}}`).Value
}

// printCalls counts the print() calls a snapshot's decision query makes
// when evaluated with a hook of its own: zero when they were compiled out.
func printCalls(t *testing.T, snap *Snapshot) int {
	t.Helper()
	var out bytes.Buffer
	if _, err := snap.query.Eval(context.Background(), rego.EvalParsedInput(printInput()), rego.EvalPrintHook(PrintTo(&out))); err != nil {
		t.Fatal(err)
	}
	return strings.Count(out.String(), "\n")
}

func TestPrintReachesTheHookOnly(t *testing.T) {
	ctx := context.Background()
	dir := writeBundle(t, printingPolicy)

	var out bytes.Buffer
	snap, err := LoadSnapshot(ctx, []string{dir, "../../bundles/registry"}, LoadOptions{Print: PrintTo(&out)})
	if err != nil {
		t.Fatal(err)
	}
	if n := printCalls(t, snap); n != 1 {
		t.Errorf("%d print calls compiled in, want 1", n)
	}
	res, err := snap.Eval(ctx, printInput())
	if err != nil {
		t.Fatal(err)
	}
	if want := "/geoscope/p.rego:4: deciding m-print\n"; !strings.HasSuffix(out.String(), want) || strings.Count(out.String(), "\n") != 1 {
		t.Errorf("print output %q, want one line ending in %q", out.String(), want)
	}
	if len(res.Actions) != 0 || len(res.Refused) != 0 {
		t.Errorf("output %+v", res)
	}

	// Without a hook the calls are compiled out: nothing to evaluate.
	quiet, err := LoadSnapshot(ctx, []string{dir, "../../bundles/registry"}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := printCalls(t, quiet); n != 0 {
		t.Errorf("%d print calls compiled in without a hook, want 0", n)
	}
	if _, err := quiet.Eval(ctx, printInput()); err != nil {
		t.Fatal(err)
	}
}

func TestLogPrints(t *testing.T) {
	ctx := context.Background()
	dir := writeBundle(t, printingPolicy)
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level}))
			snap, err := LoadSnapshot(ctx, []string{dir, "../../bundles/registry"}, LoadOptions{Print: LogPrints(log)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := snap.Eval(ctx, printInput()); err != nil {
				t.Fatal(err)
			}
			if level > slog.LevelDebug {
				if logs.Len() != 0 {
					t.Errorf("logged at %s: %s", level, logs.String())
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
				t.Fatalf("not one JSON record: %v: %s", err, logs.String())
			}
			if rec["level"] != "DEBUG" || rec["msg"] != "policy print" || rec["output"] != "deciding m-print" ||
				!strings.HasSuffix(rec["location"].(string), "/geoscope/p.rego:4") {
				t.Errorf("record %v", rec)
			}
		})
	}
}

// Bundles activated elsewhere (OPA's bundle plugin) print through the hook
// when their compiler kept the print() calls.
func TestPrintFromStore(t *testing.T) {
	ctx := context.Background()
	mod, err := ast.ParseModuleWithOpts("remote/p.rego", printingPolicy["geoscope/p.rego"], ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	compiler := ast.NewCompiler().WithEnablePrintStatements(true)
	if compiler.Compile(map[string]*ast.Module{"remote/p.rego": mod}); compiler.Failed() {
		t.Fatal(compiler.Errors)
	}
	var out bytes.Buffer
	snap, err := FromStore(ctx, compiler, map[string]any{}, map[string]string{"policies": "1"}, LoadOptions{Print: PrintTo(&out)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snap.Eval(ctx, printInput()); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "remote/p.rego:4: deciding m-print\n" {
		t.Errorf("print output %q", got)
	}
}
