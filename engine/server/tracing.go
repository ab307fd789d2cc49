package server

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName names the server's spans.
const tracerName = "github.com/geoscope/geoscope/engine/server"

// propagator reads the caller's W3C traceparent (and tracestate): a
// request that arrives inside a trace continues it, and follows its
// sampling decision.
var propagator = propagation.TraceContext{}

func (s *Server) tracer() trace.Tracer {
	if s.cfg.TracerProvider == nil {
		return noop.NewTracerProvider().Tracer(tracerName)
	}
	return s.cfg.TracerProvider.Tracer(tracerName)
}

// traceRequest opens the span of one request, "METHOD /route"; the
// pipeline's stages are its children. It records the route, the status
// and the decision id, never the client's address.
//
// A request whose path Untraced reports (distributed_tracing.exclude_paths,
// matched against the URL path as OPA matches it, whatever the route) gets
// no span, and neither do its stages, whatever its traceparent says, as in
// OPA, whose HTTP instrumentation then leaves the request alone.
func (s *Server) traceRequest(c *gin.Context) {
	if s.cfg.TracerProvider == nil {
		// Not tracing: no span, no context, no request copy.
		c.Next()
		return
	}
	if s.cfg.Untraced != nil && s.cfg.Untraced(c.Request.URL.Path) {
		c.Request = c.Request.WithContext(engine.WithoutSpans(c.Request.Context()))
		c.Next()
		return
	}
	ctx := propagator.Extract(c.Request.Context(), propagation.HeaderCarrier(c.Request.Header))
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	ctx, span := s.spans.Start(ctx, c.Request.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", c.Request.Method), attribute.String("http.route", route),
			attribute.String("geoscope.request_id", requestIDOf(c))))
	defer span.End()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
	if route == "unmatched" {
		if route = routeOf(c); route != "unmatched" { // a 405 of a route
			span.SetName(c.Request.Method + " " + route)
			span.SetAttributes(attribute.String("http.route", route))
		}
	}
	status := c.Writer.Status()
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if id := c.GetString(ctxDecisionID); id != "" {
		span.SetAttributes(attribute.String("geoscope.decision_id", id))
	}
	if code := c.GetString(ctxErrorCode); code != "" {
		span.SetAttributes(attribute.String("geoscope.error_code", code))
	}
	if status >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, c.GetString(ctxErrorCode))
	}
}

// decodeSpan opens the span of the decode stage (reading the body and
// validating the request); the returned function ends it, failed when the
// request was refused.
func (s *Server) decodeSpan(c *gin.Context) func() {
	if s.cfg.TracerProvider == nil || engine.Untraced(c.Request.Context()) {
		return noSpan
	}
	_, span := s.spans.Start(c.Request.Context(), "decode")
	return func() {
		if code := c.GetString(ctxErrorCode); code != "" {
			span.SetStatus(codes.Error, code)
		}
		span.End()
	}
}

func noSpan() {}
