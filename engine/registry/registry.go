// Package registry is the typed view of the registry bundle: the
// authorities geoscope recognises, with their jurisdictions, and the
// standing orders they have issued. The registry is the only source of an
// authority's jurisdiction; an order never carries its own.
package registry

import (
	"slices"
	"strings"
	"time"
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
	Name string `json:"name"`
	// Jurisdiction lists ISO 3166-1 alpha-2 country codes ("UA") and ISO
	// 3166-2 subdivision codes ("UA-43"). A subdivision covers only the
	// people the GeoIP database locates in it, never the rest of its
	// country.
	Jurisdiction []string `json:"jurisdiction"`
}

// Covers reports whether a person located in country (ISO 3166-1 alpha-2)
// and, when the GeoIP database says so, in subdivisions (ISO 3166-2, "UA-43",
// the largest first) is inside the authority's jurisdiction: the country is
// listed, or one of the subdivisions is. An empty country, i.e. an unknown
// location, is never inside, whatever subdivisions come with it. The
// country of a subdivision must be the located country: the locate stage
// builds subdivision codes from it, and a code of another country is
// ignored here too.
func (a Authority) Covers(country string, subdivisions ...string) bool {
	if country == "" {
		return false
	}
	if slices.Contains(a.Jurisdiction, country) {
		return true
	}
	for _, s := range subdivisions {
		if SubdivisionCountry(s) == country && slices.Contains(a.Jurisdiction, s) {
			return true
		}
	}
	return false
}

// HasSubdivisions reports whether the jurisdiction lists a subdivision.
func (a Authority) HasSubdivisions() bool { return slices.ContainsFunc(a.Jurisdiction, IsSubdivision) }

