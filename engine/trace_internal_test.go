package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/geoscope/geoscope/engine/policy"
)

// A failed stage's span says what kind of failure it was, not the error's
// text: a policy's malformed answer is quoted in it, ids and all, and
// spans leave the process for a collector.
func TestFailedStageSpanHoldsTheKindNotTheText(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := &Engine{}
	WithTracerProvider(tp)(e)
	for _, tc := range []struct {
		err  error
		kind string
	}{
		{fmt.Errorf("%w: data.geoscope.decision.refused: an entry has the key %q", policy.ErrEvaluation, "LEAKMARK-p1"), policy.ErrEvaluation.Error()},
		{fmt.Errorf("recording decision d-1: ledger unavailable: participant LEAKMARK-p1"), "failed"},
	} {
		_, end := e.stage(context.Background(), "evaluate")
		end(tc.err)
		spans := rec.Ended()
		s := spans[len(spans)-1]
		var held []string
		held = append(held, s.Status().Description)
		for _, ev := range s.Events() {
			held = append(held, ev.Name)
			for _, a := range ev.Attributes {
				held = append(held, a.Value.String())
			}
		}
		for _, a := range s.Attributes() {
			held = append(held, a.Value.String())
		}
		if all := strings.Join(held, " "); strings.Contains(all, "LEAKMARK") || s.Status().Description != tc.kind {
			t.Errorf("span of %q holds %q, want only the kind %q", tc.err, all, tc.kind)
		}
	}
}

// A decision made under WithoutSpans traces no stage: its request is left
// untraced, and its stages would otherwise start traces of their own.
func TestStagesUnderWithoutSpansAreNotTraced(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	e := &Engine{}
	WithTracerProvider(tp)(e)
	_, end := e.stage(WithoutSpans(context.Background()), "locate")
	end(nil)
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans under WithoutSpans, want none", n)
	}
	_, end = e.stage(context.Background(), "locate")
	end(nil)
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("%d spans without it, want 1", n)
	}
}
