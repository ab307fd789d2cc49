package geoscope.extensions.accredited_press_test

# The accredited-press extension, evaluated with the default policy:
#   go tool opa test policies docs/extensions/accredited-press

import data.geoscope

# ---------------------------------------------------------------------------
# Inputs as the engine builds them (docs/policy.md, "Input")
# ---------------------------------------------------------------------------

authorities := {"cn.cac": {"name": "Cyberspace Administration of China", "jurisdiction": ["CN"]}}

order(demands) := {
	"id": "o-cn",
	"authority": "cn.cac",
	"demands": demands,
	"targets": {"meetings": ["m1"], "accounts": []},
	"legal_basis": "test legal basis",
	"received": "2020-06-01",
}

# A participant located by IP address, signed in with an account (or not,
# with account "").
person(id, country, account) := object.union(
	{"id": id, "country": country, "located_by": "ip"},
	{"account_id": account | account != ""},
)

host(account, located) := {
	"id": account,
	"account_id": account,
	"role": "host",
	"account_country": "CN",
	"connected": true,
	"country": located,
	"located_by": "ip",
}

meeting(h, ps) := {
	"id": "m1",
	"host": h,
	"participant_count": count(ps),
	"by_country": {c: [p.id | some p in ps; p.country == c] | some q in ps; c := q.country},
	"unlocated": [p.id | some p in ps; not p.country],
	"participants": ps,
}

decide(inp) := d if {
	d := geoscope.decision with input as inp with data.authorities as authorities
}

# The participant ids the decision removes or denies, batches expanded.
acted_on(d) := {id |
	some a in d.actions
	some id in array.concat(object.get(a, "participant_ids", []), [x | x := a.participant_id])
}

demands_granted(d) := {a.type | some a in d.actions; a.type in {"end_meeting", "suspend_account"}}

codes(d) := {[r.demand, r.code] | some r in d.refused}

# An all-CN meeting: without the extension every demand is granted.
cn_meeting(ps) := {"meeting": meeting(host("acct-host", "CN"), ps), "order": order(["remove_participants", "end_meeting", "suspend_account"])}

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

test_accredited_participant_is_not_removed if {
	d := decide(cn_meeting([person("p1", "CN", "acct-press-0001"), person("p2", "CN", "acct-user-9")]))
	acted_on(d) == {"p2", "acct-host"}
}

test_accredited_participant_blocks_end_meeting_and_suspend_account if {
	d := decide(cn_meeting([person("p1", "CN", "acct-press-0002"), person("p2", "CN", "")]))
	demands_granted(d) == set()
	codes(d) == {["end_meeting", "exempt"], ["suspend_account", "exempt"]}
}

test_without_an_accredited_person_every_demand_is_granted if {
	d := decide(cn_meeting([person("p1", "CN", "acct-user-1"), person("p2", "CN", "")]))
	acted_on(d) == {"p1", "p2", "acct-host"}
	demands_granted(d) == {"end_meeting", "suspend_account"}
	d.refused == set()
}

test_accredited_joining_participant_is_admitted if {
	inp := object.union(cn_meeting([]), {"joining": person("j1", "CN", "acct-press-0003")})
	a := geoscope.admission with input as inp with data.authorities as authorities
	a.actions == set()
	b := geoscope.admission with input as object.union(cn_meeting([]), {"joining": person("j1", "CN", "acct-user-2")})
		with data.authorities as authorities
	[x.type | some x in b.actions] == ["deny_join"]
}

test_accredited_host_is_not_removed_and_the_account_not_suspended if {
	inp := {"meeting": meeting(host("acct-press-0001", "CN"), [person("p1", "CN", "")]), "order": order(["remove_participants", "suspend_account"])}
	d := decide(inp)
	acted_on(d) == {"p1"}
	codes(d) == {["suspend_account", "exempt"]}
}

test_joining_without_signing_in_is_not_exempt if {
	inp := object.union(cn_meeting([]), {"joining": person("j1", "CN", "")})
	a := geoscope.admission with input as inp with data.authorities as authorities
	[x.type | some x in a.actions] == ["deny_join"]
}

test_the_list_is_data if {
	inp := cn_meeting([person("p1", "CN", "acct-new-press")])
	acted_on(decide(inp)) == {"p1", "acct-host"}
	d := geoscope.decision with input as inp
		with data.authorities as authorities
		with data.geoscope.extensions.accredited_press.accounts as {"acct-new-press": {"outlet": "New Outlet"}}
	acted_on(d) == {"acct-host"}
}

# The list's keys are what counts: a value of false, null or {} is an
# account on the list all the same.
test_any_value_puts_an_account_on_the_list if {
	every value in [false, null, {}, "yes"] {
		inp := cn_meeting([person("p1", "CN", "acct-x")])
		d := geoscope.decision with input as inp
			with data.authorities as authorities
			with data.geoscope.extensions.accredited_press.accounts as {"acct-x": value}
		acted_on(d) == {"acct-host"}
	}
}

test_exempt_is_the_accredited_people_in_this_meeting if {
	inp := object.union(
		cn_meeting([person("p1", "CN", "acct-press-0001"), person("p2", "US", "acct-press-0002"), person("p3", "CN", "")]),
		{"joining": person("j1", "CN", "acct-press-0003")},
	)
	data.geoscope.extensions.exempt == {"p1", "p2", "j1"} with input as inp
}

test_entries_are_well_formed if {
	inp := cn_meeting([person("p1", "CN", "acct-press-0001")])
	geoscope.extension_problems == set() with input as inp with data.authorities as authorities
}
