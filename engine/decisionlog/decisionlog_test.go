package decisionlog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"go.opentelemetry.io/otel/trace"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/decisionlog"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
)

// The event names people only by the ledger's pseudonyms (the host's
// connection by its account's), scrubs ids from reasons, and gives the
// roster as counts.
func TestEventIsPseudonymized(t *testing.T) {
	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	allow := false
	rec := &engine.Record{
		Decision: &decision.Decision{
			DecisionID: "d-1", Time: time.Unix(0, 0).UTC(), MeetingID: "m-1", AllowJoin: &allow, Preview: true,
			Actions: []decision.Action{
				{Type: decision.RemoveParticipant, ParticipantID: "alice", OrderID: "o-1", Country: "CN", Reason: "alice is in CN"},
				{Type: decision.RemoveParticipant, ParticipantID: "acct-host", Host: true, OrderID: "o-1", Country: "CN", Reason: "the host acct-host is in CN"},
				{Type: decision.DenyJoin, ParticipantID: "bob", OrderID: "o-1", Country: "CN", Reason: "bob may not join"},
			},
			GuardBlocked: []decision.Blocked{{Action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct-host", OrderID: "o-1"}, Code: "outside", Reason: `account "acct-host" has users outside`}},
			Refused:      []decision.Refusal{{OrderID: "o-1", Demand: "end_meeting", Code: "affects_outside", Reason: "carol is outside"}},
			Bundles:      map[string]string{"policies": "sha256:x"},
		},
		AccountID:    "acct-host",
		Participants: []input.Participant{{ID: "alice"}, {ID: "carol"}, {ID: "dave"}},
		Joining:      &input.Participant{ID: "bob"},
		Facts: &guard.Facts{
			MeetingID: "m-1", AccountID: "acct-host", AccountCountry: "US",
			Host:         &guard.Person{ID: "acct-host", Located: guard.Located{Country: "CN", By: "ip"}},
			Participants: []guard.Person{{ID: "alice", Located: guard.Located{Country: "CN", By: "ip"}}, {ID: "carol", Located: guard.Located{Country: "US", By: "phone"}}, {ID: "dave"}},
			Joining:      &guard.Person{ID: "bob", Located: guard.Located{Country: "CN", By: "ip"}},
			// A submitted order's legal basis is the client's free text: the
			// event holds its digest only.
			Orders: map[string]registry.Order{"o-1": {Authority: "cn.cac", Demands: []string{"end_meeting"}, Targets: registry.Targets{Accounts: []string{"acct-host"}},
				LegalBasis: "demand about dave at 202.96.128.86, phone +8613800138000"}},
		},
	}
	info, err := decisionlog.Event(rec, ps)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"input": *info.Input, "result": *info.Results})
	for _, id := range []string{"alice", "bob", "carol", "dave", "acct-host", "202.96.128.86", "+8613800138000"} {
		if strings.Contains(string(raw), id) {
			t.Errorf("the event contains %q: %s", id, raw)
		}
	}
	for _, want := range []string{ps.Participant("alice"), ps.Participant("bob"), ps.Account("acct-host"),
		`"participants_by_country":{"CN":1,"US":1}`, `"participants_unlocated":1`, `"target_accounts":["` + ps.Account("acct-host") + `"]`,
		`"legal_basis":"` + ledger.SubmittedLegalBasis("demand about dave at 202.96.128.86, phone +8613800138000") + `"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the event lacks %s: %s", want, raw)
		}
	}
	var host struct {
		Actions []decision.Action `json:"actions"`
	}
	_ = json.Unmarshal(raw[strings.Index(string(raw), `"result":`)+len(`"result":`):len(raw)-1], &host)
	if len(host.Actions) != 3 || host.Actions[1].ParticipantID != ps.Account("acct-host") {
		t.Errorf("the host's removal names %+v, want the host account's pseudonym", host.Actions)
	}
	if info.Path != decisionlog.DecisionPath || info.DecisionID != "d-1" || info.Bundles["policies"].Revision != "sha256:x" {
		t.Errorf("info %+v", info)
	}
	if rec.Decision.Actions[0].ParticipantID != "alice" {
		t.Error("Event changed the decision it was given")
	}

	// Subdivisions and orders not in force are logged too; a preview order
	// not in force is the logged order.
	rec.Facts.Participants[0].Located = guard.Located{Country: "UA", By: "ip", Subdivisions: []string{"UA-43"}} // alice
	rec.Facts.Joining.Located = guard.Located{Country: "GB", By: "ip", Subdivisions: []string{"GB-ENG", "GB-LND"}}
	rec.Decision.Preview = true
	rec.Decision.OrdersNotInForce = []decision.OrderStatus{{OrderID: "o-2", Status: "expired"}}
	rec.OrdersNotInForce = map[string]registry.Order{"o-2": {Authority: "cn.cac", Demands: []string{"remove_participants"}, Targets: registry.Targets{AllMeetings: true}, Expires: "2026-01-31"}}
	rec.Facts.Orders = map[string]registry.Order{}
	info, err = decisionlog.Event(rec, ps)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(*info.Input)
	for _, want := range []string{`"participants_by_subdivision":{"UA-43":1}`, `"subdivisions":["GB-ENG","GB-LND"]`,
		`"orders_not_in_force":[{"order_id":"o-2","status":"expired"}]`, `"id":"o-2","target_all_meetings":true`, `"expires":"2026-01-31"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the event lacks %s: %s", want, raw)
		}
	}
}

