package geoscope.extensions.accredited_press_test

# The accredited-press extension, evaluated with the default policy:
#   go tool opa test policies docs/extensions/accredited-press
#
# The tests assert what this extension adds, and nothing else: whom it
# exempts (data.geoscope.extensions.exempt is a union of every extension's
# entries, so a test asks whether an id is in it, never what it equals),
# and what follows for them (not removed, not denied admission, a demand
# that would reach them refused as "exempt"). Other extensions in the same
# bundle can only exempt, withhold and refuse more, so these tests pass
# beside them; those of the other worked examples in docs/extensions
# included. The people a test expects to be acted on are located by
# address, with no role and no account on the list, and the host is not
# connected where a test expects a meeting-wide demand to be granted: an
# extension that exempts by role (the host's is always "host") or by how
# someone was located leaves them alone.

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

all_demands := ["remove_participants", "end_meeting", "suspend_account"]

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

# The host is not connected: it is reached by suspend_account only (which
# the default policy then refuses as affects_outside), never by
# end_meeting.
offline_host := {"id": "acct-host", "account_id": "acct-host", "role": "host", "account_country": "CN", "connected": false}

meeting(h, ps) := {
	"id": "m1",
	"host": h,
	"participant_count": count(ps),
	"by_country": {c: [p.id | some p in ps; p.country == c] | some q in ps; c := q.country},
	"unlocated": [p.id | some p in ps; not p.country],
	"participants": ps,
}

# A meeting in CN whose host is not connected: without an exempt
# participant, the participants inside are removed and end_meeting is
# granted.
cn_meeting(ps) := {"meeting": meeting(offline_host, ps), "order": order(all_demands)}

decide(inp) := d if {
	d := geoscope.decision with input as inp with data.authorities as authorities
}

admit(inp) := a if {
	a := geoscope.admission with input as inp with data.authorities as authorities
}

exempt(inp) := e if {
	e := data.geoscope.extensions.exempt with input as inp
}

# The participant ids the decision removes or denies, batches expanded.
acted_on(d) := {id |
	some a in d.actions
	some id in array.concat(object.get(a, "participant_ids", []), [x | x := a.participant_id])
}

demands_granted(d) := {a.type | some a in d.actions; a.type in {"end_meeting", "suspend_account"}}

codes(d) := {[r.demand, r.code] | some r in d.refused}

denied(a) := {x.type | some x in a.actions} == {"deny_join"}

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

test_accredited_participant_is_not_removed if {
	d := decide(cn_meeting([person("p1", "CN", "acct-press-0001"), person("p2", "CN", "acct-user-9")]))
	not "p1" in acted_on(d)
	"p2" in acted_on(d)
}

test_accredited_participant_blocks_end_meeting_and_suspend_account if {
	d := decide(cn_meeting([person("p1", "CN", "acct-press-0002"), person("p2", "CN", "")]))
	not "end_meeting" in demands_granted(d)
	not "suspend_account" in demands_granted(d)
	["end_meeting", "exempt"] in codes(d)
	["suspend_account", "exempt"] in codes(d)
}

test_without_an_accredited_person_the_extension_changes_nothing if {
	inp := cn_meeting([person("p1", "CN", "acct-user-1"), person("p2", "CN", "")])
	d := decide(inp)
	{"p1", "p2"} - acted_on(d) == set()
	"end_meeting" in demands_granted(d)
	not ["end_meeting", "exempt"] in codes(d)

	# The decision is the one an empty list gives.
	d == geoscope.decision with input as inp
		with data.authorities as authorities
		with data.geoscope.extensions.accredited_press.accounts as {}
}

test_accredited_joining_participant_is_admitted if {
	admit(object.union(cn_meeting([]), {"joining": person("j1", "CN", "acct-press-0003")})).actions == set()
	denied(admit(object.union(cn_meeting([]), {"joining": person("j1", "CN", "acct-user-2")})))
}

test_accredited_host_is_not_removed_and_the_account_not_suspended if {
	inp := {"meeting": meeting(host("acct-press-0001", "CN"), [person("p1", "CN", "")]), "order": order(["remove_participants", "suspend_account"])}
	"acct-press-0001" in exempt(inp)
	d := decide(inp)
	not "acct-press-0001" in acted_on(d)
	"p1" in acted_on(d)
	not "suspend_account" in demands_granted(d)
	["suspend_account", "exempt"] in codes(d)
}

test_joining_without_signing_in_is_not_exempt if {
	inp := object.union(cn_meeting([]), {"joining": person("j1", "CN", "")})
	not "j1" in exempt(inp)
	denied(admit(inp))
}

test_the_list_is_data if {
	inp := cn_meeting([person("p1", "CN", "acct-new-press")])
	"p1" in acted_on(decide(inp))
	d := geoscope.decision with input as inp
		with data.authorities as authorities
		with data.geoscope.extensions.accredited_press.accounts as {"acct-new-press": {"outlet": "New Outlet"}}
	not "p1" in acted_on(d)
}

# The list's keys are what counts: a value of false, null or {} is an
# account on the list all the same.
test_any_value_puts_an_account_on_the_list if {
	every value in [false, null, {}, "yes"] {
		inp := cn_meeting([person("p1", "CN", "acct-x")])
		d := geoscope.decision with input as inp
			with data.authorities as authorities
			with data.geoscope.extensions.accredited_press.accounts as {"acct-x": value}
		not "p1" in acted_on(d)
	}
}

test_exempt_is_the_accredited_people_in_this_meeting if {
	inp := object.union(
		cn_meeting([person("p1", "CN", "acct-press-0001"), person("p2", "US", "acct-press-0002"), person("p3", "CN", "")]),
		{"joining": person("j1", "CN", "acct-press-0003")},
	)
	e := exempt(inp)
	{"p1", "p2", "j1"} - e == set()
	not "p3" in e

	# What the list adds to exempt: the accredited people, nobody else.
	without_list := data.geoscope.extensions.exempt with input as inp
		with data.geoscope.extensions.accredited_press.accounts as {}
	e - without_list == {"p1", "p2", "j1"}
}

test_entries_are_well_formed if {
	inp := cn_meeting([person("p1", "CN", "acct-press-0001")])
	geoscope.extension_problems == set() with input as inp with data.authorities as authorities
}