// IsSubdivision reports whether code has the shape of an ISO 3166-2
// subdivision code ("UA-43", "GB-ENG"): a country code, a hyphen and one to
// three letters or digits. The registry validation checks the code against
// the official list; this only tells a subdivision from a country.
func IsSubdivision(code string) bool {
	if len(code) < 4 || len(code) > 6 || code[2] != '-' {
		return false
	}
	for i := 3; i < len(code); i++ {
		c := code[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' && code[1] <= 'Z'
}

// IsCountryCode reports whether code has the shape of an ISO 3166-1
// alpha-2 code ("CN").
func IsCountryCode(code string) bool {
	return len(code) == 2 && code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' && code[1] <= 'Z'
}

// IsPlaceCode reports whether code has the shape of a country or a
// subdivision code: what a jurisdiction lists, and where a person is.
func IsPlaceCode(code string) bool { return IsCountryCode(code) || IsSubdivision(code) }

// SubdivisionCountry is the country of a subdivision code ("UA" for
// "UA-43"), or "" when code is not one.
func SubdivisionCountry(code string) string {
	if !IsSubdivision(code) {
		return ""
	}
	return code[:2]
}

// Targets names what an order is directed at.
type Targets struct {
	Meetings []string `json:"meetings,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	// AllMeetings applies the order to every meeting: a service-wide
	// order. Only participant actions (remove_participant, deny_join) may
	// follow from one; it names no meeting and no account besides.
	AllMeetings bool `json:"all_meetings,omitempty"`
}

// Order is a demand by an authority.
type Order struct {
	Authority  string   `json:"authority"`
	Demands    []string `json:"demands"`
	Targets    Targets  `json:"targets"`
	LegalBasis string   `json:"legal_basis,omitempty"`
	Received   string   `json:"received,omitempty"`
	// Effective, Expires (a date YYYY-MM-DD or an RFC 3339 date-time) and
	// Revoked bound when the order is in force (see Validity); none of
	// them: always.
	Effective string      `json:"effective,omitempty"`
	Expires   string      `json:"expires,omitempty"`
	Revoked   *Revocation `json:"revoked,omitempty"`
}

// ServiceWide reports whether the order applies to every meeting.
func (o Order) ServiceWide() bool { return o.Targets.AllMeetings }

// HasLegalBasis reports whether the order states one.
func (o Order) HasLegalBasis() bool { return strings.TrimSpace(o.LegalBasis) != "" }

// TargetsMeeting reports whether the order is directed at the meeting:
// service-wide, by naming it, or by naming the account that hosts it (an
// account target covers every meeting of that account, including future
// ones).
func (o Order) TargetsMeeting(meetingID, accountID string) bool {
	return o.Targets.AllMeetings || slices.Contains(o.Targets.Meetings, meetingID) ||
		(accountID != "" && slices.Contains(o.Targets.Accounts, accountID))
}

// Demanded reports whether the order makes demand d.
func (o Order) Demanded(d string) bool { return slices.Contains(o.Demands, d) }

// Registry is an immutable, indexed registry. The index answers "which
// standing orders target this meeting or account" in O(1), which keeps the
// join-time path flat however many orders are registered; evaluating that
// selection in Rego would scan every order on every request.
//
// Service-wide orders are indexed apart, as one sorted list every meeting
// gets: while one is in force, every meeting is targeted and the policy is
// evaluated on every admission (docs/benchmarks.md has the cost), but
// finding them costs a merge of short lists, never a scan of the registry.
// The validity of the few orders that state one is parsed once, here, so
// the status of an order at the decision's time is a map lookup and two
// comparisons.
type Registry struct {
	Authorities map[string]Authority `json:"authorities"`
	Orders      map[string]Order     `json:"orders"`

	byMeeting   map[string][]string
	byAccount   map[string][]string
	serviceWide []string
	validity    map[string]Validity // orders with effective, expires or revoked
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
		if o.Targets.AllMeetings {
			r.serviceWide = append(r.serviceWide, id)
		}
		if o.Effective != "" || o.Expires != "" || o.Revoked != nil {
			if r.validity == nil {
				r.validity = map[string]Validity{}
			}
			// An order whose dates do not parse (which the validation
			// rules and the policy stage reject before getting here) is
			// kept out of force: treated as revoked from the first
			// instant a date may name.
			v, err := o.Validity()
			if err != nil {
				v = Validity{Revoked: time.Date(MinYear, time.January, 1, 0, 0, 0, 0, time.UTC)}
			}
			r.validity[id] = v
		}
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
	slices.Sort(r.serviceWide)
	return r
}

// Standing returns the ids of the standing orders that target the meeting,
// its host account or every meeting, sorted and without duplicates, in
// force or not (see Status). The result may be shared with the index: the
// caller must not modify it.
func (r *Registry) Standing(meetingID, accountID string) []string {
	m, a, s := r.byMeeting[meetingID], r.byAccount[accountID], r.serviceWide
	if accountID == "" {
		a = nil
	}
	switch {
	case len(a) == 0 && len(s) == 0:
		return m
	case len(m) == 0 && len(s) == 0:
		return a
	case len(m) == 0 && len(a) == 0:
		return s
	}
	out := make([]string, 0, len(m)+len(a)+len(s))
	out = append(out, m...)
	out = append(out, a...)
	out = append(out, s...)
	slices.Sort(out)
	return slices.Compact(out)
}

// ServiceWide returns the ids of the service-wide orders, sorted, in force
// or not. The caller must not modify the result.
func (r *Registry) ServiceWide() []string { return r.serviceWide }

// Status is the status of order id at t: StatusInForce for an order that
// states no validity (and for an id the registry does not hold; callers
// ask about ids Standing returned).
func (r *Registry) Status(id string, t time.Time) string {
	v, ok := r.validity[id]
	if !ok {
		return StatusInForce
	}
	return v.Status(t)
}

// Validity is the parsed validity of order id (zero when it states none).
func (r *Registry) Validity(id string) Validity { return r.validity[id] }

// HasSubdivisions reports whether an authority's jurisdiction lists a
// subdivision: only a GeoIP database with subdivisions (a City database)
// can locate anyone inside one.
func (r *Registry) HasSubdivisions() bool {
	for _, a := range r.Authorities {
		if a.HasSubdivisions() {
			return true
		}
	}
	return false
}
