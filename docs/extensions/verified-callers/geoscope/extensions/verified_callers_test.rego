package geoscope.extensions.verified_callers_test

# The verified-callers extension, evaluated with the default policy:
#   go tool opa test policies docs/extensions/verified-callers
#
# The tests assert what this extension adds, and nothing else: whom it
# exempts (data.geoscope.extensions.exempt is a union of every extension's
# entries, so a test asks whether an id is in it, never what it equals),
# and what follows for them (not removed, not denied admission, a demand
# that would reach them refused as "exempt"). Other extensions in the same
# bundle can only exempt, withhold and refuse more, so these tests pass
# beside them; those of the other worked examples in docs/extensions
# included. The people a test expects to be acted on have no role and are
# not signed in: an extension that exempts by role or by account leaves
# them alone. The host is not connected, so end_meeting does not reach it
# (its role is always "host"); suspend_account does, so the tests say only
# that an exempt caller has it refused.

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

# Connected by IP address.
online(id, country) := {"id": id, "country": country, "located_by": "ip"}

# A dial-in caller located by the calling number, with the attestation the
# meeting server reports ("" for none).
caller(id, country, attestation) := object.union(
	{"id": id, "country": country, "located_by": "phone"},
	{"attributes": {"caller_id_attestation": attestation} | attestation != ""},
)

# A dial-in caller not located (without --locate-phone-numbers).
unlocated_caller(id) := {"id": id}

# The host is not connected: of unknown location, which alone makes the
# default policy refuse suspend_account (affects_outside) in every case,
# and not reached by end_meeting.
host := {"id": "acct-host", "account_id": "acct-host", "role": "host", "account_country": "CN", "connected": false}

meeting(ps) := {
	"id": "m1",
	"host": host,
	"participant_count": count(ps),
	"by_country": {c: [p.id | some p in ps; p.country == c] | some q in ps; c := q.country},
	"unlocated": [p.id | some p in ps; not p.country],
	"participants": ps,
}

exempt(ps) := e if {
	e := data.geoscope.extensions.exempt with input as {"meeting": meeting(ps)}
}

decide(ps) := d if {
	d := geoscope.decision with input as {"meeting": meeting(ps), "order": order(all_demands)}
		with data.authorities as authorities
}

admit(joining) := a if {
	a := geoscope.admission with input as {"meeting": meeting([]), "order": order(all_demands), "joining": joining}
		with data.authorities as authorities
}

acted_on(d) := {id |
	some a in d.actions
	some id in array.concat(object.get(a, "participant_ids", []), [x | x := a.participant_id])
}

demands_granted(d) := {a.type | some a in d.actions; a.type in {"end_meeting", "suspend_account"}}

codes(d) := {[r.demand, r.code] | some r in d.refused}

# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

test_attested_caller_is_acted_on_like_anyone_inside if {
	d := decide([caller("c1", "CN", "A"), online("p1", "CN")])
	{"c1", "p1"} - acted_on(d) == set()
	"end_meeting" in demands_granted(d)
	not ["end_meeting", "exempt"] in codes(d)
}

test_unattested_caller_is_not_removed_and_blocks_meeting_wide_demands if {
	every attestation in ["", "B", "C", "a"] {
		d := decide([caller("c1", "CN", attestation), online("p1", "CN")])
		not "c1" in acted_on(d)
		"p1" in acted_on(d)
		demands_granted(d) == set()
		["end_meeting", "exempt"] in codes(d)
		["suspend_account", "exempt"] in codes(d)
	}
}

test_unattested_caller_from_outside_is_untouched_either_way if {
	d := decide([caller("c1", "US", "B"), online("p1", "CN")])
	not "c1" in acted_on(d)
	"p1" in acted_on(d)
	demands_granted(d) == set()
	{["end_meeting", "affects_outside"], ["end_meeting", "exempt"], ["suspend_account", "exempt"]} - codes(d) == set()
}

test_caller_not_located_by_phone_is_never_acted_on_and_counts_outside if {
	# Without --locate-phone-numbers the default policy already leaves the
	# caller alone; this extension adds nothing.
	ps := [unlocated_caller("c1"), online("p1", "CN")]
	not "c1" in exempt(ps)
	d := decide(ps)
	not "c1" in acted_on(d)
	"p1" in acted_on(d)
	["end_meeting", "affects_outside"] in codes(d)
	not ["end_meeting", "exempt"] in codes(d)
}

test_people_connected_by_ip_are_unaffected if {
	ps := [online("p1", "CN"), online("p2", "CN")]
	not "p1" in exempt(ps)
	not "p2" in exempt(ps)
	d := decide(ps)
	{"p1", "p2"} - acted_on(d) == set()
	"end_meeting" in demands_granted(d)
}

test_joining_caller_is_denied_only_when_attested if {
	{x.type | some x in admit(caller("j1", "CN", "A")).actions} == {"deny_join"}
	admit(caller("j1", "CN", "B")).actions == set()
	admit(caller("j1", "CN", "")).actions == set()
}

test_exempt_is_the_unattested_phone_located_callers if {
	e := exempt([caller("c1", "CN", "A"), caller("c2", "CN", "B"), caller("c3", "US", ""), online("p1", "CN"), unlocated_caller("c4")])
	{"c2", "c3"} - e == set()
	not "c1" in e
	not "p1" in e
	not "c4" in e
}

test_entries_are_well_formed if {
	geoscope.extension_problems == set() with input as {"meeting": meeting([caller("c1", "CN", "")]), "order": order(all_demands)}
		with data.authorities as authorities
}
