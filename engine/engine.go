// Package engine is geoscope's decision pipeline:
//
//	decode → locate → evaluate → guard → record
//
// decide, behind Decide and Admit, reads top to bottom in that order from
// locate on (the caller decodes with package input). Each stage lives in
// its own package (input, geo, policy, guard, and the recorder given to
// New); this file only wires them together.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"go.opentelemetry.io/otel/trace"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/reuse"
)

// ErrNotReady is returned while no policy snapshot or GeoIP database has
// been activated. It is never answered with a decision.
var ErrNotReady = errors.New("not ready")

// Recorder persists a decision before it is answered (see package ledger).
// A Recorder error fails the request: an action nobody recorded must not be
// carried out.
//
// Record must not keep r's Participants, Facts.Participants or
// Decision.Actions once it returns (copy what it needs): their arrays are
// reused by later decisions (see Engine.Release).
type Recorder interface {
	Record(ctx context.Context, r *Record) error
}

// Record is everything the audit trail needs about one decision. It holds
// no raw IP address: Networks carries coarse prefixes only.
type Record struct {
	Decision *decision.Decision
	// AccountID is the meeting's host account.
	AccountID string
	// Orders are the orders evaluated (in force at the decision's time);
	// OrdersNotInForce those that target the meeting but were not, as the
	// registry (or the preview) stated them. Decision.OrdersNotInForce
	// gives their status.
	Orders           map[string]registry.Order
	OrdersNotInForce map[string]registry.Order
	Authorities      map[string]registry.Authority
	// Networks holds, for each of Decision.Actions, the coarse network
	// prefix (/24 or /48) of the affected participant's address.
	Networks []netip.Prefix
	// Admission marks a join-time question.
	Admission bool
	// Participants and Joining are the request's people (the ledger reads
	// their ids only, to keep them out of free text it stores).
	Participants []input.Participant
	Joining      *input.Participant
	// PreviewOrder is the id of the order the request submitted for
	// preview, "" for a question about the registry's orders. The client
	// chose it, so it may be any text, someone's number included: the
	// ledger and the decision log record it as a keyed pseudonym
	// (ledger.Pseudonymizer.Order), as they record people's ids.
	PreviewOrder string
	// Reached counts, by located country (UnknownCountry when unknown),
	// everyone a meeting-wide or account action reaches: the participants,
	// the connected host and the participant asking to join. It is set only
	// when such an action was granted, so the audit trail can show that
	// nobody outside was affected.
	Reached map[string]int
	// ReachedByOrder replaces Reached for the actions citing an order
	// whose authority's jurisdiction lists subdivisions: there a country
	// says too little, so each person is counted under the jurisdiction
	// entry that covers them (the country or the subdivision), or under
	// their country (UnknownCountry) when none does. Set only for such
	// orders with a granted meeting-wide or account action.
	ReachedByOrder map[string]map[string]int
	// Facts are what the decision was made on: located countries, the
	// host and the joining participant, the orders (read by the decision
	// log, which logs them pseudonymized).
	Facts *guard.Facts
	// Request identifies the request as its client sent it (WithRequest),
	// nil when the client did not name it: with it, a request sent again
	// is recognised as the same one (ledger.Entry.Request).
	Request *RequestKey
	// Err is set, for the decision log only, when the policy's evaluation
	// failed: Decision then holds its id, time, meeting, orders and
	// revisions, and nothing decided. Such a record is never recorded.
	Err error
	// ReqID and Metrics are, for the decision log only, the request's
	// number and timers as the server told them (WithServed): zero and
	// nil when it did not.
	ReqID   uint64
	Metrics metrics.Metrics
}

// RequestKey identifies a request as its client sent it: the id the client
// gave it (its X-Request-Id) and the SHA-256 of its body. A client or a
// load balancer that sends a request again after its answer was lost
// sends both again, byte for byte; a client that reuses one id for
// different questions sends different bodies.
type RequestKey struct {
	ID   string
	Body [32]byte
}

