// Package registry is the typed view of the registry bundle: the
// authorities geoscope recognises, with their jurisdictions, and the
// standing orders they have issued. The registry is the only source of an
// authority's jurisdiction; an order never carries its own.
package registry

import (
	"slices"
	"strings"
)

// Demands an order may make.
const (
	DemandRemoveParticipants = "remove_participants"
	DemandEndMeeting         = "end_meeting"
	DemandSuspendAccount     = "suspend_account"
)

// Demands lists the demand vocabulary in a stable order.
var Demands = []string{DemandRemoveParticipants, DemandEndMeeting, DemandSuspendAccount}

// KnownDemand reports whether d is in the demand vocabulary.
func KnownDemand(d string) bool { return slices.Contains(Demands, d) }

// Authority is a body whose orders geoscope evaluates.
type Authority struct {
	Name         string   `json:"name"`
	Jurisdiction []string `json:"jurisdiction"`
}

// Covers reports whether country (ISO 3166-1 alpha-2) is inside the
// authority's jurisdiction. An empty country, i.e. an unknown location, is
// never inside.
func (a Authority) Covers(country string) bool {
	return country != "" && slices.Contains(a.Jurisdiction, country)
}

// Targets names what an order is directed at.
type Targets struct {
	Meetings []string `json:"meetings,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
}

// Order is a demand by an authority.
type Order struct {
	Authority  string   `json:"authority"`
	Demands    []string `json:"demands"`
	Targets    Targets  `json:"targets"`
	LegalBasis string   `json:"legal_basis,omitempty"`
	Received   string   `json:"received,omitempty"`
}

// HasLegalBasis reports whether the order states one.
func (o Order) HasLegalBasis() bool { return strings.TrimSpace(o.LegalBasis) != "" }

// Targets reports whether the order is directed at the meeting, either by
// naming it or by naming the account that hosts it (an account target covers
// every meeting of that account, including future ones).
func (o Order) TargetsMeeting(meetingID, accountID string) bool {
	return slices.Contains(o.Targets.Meetings, meetingID) ||
		(accountID != "" && slices.Contains(o.Targets.Accounts, accountID))
}

// Demanded reports whether the order makes demand d.
func (o Order) Demanded(d string) bool { return slices.Contains(o.Demands, d) }

// Registry is an immutable, indexed registry. The index answers "which
// standing orders target this meeting or account" in O(1), which keeps the
// join-time path flat however many orders are registered; evaluating that
// selection in Rego would scan every order on every request.
type Registry struct {
	Authorities map[string]Authority `json:"authorities"`
	Orders      map[string]Order     `json:"orders"`

	byMeeting map[string][]string
	byAccount map[string][]string
}

// New indexes the given authorities and orders. The maps are retained and
// must not be modified afterwards.
func New(authorities map[string]Authority, orders map[string]Order) *Registry {
	r := &Registry{
		Authorities: authorities,
		Orders:      orders,
		byMeeting:   map[string][]string{},
		byAccount:   map[string][]string{},
	}
	if r.Authorities == nil {
		r.Authorities = map[string]Authority{}
	}
	if r.Orders == nil {
		r.Orders = map[string]Order{}
	}
	for id, o := range r.Orders {
		for _, m := range o.Targets.Meetings {
			r.byMeeting[m] = append(r.byMeeting[m], id)
		}
		for _, a := range o.Targets.Accounts {
			r.byAccount[a] = append(r.byAccount[a], id)
		}
	}
	for _, ids := range r.byMeeting {
		slices.Sort(ids)
	}
	for _, ids := range r.byAccount {
		slices.Sort(ids)
	}
	return r
}

// Standing returns the ids of the standing orders that target the meeting
// or its host account, sorted and without duplicates.
func (r *Registry) Standing(meetingID, accountID string) []string {
	m, a := r.byMeeting[meetingID], r.byAccount[accountID]
	if accountID == "" {
		a = nil
	}
	switch {
	case len(a) == 0:
		return m
	case len(m) == 0:
		return a
	}
	out := make([]string, 0, len(m)+len(a))
	out = append(out, m...)
	out = append(out, a...)
	slices.Sort(out)
	return slices.Compact(out)
}
