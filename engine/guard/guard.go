// Package guard is the last line of defence between a policy and
// enforcement. It re-checks, in Go and independently of any Rego, every
// action a policy returns against the located countries and the registry's
// jurisdiction for the order the action cites. No policy can switch it off.
//
// The guard only ever removes actions. A removed action is reported with a
// code and a reason, so a faulty or malicious policy is visible in the
// decision and in the ledger rather than silently corrected.
package guard

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/idindex"
)

// Block codes.
const (
	CodeUnknownType  = "unknown_type"
	CodeUnknownOrder = "unknown_order"
	// CodeOrderNotInForce: the order targets the meeting but was not in
	// force at the decision's time (not yet effective, expired or
	// revoked), so it was not under evaluation.
	CodeOrderNotInForce = "order_not_in_force"
	// CodeServiceWideOrder: a meeting-wide or account action cites a
	// service-wide order, from which only participant actions may follow.
	CodeServiceWideOrder    = "service_wide_order"
	CodeUnknownAuthority    = "unknown_authority"
	CodeNoLegalBasis        = "no_legal_basis"
	CodeNotTargeted         = "not_targeted"
	CodeNotDemanded         = "not_demanded"
	CodeWrongMeeting        = "wrong_meeting"
	CodeWrongAccount        = "wrong_account"
	CodeUnknownParticipant  = "unknown_participant"
	CodeOutsideJurisdiction = "outside_jurisdiction"
	CodeMisstatedFacts      = "misstated_facts"
	CodeAffectsOutside      = "affects_outside"
	// CodeNotAtAdmission: a join-time question can only be answered with
	// deny_join; nothing else was seen (no roster), so nothing else can
	// be shown to stay inside the jurisdiction.
	CodeNotAtAdmission = "not_at_admission"
)

// Person is someone connected or joining, with where they are located.
type Person struct {
	ID string
	Located
}

// Located is a person's located country ("" when the location is unknown)
// and how it was established (decision.LocatedByIP or LocatedByPhone; ""
// when unknown), with the ISO 3166-2 subdivisions of that country the
// GeoIP database places them in (City databases only; never for a phone).
type Located struct {
	Country      string
	By           string
	Subdivisions []string
}

// Facts are what the guard checks actions against. They come from the
// request, the GeoIP stage, and the registry snapshot the policy was
// evaluated with, never from the policy.
type Facts struct {
	MeetingID      string
	AccountID      string
	AccountCountry string
	// Host is the host's connection, nil when not connected.
	Host *Person
	// Participants are the meeting's participants in request order, with
	// where they are located. Dial-in callers are here too: a meeting-wide
	// action reaches them as well.
	Participants []Person
	// ParticipantIndex maps a participant's id to its position in
	// Participants. Input validation builds it while checking ids for
	// duplicates, so a roster is indexed once; nil, the guard builds it
	// when an action names a participant. It is a hint the guard checks:
	// a position out of range or holding another id (a roster changed
	// after it was indexed) makes the guard index the participants itself.
	ParticipantIndex *idindex.Index
	// Joining is the participant asking to join, nil when none.
	Joining *Person
	// Admission marks a join-time question: only deny_join may pass.
	Admission bool
	// Orders are the orders under evaluation, by id: the preview order or
	// the applicable standing orders, in force at the decision's time.
	Orders map[string]registry.Order
	// NotInForce are the orders that target the meeting but were not in
	// force at the decision's time, by id, with their status
	// (registry.StatusNotYetEffective, StatusExpired, StatusRevoked). No
	// action may cite one.
	NotInForce  map[string]string
	Authorities map[string]registry.Authority
}

// Everyone yields where each person a meeting-wide or account action
// reaches is located: the participants, the connected host and the
// participant asking to join.
func (f *Facts) Everyone(yield func(Located) bool) {
	for i := range f.Participants {
		if !yield(f.Participants[i].Located) {
			return
		}
	}
	if f.Host != nil && !yield(f.Host.Located) {
		return
	}
	if f.Joining != nil {
		yield(f.Joining.Located)
	}
}