// requestKey is the context key of WithRequest.
type requestKey struct{}

// WithRequest returns ctx carrying the key of the request being decided,
// so that a decision recorded for a request sent again can be counted
// once (see report.Build).
func WithRequest(ctx context.Context, k RequestKey) context.Context {
	return context.WithValue(ctx, requestKey{}, &k)
}

// UnknownCountry is the Record.Reached key for people whose location is
// unknown.
const UnknownCountry = "unknown"

// recordTimeout bounds a commit. It is separate from the evaluation
// deadline: a slow fsync must not be reported as a slow policy, and a
// caller that gives up after the commit started does not undo it.
const recordTimeout = 5 * time.Second

// Engine answers decision requests. It is safe for concurrent use; the
// policy snapshot and the GeoIP database can be swapped at any time and
// each decision uses the pair current when it started.
type Engine struct {
	snapshot    atomic.Pointer[policy.Snapshot]
	geodb       atomic.Pointer[geo.DB]
	recorder    Recorder
	logs        func(context.Context, *Record)
	logsEnabled func() bool
	now         func() time.Time
	// locatePhones makes a dial-in caller's calling number a location
	// (see geo.LocatePhone for the trade-off); off by default.
	locatePhones bool
	tracer       trace.Tracer
	// evalTimeout bounds each evaluation of the policy (see
	// SetEvalTimeout).
	evalTimeout atomic.Int64
	// answerCheck runs before a decision is recorded (SetAnswerCheck).
	answerCheck atomic.Pointer[func(context.Context, *decision.Decision) error]
	// inputHook sees each policy input before it is evaluated
	// (WithInputHook).
	inputHook func(context.Context, *policy.Snapshot, ast.Value)
}

// SetAnswerCheck installs fn, which sees every decision after the guard and
// before it is recorded: an error from it fails the request and nothing is
// recorded. The HTTP server encodes the answer there, so a decision too
// large to answer is refused before the ledger holds it as if it had been.
func (e *Engine) SetAnswerCheck(fn func(context.Context, *decision.Decision) error) {
	e.answerCheck.Store(&fn)
}

// SetEvalTimeout bounds each evaluation of the policy (zero: only the
// caller's context does). The deadline covers the evaluation alone, and a
// decision made without evaluating (nobody targets the meeting, or a
// remembered join-time answer) pays nothing for it; the HTTP server sets
// it from its configuration.
func (e *Engine) SetEvalTimeout(d time.Duration) { e.evalTimeout.Store(int64(d)) }

// Option configures an Engine.
type Option func(*Engine)

// WithRecorder records every decision before it is returned.
func WithRecorder(r Recorder) Option { return func(e *Engine) { e.recorder = r } }

// WithDecisionLog hands every answered decision to fn after it was
// recorded (OPA's best-effort decision logs, for example). As for a
// Recorder, fn must not keep the record's participants' or actions'
// slices.
func WithDecisionLog(fn func(context.Context, *Record)) Option {
	return func(e *Engine) { e.logs = fn }
}

// WithDecisionLogEnabled tells LogsDecisions whether the decision log
// takes decisions now (with WithDecisionLog; an OPA configuration without
// a decision_logs block takes none). Without it, a decision log given is
// taken to take them.
func WithDecisionLogEnabled(fn func() bool) Option {
	return func(e *Engine) { e.logsEnabled = fn }
}

// LogsDecisions reports whether decisions are handed now to a decision
// log that takes them: a server then tells what it knows of each request
// (WithServed), which it need not gather otherwise.
func (e *Engine) LogsDecisions() bool {
	return e.logs != nil && (e.logsEnabled == nil || e.logsEnabled())
}

// WithPhoneLocation locates dial-in callers by the country of their calling
// number. Off, a caller's location is unknown: never acted on, and counted
// as outside for every meeting-wide or account action.
func WithPhoneLocation(on bool) Option { return func(e *Engine) { e.locatePhones = on } }

