package engine

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/internal/reuse"
)

// The input's keys, made once: ast.InternedTerm interns only OPA's own
// few strings, and a term per key per request was most of what building an
// admission"s input allocated. Terms are never modified once built.
var (
	kAccountCountry   = ast.StringTerm("account_country")
	kAccountID        = ast.StringTerm("account_id")
	kAccounts         = ast.StringTerm("accounts")
	kAttributes       = ast.StringTerm("attributes")
	kAuthority        = ast.StringTerm("authority")
	kAllMeetings      = ast.StringTerm("all_meetings")
	kByCountry        = ast.StringTerm("by_country")
	kBySubdivision    = ast.StringTerm("by_subdivision")
	kDate             = ast.StringTerm("date")
	kEffective        = ast.StringTerm("effective")
	kExpires          = ast.StringTerm("expires")
	kReason           = ast.StringTerm("reason")
	kRevoked          = ast.StringTerm("revoked")
	kSubdivisions     = ast.StringTerm("subdivisions")
	kConnected        = ast.StringTerm("connected")
	kCountry          = ast.StringTerm("country")
	kDemands          = ast.StringTerm("demands")
	kHost             = ast.StringTerm("host")
	kID               = ast.StringTerm("id")
	kJoining          = ast.StringTerm("joining")
	kLegalBasis       = ast.StringTerm("legal_basis")
	kLocatedBy        = ast.StringTerm("located_by")
	kMeeting          = ast.StringTerm("meeting")
	kMeetings         = ast.StringTerm("meetings")
	kOrder            = ast.StringTerm("order")
	kParticipantCount = ast.StringTerm("participant_count")
	kParticipants     = ast.StringTerm("participants")
	kReceived         = ast.StringTerm("received")
	kRole             = ast.StringTerm("role")
	kStandingOrders   = ast.StringTerm("standing_orders")
	kTargets          = ast.StringTerm("targets")
	kUnlocated        = ast.StringTerm("unlocated")
)

// countryTerms holds a term for every two-letter code, so that located
// and account countries cost no allocation.
var countryTerms = func() (t [26 * 26]*ast.Term) {
	for i := range t {
		t[i] = ast.StringTerm(string([]byte{byte('A' + i/26), byte('A' + i%26)}))
	}
	return t
}()

// valueTerms are the values the engine itself writes into the input: how
// a person was located and the roles.
var valueTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, v := range append([]string{decision.LocatedByIP, decision.LocatedByPhone}, input.Roles...) {
		m[v] = ast.StringTerm(v)
	}
	return m
}()

func valueTerm(v string) *ast.Term {
	if t, ok := valueTerms[v]; ok {
		return t
	}
	return ast.StringTerm(v)
}

// A person's country as a slot: the two-letter codes first, in order
// (slot 26*c0 + c1), then the unlocated, then any other code.
const (
	twoLetterSlots = 26 * 26
	unlocatedSlot  = twoLetterSlots
	oddSlot        = twoLetterSlots + 1
	countrySlots   = twoLetterSlots + 2
)

func countrySlot(code string) int {
	switch {
	case code == "":
		return unlocatedSlot
	case len(code) == 2 && code[0] >= 'A' && code[0] <= 'Z' && code[1] >= 'A' && code[1] <= 'Z':
		return int(code[0]-'A')*26 + int(code[1]-'A')
	}
	return oddSlot
}

// The id terms of large rosters' inputs, and the array their country
// groups are cut from, kept for later requests (see package reuse).
var (
	inputTerms        reuse.Slices[ast.Term]
	inputTermPointers reuse.Slices[*ast.Term]
)

// countryTerm is code as a term (shared when it is a two-letter code).
func countryTerm(code string) *ast.Term {
	if s := countrySlot(code); s < twoLetterSlots {
		return countryTerms[s]
	}
	return ast.StringTerm(code)
}