// Check returns the actions that pass, in their original order, and the
// ones blocked. Kept actions carry only the fields that belong to their
// type, filled from the facts (the registry's jurisdiction, the located
// country and how it was established), and an action that does what an
// earlier one does (same type, same person or account, same order) is
// dropped, whatever else the policy wrote into it. actions is not
// modified.
func Check(f *Facts, actions []decision.Action) (kept []decision.Action, blocked []decision.Blocked) {
	// Sized up front: a large meeting has one action per participant.
	return check(f, actions, make([]decision.Action, 0, len(actions)))
}

// CheckInPlace is Check for actions the caller owns and gives up: the kept
// actions are written over them, in their array. A large meeting's actions
// are one per participant it reaches, and a copy of them was an eighth of
// what a decision on 100,000 participants allocated.
func CheckInPlace(f *Facts, actions []decision.Action) (kept []decision.Action, blocked []decision.Blocked) {
	// The i-th kept action is written after the i-th action was read, and
	// never past it: at most one is kept per action read.
	return check(f, actions, actions[:0])
}

func check(f *Facts, actions, kept []decision.Action) ([]decision.Action, []decision.Blocked) {
	g := checker{facts: f, outside: map[string]int{}}
	var blocked []decision.Blocked
	var seen actionSet
	for _, a := range actions {
		checked, at, code, reason := g.check(a)
		if code != "" {
			blocked = append(blocked, decision.Blocked{Action: a, Code: code, Reason: reason})
			continue
		}
		// A large meeting's actions are one remove_participant per
		// participant: those are told apart by the participant's position
		// and the order, without hashing every field of the action.
		if at >= 0 {
			if g.removed(checked.OrderID, at) {
				continue
			}
		} else {
			if !seen.add(actionKey{checked.Type, checked.ParticipantID, checked.AccountID, checked.Host, checked.OrderID}) {
				continue
			}
		}
		kept = append(kept, checked)
	}
	return kept, blocked
}

// removed reports whether a remove_participant of the participant at
// position at, citing the order, was already kept, and marks it kept.
func (g *checker) removed(order string, at int) bool {
	done := g.removals[order]
	if done == nil {
		done = make([]bool, len(g.facts.Participants))
		if g.removals == nil {
			g.removals = map[string][]bool{}
		}
		g.removals[order] = done
	}
	if done[at] {
		return true
	}
	done[at] = true
	return false
}

// actionKey is what an action does. Check fills it from the normalized
// action, so fields that do not belong to the type cannot tell two equal
// actions apart.
type actionKey struct {
	typ, participant, account string
	host                      bool
	order                     string
}

// actionSet holds the keys of the kept actions that are not told apart by
// a participant's position. A decision keeps few of those (an admission
// at most one): the first are compared in place, and a map is made only
// past them. A map for one key was the largest allocation of a denied
// admission (about 700 bytes).
type actionSet struct {
	few  [4]actionKey
	n    int
	many map[actionKey]struct{}
}

// add adds k and reports whether it was not there yet.
func (s *actionSet) add(k actionKey) bool {
	for _, f := range s.few[:min(s.n, len(s.few))] {
		if f == k {
			return false
		}
	}
	if _, ok := s.many[k]; ok {
		return false
	}
	if s.n < len(s.few) {
		s.few[s.n] = k
	} else {
		if s.many == nil {
			s.many = map[actionKey]struct{}{}
		}
		s.many[k] = struct{}{}
	}
	s.n++
	return true
}

type checker struct {
	facts   *Facts
	outside map[string]int // order id → users connected or joining and not located in its jurisdiction
	// index is Facts.ParticipantIndex, or built from Facts.Participants
	// (ownIndex) when that is nil or does not match them.
	index    *idindex.Index
	ownIndex bool
	// next is the position after the last participant an action named:
	// a policy that walks the roster (the default one, through the groups
	// of input.meeting.by_country, which keep request order) names people
	// in request order, and looking a little ahead of the last one finds
	// them in memory just read, where the index is a random read each.
	next int
	// removals marks, per order id, the participants (by position) a
	// kept remove_participant already names.
	removals map[string][]bool
}

