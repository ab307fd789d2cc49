package engine

import (
	"context"

	"github.com/open-policy-agent/opa/v1/metrics"
)

// Served is what the server that received a request tells the decision
// log about it, as OPA's server tells its own decision logger: the
// request's number among those the process has received (an event's
// req_id) and the request's timers (an event's metrics). The server also
// gives one to a request whose client asked for its timers (the Data
// API's ?metrics), which it answers with them, as OPA's server does.
//
// The server starts the metrics.ServerHandler timer as it begins to handle
// the request and times the reading and decoding of its input as
// metrics.RegoInputParse; the engine adds the timers of its stages
// (metrics.RegoQueryEval for the policy's evaluation, when the policy is
// evaluated, and TimerLocate, TimerGuard, TimerRecord) and stops
// metrics.ServerHandler as it hands the decision to the log. Nothing in it
// identifies a person: numbers and durations only.
type Served struct {
	ReqID   uint64
	Metrics metrics.Metrics
}

// Timers of the pipeline's own stages in Served.Metrics (reported as
// timer_geoscope_locate_ns and so on, beside OPA's timers).
const (
	TimerLocate = "geoscope_locate"
	TimerGuard  = "geoscope_guard"
	TimerRecord = "geoscope_record"
)

// servedKey is the context key of WithServed.
type servedKey struct{}

// WithServed returns ctx carrying what the server tells of the request
// being decided (see Served).
func WithServed(ctx context.Context, s *Served) context.Context {
	return context.WithValue(ctx, servedKey{}, s)
}

// served is the Served of the request decided under ctx, nil when the
// server gave none. Whether decisions are logged is not asked: the server
// gives one to a request whose timers are logged or answered, and to no
// other, so that the others time nothing.
func (e *Engine) served(ctx context.Context) *Served {
	s, _ := ctx.Value(servedKey{}).(*Served)
	if s == nil || s.Metrics == nil {
		return nil
	}
	return s
}

// time starts the timer name and returns what stops it; on a nil Served
// both do nothing.
func (s *Served) time(name string) func() {
	if s == nil {
		return noTimer
	}
	t := s.Metrics.Timer(name)
	t.Start()
	return func() { t.Stop() }
}

func noTimer() {}

// fill stops the request's handler timer, and gives r the request's
// number and timers, as the decision is handed to the log.
func (s *Served) fill(r *Record) {
	if s == nil {
		return
	}
	s.Metrics.Timer(metrics.ServerHandler).Stop()
	r.ReqID, r.Metrics = s.ReqID, s.Metrics
}