// policyInput builds the policy's input document directly as an ast.Value.
// Going through map[string]any and ast.InterfaceToValue costs several
// times more for large rosters, and it would also carry the raw addresses
// and calling numbers: the policy sees located countries only, never an IP
// address or a phone number.
//
//	{"meeting": {"id",
//	             "host": {"id", "account_id", "account_country"?, "connected", "role": "host",
//	                      "country"?, "subdivisions"?, "located_by"?, "attributes"?},
//	             "participant_count": n,
//	             "by_country": {"CN": [ids], ...},        // participant ids by located country
//	             "by_subdivision": {"UA-43": [ids], ...}, // participant ids by located subdivision
//	             "unlocated": [ids],                      // participants whose location is unknown
//	             "participants": [person, ...]},          // only for a policy that reads it
//	 "joining": person?,
//	 "order": {...}?,            // the preview order, as submitted
//	 "standing_orders": [ids]}   // when no preview order: registry orders in force targeting the meeting, its account or every meeting
//
//	person: {"id", "country"?, "subdivisions"?, "located_by"?, "role"?, "account_id"?, "account_country"?, "attributes"?}
//
// "country" (and "located_by") are absent when the location is unknown, so
// an unknown location can never match a jurisdiction. "subdivisions" (ISO
// 3166-2, "UA-43") are present only when a City database placed the person
// in one; a person in two nested subdivisions ("GB-ENG", "GB-LND") is in
// both of them, and so in two by_subdivision groups.
//
// withParticipants asks for "participants", one object per person. It is
// decided per policy (see policy.Snapshot.ReadsParticipants): a policy that
// works on by_country does not pay for ten thousand objects it never reads.
//
// f.Participants holds where each of req.Meeting.Participants was located,
// in the same order. The two arrays returned are those the input's id terms
// live in, to be given back once the input is no longer used
// (lazyInput.release).
func policyInput(req *input.Request, f *guard.Facts, withParticipants bool) (ast.Value, []ast.Term, []*ast.Term) {
	located := f.Participants
	m := &req.Meeting
	account := ast.StringTerm(m.Host.AccountID)
	host := ast.NewObject(
		ast.Item(kID, account),
		ast.Item(kAccountID, account),
		ast.Item(kConnected, ast.InternedTerm(f.Host != nil)),
		ast.Item(kRole, valueTerm(input.RoleHost)),
	)
	if m.Host.AccountCountry != "" {
		host.Insert(kAccountCountry, countryTerm(m.Host.AccountCountry))
	}
	if f.Host != nil {
		insertLocation(host, f.Host.Located)
	}
	insertAttributes(host, m.Host.Attributes)

	// Participants are given grouped by located country: the default
	// policy works on countries, and this costs one string per person.
	// The groups are cut from one array of pointers to the id terms,
	// counted first by each country's slot among the two-letter codes (a
	// map operation per person was a tenth of building the input of
	// 10,000). The terms' array and that one are given back once the
	// policy has answered (see lazyInput.release).
	n := len(m.Participants)
	terms := inputTerms.Get(n)[:n]
	all := inputTermPointers.Get(n)[:n]
	var ends [countrySlots]int32 // per slot: its count, then where its group ends in all
	for i := range located {
		ends[countrySlot(located[i].Country)]++
	}
	var odd map[string][]*ast.Term // codes outside the slots: none from the databases shipped
	if ends[oddSlot] > 0 {
		odd = map[string][]*ast.Term{}
	}
	sum := int32(0)
	for s := range ends {
		sum += ends[s]
		ends[s] = sum - ends[s] // where the group starts; filling moves it to where it ends
	}
	// Those located in subdivisions are grouped by subdivision too (the
	// map is built only when someone is: never with a Country database).
	var subdivisions map[string][]*ast.Term
	var people []*ast.Term
	if withParticipants {
		people = make([]*ast.Term, 0, n)
	}
	for i := range m.Participants {
		p, loc := &m.Participants[i], located[i].Located
		id := &terms[i]
		id.Value = ast.String(p.ID)
		switch s := countrySlot(loc.Country); s {
		case oddSlot:
			odd[loc.Country] = append(odd[loc.Country], id)
		default:
			all[ends[s]] = id
			ends[s]++
		}
		for _, sd := range loc.Subdivisions {
			if subdivisions == nil {
				subdivisions = map[string][]*ast.Term{}
			}
			subdivisions[sd] = append(subdivisions[sd], id)
		}
		if withParticipants {
			people = append(people, ast.NewTerm(person(id, p, loc)))
		}
	}
	byCountry := ast.NewObject()
	start := int32(0)
	for s, end := range ends[:twoLetterSlots] {
		if end > start {
			byCountry.Insert(countryTerms[s], ast.ArrayTerm(all[start:end:end]...))
		}
		start = end
	}
	unlocated := all[start:ends[unlocatedSlot]:ends[unlocatedSlot]]
	for country, ids := range odd {
		byCountry.Insert(ast.StringTerm(country), ast.ArrayTerm(ids...))
	}
	bySubdivision := ast.NewObject()
	for sd, ids := range subdivisions {
		bySubdivision.Insert(ast.StringTerm(sd), ast.ArrayTerm(ids...))
	}

	meeting := ast.NewObject(
		ast.Item(kID, ast.StringTerm(m.ID)),
		ast.Item(kHost, ast.NewTerm(host)),
		ast.Item(kParticipantCount, ast.InternedTerm(len(m.Participants))),
		ast.Item(kByCountry, ast.NewTerm(byCountry)),
		ast.Item(kBySubdivision, ast.NewTerm(bySubdivision)),
		ast.Item(kUnlocated, ast.ArrayTerm(unlocated...)),
	)
	if withParticipants {
		meeting.Insert(kParticipants, ast.ArrayTerm(people...))
	}
	root := ast.NewObject(ast.Item(kMeeting, ast.NewTerm(meeting)))
	if f.Joining != nil {
		root.Insert(kJoining, ast.NewTerm(person(ast.StringTerm(f.Joining.ID), req.Joining, f.Joining.Located)))
	}
	if o := req.Order; o != nil {
		targets := ast.NewObject(
			ast.Item(kMeetings, stringArray(o.Targets.Meetings)),
			ast.Item(kAccounts, stringArray(o.Targets.Accounts)),
		)
		if o.Targets.AllMeetings {
			targets.Insert(kAllMeetings, ast.InternedTerm(true))
		}
		order := ast.NewObject(
			ast.Item(kID, ast.StringTerm(o.ID)),
			ast.Item(kAuthority, ast.StringTerm(o.Authority)),
			ast.Item(kDemands, stringArray(o.Demands)),
			ast.Item(kTargets, ast.NewTerm(targets)),
			ast.Item(kLegalBasis, ast.StringTerm(o.LegalBasis)),
			ast.Item(kReceived, ast.StringTerm(o.Received)),
		)
		// The order is evaluated only while in force; its dates are passed
		// on as submitted, for a policy that cites them.
		if o.Effective != "" {
			order.Insert(kEffective, ast.StringTerm(o.Effective))
		}
		if o.Expires != "" {
			order.Insert(kExpires, ast.StringTerm(o.Expires))
		}
		if r := o.Revoked; r != nil {
			order.Insert(kRevoked, ast.ObjectTerm(
				ast.Item(kDate, ast.StringTerm(r.Date)),
				ast.Item(kReason, ast.StringTerm(r.Reason)),
			))
		}
		root.Insert(kOrder, ast.NewTerm(order))
	} else {
		root.Insert(kStandingOrders, stringArray(sortedKeys(f.Orders)))
	}
	return root, terms, all
}

