package ledger

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
)

// Statement is a statement of reasons for one action, in the spirit of
// art. 17 of the EU Digital Services Act: the restriction decided and
// where, on which legal ground, on which facts, and whether it was
// automated. geoscope decides; the meeting platform carries the decision
// out, so a statement says what was decided, never that it happened.
type Statement struct {
	Action           Action `json:"action"`
	Restriction      string `json:"restriction"`
	TerritorialScope string `json:"territorial_scope"`
	LegalGround      string `json:"legal_ground"`
	Order            string `json:"order"`
	// OrderValidity says that the order was in force when the decision
	// was made, and the period of validity it states.
	OrderValidity string `json:"order_validity"`
	Facts         string `json:"facts"`
	Automated     bool   `json:"automated"`
	AutomatedNote string `json:"automated_note"`
	Redress       string `json:"redress"`
}

var restrictions = map[string]string{
	"deny_join":          "refusal of the participant's admission to the meeting, decided by geoscope for the meeting platform to carry out",
	"remove_participant": "removal of the participant from the meeting, decided by geoscope for the meeting platform to carry out",
	"end_meeting":        "ending of the meeting, decided by geoscope for the meeting platform to carry out",
	"suspend_account":    "suspension of the account, decided by geoscope for the meeting platform to carry out",
}

// Statements returns a statement of reasons for each action of e. A
// preview (a decision about an order submitted for review) has none:
// nothing in it is for the meeting platform to carry out, and a statement
// says what is.
func (e *Entry) Statements() []Statement {
	if e.Preview {
		return []Statement{}
	}
	orders := make(map[string]Order, len(e.Orders))
	for _, o := range e.Orders {
		orders[o.OrderID] = o
	}
	out := make([]Statement, 0, len(e.Actions))
	for _, a := range e.Actions {
		o := orders[a.OrderID]
		// What the registry, a bundle or the GeoIP database named is
		// quoted within the statement's own sentences through
		// input.Visible: an override left open in an authority's name
		// reversed the words after it ("the decision reaches only people
		// located there"), and an escape sequence ran in the terminal of
		// whoever read `geoscope ledger statements`. The legal basis,
		// which is a field of its own, is given as the order states it.
		authority := input.Visible(o.Authority)
		if o.AuthorityName != "" {
			authority = input.Visible(o.AuthorityName) + " (" + authority + ")"
		}
		scope := input.Visible(strings.Join(a.Jurisdiction, ", "))
		facts := e.facts(a)
		out = append(out, Statement{
			Action:           a,
			Restriction:      restrictions[a.Type],
			TerritorialScope: fmt.Sprintf("limited to %s, the jurisdiction of %s: the decision reaches only people located there", scope, authority),
			LegalGround:      o.LegalBasis,
			Order:            fmt.Sprintf("order %s of %s, received %s, demanding %s", input.Visible(a.OrderID), authority, input.Visible(orDash(o.Received)), input.Visible(strings.Join(o.Demands, ", "))) + e.narrowed(a, o),
			OrderValidity:    e.validity(o),
			Facts:            facts,
			Automated:        true,
			AutomatedNote:    "decided automatically by geoscope from the order, the operator's policy (bundles " + bundleList(e.Bundles) + ") and " + locatedHow(a) + "; no person reviewed this individual decision",
			Redress:          "the affected user may contact the service operator citing decision " + e.DecisionID + " to contest it",
		})
	}
	return out
}

// narrowed says, of a participant's removal or refused admission under an
// order that does not demand removals, why one follows from it: a
// statement citing only a demand to end the meeting, for a removal, would
// leave the person (and a regulator) to guess. It names the demands of the
// order this decision refused, and why; "" for any other action.
func (e *Entry) narrowed(a Action, o Order) string {
	if (a.Type != decision.RemoveParticipant && a.Type != decision.DenyJoin) || slices.Contains(o.Demands, "remove_participants") {
		return ""
	}
	out := fmt.Sprintf("; a removal or a refused admission of the participants located in %s follows from any of its demands", input.Visible(strings.Join(a.Jurisdiction, ", ")))
	var demands, codes []string
	for _, r := range e.Refused {
		if r.OrderID != a.OrderID {
			continue
		}
		if !slices.Contains(demands, r.Demand) {
			demands = append(demands, r.Demand)
		}
		if r.Code != "" && !slices.Contains(codes, r.Code) {
			codes = append(codes, r.Code)
		}
	}
	if len(demands) > 0 {
		out += fmt.Sprintf(", and this decision refused %s as demanded", input.Visible(strings.Join(demands, ", ")))
		if len(codes) > 0 {
			out += " (" + input.Visible(strings.Join(codes, ", ")) + ")"
		}
	}
	return out
}