// The id of an order submitted for preview is the client's text, which
// may hold a participant's id or a calling number: the event holds its
// pseudonym wherever the id stands (the order, the actions, refusals and
// blocks citing it, reasons quoting it, the orders not in force), and the
// reason of its revocation is not logged.
func TestPreviewOrderIDIsPseudonymized(t *testing.T) {
	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	const order = "remove alice +8613800138000"
	rec := &engine.Record{
		Decision: &decision.Decision{
			DecisionID: "d-1", Time: time.Unix(0, 0).UTC(), MeetingID: "m-1", Preview: true, OrderIDs: []string{order},
			Actions: []decision.Action{{Type: decision.RemoveParticipant, ParticipantID: "alice", OrderID: order, Country: "CN",
				Reason: "order " + order + " reaches her"}},
			GuardBlocked: []decision.Blocked{{Action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "carol", OrderID: order, Country: "CN"},
				Code: "outside", Reason: "carol is outside"}},
			Refused: []decision.Refusal{{OrderID: order, Demand: "end_meeting", Code: "affects_outside", Reason: "refused under " + order}},
		},
		AccountID:    "acct-host",
		PreviewOrder: order,
		Authorities:  map[string]registry.Authority{"cn.cac": {Jurisdiction: []string{"CN"}}},
		Participants: []input.Participant{{ID: "carol"}},
		Orders: map[string]registry.Order{order: {Authority: "cn.cac", Demands: []string{"end_meeting", "remove_participants"},
			Revoked: &registry.Revocation{Date: "2199-01-01", Reason: "withdrawn for +8613800138000"}}},
		Facts: &guard.Facts{
			MeetingID: "m-1", AccountID: "acct-host",
			Participants: []guard.Person{{ID: "carol", Located: guard.Located{Country: "US", By: "ip"}}},
		},
	}
	rec.Facts.Orders = rec.Orders
	check := func(raw []byte) {
		t.Helper()
		for _, leak := range []string{"alice", "+8613800138000", "withdrawn"} {
			if strings.Contains(string(raw), leak) {
				t.Errorf("the event contains %q: %s", leak, raw)
			}
		}
		if !strings.Contains(string(raw), ps.Order(order)) {
			t.Errorf("the event lacks the preview's pseudonym %s: %s", ps.Order(order), raw)
		}
	}
	info, err := decisionlog.Event(rec, ps)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(map[string]any{"input": *info.Input, "result": *info.Results})
	check(raw)
	if n := strings.Count(string(raw), ps.Order(order)); n != 7 {
		t.Errorf("the preview's pseudonym stands %d times, want 7 (the order, order_ids, the action and its reason, the block, the refusal and its reason): %s", n, raw)
	}
	if rec.Decision.Actions[0].OrderID != order || rec.Decision.OrderIDs[0] != order {
		t.Error("Event changed the decision it was given")
	}
	if !strings.Contains(string(raw), `"authority":"cn.cac"`) {
		t.Errorf("the event lacks the registry's authority as it is: %s", raw)
	}

	// An authority the registry does not list is the client's text too:
	// its pseudonym, in the order and in a reason quoting it.
	const unlisted = "authority of +8613800138000"
	o := rec.Orders[order]
	o.Authority = unlisted
	rec.Orders[order] = o
	rec.Decision.Refused[0] = decision.Refusal{OrderID: order, Demand: "end_meeting", Code: "unknown_authority", Reason: fmt.Sprintf("authority %q is not in the registry", unlisted)}
	if info, err = decisionlog.Event(rec, ps); err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(map[string]any{"input": *info.Input, "result": *info.Results})
	check(raw)
	for _, want := range []string{`"authority":"` + ps.Authority(unlisted) + `"`, `authority \"` + ps.Authority(unlisted) + `\" is not in the registry`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the event lacks %s: %s", want, raw)
		}
	}

	// Not in force: not evaluated, logged with its status.
	rec.Decision = &decision.Decision{DecisionID: "d-2", Time: time.Unix(0, 0).UTC(), MeetingID: "m-1", Preview: true,
		OrdersNotInForce: []decision.OrderStatus{{OrderID: order, Status: "revoked"}}}
	rec.OrdersNotInForce, rec.Orders, rec.Facts.Orders = rec.Orders, nil, nil
	if info, err = decisionlog.Event(rec, ps); err != nil {
		t.Fatal(err)
	}
	raw, _ = json.Marshal(map[string]any{"input": *info.Input, "result": *info.Results})
	check(raw)
}

