package engine

import (
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
)

// policyInput builds the policy's input document directly as an ast.Value.
// Going through map[string]any and ast.InterfaceToValue costs several
// times more for large rosters, and it would also carry the raw addresses:
// the policy sees located countries only, never an IP address.
//
//	{"meeting": {"id", "host": {"account_id", "account_country"?, "connected", "country"?},
//	             "participant_count": n,
//	             "by_country": {"CN": [ids], ...},    // participant ids by located country
//	             "unlocated": [ids]},                 // participants whose location is unknown
//	 "joining": {"id", "country"?}?,
//	 "order": {...}?,            // the preview order, as submitted
//	 "standing_orders": [ids]}   // when no preview order: registry orders targeting the meeting or its account
//
// "country" is absent when the location is unknown, so an unknown location
// can never match a jurisdiction.
func policyInput(req *input.Request, f *guard.Facts) ast.Value {
	m := &req.Meeting
	host := ast.NewObject(
		ast.Item(ast.InternedTerm("account_id"), ast.StringTerm(m.Host.AccountID)),
		ast.Item(ast.InternedTerm("connected"), ast.InternedTerm(f.Host != nil)),
	)
	if m.Host.AccountCountry != "" {
		host.Insert(ast.InternedTerm("account_country"), ast.StringTerm(m.Host.AccountCountry))
	}
	if f.Host != nil && f.Host.Country != "" {
		host.Insert(ast.InternedTerm("country"), ast.StringTerm(f.Host.Country))
	}

	// Participants are given grouped by located country rather than one
	// object each: the policy works on countries, and building ten
	// thousand small objects would cost more than evaluating the policy.
	groups := map[string][]*ast.Term{}
	for _, p := range m.Participants {
		country := f.Participants[p.ID]
		groups[country] = append(groups[country], ast.StringTerm(p.ID))
	}
	unlocated := groups[""]
	delete(groups, "")
	byCountry := ast.NewObject()
	for country, ids := range groups {
		byCountry.Insert(ast.StringTerm(country), ast.ArrayTerm(ids...))
	}

	root := ast.NewObject(ast.Item(ast.InternedTerm("meeting"), ast.ObjectTerm(
		ast.Item(ast.InternedTerm("id"), ast.StringTerm(m.ID)),
		ast.Item(ast.InternedTerm("host"), ast.NewTerm(host)),
		ast.Item(ast.InternedTerm("participant_count"), ast.InternedTerm(len(m.Participants))),
		ast.Item(ast.InternedTerm("by_country"), ast.NewTerm(byCountry)),
		ast.Item(ast.InternedTerm("unlocated"), ast.ArrayTerm(unlocated...)),
	)))
	if f.Joining != nil {
		root.Insert(ast.InternedTerm("joining"), ast.NewTerm(person(ast.StringTerm(f.Joining.ID), f.Joining.Country)))
	}
	if o := req.Order; o != nil {
		root.Insert(ast.InternedTerm("order"), ast.ObjectTerm(
			ast.Item(ast.InternedTerm("id"), ast.StringTerm(o.ID)),
			ast.Item(ast.InternedTerm("authority"), ast.StringTerm(o.Authority)),
			ast.Item(ast.InternedTerm("demands"), strings(o.Demands)),
			ast.Item(ast.InternedTerm("targets"), ast.ObjectTerm(
				ast.Item(ast.InternedTerm("meetings"), strings(o.Targets.Meetings)),
				ast.Item(ast.InternedTerm("accounts"), strings(o.Targets.Accounts)),
			)),
			ast.Item(ast.InternedTerm("legal_basis"), ast.StringTerm(o.LegalBasis)),
			ast.Item(ast.InternedTerm("received"), ast.StringTerm(o.Received)),
		))
	} else {
		root.Insert(ast.InternedTerm("standing_orders"), strings(sortedKeys(f.Orders)))
	}
	return root
}

func person(id *ast.Term, country string) ast.Object {
	o := ast.NewObject(ast.Item(ast.InternedTerm("id"), id))
	if country != "" {
		o.Insert(ast.InternedTerm("country"), ast.StringTerm(country))
	}
	return o
}

func strings(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(terms...)
}