// WithInputHook hands fn the input of every evaluation of the policy,
// before it is evaluated, with the snapshot that evaluates it: geoscope
// decide asks the policy what is wrong with its extension rules' entries
// for that input (policy.Snapshot.ExtensionProblems). fn must not keep
// the input, whose arrays are reused once the evaluation is done. A
// remembered join-time answer evaluates nothing and calls nothing.
func WithInputHook(fn func(context.Context, *policy.Snapshot, ast.Value)) Option {
	return func(e *Engine) { e.inputHook = fn }
}

// WithClock replaces time.Now: the decision's time, which selects the
// orders in force and is the policy's now (geoscope decide --at; tests).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// New returns an engine with no policy and no GeoIP database: it answers
// ErrNotReady until both are set.
func New(opts ...Option) *Engine {
	e := &Engine{now: time.Now}
	for _, o := range opts {
		o(e)
	}
	return e
}

// SetPolicy activates a snapshot for all decisions that start afterwards.
func (e *Engine) SetPolicy(s *policy.Snapshot) { e.snapshot.Store(s) }

// Policy returns the active snapshot, or nil.
func (e *Engine) Policy() *policy.Snapshot { return e.snapshot.Load() }

// SetGeo activates a GeoIP database and returns the previous one. The
// previous database may still be in use by decisions in flight.
func (e *Engine) SetGeo(db *geo.DB) *geo.DB { return e.geodb.Swap(db) }

// Geo returns the active GeoIP database, or nil.
func (e *Engine) Geo() *geo.DB { return e.geodb.Load() }

// Decide runs the pipeline for a request that has been decoded and
// validated by package input.
func (e *Engine) Decide(ctx context.Context, req *input.Request) (*decision.Decision, error) {
	return e.decide(ctx, req, false)
}

// Release gives back the arrays of a decision from Decide or Admit once it
// has been answered and nothing reads it any more: its actions' array,
// which for a large roster is a third of what deciding it allocates.
// Nothing may use d.Actions afterwards. Not calling it is safe: the
// collector then reclaims the array.
func (e *Engine) Release(d *decision.Decision) {
	// Decide's actions are the output's own array, checked in place;
	// Admit's are a copy (its output may be shared), owned all the same.
	policy.ReleaseActions(d.Actions)
	d.Actions = nil
}

// Admit answers the join-time question for a request from
// input.DecodeAdmission: it evaluates only the policy's admission entry
// point, so meeting-wide demands are neither granted nor refused here; they
// are decided when the roster is.
func (e *Engine) Admit(ctx context.Context, req *input.Request) (*decision.Decision, error) {
	if req.Joining == nil || len(req.Meeting.Participants) > 0 || req.Order != nil {
		return nil, fmt.Errorf("%w: an admission names a joining participant and nothing else", input.ErrInvalid)
	}
	return e.decide(ctx, req, true)
}

