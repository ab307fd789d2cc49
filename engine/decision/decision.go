// Package decision holds the public contract of a geoscope decision: the
// actions a meeting server must carry out, the demands that were refused,
// and the actions the guard removed. Every other stage produces or consumes
// these types, so they live apart from all of them.
package decision

import "time"

// Action types. Participant-level actions are the product's purpose;
// meeting-wide and account-level actions are only ever granted when every
// affected user is inside the jurisdiction (see package guard).
const (
	DenyJoin          = "deny_join"
	RemoveParticipant = "remove_participant"
	EndMeeting        = "end_meeting"
	SuspendAccount    = "suspend_account"
)

// KnownActionType reports whether t is one of the four action types.
func KnownActionType(t string) bool {
	switch t {
	case DenyJoin, RemoveParticipant, EndMeeting, SuspendAccount:
		return true
	}
	return false
}

// Action is one enforcement step, always citing the order that demanded it.
type Action struct {
	Type          string   `json:"type"`
	MeetingID     string   `json:"meeting_id,omitempty"`
	ParticipantID string   `json:"participant_id,omitempty"`
	AccountID     string   `json:"account_id,omitempty"`
	Host          bool     `json:"host,omitempty"` // the participant is the meeting's host connection
	OrderID       string   `json:"order_id"`
	Jurisdiction  []string `json:"jurisdiction"`
	Country       string   `json:"country,omitempty"`
	// LocatedBy says how Country was established for an action on a
	// person: LocatedByIP or LocatedByPhone.
	LocatedBy string `json:"located_by,omitempty"`
	// Subdivisions are the ISO 3166-2 subdivisions of Country the person
	// was located in (a GeoIP City database; absent otherwise). A
	// jurisdiction that lists a subdivision reaches only people located
	// in it.
	Subdivisions []string `json:"subdivisions,omitempty"`
	Reason       string   `json:"reason"`
}

// How a person's location was established.
const (
	// LocatedByIP: the GeoIP database placed the person's address.
	LocatedByIP = "ip"
	// LocatedByPhone: the country of the calling number of a dial-in
	// caller (only when phone numbers are located).
	LocatedByPhone = "phone"
)

// KnownLocatedBy reports whether by is one of the ways a person is
// located.
func KnownLocatedBy(by string) bool { return by == LocatedByIP || by == LocatedByPhone }

// Refusal is a demand that was not carried out as asked.
type Refusal struct {
	OrderID         string `json:"order_id"`
	Demand          string `json:"demand"`
	Code            string `json:"code"`
	Reason          string `json:"reason"`
	AffectedOutside int    `json:"affected_outside"`
}

// Refusal codes, stable for reports and for policy authors.
const (
	RefusedUnknownAuthority = "unknown_authority"
	RefusedNoLegalBasis     = "no_legal_basis"
	RefusedUnknownDemand    = "unknown_demand"
	RefusedNotTargeted      = "not_targeted"
	RefusedNoParticipants   = "no_participants"
	RefusedAffectsOutside   = "affects_outside"
	// RefusedServiceWide: end_meeting or suspend_account in a service-wide
	// order, which acts on participants only.
	RefusedServiceWide = "service_wide"
	// RefusedExempt: the demand would reach a person the operator's policy
	// exempts (data.geoscope.extensions.exempt).
	RefusedExempt = "exempt"
	// RefusedWithheld: the operator's policy withholds the order or the
	// demand (data.geoscope.extensions.withheld). An operator's own
	// refusals (data.geoscope.extensions.refusals) carry codes of its own.
	RefusedWithheld = "withheld"
)

// Blocked is an action the policy returned and the guard dropped.
type Blocked struct {
	Action Action `json:"action"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// OrderStatus is an order and its status at the decision's time: one of
// "not_yet_effective", "expired" or "revoked" for an order not in force
// (see registry.Statuses).
type OrderStatus struct {
	OrderID string `json:"order_id"`
	Status  string `json:"status"`
}

// Geo names the GeoIP database a decision was made with.
type Geo struct {
	Database string    `json:"database"`
	Build    time.Time `json:"build"`
}

// Admission is the join-time answer (POST /v1/admission): the part of a
// decision a meeting server needs to admit or refuse one participant.
type Admission struct {
	// DecisionID identifies the recorded decision; cite it when carrying
	// out an action.
	DecisionID string `json:"decision_id"`
	// Allow is false only when Actions holds a deny_join for the
	// participant.
	Allow bool `json:"allow"`
	// Actions are deny_join actions for the participant, each citing the
	// order that demanded it.
	Actions []Action `json:"actions"`
	// OrderIDs are the orders that were evaluated.
	OrderIDs []string `json:"order_ids"`
	// Bundles are the revisions of the policy and registry bundles the
	// decision was made with, by bundle name.
	Bundles map[string]string `json:"bundles"`
}

// Decision is the engine's answer. AllowJoin is set only when the request
// asked an admission question.
type Decision struct {
	DecisionID   string    `json:"decision_id"`
	Time         time.Time `json:"time"`
	MeetingID    string    `json:"meeting_id"`
	AllowJoin    *bool     `json:"allow_join,omitempty"`
	Actions      []Action  `json:"actions"`
	Refused      []Refusal `json:"refused"`
	GuardBlocked []Blocked `json:"guard_blocked"`
	// OrderIDs are the orders evaluated: those in force at Time.
	OrderIDs []string `json:"order_ids"`
	// OrdersNotInForce are the orders that target the meeting (or its
	// account, or every meeting) but were not in force at Time, with
	// their status: not evaluated, and the guard blocks any action citing
	// one (order_not_in_force). Sorted by id; absent when there are none.
	OrdersNotInForce []OrderStatus `json:"orders_not_in_force,omitempty"`
	// Preview marks a decision about an order submitted with the request
	// rather than one from the registry: for review, not enforcement.
	Preview bool              `json:"preview,omitempty"`
	Geo     Geo               `json:"geo"`
	Bundles map[string]string `json:"bundles"`
}
