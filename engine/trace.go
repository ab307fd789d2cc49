package engine

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName names the spans of the pipeline's stages.
const TracerName = "github.com/geoscope/geoscope/engine"

// WithTracerProvider traces each stage of a decision (locate, evaluate,
// guard, record) as a span, child of the span in the request's context
// (default: no tracing). Spans carry no participant or account id.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(e *Engine) { e.tracer = tp.Tracer(TracerName) }
}

var noTracer = noop.NewTracerProvider().Tracer(TracerName)

// stage starts the span of one pipeline stage; the returned function ends
// it, marking it failed when given an error.
func (e *Engine) stage(ctx context.Context, name string) (context.Context, func(error)) {
	tracer := e.tracer
	if tracer == nil {
		tracer = noTracer
	}
	ctx, span := tracer.Start(ctx, name)
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}
