package geoscope.extensions.hosts_never_acted_on_test

# The hosts-never-acted-on extension, evaluated with the default policy:
#   go tool opa test policies docs/extensions/hosts-never-acted-on
#
# The tests assert what this extension adds, and nothing else: whom it
# exempts (data.geoscope.extensions.exempt is a union of every extension's
# entries, so a test asks whether an id is in it, never what it equals),
# and what follows for them (not removed, not denied admission, a demand
# that would reach them refused as "exempt"). Other extensions in the same
# bundle can only exempt, withhold and refuse more, so these tests pass
# beside them; those of the other worked examples in docs/extensions
# included. The people a test expects to be acted on are located by
# address and not signed in: an extension that exempts by account or by
# how someone was located leaves them alone.

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

# A participant located by IP address in country, with a role.
person(id, country, role) := {"id": id, "country": country, "located_by": "ip", "role": role}

online_host(located) := {
	"id": "acct-host",
	"account_id": "acct-host",
	"role": "host",
	"account_country": "CN",
	"connected": true,
	"country": located,
	"located_by": "ip",
}

offline_host := {"id": "acct-host", "account_id": "acct-host", "role": "host", "account_country": "CN", "connected": false}

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

admit(inp) := a if {
	a := geoscope.admission with input as inp with data.authorities as authorities
}

exempt(inp) := e if {
	e := data.geoscope.extensions.exempt with input as inp
}

# The participant ids the decision removes or denies, batches expanded
# (the host's connection is removed by its account id).
acted_on(d) := {id |
	some a in d.actions
	some id in array.concat(object.get(a, "participant_ids", []), [x | x := a.participant_id])
}

demands_granted(d) := {a.type | some a in d.actions; a.type in {"end_meeting", "suspend_account"}}

codes(d) := {[r.demand, r.code] | some r in d.refused}

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

test_co_host_and_host_are_not_removed if {
	ps := [person("p1", "CN", "co_host"), person("p2", "CN", "attendee"), person("p3", "CN", "panelist")]
	d := decide({"meeting": meeting(online_host("CN"), ps), "order": order(["remove_participants"])})
	not "p1" in acted_on(d)
	not "acct-host" in acted_on(d)
	{"p2", "p3"} - acted_on(d) == set()
}

test_connected_host_blocks_end_meeting if {
	ps := [person("p1", "CN", "attendee")]
	d := decide({"meeting": meeting(online_host("CN"), ps), "order": order(["end_meeting"])})
	"p1" in acted_on(d)
	not "acct-host" in acted_on(d)
	not "end_meeting" in demands_granted(d)
	["end_meeting", "exempt"] in codes(d)
}

test_end_meeting_granted_while_no_host_or_co_host_is_connected if {
	ps := [person("p1", "CN", "attendee"), person("p2", "CN", "panelist")]
	d := decide({"meeting": meeting(offline_host, ps), "order": order(["end_meeting"])})
	"end_meeting" in demands_granted(d)
	not ["end_meeting", "exempt"] in codes(d)
}

test_co_host_blocks_end_meeting if {
	ps := [person("p1", "CN", "attendee"), person("p2", "CN", "co_host")]
	d := decide({"meeting": meeting(offline_host, ps), "order": order(["end_meeting"])})
	"p1" in acted_on(d)
	not "p2" in acted_on(d)
	not "end_meeting" in demands_granted(d)
	["end_meeting", "exempt"] in codes(d)
}

test_account_is_never_suspended if {
	# The host is the account holder, connected or not. (Not connected,
	# the holder is of unknown location: the default policy refuses the
	# suspension too, as affects_outside.)
	ps := [person("p1", "CN", "attendee")]
	d := decide({"meeting": meeting(offline_host, ps), "order": order(all_demands)})
	not "suspend_account" in demands_granted(d)
	["suspend_account", "exempt"] in codes(d)
	"end_meeting" in demands_granted(d)
}

test_joining_co_host_is_admitted_and_attendee_denied if {
	m := meeting(offline_host, [])
	admit({"meeting": m, "order": order(all_demands), "joining": person("j1", "CN", "co_host")}).actions == set()
	a := admit({"meeting": m, "order": order(all_demands), "joining": person("j2", "CN", "attendee")})
	{x.type | some x in a.actions} == {"deny_join"}
}

test_participant_without_a_role_is_not_exempt if {
	ps := [{"id": "p1", "country": "CN", "located_by": "ip"}]
	inp := {"meeting": meeting(offline_host, ps), "order": order(["remove_participants"])}
	not "p1" in exempt(inp)
	"p1" in acted_on(decide(inp))
}

test_exempt_is_the_hosts_and_co_hosts if {
	ps := [person("p1", "CN", "co_host"), person("p2", "US", "co_host"), person("p3", "CN", "attendee"), person("p4", "CN", "panelist")]
	e := exempt({"meeting": meeting(offline_host, ps), "joining": person("j1", "CN", "co_host")})
	{"acct-host", "p1", "p2", "j1"} - e == set()
	not "p3" in e
	not "p4" in e
	not "j2" in exempt({"meeting": meeting(offline_host, ps), "joining": person("j2", "CN", "attendee")})
}

test_entries_are_well_formed if {
	inp := {"meeting": meeting(online_host("CN"), [person("p1", "CN", "co_host")]), "order": order(all_demands)}
	geoscope.extension_problems == set() with input as inp with data.authorities as authorities
}
