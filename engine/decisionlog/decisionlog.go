// Package decisionlog hands recorded decisions to OPA's decision-log plugin
// (the decision_logs block of an OPA configuration given with --config).
// The plugin does what it does for OPA: system.log.drop and
// system.log.mask (or the paths configured as drop_decision and
// mask_decision) are evaluated against each event, then it is buffered and
// uploaded to the configured service, or printed with console: true.
//
// What goes out is a pseudonymized view, because decision logs leave the
// process for collectors geoscope does not control and are kept there:
//
//   - participant and account ids are the ledger's keyed pseudonyms
//     (ledger.Pseudonymizer): whoever holds the ledger key can find a
//     person's events, a collector alone identifies nobody;
//   - no address, phone number or attribute value is in an event's input:
//     it holds located countries, and the roster only as counts by
//     country (the people acted on are named, pseudonymized, in the
//     result; per-person records belong to the ledger);
//   - free text (reasons, a failed evaluation's error) and what a policy
//     claimed in a blocked action are scrubbed of ids, as in the ledger.
//     What a policy copies into a reason other than an id (an attribute's
//     value, an id it transformed) is logged as written: see docs/opa.md.
//
// There is no setting that logs raw ids: a mask can only remove or replace
// what the view holds. These logs are best effort (buffered, dropped under
// pressure); the ledger is the durable record.
package decisionlog

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/server"
	"github.com/open-policy-agent/opa/v1/util"
	"go.opentelemetry.io/otel/trace"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/policy"
)

// Paths of the events: the entry point each decision answers, as OPA
// names a decision's path (the query without "data.", slash-separated).
var (
	DecisionPath  = pathOf(policy.Query)
	AdmissionPath = pathOf(policy.AdmissionQuery)
)

func pathOf(query string) string {
	return strings.ReplaceAll(strings.TrimPrefix(query, "data."), ".", "/")
}

// Logger passes decisions to the decision-log plugin of an OPA plugin
// manager.
type Logger struct {
	manager func() *plugins.Manager
	pseudo  *ledger.Pseudonymizer
	log     *slog.Logger
}

// New returns a Logger. manager returns the plugin manager, or nil when no
// OPA configuration is in use (then nothing is logged); pseudo is the
// ledger's pseudonymizer.
func New(manager func() *plugins.Manager, pseudo *ledger.Pseudonymizer, log *slog.Logger) *Logger {
	if log == nil {
		log = slog.Default()
	}
	return &Logger{manager: manager, pseudo: pseudo, log: log}
}

// Enabled reports whether a decision-log plugin is configured now. It is
// an engine.WithDecisionLogEnabled function.
func (l *Logger) Enabled() bool {
	m := l.manager()
	return m != nil && logs.Lookup(m) != nil
}

// Log hands r to the decision-log plugin, if one is configured. It is an
// engine.WithDecisionLog function.
func (l *Logger) Log(ctx context.Context, r *engine.Record) {
	m := l.manager()
	if m == nil {
		return
	}
	p := logs.Lookup(m)
	if p == nil {
		return
	}
	info, err := Event(r, l.pseudo)
	if err == nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			info.TraceID, info.SpanID = sc.TraceID().String(), sc.SpanID().String()
		}
		// Not cancelled with the request: a decision whose client left
		// was decided and recorded all the same, and OPA's plugin, its
		// drop or mask rule's evaluation cancelled, said so at ERROR and
		// left the event out, telling nobody which.
		err = p.Log(context.WithoutCancel(ctx), info)
	}
	if err != nil {
		l.log.Warn("decision log plugin refused a decision", "decision_id", r.Decision.DecisionID, "error", err.Error())
	}
}

