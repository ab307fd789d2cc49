package registry_test

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/geoscope/geoscope/engine/registry"
)

// The validation rules (Rego, at activation) and the engine (Go, at every
// decision) read an order's dates alike: a date the rules accept parses,
// one they reject does not, and both put expires after effective or not.
func TestValidationRulesAndEngineAgreeOnDates(t *testing.T) {
	var opts []func(*rego.Rego)
	for name, src := range registry.ValidationModules() {
		opts = append(opts, rego.Module(name, src))
	}
	prepare := func(query string) rego.PreparedEvalQuery {
		pq, err := rego.New(append(opts, rego.Query(query))...).PrepareForEval(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return pq
	}
	validInstant := prepare(`data.geoscope.registry.valid_instant(input)`)
	inOrder := prepare(`data.geoscope.registry.window_in_order(input)`)
	holds := func(pq rego.PreparedEvalQuery, in any) bool {
		rs, err := pq.Eval(context.Background(), rego.EvalInput(in))
		if err != nil {
			t.Fatal(err)
		}
		return len(rs) == 1 && rs[0].Expressions[0].Value == true
	}

	dates := []string{
		"2026-01-01", "2026-12-31", "2024-02-29", "2025-02-29", "2000-02-29", "2100-02-29", "1900-01-01", "1899-12-31",
		"2199-12-31", "2200-01-01", "2026-13-01", "2026-00-10", "2026-04-31", "2026-1-1", "20260101", "",
		"2026-01-01T00:00:00Z", "2026-01-01T23:59:59.999999999Z", "2026-01-01T00:00:00.5+14:00", "2026-01-01T00:00:00-12:00",
		"2026-01-01t00:00:00z", "2026-01-01T00:00:00", "2026-01-01T24:00:00Z", "2026-01-01T23:60:00Z", "2026-01-01T23:59:60Z",
		"2026-02-30T00:00:00Z", "1900-01-01T00:30:00+01:00", "1899-12-31T23:30:00-01:00", "2199-12-31T23:59:59Z",
		"2199-12-31T23:30:00-01:00", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+02", "2026-01-01 00:00:00Z",
		"2026-01-01T00:00Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00,5Z", "2026-01-01T00:00:00,5+08:00", " 2026-01-01", "2026-01-01\n", "2026-01-01T00:00:00-00:60", "2026-01-01T00:00:00+23:59",
	}
	var good []string
	for _, s := range dates {
		_, _, err := registry.ParseInstant(s, false)
		if rego := holds(validInstant, s); rego != (err == nil) {
			t.Errorf("%q: the validation rules say valid=%v, the engine %v", s, rego, err)
		}
		if err == nil {
			good = append(good, s)
		}
	}
	for _, effective := range good {
		for _, expires := range good {
			o := registry.Order{Effective: effective, Expires: expires}
			_, err := o.Validity()
			in := map[string]any{"effective": effective, "expires": expires}
			if rego := holds(inOrder, in); rego != (err == nil) {
				t.Errorf("effective %s, expires %s: the rules say in order=%v, the engine %v", effective, expires, rego, err)
			}
		}
	}
	if len(good) < 10 {
		t.Fatalf("only %d dates are valid: the test would check little", len(good))
	}
}