// check returns the action normalized, with the position in
// Facts.Participants of the participant a remove_participant names (-1 for
// any other action), or the action as given with the code and reason
// blocking it.
func (g *checker) check(a decision.Action) (decision.Action, int, string, string) {
	f := g.facts
	// A deny_join can only name the participant asking to join: one that
	// names nobody names them. The checks below apply to them as to an
	// action that names them itself.
	if a.Type == decision.DenyJoin && a.ParticipantID == "" && !a.Host && f.Joining != nil {
		a.ParticipantID = f.Joining.ID
	}
	if !decision.KnownActionType(a.Type) {
		return a, -1, CodeUnknownType, "its type is none of deny_join, remove_participant, end_meeting and suspend_account"
	}
	if f.Admission && a.Type != decision.DenyJoin {
		return a, -1, CodeNotAtAdmission, fmt.Sprintf("a join-time question is answered with deny_join only, not %s", a.Type)
	}
	order, ok := f.Orders[a.OrderID]
	if !ok {
		if status, targets := f.NotInForce[a.OrderID]; targets {
			return a, -1, CodeOrderNotInForce, fmt.Sprintf("order %q was not in force at the decision's time (%s)", a.OrderID, status)
		}
		return a, -1, CodeUnknownOrder, "the order it cites is not under evaluation for this meeting"
	}
	auth, ok := f.Authorities[order.Authority]
	if !ok {
		return a, -1, CodeUnknownAuthority, fmt.Sprintf("authority %q of order %q is not in the registry", order.Authority, a.OrderID)
	}
	if !order.HasLegalBasis() {
		return a, -1, CodeNoLegalBasis, fmt.Sprintf("order %q states no legal basis", a.OrderID)
	}
	if !order.TargetsMeeting(f.MeetingID, f.AccountID) {
		return a, -1, CodeNotTargeted, fmt.Sprintf("order %q targets neither this meeting nor its account", a.OrderID)
	}
	if !slices.ContainsFunc(order.Demands, registry.KnownDemand) {
		return a, -1, CodeNotDemanded, fmt.Sprintf("order %q makes no demand geoscope knows", a.OrderID)
	}
	if order.ServiceWide() && (a.Type == decision.EndMeeting || a.Type == decision.SuspendAccount) {
		return a, -1, CodeServiceWideOrder, fmt.Sprintf("order %q applies to every meeting; only participant actions may follow from it, not %s", a.OrderID, a.Type)
	}
	if a.MeetingID != "" && a.MeetingID != f.MeetingID {
		return a, -1, CodeWrongMeeting, fmt.Sprintf("action names another meeting; the request is about %q", f.MeetingID)
	}
	if len(a.Jurisdiction) > 0 && !sameSet(a.Jurisdiction, auth.Jurisdiction) {
		return a, -1, CodeMisstatedFacts, fmt.Sprintf("action claims jurisdiction %s; the registry gives %s for %q",
			claimedCodes(a.Jurisdiction), strings.Join(auth.Jurisdiction, ","), order.Authority)
	}
	// The answer carries only what belongs to the action's type, with the
	// facts filled in. Shared, not copied: registry data is immutable once
	// a snapshot is built, and a large decision has one action per
	// participant.
	out := decision.Action{Type: a.Type, MeetingID: f.MeetingID, OrderID: a.OrderID, Jurisdiction: auth.Jurisdiction, Reason: a.Reason}
	at := -1

	switch a.Type {
	case decision.RemoveParticipant, decision.DenyJoin:
		var loc Located
		var known bool
		loc, at, known = g.participant(a)
		if !known {
			return a, -1, CodeUnknownParticipant, fmt.Sprintf("%s names %q, who is not %s", a.Type, a.ParticipantID, who(a))
		}
		if a.Country != "" && a.Country != loc.Country {
			return a, -1, CodeMisstatedFacts, fmt.Sprintf("action claims %q is located in %s; located in %q", a.ParticipantID, claimedCodes([]string{a.Country}), orUnknown(loc.Country))
		}
		if a.LocatedBy != "" && a.LocatedBy != loc.By {
			return a, -1, CodeMisstatedFacts, fmt.Sprintf("action claims %q was located by %s; located by %q", a.ParticipantID, claimedMeans(a.LocatedBy), orUnknown(loc.By))
		}
		if len(a.Subdivisions) > 0 && !sameSet(a.Subdivisions, loc.Subdivisions) {
			return a, -1, CodeMisstatedFacts, fmt.Sprintf("action claims %q is located in %s; located in %s", a.ParticipantID, claimedCodes(a.Subdivisions), place(loc))
		}
		if !auth.Covers(loc.Country, loc.Subdivisions...) {
			return a, -1, CodeOutsideJurisdiction, fmt.Sprintf("%q is located in %s, outside %s", a.ParticipantID, place(loc), strings.Join(auth.Jurisdiction, ","))
		}
		out.ParticipantID, out.Host, out.Country, out.LocatedBy = a.ParticipantID, a.Host, loc.Country, loc.By
		out.Subdivisions = loc.Subdivisions
	case decision.EndMeeting:
		if !order.Demanded(registry.DemandEndMeeting) {
			return a, -1, CodeNotDemanded, fmt.Sprintf("order %q does not demand end_meeting", a.OrderID)
		}
		if len(f.Participants) == 0 {
			return a, -1, CodeAffectsOutside, "the meeting has no participants, so ending it cannot be shown to affect only users inside"
		}
		if n := g.outsideCount(a.OrderID, auth); n > 0 {
			return a, -1, CodeAffectsOutside, fmt.Sprintf("ending the meeting would affect %s not located in %s", users(n), strings.Join(auth.Jurisdiction, ","))
		}
	case decision.SuspendAccount:
		if !order.Demanded(registry.DemandSuspendAccount) {
			return a, -1, CodeNotDemanded, fmt.Sprintf("order %q does not demand suspend_account", a.OrderID)
		}
		if a.AccountID != f.AccountID {
			return a, -1, CodeWrongAccount, fmt.Sprintf("action names account %q, the meeting's host account is %q", a.AccountID, f.AccountID)
		}
		if !auth.Covers(f.AccountCountry) {
			return a, -1, CodeAffectsOutside, fmt.Sprintf("the account is registered in %s, outside %s", orUnknown(f.AccountCountry), strings.Join(auth.Jurisdiction, ","))
		}
		// Suspending an account acts on its holder. Where the account is
		// registered is not where its holder is: a holder who is not
		// connected is a person of unknown location, who counts as outside.
		if f.Host == nil {
			return a, -1, CodeAffectsOutside, fmt.Sprintf("the account holder is not connected, so where they are is unknown: suspending the account would act on someone not shown to be in %s", strings.Join(auth.Jurisdiction, ","))
		}
		if n := g.outsideCount(a.OrderID, auth); n > 0 {
			return a, -1, CodeAffectsOutside, fmt.Sprintf("suspending the account would affect %s connected or joining and not located in %s", users(n), strings.Join(auth.Jurisdiction, ","))
		}
		out.AccountID, out.Country = a.AccountID, f.AccountCountry
	}
	return out, at, "", ""
}