// person is one participant (or the joining one) as the policy sees it:
// never the address or the calling number, only where they were located
// and what the meeting server said about them.
func person(id *ast.Term, p *input.Participant, loc guard.Located) ast.Object {
	// All members at once: an object grown by Insert reallocates its keys
	// and index, and a roster has an object per participant.
	var members [8][2]*ast.Term
	items := append(members[:0], ast.Item(kID, id))
	if loc.Country != "" {
		items = append(items, ast.Item(kCountry, countryTerm(loc.Country)), ast.Item(kLocatedBy, valueTerm(loc.By)))
		if len(loc.Subdivisions) > 0 {
			items = append(items, ast.Item(kSubdivisions, stringArray(loc.Subdivisions)))
		}
	}
	if p.Role != "" {
		items = append(items, ast.Item(kRole, valueTerm(p.Role)))
	}
	if p.AccountID != "" {
		items = append(items, ast.Item(kAccountID, ast.StringTerm(p.AccountID)))
	}
	if p.AccountCountry != "" {
		items = append(items, ast.Item(kAccountCountry, countryTerm(p.AccountCountry)))
	}
	if attrs := attributesTerm(p.Attributes); attrs != nil {
		items = append(items, ast.Item(kAttributes, attrs))
	}
	return ast.NewObject(items...)
}

