package engine

import (
	"context"
	"errors"

	"github.com/geoscope/geoscope/engine/policy"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans of the pipeline's stages.
const tracerName = "github.com/geoscope/geoscope/engine"

// WithTracerProvider traces each stage of a decision (locate, evaluate,
// guard, record) as a span, child of the span in the request's context
// (default: no tracing). Spans carry no participant or account id.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(e *Engine) { e.tracer = tp.Tracer(tracerName) }
}

// untracedKey marks a context whose decision is not traced.
type untracedKey struct{}

// WithoutSpans marks ctx so that no stage of a decision made under it is
// traced: for a request the server leaves untraced
// (distributed_tracing.exclude_paths), whose stages would otherwise each
// start a trace of their own, with no request span to hang from.
func WithoutSpans(ctx context.Context) context.Context {
	return context.WithValue(ctx, untracedKey{}, true)
}

// Untraced reports whether ctx was marked by WithoutSpans.
func Untraced(ctx context.Context) bool {
	return ctx.Value(untracedKey{}) != nil
}

// noStage ends a stage nobody traces.
func noStage(error) {}

// stage starts the span of one pipeline stage; the returned function ends
// it, marking it failed when given an error.
func (e *Engine) stage(ctx context.Context, name string) (context.Context, func(error)) {
	if e.tracer == nil || Untraced(ctx) {
		return ctx, noStage
	}
	ctx, span := e.tracer.Start(ctx, name)
	return ctx, func(err error) {
		if err != nil {
			kind := failureKind(err)
			span.SetAttributes(attribute.String("error.type", kind))
			span.SetStatus(codes.Error, kind)
		}
		span.End()
	}
}

// failureKind is what a failed stage's span says of its error: the kind of
// failure, never the error's text, which may quote what a request or a
// policy held (an id a policy put in a malformed answer). The text goes
// only to the client that sent the request.
func failureKind(err error) string {
	for _, kind := range []error{policy.ErrTimeout, policy.ErrEvaluation, ErrNotReady, context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, kind) {
			return kind.Error()
		}
	}
	return "failed"
}