// participant resolves the person an action names, with their position in
// Facts.Participants (-1 for the host or the participant asking to join).
func (g *checker) participant(a decision.Action) (loc Located, at int, known bool) {
	f := g.facts
	switch {
	case a.Type == decision.DenyJoin:
		if f.Joining != nil && !a.Host && f.Joining.ID == a.ParticipantID {
			return f.Joining.Located, -1, true
		}
	case a.Host:
		if f.Host != nil && f.Host.ID == a.ParticipantID {
			return f.Host.Located, -1, true
		}
	default:
		if g.index == nil {
			g.index = f.ParticipantIndex
			if g.index == nil {
				g.index, g.ownIndex = indexParticipants(f.Participants), true
			}
		}
		// Only a position that holds the id is taken: the index given may
		// not describe these participants (a roster changed after it was
		// indexed), and nobody may be acted on for happening to be at a
		// position it gives.
		if !g.ownIndex && g.index.Unique() {
			// The given index was built over ids that were unique (as
			// validation requires): whichever position holds the id is
			// theirs. Over repeated ids (and in an index of the guard's
			// own, which keeps the first of them) the first position is,
			// so the index is asked.
			for j := g.next; j < min(g.next+lookAhead, len(f.Participants)); j++ {
				if f.Participants[j].ID == a.ParticipantID {
					g.next = j + 1
					return f.Participants[j].Located, j, true
				}
			}
		}
		holds := func(j int) bool { return j < len(f.Participants) && f.Participants[j].ID == a.ParticipantID }
		i, ok := g.index.Find(a.ParticipantID, holds)
		if !ok && !g.ownIndex {
			// Nor may anyone be missed because it lacks them.
			g.index, g.ownIndex = indexParticipants(f.Participants), true
			i, ok = g.index.Find(a.ParticipantID, holds)
		}
		if ok {
			g.next = i + 1
			return f.Participants[i].Located, i, true
		}
	}
	return Located{}, -1, false
}

