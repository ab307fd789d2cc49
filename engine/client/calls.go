package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
)

// Endpoint paths, relative to the base URL.
const (
	PathDecisions = "/v1/decisions"
	PathAdmission = "/v1/admission"
	PathHealth    = "/health"
	PathReady     = "/ready"
	PathStatus    = "/v1/status"
)

// AdmissionRequest is the join-time question: may this participant join
// this meeting? It is the server's own request type:
//
//	client.AdmissionRequest{
//		Meeting: input.AdmissionMeeting{ID: "m-1", Host: input.AdmissionHost{AccountID: "acct-1", AccountCountry: "US"}},
//		Participant: input.Participant{ID: "user-7", IP: "203.0.113.9"},
//	}
type AdmissionRequest = input.Admission

// Admission is the join-time answer.
type Admission = decision.Admission

// encodeRequest is a request's JSON body, refusing text that is not valid
// UTF-8 (ErrInvalidInput) before anything is sent. encoding/json would
// replace each bad byte with U+FFFD: the server, which refuses invalid
// UTF-8 itself, would then decide about another id ("px\xff" sent as
// "px\uFFFD", the same id as any other "px" and one bad byte), the answer
// would not name the person asked about, and two people would share one
// pseudonym in the ledger. Otherwise the body is encoding/json's.
func encodeRequest(req any) ([]byte, error) {
	body, err := jsonv2.Marshal(req, jsonv1.DefaultOptionsV1(), jsontext.AllowInvalidUTF8(false))
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the request: %v", ErrInvalidInput, err)
	}
	return body, nil
}

// Decide asks for a decision about a meeting and its roster (and, when
// req.Joining is set, a joining participant). The returned actions are
// what the meeting server must carry out; on error it must carry out none
// (see ActionsOrNone).
func (c *Client) Decide(ctx context.Context, req *input.Request) (*decision.Decision, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: nil *input.Request", ErrInvalidInput)
	}
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	raw, err := c.do(ctx, call{method: http.MethodPost, path: PathDecisions, body: body, retryNotReady: true})
	if err != nil {
		return nil, err
	}
	var d decision.Decision
	if err := decodeAnswer(raw, &d); err != nil {
		return nil, badResponse(http.MethodPost, PathDecisions, "%v", err)
	}
	if err := checkDecision(req, &d); err != nil {
		return nil, badResponse(http.MethodPost, PathDecisions, "%s", err)
	}
	return &d, nil
}

// Admit asks whether a participant may join a meeting. On error the
// participant must be admitted (see AdmitOrAllow).
func (c *Client) Admit(ctx context.Context, req AdmissionRequest) (*Admission, error) {
	body, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	raw, err := c.do(ctx, call{method: http.MethodPost, path: PathAdmission, body: body, retryNotReady: true})
	if err != nil {
		return nil, err
	}
	// Allow is decoded through a pointer: a body without "allow" must not
	// read as a denial.
	var wire struct {
		DecisionID string            `json:"decision_id"`
		Allow      *bool             `json:"allow"`
		Actions    []decision.Action `json:"actions"`
		OrderIDs   []string          `json:"order_ids"`
		Bundles    map[string]string `json:"bundles"`
	}
	if err := decodeAnswer(raw, &wire); err != nil {
		return nil, badResponse(http.MethodPost, PathAdmission, "%v", err)
	}
	if wire.Allow == nil {
		return nil, badResponse(http.MethodPost, PathAdmission, "no allow flag")
	}
	a := &Admission{DecisionID: wire.DecisionID, Allow: *wire.Allow, Actions: wire.Actions, OrderIDs: wire.OrderIDs, Bundles: wire.Bundles}
	if err := checkAdmission(&req, a); err != nil {
		return nil, badResponse(http.MethodPost, PathAdmission, "%s", err)
	}
	return a, nil
}

// AdmitOrAllow is Admit under the client contract: on any error the
// participant is admitted (allow is true, a is nil) and the error is
// returned only to be logged or counted. A decision point outage must not
// silence speech, and a denial without a recorded, scoped decision is what
// geoscope exists to prevent.
//
//	allow, a, err := gs.AdmitOrAllow(ctx, req)
//	if err != nil {
//		log.Warn("geoscope unavailable; admitting", "error", err)
//	}
//	if !allow {
//		deny(a.Actions[0]) // cites a.DecisionID and the order
//	}
func (c *Client) AdmitOrAllow(ctx context.Context, req AdmissionRequest) (allow bool, a *Admission, err error) {
	a, err = c.Admit(ctx, req)
	if err != nil {
		return true, nil, err
	}
	return a.Allow, a, nil
}