// A blocked action is logged as its policy stated it, but a policy that
// put ids where facts and names go (its type, order, meeting, claims) or
// quoted them in its reason does not have them logged; what the engine
// knows (the order, the meeting, codes of the right shape) is kept.
func TestEventScrubsWhatAPolicyClaimed(t *testing.T) {
	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	claims := decision.Action{Type: decision.RemoveParticipant, ParticipantID: "alice", OrderID: "o-1", MeetingID: "m-1",
		Country: "alice", LocatedBy: "acct-host", Jurisdiction: []string{"CN", "alice"}, Subdivisions: []string{"CN-11", `x"acct-host"`},
		Reason: `o-1-alice, ref case_acct-host: {"who":"alice"}`}
	rec := &engine.Record{
		Decision: &decision.Decision{
			DecisionID: "d-1", Time: time.Unix(0, 0).UTC(), MeetingID: "m-1",
			GuardBlocked: []decision.Blocked{
				{Action: claims, Code: "misstated_facts", Reason: `action claims "alice" is located in "alice"`},
				{Action: decision.Action{Type: "alice", OrderID: "acct-host", MeetingID: "acct-host"}, Code: "unknown_type", Reason: `"alice" is not an action type`},
			},
		},
		AccountID:    "acct-host",
		Participants: []input.Participant{{ID: "alice"}},
		Orders:       map[string]registry.Order{"o-1": {Authority: "cn.cac"}},
		Facts:        &guard.Facts{MeetingID: "m-1", AccountID: "acct-host", Participants: []guard.Person{{ID: "alice"}}},
	}
	info, err := decisionlog.Event(rec, ps)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(*info.Results)
	rest := strings.NewReplacer(ps.Participant("alice"), "", ps.Account("acct-host"), "").Replace(string(raw))
	for _, id := range []string{"alice", "acct-host"} {
		if strings.Contains(rest, id) {
			t.Errorf("the event contains %q: %s", id, raw)
		}
	}
	for _, want := range []string{`"order_id":"o-1"`, `"meeting_id":"m-1"`, `"jurisdiction":["CN","` + ps.Participant("alice") + `"]`, `"subdivisions":["CN-11","x\"` + ps.Account("acct-host") + `\""]`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("the event lacks %s: %s", want, raw)
		}
	}
	if rec.Decision.GuardBlocked[0].Action.Country != "alice" {
		t.Error("Event changed the decision it was given")
	}
}