// Event is the decision-log event of r: OPA's server.Info with the
// pseudonymized input and result (see the package comment).
func Event(r *engine.Record, p *ledger.Pseudonymizer) (*server.Info, error) {
	d := p.Decision(r)
	var result any = d
	path := DecisionPath
	if r.Admission {
		path = AdmissionPath
		result = decision.Admission{DecisionID: d.DecisionID, Allow: d.AllowJoin != nil && *d.AllowJoin, Actions: d.Actions, OrderIDs: d.OrderIDs, Bundles: d.Bundles}
	}
	// Masks and drops work on JSON values (map[string]any), not on Go
	// structs: both documents go through JSON once.
	in, err := jsonValue(loggedInput(r, p))
	if err != nil {
		return nil, err
	}
	bundles := make(map[string]server.BundleInfo, len(d.Bundles))
	for name, rev := range d.Bundles {
		bundles[name] = server.BundleInfo{Revision: rev}
	}
	info := &server.Info{
		DecisionID: d.DecisionID,
		Path:       path,
		Timestamp:  d.Time,
		Bundles:    bundles,
		Input:      &in,
		// As OPA's server fills them: the request's number in the
		// process, and its timers, in every event, asked for or not.
		RequestID: r.ReqID,
		Metrics:   r.Metrics,
	}
	if r.Err != nil {
		// As OPA logs a query that failed: its error, no result.
		info.Error = failure(r, p)
		return info, nil
	}
	out, err := jsonValue(result)
	if err != nil {
		return nil, err
	}
	info.Results = &out
	return info, nil
}

// EvalError is the error of an event whose evaluation failed, in the shape
// of OPA's evaluation errors (a code and a message).
type EvalError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *EvalError) Error() string { return e.Code + ": " + e.Message }

// failure is the logged error of a failed evaluation: the code the client
// was answered with (client_closed_request when it left), and the error's
// text scrubbed of the request's ids (it may quote the policy's malformed
// answer, which may name people). The code is geoscope's, not OPA's
// (eval_conflict_error, eval_cancel_error, ...), which the text keeps:
// docs/opa.md, Decision logs, says why.
func failure(r *engine.Record, p *ledger.Pseudonymizer) *EvalError {
	code := apierror.PolicyError
	switch {
	case errors.Is(r.Err, context.Canceled):
		code = apierror.ClientClosed
	case errors.Is(r.Err, policy.ErrTimeout):
		code = apierror.EvalTimeout
	}
	return &EvalError{Code: code, Message: p.Text(r, r.Err.Error())}
}

func jsonValue(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = util.UnmarshalJSON(raw, &out)
	return out, err
}

// inputView is the logged input: what the decision was made on, without
// anything that identifies a person.
type inputView struct {
	Meeting meetingView `json:"meeting"`
	// Joining is the participant asking to join, pseudonymized.
	Joining *personView `json:"joining,omitempty"`
	// Order is the preview order (accounts it targets pseudonymized);
	// StandingOrders the registry's orders evaluated otherwise.
	Order          *orderView `json:"order,omitempty"`
	StandingOrders []string   `json:"standing_orders,omitempty"`
	// OrdersNotInForce are the orders that targeted the meeting but were
	// not in force at the decision's time, with their status.
	OrdersNotInForce []decision.OrderStatus `json:"orders_not_in_force,omitempty"`
}

// meetingView is the meeting: its id, the host, and the roster as counts.
type meetingView struct {
	ID               string   `json:"id"`
	Host             hostView `json:"host"`
	ParticipantCount int      `json:"participant_count"`
	// ParticipantsByCountry counts the participants by located country;
	// ParticipantsUnlocated those whose location is unknown.
	ParticipantsByCountry map[string]int `json:"participants_by_country"`
	// ParticipantsBySubdivision counts them by each ISO 3166-2
	// subdivision they are located in (GeoIP City databases only).
	ParticipantsBySubdivision map[string]int `json:"participants_by_subdivision,omitempty"`
	ParticipantsUnlocated     int            `json:"participants_unlocated"`
}