// ActionsOrNone is Decide under the client contract: on any error there
// are no actions (nil) and nobody is removed; the error is returned only to
// be logged or counted. DecisionOrNone is the same with the decision the
// actions come from, to cite its id.
//
// A request carrying a preview order (req.Order) is refused without a
// call, with an error matching ErrInvalidInput: a preview evaluates a demand
// nobody entered in the registry, so its actions are for review (Decide),
// never for enforcement. An answer marked as a preview is refused as
// ErrBadResponse.
func (c *Client) ActionsOrNone(ctx context.Context, req *input.Request) ([]decision.Action, error) {
	d, err := c.DecisionOrNone(ctx, req)
	if err != nil {
		return nil, err
	}
	return d.Actions, nil
}

// DecisionOrNone is Decide under the client contract, for a meeting server
// that cites the decision when it enforces (its DecisionID, which
// GET /v1/ledger/{decision_id} shows with a statement of reasons): on any
// error the decision is nil, there are no actions and nobody is removed;
// the error is returned only to be logged or counted. Previews are refused
// as by ActionsOrNone.
//
//	d, err := gs.DecisionOrNone(ctx, req)
//	if err != nil {
//		log.Warn("geoscope unavailable; enforcing nothing", "error", err)
//		return
//	}
//	for _, a := range d.Actions {
//		enforce(a, d.DecisionID)
//	}
func (c *Client) DecisionOrNone(ctx context.Context, req *input.Request) (*decision.Decision, error) {
	if req != nil && req.Order != nil {
		return nil, fmt.Errorf("%w: a preview order (order %q) is not enforceable; use Decide to review it", ErrInvalidInput, req.Order.ID)
	}
	d, err := c.Decide(ctx, req)
	if err != nil {
		return nil, err
	}
	if d.Preview {
		// The request carried no order, so a server or proxy that answers
		// a preview is not answering this request.
		return nil, badResponse(http.MethodPost, PathDecisions, "the answer is marked as a preview, for review only; the request asked for enforcement")
	}
	return d, nil
}

// Health reports whether the decision point process is up (GET /health).
// It says nothing about whether it can decide; see Ready.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: PathHealth})
	return err
}

// Ready reports whether the decision point can decide (GET /ready): nil,
// or an error matching ErrNotReady whose message says what is missing. A
// not_ready answer is not retried here: it is the answer.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, call{method: http.MethodGet, path: PathReady})
	return err
}