// A failed evaluation is logged as OPA logs a query that failed: its
// error (code and message) and no result, with the input as any event's.
// The message quotes the policy's malformed answer, which names a
// participant: the event holds the pseudonym.
func TestFailedEvaluationIsLoggedWithItsError(t *testing.T) {
	e, logged := loggingEngine(t, "testdata/fails-naming-people")
	req, err := input.Decode([]byte(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
	  "participants": [{"id": "LEAKMARK-p1", "ip": "1.0.16.5"}]}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// What the server told of the request goes into the event, as OPA's
	// server fills req_id and metrics.
	served := &engine.Served{ReqID: 7, Metrics: metrics.New()}
	served.Metrics.Timer(metrics.ServerHandler).Start()
	if _, err := e.Decide(engine.WithServed(context.Background(), served), req); !errors.Is(err, policy.ErrEvaluation) || !strings.Contains(err.Error(), "LEAKMARK-p1") {
		t.Fatalf("Decide: %v; want the evaluation error quoting the key", err)
	}
	if len(*logged) != 1 {
		t.Fatalf("%d events logged, want 1", len(*logged))
	}
	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	info, err := decisionlog.Event((*logged)[0], ps)
	if err != nil {
		t.Fatal(err)
	}
	var ev *decisionlog.EvalError
	if !errors.As(info.Error, &ev) || ev.Code != "policy_error" || !strings.Contains(ev.Message, ps.Participant("LEAKMARK-p1")) {
		t.Fatalf("event error %#v; want policy_error quoting the pseudonym", info.Error)
	}
	raw, _ := json.Marshal(map[string]any{"input": *info.Input, "error": info.Error})
	if strings.Contains(string(raw), "LEAKMARK") || info.Results != nil || info.DecisionID == "" || info.Path != decisionlog.DecisionPath {
		t.Errorf("event %s (results %v, id %q, path %q): want no id, no result, a decision id and the decision's path", raw, info.Results, info.DecisionID, info.Path)
	}
	if !strings.Contains(string(raw), `"error":{"code":"policy_error","message":`) || !strings.Contains(string(raw), `"participants_by_country":{"CN":1}`) {
		t.Errorf("event %s: want OPA's error shape and the input's counts", raw)
	}
	if m := info.Metrics; info.RequestID != 7 || m == nil || m.All()["timer_rego_query_eval_ns"] == nil || m.All()["timer_server_handler_ns"].(int64) <= 0 {
		t.Errorf("event req_id %d, metrics %v: want 7, and the evaluation's and the handler's timers", info.RequestID, m)
	}

	// A client that left: its event says so, as its answer did.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Decide(ctx, req); err == nil {
		t.Fatal("Decide with the client gone: no error")
	}
	info, err = decisionlog.Event((*logged)[len(*logged)-1], ps)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.As(info.Error, &ev) || ev.Code != "client_closed_request" {
		t.Errorf("event error %#v with the client gone; want client_closed_request", info.Error)
	}
}

// A policy that fails as OPA's evaluation does is logged under geoscope's
// code, the one its client was answered with (docs/opa.md says why), and
// its message keeps OPA's error, OPA's code included.
func TestFailedEvaluationKeepsOPAsError(t *testing.T) {
	e, logged := loggingEngine(t, "testdata/conflict")
	req, err := input.Decode([]byte(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
	  "participants": [{"id": "p1", "ip": "1.0.16.5"}]}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Decide(context.Background(), req); !errors.Is(err, policy.ErrEvaluation) {
		t.Fatalf("Decide: %v; want an evaluation error", err)
	}
	if len(*logged) != 1 {
		t.Fatalf("%d events logged, want 1", len(*logged))
	}
	info, err := decisionlog.Event((*logged)[0], ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32))))
	if err != nil {
		t.Fatal(err)
	}
	var ev *decisionlog.EvalError
	if !errors.As(info.Error, &ev) || ev.Code != "policy_error" || !strings.Contains(ev.Message, "eval_conflict_error: ") {
		t.Errorf("event error %#v; want policy_error with OPA's eval_conflict_error in its message", info.Error)
	}
}