func (e *Engine) decide(ctx context.Context, req *input.Request, admission bool) (*decision.Decision, error) {
	snap, db := e.snapshot.Load(), e.geodb.Load()
	if snap == nil || db == nil {
		return nil, ErrNotReady
	}
	// The decision's time: which orders are in force, and what the
	// decision and its record say.
	now := e.now()

	// A preview is recorded under its order's id: one that names a
	// standing order would be found in the ledger as that order's.
	if o := req.Order; o != nil {
		if _, standing := snap.Registry().Orders[o.ID]; standing {
			return nil, &input.FieldError{Field: "order.id", Message: fmt.Sprintf("%q is a standing order in the registry; a previewed order needs an id of its own", o.ID)}
		}
	}

	// What the server tells of the request, for the decision log or for
	// a client that asked for its timers: its number and its timers, to
	// which each stage adds its own.
	served := e.served(ctx)

	// Locate: every address (and, when enabled, every calling number)
	// becomes a located country, or unknown.
	_, end := e.stage(ctx, "locate")
	stop := served.time(TimerLocate)
	facts := e.locate(db, req)
	defer func() { locatedPeople.Put(facts.Participants) }()
	facts.Orders, facts.NotInForce = ordersUnderEvaluation(snap.Registry(), req, now)
	facts.Authorities = snap.Registry().Authorities
	facts.Admission = admission
	stop()
	end(nil)

	// Evaluate. With no order under evaluation the guard would drop
	// whatever a policy returned, so the policy is not consulted; this keeps
	// the join-time path for meetings nobody targets free of evaluation.
	// The same holds at join time when no order's authority covers where
	// the participant asking to join is located: the only action an
	// admission may take is their deny_join, which the guard would drop.
	// While a service-wide order is in force every meeting is targeted, so
	// this is what keeps admissions outside its jurisdiction cheap.
	out := &policy.Output{}
	if len(facts.Orders) > 0 && (!admission || joinerCovered(facts)) {
		in := &lazyInput{req: req, facts: facts, withParticipants: snap.ReadsParticipants()}
		eval := snap.Eval
		if admission {
			eval = snap.EvalAdmission
		}
		ectx, end := e.stage(ctx, "evaluate")
		var err error
		remembered, ok := (*policy.Output)(nil), false
		if admission {
			remembered, ok = snap.RememberedAdmissionAt(in.at)
		}
		if ok {
			out = remembered
		} else {
			v := in.input()
			if e.inputHook != nil {
				e.inputHook(ectx, snap, v)
			}
			stop := served.time(metrics.RegoQueryEval)
			// The policy reads the decision's time as now: the one the
			// orders in force were chosen at and the record states.
			out, err = e.evaluate(policy.At(ectx, now), eval, v)
			stop()
			in.release()
		}
		if end(err); err != nil {
			e.logFailure(ctx, served, req, facts, snap, db, now, admission, err)
			return nil, err
		}
	}

	// Guard: the policy's actions are re-checked against the facts.
	_, end = e.stage(ctx, "guard")
	stop = served.time(TimerGuard)
	// An admission's output may be a remembered one, shared between
	// decisions; a decision's is its own.
	check := guard.CheckInPlace
	if admission {
		check = guard.Check
	}
	actions, blocked := check(facts, out.Actions)
	refused := guard.Refusals(facts, out.Refused)
	stop()
	end(nil)

	d := newDecision(req, facts, snap, db, now)
	d.Actions, d.Refused, d.GuardBlocked = nonNil(actions), nonNil(refused), nonNil(blocked)
	if len(facts.NotInForce) > 0 {
		d.OrdersNotInForce = make([]decision.OrderStatus, 0, len(facts.NotInForce))
		for _, id := range sortedKeys(facts.NotInForce) {
			d.OrdersNotInForce = append(d.OrdersNotInForce, decision.OrderStatus{OrderID: id, Status: facts.NotInForce[id]})
		}
	}
	if req.Joining != nil {
		allow := true
		for i := range actions {
			if actions[i].Type == decision.DenyJoin && actions[i].ParticipantID == req.Joining.ID {
				allow = false
				break
			}
		}
		d.AllowJoin = &allow
	}

	if check := e.answerCheck.Load(); check != nil {
		if err := (*check)(ctx, d); err != nil {
			return nil, err
		}
	}

	// Record before answering.
	if e.recorder == nil && e.logs == nil {
		return d, nil
	}
	rec := newRecord(d, req, facts, admission)
	rec.Networks = networks(req, actions)
	rec.Request, _ = ctx.Value(requestKey{}).(*RequestKey)
	if len(facts.NotInForce) > 0 {
		rec.OrdersNotInForce = ordersNotInForce(snap.Registry(), req, facts.NotInForce)
	}
	if slices.ContainsFunc(actions, func(a decision.Action) bool {
		return a.Type == decision.EndMeeting || a.Type == decision.SuspendAccount
	}) {
		rec.Reached = reached(facts)
		rec.ReachedByOrder = reachedBySubdivision(facts, actions)
	}
	if e.recorder != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		rctx, end := e.stage(rctx, "record")
		stop := served.time(TimerRecord)
		err := e.recorder.Record(rctx, rec)
		stop()
		end(err)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("recording decision %s: %w", d.DecisionID, err)
		}
	}
	if e.logs != nil {
		served.fill(rec)
		e.logs(ctx, rec)
	}
	return d, nil
}