// Status is GET /v1/status: what the decision point is deciding with.
type Status struct {
	Version       string         `json:"version"`
	Revision      string         `json:"revision,omitempty"`
	Ready         bool           `json:"ready"`
	NotReady      string         `json:"not_ready,omitempty"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Bundles       []StatusBundle `json:"bundles"`
	BundleError   *StatusFailure `json:"bundle_error,omitempty"`
	GeoIP         *StatusGeoIP   `json:"geoip,omitempty"`
	GeoIPError    *StatusFailure `json:"geoip_error,omitempty"`
	Reloads       int            `json:"reloads"`
	StartedAt     time.Time      `json:"started_at"`
	// Ledger is the ledger's health: whether its latest commit succeeded.
	// While it is not OK, decisions that would be recorded are answered
	// 503 ledger_unavailable. Nil when the server runs without a ledger.
	Ledger *StatusLedger `json:"ledger,omitempty"`
	// Warnings say what is likely wrong with the active bundles and GeoIP
	// database together although each loaded.
	Warnings []string `json:"warnings,omitempty"`
	// BundleRejections and GeoIPRejections count the versions rejected
	// since the start.
	BundleRejections int `json:"bundle_rejections"`
	GeoIPRejections  int `json:"geoip_rejections"`

	// Raw is the whole response, for fields this client does not know.
	Raw json.RawMessage `json:"-"`
}

// StatusBundle is an active policy or registry bundle.
type StatusBundle struct {
	Name        string    `json:"name"`
	Revision    string    `json:"revision"`
	ActivatedAt time.Time `json:"activated_at"`
}

// StatusGeoIP is the active GeoIP database.
type StatusGeoIP struct {
	Source   string    `json:"source"`
	Database string    `json:"database"`
	Build    time.Time `json:"build"`
	LoadedAt time.Time `json:"loaded_at"`
}

// StatusLedger is the ledger's health: the fields of the server's
// ledger.Health, declared here because a meeting server embedding this
// client must not link package ledger and its database drivers.
type StatusLedger struct {
	Backend    string    `json:"backend"`
	OK         bool      `json:"ok"`
	LastError  string    `json:"last_error,omitempty"`
	LastErrAt  time.Time `json:"last_error_at,omitzero"`
	LastCommit time.Time `json:"last_commit,omitzero"`
}

// StatusFailure is a rejected version of a source.
type StatusFailure struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// Status returns the decision point's status. Unless the server serves it
// publicly, it needs a token with the admin scope (ErrForbidden otherwise).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	raw, err := c.do(ctx, call{method: http.MethodGet, path: PathStatus, retryNotReady: true})
	if err != nil {
		return nil, err
	}
	var s Status
	if err := decodeAnswer(raw, &s); err != nil {
		return nil, badResponse(http.MethodGet, PathStatus, "%v", err)
	}
	s.Raw = raw
	return &s, nil
}

// checkDecision refuses a decision that is not recorded and scoped to the
// request: enforcement must always cite a decision and an order, and only
// ever touch the meeting, people and account the request named. The
// server's guard already ensures this; the check keeps a proxy, a version
// mismatch or a bug from turning into enforcement.
func checkDecision(req *input.Request, d *decision.Decision) error {
	if d.DecisionID == "" {
		return fmt.Errorf("no decision_id")
	}
	if d.MeetingID != req.Meeting.ID {
		return fmt.Errorf("the decision is about meeting %q, the request about %q", d.MeetingID, req.Meeting.ID)
	}
	var people map[string]bool
	if len(d.Actions) > 0 {
		people = make(map[string]bool, len(req.Meeting.Participants)+1)
		for _, p := range req.Meeting.Participants {
			people[p.ID] = true
		}
	}
	for i, a := range d.Actions {
		if err := checkAction(a, req.Meeting.ID, d.OrderIDs); err != nil {
			return fmt.Errorf("actions[%d]: %w", i, err)
		}
		switch {
		case a.Type == decision.DenyJoin:
			if req.Joining == nil || a.ParticipantID != req.Joining.ID {
				return fmt.Errorf("actions[%d]: deny_join for %q, who is not joining", i, a.ParticipantID)
			}
		case a.Type == decision.RemoveParticipant && a.Host:
			// Connected over IP or dialled in: a host located by the
			// calling number (--locate-phone-numbers) may be removed too.
			if (req.Meeting.Host.IP == "" && req.Meeting.Host.Phone == "") || a.ParticipantID != req.Meeting.Host.AccountID {
				return fmt.Errorf("actions[%d]: remove_participant for host %q, who is not the meeting's connected host", i, a.ParticipantID)
			}
		case a.Type == decision.RemoveParticipant:
			if !people[a.ParticipantID] {
				return fmt.Errorf("actions[%d]: remove_participant for %q, who is not in the roster", i, a.ParticipantID)
			}
		case a.Type == decision.SuspendAccount:
			if a.AccountID != req.Meeting.Host.AccountID {
				return fmt.Errorf("actions[%d]: suspend_account for %q, not the meeting's host account", i, a.AccountID)
			}
		}
	}
	if req.Joining != nil {
		if d.AllowJoin == nil {
			return fmt.Errorf("no allow_join for the joining participant")
		}
		if *d.AllowJoin == denies(d.Actions, req.Joining.ID) {
			return fmt.Errorf("allow_join %v contradicts the actions", *d.AllowJoin)
		}
	}
	return nil
}

// checkAdmission refuses an admission answer that is not a recorded,
// scoped decision about this participant.
func checkAdmission(req *AdmissionRequest, a *Admission) error {
	if a.DecisionID == "" {
		return fmt.Errorf("no decision_id")
	}
	for i, act := range a.Actions {
		if err := checkAction(act, req.Meeting.ID, a.OrderIDs); err != nil {
			return fmt.Errorf("actions[%d]: %w", i, err)
		}
		if act.Type != decision.DenyJoin || act.ParticipantID != req.Participant.ID {
			return fmt.Errorf("actions[%d]: %s for %q; an admission only denies the joining participant", i, act.Type, act.ParticipantID)
		}
	}
	if a.Allow == denies(a.Actions, req.Participant.ID) {
		return fmt.Errorf("allow %v contradicts the actions", a.Allow)
	}
	return nil
}

func checkAction(a decision.Action, meetingID string, orderIDs []string) error {
	switch {
	case !decision.KnownActionType(a.Type):
		return fmt.Errorf("unknown action type %q", a.Type)
	case a.OrderID == "":
		return fmt.Errorf("%s cites no order", a.Type)
	case !slices.Contains(orderIDs, a.OrderID):
		return fmt.Errorf("%s cites order %q, which was not evaluated", a.Type, a.OrderID)
	case a.MeetingID != meetingID:
		// The server names the meeting in every action it answers.
		return fmt.Errorf("%s names meeting %q, the request is about %q", a.Type, a.MeetingID, meetingID)
	case (a.Type == decision.DenyJoin || a.Type == decision.RemoveParticipant) && a.ParticipantID == "":
		return fmt.Errorf("%s names no participant", a.Type)
	}
	return nil
}

func denies(actions []decision.Action, participantID string) bool {
	return slices.ContainsFunc(actions, func(a decision.Action) bool {
		return a.Type == decision.DenyJoin && a.ParticipantID == participantID
	})
}

// decodeAnswer decodes a successful answer strictly: a member named twice
// or invalid UTF-8 is refused (encoding/json takes the last of two
// "participant_id"s), so that two readers of one answer cannot read two
// decisions from it. Names match only in their exact case (encoding/json
// read "ALLOW" as "allow"); a member of another case is ignored as
// unknown, as are members a newer server may add.
func decodeAnswer(raw []byte, v any) error {
	return jsonv2.Unmarshal(raw, v)
}