// lookAhead is how many positions after the last one named are tried
// before the index.
const lookAhead = 16

// indexParticipants maps each participant's id to its position (the first,
// should an id appear twice).
func indexParticipants(ps []Person) *idindex.Index {
	return idindex.Of(len(ps), func(i int) string { return ps[i].ID })
}

func (g *checker) outsideCount(orderID string, auth registry.Authority) int {
	if n, ok := g.outside[orderID]; ok {
		return n
	}
	// Ending the meeting or suspending its account would also shut out the
	// participant asking to join.
	n := 0
	for loc := range g.facts.Everyone {
		if !auth.Covers(loc.Country, loc.Subdivisions...) {
			n++
		}
	}
	g.outside[orderID] = n
	return n
}

func who(a decision.Action) string {
	switch {
	case a.Type == decision.DenyJoin:
		return "the participant asking to join"
	case a.Host:
		return "the connected host"
	}
	return "connected to the meeting"
}

// place is where a person is located, for reasons: "UA (UA-43)", "CN",
// "an unknown location".
func place(loc Located) string {
	if loc.Country == "" || len(loc.Subdivisions) == 0 {
		return orUnknown(loc.Country)
	}
	return loc.Country + " (" + strings.Join(loc.Subdivisions, ", ") + ")"
}

// claimedCodes is what a policy claimed as places (a country, a
// jurisdiction, subdivisions), quoted, when each is a country or
// subdivision code; otherwise the reason says only that it is not. A
// reason repeats no free text a policy put where a fact goes: it is
// stored (the ledger, the decision logs) where an id glued into such text
// would survive the scrubbing of ids; the blocked action itself, in the
// answer, still shows what was claimed.
func claimedCodes(claimed []string) string {
	q := make([]string, len(claimed))
	for i, c := range claimed {
		if !registry.IsPlaceCode(c) {
			return "something that is not a list of country or subdivision codes"
		}
		q[i] = strconv.Quote(c)
	}
	return strings.Join(q, ",")
}

// claimedMeans is a claimed located_by, quoted when it is one geoscope
// knows (see claimedCodes).
func claimedMeans(by string) string {
	if decision.KnownLocatedBy(by) {
		return strconv.Quote(by)
	}
	return "a means that is not ip or phone"
}

func orUnknown(country string) string {
	if country == "" {
		return "an unknown location"
	}
	return country
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// Refusals keeps the refusals that cite an order under evaluation and one of
// its demands; anything else is noise a report must not count.
func Refusals(f *Facts, refused []decision.Refusal) []decision.Refusal {
	var out []decision.Refusal
	for _, r := range refused {
		if o, ok := f.Orders[r.OrderID]; ok && slices.Contains(o.Demands, r.Demand) {
			out = append(out, r)
		}
	}
	return out
}

// users is a count of people as a reason reads it: "1 user", "2 users".
func users(n int) string {
	if n == 1 {
		return "1 user"
	}
	return fmt.Sprintf("%d users", n)
}