func insertLocation(o ast.Object, loc guard.Located) {
	if loc.Country != "" {
		o.Insert(kCountry, countryTerm(loc.Country))
		o.Insert(kLocatedBy, valueTerm(loc.By))
		if len(loc.Subdivisions) > 0 {
			o.Insert(kSubdivisions, stringArray(loc.Subdivisions))
		}
	}
}

func insertAttributes(o ast.Object, attrs input.Attributes) {
	if t := attributesTerm(attrs); t != nil {
		o.Insert(kAttributes, t)
	}
}

// attributesTerm is the attributes as an object, nil when there are none.
func attributesTerm(attrs input.Attributes) *ast.Term {
	if len(attrs) == 0 {
		return nil
	}
	obj := ast.NewObject()
	for k, v := range attrs {
		var t *ast.Term
		switch v.Kind {
		case input.AttributeString:
			t = ast.StringTerm(v.Text)
		case input.AttributeNumber:
			t = ast.NewTerm(ast.Number(v.Text))
		case input.AttributeBool:
			t = ast.InternedTerm(v.Bool)
		case input.AttributeStrings:
			t = stringArray(v.List)
		default:
			continue // validation refuses such a value; never reached
		}
		obj.Insert(ast.StringTerm(k), t)
	}
	return ast.NewTerm(obj)
}

func stringArray(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}

// lazyInput is the policy input of a request, built only when a path of
// it is asked for that cannot be read from the request directly: a
// remembered join-time answer is keyed by a few paths (see
// policy.Snapshot.RememberedAdmissionAt), and most admissions find one
// without the input being built at all.
type lazyInput struct {
	req              *input.Request
	facts            *guard.Facts
	withParticipants bool
	built            ast.Value
	terms            []ast.Term // the arrays built refers to, given back by release
	termPointers     []*ast.Term
}

// The paths the default policy's join-time answers are keyed by.
var (
	pathMeetingID      = ast.MustParseRef("input.meeting.id")
	pathHostAccount    = ast.MustParseRef("input.meeting.host.account_id")
	pathJoiningCountry = ast.MustParseRef("input.joining.country")
	pathJoiningSubdivs = ast.MustParseRef("input.joining.subdivisions")
	pathStandingOrders = ast.MustParseRef("input.standing_orders")
	pathOrder          = ast.MustParseRef("input.order")
)

// at is the value at path in the input, nil when there is none (as in
// the built input; TestLazyInputIsTheInput holds the two together).
func (l *lazyInput) at(path ast.Ref) ast.Value {
	switch {
	case path.Equal(pathMeetingID):
		return ast.String(l.req.Meeting.ID)
	case path.Equal(pathHostAccount):
		return ast.String(l.req.Meeting.Host.AccountID)
	case path.Equal(pathJoiningCountry):
		if j := l.facts.Joining; j != nil && j.Country != "" {
			return countryTerm(j.Country).Value
		}
		return nil
	case path.Equal(pathJoiningSubdivs):
		if j := l.facts.Joining; j != nil && j.Country != "" && len(j.Subdivisions) > 0 {
			return stringArray(j.Subdivisions).Value
		}
		return nil
	case path.Equal(pathStandingOrders):
		if l.req.Order == nil {
			return stringArray(sortedKeys(l.facts.Orders)).Value
		}
		return nil
	case path.Equal(pathOrder) && l.req.Order == nil:
		return nil
	}
	v, err := l.input().Find(path[1:])
	if err != nil {
		return nil // no such path
	}
	return v
}

// input is the whole input, built the first time it is needed.
func (l *lazyInput) input() ast.Value {
	if l.built == nil {
		l.built, l.terms, l.termPointers = policyInput(l.req, l.facts, l.withParticipants)
	}
	return l.built
}

// release gives back the arrays of the built input, which nothing may use
// afterwards: the policy's output holds none of its terms, only strings
// copied out of them (policy.Snapshot.Eval).
func (l *lazyInput) release() {
	inputTerms.Put(l.terms)
	inputTermPointers.Put(l.termPointers)
	l.built, l.terms, l.termPointers = nil, nil, nil
}