// logFailure hands a failed evaluation to the decision log, as OPA logs a
// query that failed (an event with its error and no result): an operator
// alerting on the rate of failed decisions sees them there. The ledger
// holds decisions, and there was none.
func (e *Engine) logFailure(ctx context.Context, served *Served, req *input.Request, facts *guard.Facts, snap *policy.Snapshot, db *geo.DB, now time.Time, admission bool, err error) {
	if e.logs == nil {
		return
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		// The client left: the evaluation reports its deadline, the
		// client was answered that it closed the request.
		err = fmt.Errorf("%w (%w)", err, context.Canceled)
	}
	rec := newRecord(newDecision(req, facts, snap, db, now), req, facts, admission)
	rec.Err = err
	served.fill(rec)
	e.logs(ctx, rec)
}

// newDecision is the decision about req before anything is decided: its
// id and time, the meeting, the orders evaluated, and the revisions of
// the bundles and the GeoIP database it is made with.
func newDecision(req *input.Request, facts *guard.Facts, snap *policy.Snapshot, db *geo.DB, now time.Time) *decision.Decision {
	info := db.Info()
	return &decision.Decision{
		DecisionID: uuid.Must(uuid.NewV7()).String(),
		Time:       now.UTC(),
		MeetingID:  req.Meeting.ID,
		OrderIDs:   sortedKeys(facts.Orders),
		Geo:        decision.Geo{Database: info.Database, Build: info.Build},
		Bundles:    snap.Revisions(),
		Preview:    req.Order != nil,
	}
}

// newRecord is the record of d, made about req on facts: who was asked
// about and on which orders.
func newRecord(d *decision.Decision, req *input.Request, facts *guard.Facts, admission bool) *Record {
	r := &Record{
		Decision:     d,
		AccountID:    req.Meeting.Host.AccountID,
		Orders:       facts.Orders,
		Authorities:  facts.Authorities,
		Admission:    admission,
		Participants: req.Meeting.Participants,
		Joining:      req.Joining,
		Facts:        facts,
	}
	if req.Order != nil {
		r.PreviewOrder = req.Order.ID
	}
	return r
}

// evaluate runs eval under the evaluation deadline.
func (e *Engine) evaluate(ctx context.Context, eval func(context.Context, ast.Value) (*policy.Output, error), in ast.Value) (*policy.Output, error) {
	if d := time.Duration(e.evalTimeout.Load()); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	return eval(ctx, in)
}

// locate locates everyone in the request; the participants stay in
// request order (the policy input groups them in that order).
func (e *Engine) locate(db *geo.DB, req *input.Request) *guard.Facts {
	m := &req.Meeting
	f := &guard.Facts{
		MeetingID:        m.ID,
		AccountID:        m.Host.AccountID,
		AccountCountry:   m.Host.AccountCountry,
		Participants:     locatedPeople.Get(len(m.Participants))[:len(m.Participants)],
		ParticipantIndex: req.ParticipantIndex(),
	}
	if m.Host.Connected() {
		f.Host = &guard.Person{ID: m.Host.AccountID, Located: e.locateOne(db, m.Host.Addr, m.Host.Phone)}
	}
	e.locateParticipants(db, m.Participants, f.Participants)
	if j := req.Joining; j != nil {
		f.Joining = &guard.Person{ID: j.ID, Located: e.locateOne(db, j.Addr, j.Phone)}
	}
	return f
}