// loggingEngine is an engine on the policy bundle at dir, the example
// registry and the standard test GeoIP database, whose decision log keeps
// every record it is handed in *logged.
func loggingEngine(t *testing.T, dir string) (e *engine.Engine, logged *[]*engine.Record) {
	t.Helper()
	snap, err := policy.LoadSnapshot(context.Background(), []string{dir, "../../bundles/registry"}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	logged = new([]*engine.Record)
	e = engine.New(engine.WithDecisionLog(func(_ context.Context, r *engine.Record) { *logged = append(*logged, r) }))
	e.SetPolicy(snap)
	e.SetGeo(db)
	return e, logged
}

// A record without located facts (which the engine always gives, but
// Event is handed any record) names the host by its pseudonym too.
func TestEventWithoutFactsIsPseudonymized(t *testing.T) {
	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	rec := &engine.Record{
		Decision:  &decision.Decision{DecisionID: "d-1", Time: time.Unix(0, 0).UTC(), MeetingID: "m-1", Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{}},
		AccountID: "acct-raw-host",
	}
	info, err := decisionlog.Event(rec, ps)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(*info.Input)
	if strings.Contains(string(raw), "acct-raw-host") || !strings.Contains(string(raw), `"account_id":"`+ps.Account("acct-raw-host")+`"`) || !strings.Contains(string(raw), `"id":"m-1"`) {
		t.Errorf("the event's input %s: want the meeting and the host account's pseudonym", raw)
	}
}

// An evaluation that ran out of time is logged under the code its client
// was answered with, eval_timeout; the host's subdivisions are in the
// input as the participants' are.
func TestTimedOutEvaluationIsLoggedAsEvalTimeout(t *testing.T) {
	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	rec := &engine.Record{
		Decision:  &decision.Decision{DecisionID: "d-1", Time: time.Unix(0, 0).UTC(), MeetingID: "m-1"},
		AccountID: "acct-host",
		Facts: &guard.Facts{MeetingID: "m-1", AccountID: "acct-host",
			Host: &guard.Person{ID: "acct-host", Located: guard.Located{Country: "UA", By: "ip", Subdivisions: []string{"UA-43"}}}},
		Err: fmt.Errorf("evaluating the policy: %w", policy.ErrTimeout),
	}
	info, err := decisionlog.Event(rec, ps)
	if err != nil {
		t.Fatal(err)
	}
	var ev *decisionlog.EvalError
	if !errors.As(info.Error, &ev) || ev.Code != "eval_timeout" || info.Results != nil {
		t.Errorf("event error %#v, results %v; want eval_timeout and no result", info.Error, info.Results)
	}
	raw, _ := json.Marshal(*info.Input)
	if !strings.Contains(string(raw), `"country":"UA","subdivisions":["UA-43"]`) {
		t.Errorf("the event's input %s: want the host's country and subdivisions", raw)
	}
}

// capture is a decision-log plugin (decision_logs.plugin) keeping every
// event it is handed.
type capture struct{ events []logs.EventV1 }

func (*capture) Start(context.Context) error      { return nil }
func (*capture) Stop(context.Context)             {}
func (*capture) Reconfigure(context.Context, any) {}
func (c *capture) Log(_ context.Context, e logs.EventV1) error {
	c.events = append(c.events, e)
	return nil
}

// captureManager is a plugin manager whose decision-log plugin hands
// every event to the capture it returns.
func captureManager(t *testing.T) (*plugins.Manager, *capture) {
	t.Helper()
	m, err := plugins.New([]byte(`{}`), "test", inmem.New())
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{}
	m.Register("capture", c)
	cfg, err := logs.ParseConfig([]byte(`{"plugin": "capture"}`), nil, []string{"capture"})
	if err != nil {
		t.Fatal(err)
	}
	m.Register(logs.Name, logs.New(cfg, m))
	return m, c
}

// quietRecord is a decision with nothing to do, in meeting m-1.
func quietRecord(id string) *engine.Record {
	return &engine.Record{
		Decision:  &decision.Decision{DecisionID: id, Time: time.Unix(0, 0).UTC(), MeetingID: "m-1", Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{}},
		AccountID: "acct-host",
		Facts:     &guard.Facts{MeetingID: "m-1", AccountID: "acct-host"},
	}
}

// sampledSpan is the span context of a sampled request.
func sampledSpan() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled,
	})
}

