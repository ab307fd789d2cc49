package engine

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
)

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
func policyInput(req *input.Request, f *guard.Facts, withParticipants bool) ast.Value {
	m := &req.Meeting
	host := ast.NewObject(
		ast.Item(ast.InternedTerm("id"), ast.StringTerm(m.Host.AccountID)),
		ast.Item(ast.InternedTerm("account_id"), ast.StringTerm(m.Host.AccountID)),
		ast.Item(ast.InternedTerm("connected"), ast.InternedTerm(f.Host != nil)),
		ast.Item(ast.InternedTerm("role"), ast.InternedTerm(input.RoleHost)),
	)
	if m.Host.AccountCountry != "" {
		host.Insert(ast.InternedTerm("account_country"), ast.StringTerm(m.Host.AccountCountry))
	}
	if f.Host != nil {
		insertLocation(host, f.Host.Located)
	}
	insertAttributes(host, m.Host.Attributes)

	// Participants are given grouped by located country: the default
	// policy works on countries, and this costs one string per person.
	// Those located in subdivisions are grouped by subdivision too (the
	// map is built only when someone is: never with a Country database).
	groups := map[string][]*ast.Term{}
	var subdivisions map[string][]*ast.Term
	var people []*ast.Term
	if withParticipants {
		people = make([]*ast.Term, 0, len(m.Participants))
	}
	for i := range m.Participants {
		p := &m.Participants[i]
		loc := f.Participants[p.ID]
		id := ast.StringTerm(p.ID)
		groups[loc.Country] = append(groups[loc.Country], id)
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
	unlocated := groups[""]
	delete(groups, "")
	byCountry := ast.NewObject()
	for country, ids := range groups {
		byCountry.Insert(ast.StringTerm(country), ast.ArrayTerm(ids...))
	}
	bySubdivision := ast.NewObject()
	for sd, ids := range subdivisions {
		bySubdivision.Insert(ast.StringTerm(sd), ast.ArrayTerm(ids...))
	}

	meeting := ast.NewObject(
		ast.Item(ast.InternedTerm("id"), ast.StringTerm(m.ID)),
		ast.Item(ast.InternedTerm("host"), ast.NewTerm(host)),
		ast.Item(ast.InternedTerm("participant_count"), ast.InternedTerm(len(m.Participants))),
		ast.Item(ast.InternedTerm("by_country"), ast.NewTerm(byCountry)),
		ast.Item(ast.InternedTerm("by_subdivision"), ast.NewTerm(bySubdivision)),
		ast.Item(ast.InternedTerm("unlocated"), ast.ArrayTerm(unlocated...)),
	)
	if withParticipants {
		meeting.Insert(ast.InternedTerm("participants"), ast.ArrayTerm(people...))
	}
	root := ast.NewObject(ast.Item(ast.InternedTerm("meeting"), ast.NewTerm(meeting)))
	if f.Joining != nil {
		root.Insert(ast.InternedTerm("joining"), ast.NewTerm(person(ast.StringTerm(f.Joining.ID), req.Joining, f.Joining.Located)))
	}
	if o := req.Order; o != nil {
		targets := ast.NewObject(
			ast.Item(ast.InternedTerm("meetings"), stringArray(o.Targets.Meetings)),
			ast.Item(ast.InternedTerm("accounts"), stringArray(o.Targets.Accounts)),
		)
		if o.Targets.AllMeetings {
			targets.Insert(ast.InternedTerm("all_meetings"), ast.InternedTerm(true))
		}
		order := ast.NewObject(
			ast.Item(ast.InternedTerm("id"), ast.StringTerm(o.ID)),
			ast.Item(ast.InternedTerm("authority"), ast.StringTerm(o.Authority)),
			ast.Item(ast.InternedTerm("demands"), stringArray(o.Demands)),
			ast.Item(ast.InternedTerm("targets"), ast.NewTerm(targets)),
			ast.Item(ast.InternedTerm("legal_basis"), ast.StringTerm(o.LegalBasis)),
			ast.Item(ast.InternedTerm("received"), ast.StringTerm(o.Received)),
		)
		// The order is evaluated only while in force; its dates are passed
		// on as submitted, for a policy that cites them.
		if o.Effective != "" {
			order.Insert(ast.InternedTerm("effective"), ast.StringTerm(o.Effective))
		}
		if o.Expires != "" {
			order.Insert(ast.InternedTerm("expires"), ast.StringTerm(o.Expires))
		}
		if r := o.Revoked; r != nil {
			order.Insert(ast.InternedTerm("revoked"), ast.ObjectTerm(
				ast.Item(ast.InternedTerm("date"), ast.StringTerm(r.Date)),
				ast.Item(ast.InternedTerm("reason"), ast.StringTerm(r.Reason)),
			))
		}
		root.Insert(ast.InternedTerm("order"), ast.NewTerm(order))
	} else {
		root.Insert(ast.InternedTerm("standing_orders"), stringArray(sortedKeys(f.Orders)))
	}
	return root
}

// person is one participant (or the joining one) as the policy sees it:
// never the address or the calling number, only where they were located
// and what the meeting server said about them.
func person(id *ast.Term, p *input.Participant, loc guard.Located) ast.Object {
	o := ast.NewObject(ast.Item(ast.InternedTerm("id"), id))
	insertLocation(o, loc)
	if p.Role != "" {
		o.Insert(ast.InternedTerm("role"), ast.InternedTerm(p.Role))
	}
	if p.AccountID != "" {
		o.Insert(ast.InternedTerm("account_id"), ast.StringTerm(p.AccountID))
	}
	if p.AccountCountry != "" {
		o.Insert(ast.InternedTerm("account_country"), ast.StringTerm(p.AccountCountry))
	}
	insertAttributes(o, p.Attributes)
	return o
}

func insertLocation(o ast.Object, loc guard.Located) {
	if loc.Country != "" {
		o.Insert(ast.InternedTerm("country"), ast.StringTerm(loc.Country))
		o.Insert(ast.InternedTerm("located_by"), ast.InternedTerm(loc.By))
		if len(loc.Subdivisions) > 0 {
			o.Insert(ast.InternedTerm("subdivisions"), stringArray(loc.Subdivisions))
		}
	}
}

func insertAttributes(o ast.Object, attrs input.Attributes) {
	if len(attrs) == 0 {
		return
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
	o.Insert(ast.InternedTerm("attributes"), ast.NewTerm(obj))
}

func stringArray(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}