// locatedPeople keeps the located participants of large rosters for later
// decisions (see package reuse): a decision's facts are its own, and
// nothing holds them once it is recorded and logged.
var locatedPeople reuse.Slices[guard.Person]

// parallelLocateMin is the roster size from which participants are
// located in parallel: in up to GOMAXPROCS parts of at least half this
// many each. Lookups are independent and read-only, and a roster this
// large is admitted alone or nearly so (the server's in-flight budget
// gives big requests one lane per two CPUs), so its latency, not
// throughput, is what splitting buys; below it the goroutines would cost
// more than they save.
const parallelLocateMin = 4096

// locateParticipants locates ps into out (same length), in request order.
// A panic in a part is raised again in the caller's goroutine, where the
// server's recovery answers it as for any other request.
func (e *Engine) locateParticipants(db *geo.DB, ps []input.Participant, out []guard.Person) {
	parts := min(runtime.GOMAXPROCS(0), len(ps)/(parallelLocateMin/2))
	if len(ps) < parallelLocateMin || parts < 2 {
		e.locateRange(db, ps, out, 0, len(ps))
		return
	}
	var (
		wg       sync.WaitGroup
		panicked atomic.Pointer[any]
	)
	part := func(from, to int) {
		defer func() {
			if v := recover(); v != nil {
				panicked.CompareAndSwap(nil, &v)
			}
		}()
		e.locateRange(db, ps, out, from, to)
	}
	per := (len(ps) + parts - 1) / parts
	for from := per; from < len(ps); from += per {
		wg.Go(func() { part(from, min(from+per, len(ps))) })
	}
	// The caller's own part recovers too: every part is waited for before
	// a panic goes on, since the roster's arrays are reused once the
	// request is released.
	part(0, min(per, len(ps)))
	wg.Wait()
	if v := panicked.Load(); v != nil {
		panic(*v)
	}
}

// locateRange locates ps[from:to] into out[from:to]. A method rather than
// a closure in locateParticipants: a closure its goroutines share escapes,
// and was allocated for every request, rosters of one included.
func (e *Engine) locateRange(db *geo.DB, ps []input.Participant, out []guard.Person, from, to int) {
	for i := from; i < to; i++ {
		p := &ps[i]
		out[i] = guard.Person{ID: p.ID, Located: e.locateOne(db, p.Addr, p.Phone)}
	}
}

// locateOne locates one person by address or, for a dial-in caller, by
// calling number when that is enabled. Nothing else (an attribute, a role,
// the country an account is registered in) is ever a location.
func (e *Engine) locateOne(db *geo.DB, addr netip.Addr, phone string) guard.Located {
	var loc geo.Location
	by := decision.LocatedByIP
	switch {
	case addr.IsValid():
		loc = db.Locate(addr)
	case phone != "" && e.locatePhones:
		loc, by = geo.LocatePhone(phone), decision.LocatedByPhone
	}
	if !loc.Known {
		return guard.Located{}
	}
	return guard.Located{Country: loc.Country, By: by, Subdivisions: loc.Subdivisions}
}

// ordersUnderEvaluation is the preview order when one was submitted, and
// otherwise the registry's standing orders for the meeting, its account or
// every meeting, of those that are in force at now. The others that
// target the meeting are returned apart with their status (nil when
// there are none): the guard must know them to say why an action citing
// one is blocked, and the decision reports them.
func ordersUnderEvaluation(reg *registry.Registry, req *input.Request, now time.Time) (inForce map[string]registry.Order, notInForce map[string]string) {
	if req.Order != nil {
		o := req.Order.Registry()
		if status := o.StatusAt(now); status != registry.StatusInForce {
			return map[string]registry.Order{}, map[string]string{req.Order.ID: status}
		}
		return map[string]registry.Order{req.Order.ID: o}, nil
	}
	ids := reg.Standing(req.Meeting.ID, req.Meeting.Host.AccountID)
	if len(ids) == 0 {
		return nil, nil // most meetings: nothing to allocate
	}
	inForce = make(map[string]registry.Order, len(ids))
	for _, id := range ids {
		if status := reg.Status(id, now); status != registry.StatusInForce {
			if notInForce == nil {
				notInForce = map[string]string{}
			}
			notInForce[id] = status
			continue
		}
		inForce[id] = reg.Orders[id]
	}
	return inForce, notInForce
}