// hostView is the host account (pseudonymized) and its located country
// when connected.
type hostView struct {
	AccountID      string   `json:"account_id"`
	AccountCountry string   `json:"account_country,omitempty"`
	Connected      bool     `json:"connected"`
	Country        string   `json:"country,omitempty"`
	Subdivisions   []string `json:"subdivisions,omitempty"`
}

// personView is a pseudonymized participant and its located country (and
// subdivisions).
type personView struct {
	ID           string   `json:"id"`
	Country      string   `json:"country,omitempty"`
	Subdivisions []string `json:"subdivisions,omitempty"`
}

// orderView is a preview order.
type orderView struct {
	ID        string   `json:"id"`
	Authority string   `json:"authority"`
	Demands   []string `json:"demands"`
	Meetings  []string `json:"target_meetings,omitempty"`
	Accounts  []string `json:"target_accounts,omitempty"`
	// AllMeetings marks a service-wide order.
	AllMeetings bool   `json:"target_all_meetings,omitempty"`
	LegalBasis  string `json:"legal_basis,omitempty"`
	Received    string `json:"received,omitempty"`
	Effective   string `json:"effective,omitempty"`
	Expires     string `json:"expires,omitempty"`
}

// loggedInput builds the logged input of r.
func loggedInput(r *engine.Record, p *ledger.Pseudonymizer) *inputView {
	f := r.Facts
	v := &inputView{Meeting: meetingView{ParticipantsByCountry: map[string]int{}}}
	if f == nil {
		v.Meeting.ID = r.Decision.MeetingID
		v.Meeting.Host.AccountID = p.Account(r.AccountID)
		return v
	}
	v.Meeting.ID = f.MeetingID
	v.Meeting.Host = hostView{AccountID: p.Account(f.AccountID), AccountCountry: f.AccountCountry, Connected: f.Host != nil}
	if f.Host != nil {
		v.Meeting.Host.Country, v.Meeting.Host.Subdivisions = f.Host.Country, f.Host.Subdivisions
	}
	v.Meeting.ParticipantCount = len(f.Participants)
	for _, person := range f.Participants {
		loc := person.Located
		if loc.Country == "" {
			v.Meeting.ParticipantsUnlocated++
		} else {
			v.Meeting.ParticipantsByCountry[loc.Country]++
		}
		for _, s := range loc.Subdivisions {
			if v.Meeting.ParticipantsBySubdivision == nil {
				v.Meeting.ParticipantsBySubdivision = map[string]int{}
			}
			v.Meeting.ParticipantsBySubdivision[s]++
		}
	}
	if f.Joining != nil {
		v.Joining = &personView{ID: p.Participant(f.Joining.ID), Country: f.Joining.Country, Subdivisions: f.Joining.Subdivisions}
	}
	v.OrdersNotInForce = r.Decision.OrdersNotInForce
	if r.PreviewOrder != "" {
		v.OrdersNotInForce = slices.Clone(v.OrdersNotInForce)
		for i := range v.OrdersNotInForce {
			v.OrdersNotInForce[i].OrderID = p.OrderID(r, v.OrdersNotInForce[i].OrderID)
		}
	}
	if r.Decision.Preview {
		// The preview order, evaluated or not in force.
		previews := f.Orders
		if len(previews) == 0 {
			previews = r.OrdersNotInForce
		}
		for id, o := range previews {
			ov := &orderView{ID: p.OrderID(r, id), Authority: p.AuthorityID(r, o.Authority), Demands: o.Demands, Meetings: o.Targets.Meetings, AllMeetings: o.Targets.AllMeetings,
				LegalBasis: ledger.SubmittedLegalBasis(o.LegalBasis), Received: o.Received, Effective: o.Effective, Expires: o.Expires}
			for _, a := range o.Targets.Accounts {
				ov.Accounts = append(ov.Accounts, p.Account(a))
			}
			v.Order = ov
		}
	} else {
		v.StandingOrders = r.Decision.OrderIDs
	}
	return v
}