// Log hands the event to the configured plugin, with the trace and span
// of the request it answers; without a plugin manager, or without a
// decision-log plugin, it logs nothing.
func TestLogCarriesTheRequestsTrace(t *testing.T) {
	m, c := captureManager(t)

	ps := ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32)))
	rec := quietRecord("d-1")
	sc := sampledSpan()
	none := decisionlog.New(func() *plugins.Manager { return nil }, ps, nil)
	if none.Enabled() {
		t.Error("Enabled without a plugin manager")
	}
	none.Log(context.Background(), rec)
	// A manager without decision_logs (an OPA configuration of other
	// plugins) logs nothing either.
	bare, err := plugins.New([]byte(`{}`), "test", inmem.New())
	if err != nil {
		t.Fatal(err)
	}
	unlogged := decisionlog.New(func() *plugins.Manager { return bare }, ps, nil)
	if unlogged.Enabled() {
		t.Error("Enabled without a decision-log plugin")
	}
	unlogged.Log(context.Background(), rec)
	l := decisionlog.New(func() *plugins.Manager { return m }, ps, nil)
	if !l.Enabled() {
		t.Error("not Enabled with a decision-log plugin configured")
	}
	l.Log(trace.ContextWithSpanContext(context.Background(), sc), rec)
	l.Log(context.Background(), rec)
	if len(c.events) != 2 {
		t.Fatalf("%d events logged, want 2", len(c.events))
	}
	if e := c.events[0]; e.DecisionID != "d-1" || e.Path != decisionlog.DecisionPath || e.TraceID != sc.TraceID().String() || e.SpanID != sc.SpanID().String() {
		t.Errorf("event %+v: want d-1 at %s, trace %s, span %s", e, decisionlog.DecisionPath, sc.TraceID(), sc.SpanID())
	}
	if e := c.events[1]; e.TraceID != "" || e.SpanID != "" {
		t.Errorf("event outside a trace has trace %q, span %q", e.TraceID, e.SpanID)
	}
}

// A decision whose client left before it was logged (its request's
// context cancelled) is logged all the same: it was decided and
// recorded. Under the cancelled context OPA's plugin failed to evaluate
// its drop rule, said "Log drop decision failed" at ERROR and left the
// event out, telling its caller nothing.
func TestLogOutlivesTheClientLeaving(t *testing.T) {
	m, c := captureManager(t)
	rec := quietRecord("d-gone")
	sc := sampledSpan()
	ctx, cancel := context.WithCancel(trace.ContextWithSpanContext(context.Background(), sc))
	cancel()
	// OPA notices the cancellation from a goroutine of its own, so an
	// evaluation may end before it does: 2,000 decisions, not one.
	l := decisionlog.New(func() *plugins.Manager { return m }, ledger.NewPseudonymizer([]byte(strings.Repeat("k", 32))), nil)
	const n = 2000
	for range n {
		l.Log(ctx, rec)
	}
	if len(c.events) != n {
		t.Fatalf("%d events logged for %d decisions whose client left, want all", len(c.events), n)
	}
	if e := c.events[0]; e.DecisionID != "d-gone" || e.TraceID != sc.TraceID().String() {
		t.Errorf("event %+v: want d-gone in trace %s", e, sc.TraceID())
	}
}