// joinerCovered reports whether the participant asking to join is located
// inside the jurisdiction of an order under evaluation: only then can an
// admission's answer (a deny_join) pass the guard.
func joinerCovered(f *guard.Facts) bool {
	j := f.Joining
	if j == nil || j.Country == "" {
		return false
	}
	for _, o := range f.Orders {
		if f.Authorities[o.Authority].Covers(j.Country, j.Subdivisions...) {
			return true
		}
	}
	return false
}

// ordersNotInForce are the orders of ids as the registry or the preview
// states them, for the record.
func ordersNotInForce(reg *registry.Registry, req *input.Request, ids map[string]string) map[string]registry.Order {
	out := make(map[string]registry.Order, len(ids))
	for id := range ids {
		if req.Order != nil && req.Order.ID == id {
			out[id] = req.Order.Registry()
		} else {
			out[id] = reg.Orders[id]
		}
	}
	return out
}

// networks gives, for each action, the coarse network prefix of the address
// of the participant it names (zero for meeting and account actions).
func networks(req *input.Request, actions []decision.Action) []netip.Prefix {
	var index map[string]netip.Addr // built only when a participant action exists
	out := make([]netip.Prefix, len(actions))
	for i, a := range actions {
		var addr netip.Addr
		switch {
		case a.Type == decision.DenyJoin:
			addr = req.Joining.Addr
		case a.Host:
			addr = req.Meeting.Host.Addr
		case a.Type == decision.RemoveParticipant:
			if index == nil {
				index = make(map[string]netip.Addr, len(req.Meeting.Participants))
				for _, p := range req.Meeting.Participants {
					index[p.ID] = p.Addr
				}
			}
			addr = index[a.ParticipantID]
		default:
			continue
		}
		out[i] = geo.Coarse(addr)
	}
	return out
}

func reached(f *guard.Facts) map[string]int {
	out := map[string]int{}
	for loc := range f.Everyone {
		country := loc.Country
		if country == "" {
			country = UnknownCountry
		}
		out[country]++
	}
	return out
}

// reachedBySubdivision counts, for each granted meeting-wide or account
// action citing an order whose jurisdiction lists subdivisions, everyone
// the action reaches under the jurisdiction entry that covers them, or
// their country when none does (see Record.ReachedByOrder). Nil when no
// such action was granted: country-only jurisdictions keep Record.Reached.
func reachedBySubdivision(f *guard.Facts, actions []decision.Action) map[string]map[string]int {
	var out map[string]map[string]int
	for _, a := range actions {
		if a.Type != decision.EndMeeting && a.Type != decision.SuspendAccount {
			continue
		}
		auth := f.Authorities[f.Orders[a.OrderID].Authority]
		if !auth.HasSubdivisions() || out[a.OrderID] != nil {
			continue
		}
		counts := map[string]int{}
		for loc := range f.Everyone {
			counts[coveringEntry(auth, loc)]++
		}
		if out == nil {
			out = map[string]map[string]int{}
		}
		out[a.OrderID] = counts
	}
	return out
}

// coveringEntry is the entry of the authority's jurisdiction that covers a
// person located at loc (the country, or the subdivision), their country
// when none does, or UnknownCountry.
func coveringEntry(auth registry.Authority, loc guard.Located) string {
	switch {
	case loc.Country == "":
		return UnknownCountry
	case slices.Contains(auth.Jurisdiction, loc.Country):
		return loc.Country
	}
	for _, s := range loc.Subdivisions {
		if slices.Contains(auth.Jurisdiction, s) {
			return s
		}
	}
	return loc.Country
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