// validity states that the order was in force at the decision's time and
// the period it states. An action can only cite an order in force (the
// guard blocks any other), so the first part is the fact, not a claim.
func (e *Entry) validity(o Order) string {
	at := e.Time.UTC().Format(time.RFC3339)
	var parts []string
	if o.Effective != "" {
		parts = append(parts, "effective from "+bound(input.Visible(o.Effective), "the start"))
	}
	if o.Expires != "" {
		parts = append(parts, "expiring at "+bound(input.Visible(o.Expires), "the end"))
	}
	if r := o.Revoked; r != nil {
		parts = append(parts, fmt.Sprintf("revoked from %s (%s)", bound(r.Date, "the start"), input.Visible(r.Reason)))
	}
	scope := "every meeting it targets"
	if o.ServiceWide {
		scope = "every meeting (a service-wide order)"
	}
	if len(parts) == 0 {
		return fmt.Sprintf("in force at the time of the decision (%s), for %s; the order states no period of validity", at, scope)
	}
	return fmt.Sprintf("in force at the time of the decision (%s), for %s; %s", at, scope, strings.Join(parts, ", "))
}

// bound is a validity date as a statement says it: a date-only value is a
// UTC day, taken from its start or through its end.
func bound(value, edge string) string {
	if len(value) == len(time.DateOnly) {
		return edge + " of " + value + " (UTC)"
	}
	return value
}

// locatedHow names what located the people an action reached.
func locatedHow(a Action) string {
	switch {
	case a.LocatedBy == decision.LocatedByPhone:
		return "the country code of the participant's calling number"
	case a.Type == "end_meeting" || a.Type == "suspend_account":
		return "the location of every connected user (by IP geolocation, or a dial-in caller's calling number)"
	}
	return "the IP geolocation"
}

func (e *Entry) facts(a Action) string {
	db := fmt.Sprintf("%s built %s", input.Visible(e.Geo.Database), e.Geo.Build.Format("2006-01-02"))
	// A meeting-wide action is granted only when everyone connected was
	// located inside; a dial-in caller is located only by the calling
	// number (when the operator locates them at all, else the action is
	// blocked), so both ways may have counted.
	everyone := fmt.Sprintf("by address according to %s, or, for a dial-in caller, by the country code of the calling number", db)
	switch a.Type {
	case "end_meeting":
		return fmt.Sprintf("every user connected to meeting %s was located in %s (%s)", input.Visible(e.MeetingID), input.Visible(strings.Join(a.Jurisdiction, ", ")), everyone)
	case "suspend_account":
		return fmt.Sprintf("the account is registered in %s and every connected user was located in %s (%s)", input.Visible(a.Country), input.Visible(strings.Join(a.Jurisdiction, ", ")), everyone)
	}
	if a.LocatedBy == decision.LocatedByPhone {
		// A number's country code says where it is registered, which is
		// what the operator chose to count as a location (see
		// geo.LocatePhone); no database of addresses was consulted.
		return fmt.Sprintf("the participant dialled in, and the calling number's country code belongs to %s (the international numbering plan)", input.Visible(a.Country))
	}
	where := ""
	if a.Network != "" {
		where = " (network " + a.Network + ")"
	}
	place := input.Visible(a.Country)
	if len(a.Subdivisions) > 0 {
		place = input.Visible(strings.Join(a.Subdivisions, ", ")) + " (" + place + ")"
	}
	return fmt.Sprintf("the participant's address%s was located in %s according to %s", where, place, db)
}

func bundleList(b map[string]string) string {
	parts := make([]string, 0, len(b))
	for name, rev := range b {
		parts = append(parts, input.Visible(name+"@"+rev))
	}
	if len(parts) == 0 {
		return "unknown"
	}
	slices.Sort(parts) // map order is random; the text must be stable
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
