package geoscope.decision_test

# Tests for data.geoscope.decision. Every test supplies its own registry
# with `with data.authorities as` / `with data.orders as`, so none depends
# on the example registry bundle.

import data.geoscope

# The policy removes participants in batches (participant_ids per order and
# country); tests compare the per-participant actions the engine makes of
# them.
expand(actions) := {a | some a in actions; not a.participant_ids} | {x |
	some a in actions
	some pid in a.participant_ids
	x := object.union(object.remove(a, ["participant_ids"]), {"participant_id": pid})
}

expanded_decision := {"actions": expand(own_actions), "refused": own_refused}

expanded_actions := expand(own_actions)

expanded_removals := expand(own_removals)

# The default policy's own answers, without any extension rules: these
# tests pass whatever extensions a bundle installs alongside them
# (docs/extensions), which change some answers on purpose.
# extensions_test.rego tests the extension points.
own_decision := d if {
	d := geoscope.decision with data.geoscope.extensions as {}
}

own_admission := a if {
	a := geoscope.admission with data.geoscope.extensions as {}
}

own_actions := a if {
	a := geoscope.actions with data.geoscope.extensions as {}
}

own_removals := r if {
	r := geoscope.removals with data.geoscope.extensions as {}
}

own_refused := r if {
	r := geoscope.refused with data.geoscope.extensions as {}
}

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

cac := "Cyberspace Administration of China"

eu_name := "Example Union Data Authority"

authorities := {
	"cn.cac": {"name": cac, "jurisdiction": ["CN"]},
	"eu.eda": {"name": eu_name, "jurisdiction": ["DE", "FR"]},
}

basis := "test legal basis"

new_order(id, authority, demands, meetings, accounts) := {
	"id": id,
	"authority": authority,
	"demands": demands,
	"targets": {"meetings": meetings, "accounts": accounts},
	"legal_basis": basis,
	"received": "2020-06-01",
}

# A CN order naming meeting m1.
cn_order(demands) := new_order("o-cn", "cn.cac", demands, ["m1"], [])

all_demands := ["remove_participants", "end_meeting", "suspend_account"]

# People as the engine describes them in the input (docs/schemas/input.json).
# person(...) is located by IP address; the_person(...) takes any of the
# optional fields (role, account_id, account_country, attributes, or
# located_by "phone" for a dial-in caller located by the calling number).
person(id, country) := {"id": id, "country": country, "located_by": "ip"}

the_person(id, country, fields) := object.union(person(id, country), fields)

# A participant whose location is unknown: no "country", no "located_by".
unlocated(id) := {"id": id}

# The host's participant id is its account id.
offline_host(account, account_country) := {
	"id": account,
	"account_id": account,
	"role": "host",
	"account_country": account_country,
	"connected": false,
}

online_host(account, account_country, located) := object.union(
	offline_host(account, account_country),
	{"connected": true, "country": located, "located_by": "ip"},
)

# A host whose account's country is unknown (not connected).
no_country_host := object.remove(offline_host("acct-x", "ZZ"), ["account_country"])

# A connected host whose location is unknown.
unlocated_host(account, account_country) := object.union(offline_host(account, account_country), {"connected": true})

# The engine groups participant ids by located country (and subdivision);
# tests derive the grouping from the participant list the same way. "participants" is the
# per-person array the engine adds when a reachable rule reads it (the
# default policy never does; extensions may).
meeting(h, ps) := {
	"id": "m1",
	"host": h,
	"participant_count": count(ps),
	"by_country": by_country(ps),
	"by_subdivision": by_subdivision(ps),
	"unlocated": [p.id | some p in ps; not p.country],
	"participants": ps,
}

by_country(ps) := {c: [p.id | some p in ps; p.country == c] | some q in ps; c := q.country}

by_subdivision(ps) := {s: [p.id | some p in ps; s in p.subdivisions] | some q in ps; some s in q.subdivisions}

preview(o, m) := {"meeting": m, "order": o}

standing(ids, m) := {"meeting": m, "standing_orders": ids}

us_host := offline_host("acct-us", "US")

cn_host := offline_host("acct-cn", "CN")

reason_cn(_) := "located inside the jurisdiction of the authority that issued the order"

# remove_participant of a (non-host) participant by a CN order.
removed(oid, pid, country) := {
	"type": "remove_participant",
	"meeting_id": "m1",
	"participant_id": pid,
	"order_id": oid,
	"jurisdiction": ["CN"],
	"country": country,
	"reason": reason_cn(oid),
}

removed_host(oid, account, country) := object.union(removed(oid, account, country), {"host": true})

# deny_join as the policy returns it, denying the participant asking to
# join (named by the second argument, for the reader): the guard adds their
# id, the meeting, the jurisdiction and the located country.
denied(oid, _) := {
	"type": "deny_join",
	"order_id": oid,
	"reason": reason_cn(oid),
}

end_granted(oid) := {
	"type": "end_meeting",
	"meeting_id": "m1",
	"order_id": oid,
	"jurisdiction": ["CN"],
	"reason": sprintf("order %s: every user connected to the meeting is located in CN", [oid]),
}

end_refused(oid, n) := {
	"order_id": oid,
	"demand": "end_meeting",
	"code": "affects_outside",
	"reason": sprintf("ending the meeting would affect %s not located in CN; narrowed to the participants located there", [geoscope.users(n)]),
	"affected_outside": n,
}

end_no_participants(oid, n) := {
	"order_id": oid,
	"demand": "end_meeting",
	"code": "no_participants",
	"reason": "the meeting has no participants, so ending it cannot be shown to affect only users in CN; participants located there are denied admission instead",
	"affected_outside": n,
}

suspend_refused(oid, obstacle, n) := {
	"order_id": oid,
	"demand": "suspend_account",
	"code": "affects_outside",
	"reason": sprintf("suspending the account would affect users outside CN (%s); narrowed to participants located there, in every meeting of the account", [obstacle]),
	"affected_outside": n,
}

suspend_granted(oid, account) := {
	"type": "suspend_account",
	"meeting_id": "m1",
	"account_id": account,
	"order_id": oid,
	"jurisdiction": ["CN"],
	"country": "CN",
	"reason": sprintf("order %s: the account is registered in CN and every connected user is located in CN", [oid]),
}

# ---------------------------------------------------------------------------
# Entry point and the orders under evaluation
# ---------------------------------------------------------------------------

test_decision_is_empty_without_any_order if {
	d := expanded_decision with input as {"meeting": meeting(us_host, [person("p1", "CN")])}
		with data.authorities as authorities
		with data.orders as {}
	d == {"actions": set(), "refused": set()}
}

test_decision_is_empty_with_empty_standing_orders if {
	d := expanded_decision with input as standing([], meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {"o-cn": cn_order(all_demands)}
	d == {"actions": set(), "refused": set()}
}

test_decision_has_exactly_actions_and_refused if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
	object.keys(d) == {"actions", "refused"}
	is_set(d.actions)
	is_set(d.refused)
}

test_demand_vocabulary if {
	geoscope.demands == {"remove_participants", "end_meeting", "suspend_account"}
}

test_preview_order_is_evaluated_under_its_id if {
	o := cn_order(["end_meeting"])
	orders := geoscope.orders with input as preview(o, meeting(us_host, []))
		with data.orders as {}
	orders == {"o-cn": o}
}

test_preview_order_need_not_be_in_the_registry if {
	d := expanded_decision with input as preview(cn_order(["remove_participants"]), meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {}
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": set()}
}

test_standing_orders_are_read_from_the_registry if {
	o := object.remove(cn_order(["remove_participants"]), ["id"])
	orders := geoscope.orders with input as standing(["CN-1"], meeting(us_host, []))
		with data.orders as {"CN-1": o, "CN-2": o}
	orders == {"CN-1": o}
}

test_standing_order_acts_under_its_registry_id if {
	o := object.remove(cn_order(["remove_participants"]), ["id"])
	d := expanded_decision with input as standing(["CN-1"], meeting(us_host, [person("p1", "CN"), person("p2", "US")]))
		with data.authorities as authorities
		with data.orders as {"CN-1": o}
	d == {"actions": {removed("CN-1", "p1", "CN")}, "refused": set()}
}

test_preview_order_takes_precedence_over_standing_orders if {
	preview_order := new_order("preview", "cn.cac", ["end_meeting"], ["m1"], [])
	registry_order := new_order("CN-1", "cn.cac", ["suspend_account"], ["m1"], [])
	inp := object.union(preview(preview_order, meeting(us_host, [person("p1", "US")])), {"standing_orders": ["CN-1"]})
	orders := geoscope.orders with input as inp
		with data.orders as {"CN-1": registry_order}
	orders == {"preview": preview_order}
	d := expanded_decision with input as inp
		with data.authorities as authorities
		with data.orders as {"CN-1": registry_order}
	d == {"actions": set(), "refused": {end_refused("preview", 1)}}
}

test_standing_order_id_absent_from_registry_is_ignored if {
	orders := geoscope.orders with input as standing(["gone"], meeting(us_host, [person("p1", "CN")]))
		with data.orders as {}
	orders == {}
	d := expanded_decision with input as standing(["gone"], meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {}
	d == {"actions": set(), "refused": set()}
}

test_standing_order_absent_from_registry_does_not_hide_present_one if {
	o := object.remove(cn_order(["remove_participants"]), ["id"])
	d := expanded_decision with input as standing(["gone", "CN-1"], meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {"CN-1": o}
	d == {"actions": {removed("CN-1", "p1", "CN")}, "refused": set()}
}

# ---------------------------------------------------------------------------
# Rule 2: unknown authority, no legal basis, not targeted, unknown demand
# ---------------------------------------------------------------------------

test_unknown_authority_refuses_every_demand_and_acts_on_nobody if {
	o := new_order("o-x", "xx.unknown", all_demands, ["m1"], ["acct-cn"])
	d := expanded_decision with input as preview(o, meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
	reason := "authority \"xx.unknown\" is not in the registry"
	d.actions == set()
	d.refused == {
		{"order_id": "o-x", "demand": "remove_participants", "code": "unknown_authority", "reason": reason, "affected_outside": 0},
		{"order_id": "o-x", "demand": "end_meeting", "code": "unknown_authority", "reason": reason, "affected_outside": 0},
		{"order_id": "o-x", "demand": "suspend_account", "code": "unknown_authority", "reason": reason, "affected_outside": 0},
	}
}

test_unknown_authority_with_empty_registry if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as {}
	d == {"actions": set(), "refused": {{
		"order_id": "o-cn",
		"demand": "end_meeting",
		"code": "unknown_authority",
		"reason": "authority \"cn.cac\" is not in the registry",
		"affected_outside": 0,
	}}}
}

test_unknown_authority_joining_participant_in_cn_is_admitted if {
	o := new_order("o-x", "xx.unknown", ["remove_participants"], ["m1"], [])
	inp := object.union(preview(o, meeting(us_host, [])), {"joining": person("j1", "CN")})
	actions := expanded_actions with input as inp with data.authorities as authorities
	actions == set()
}

no_basis(oid, demand) := {
	"order_id": oid,
	"demand": demand,
	"code": "no_legal_basis",
	"reason": "the order states no legal basis",
	"affected_outside": 0,
}

test_missing_legal_basis_refuses_every_demand if {
	o := object.remove(cn_order(all_demands), ["legal_basis"])
	d := expanded_decision with input as preview(o, meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {"actions": set(), "refused": {
		no_basis("o-cn", "remove_participants"),
		no_basis("o-cn", "end_meeting"),
		no_basis("o-cn", "suspend_account"),
	}}
}

test_empty_legal_basis_refuses_every_demand if {
	o := object.union(cn_order(["end_meeting", "suspend_account"]), {"legal_basis": ""})
	d := expanded_decision with input as preview(o, meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {"actions": set(), "refused": {no_basis("o-cn", "end_meeting"), no_basis("o-cn", "suspend_account")}}
}

test_whitespace_legal_basis_refuses_every_demand if {
	o := object.union(cn_order(["remove_participants"]), {"legal_basis": " \t\n\r "})
	inp := object.union(preview(o, meeting(cn_host, [person("p1", "CN")])), {"joining": person("j1", "CN")})
	d := expanded_decision with input as inp with data.authorities as authorities
	d == {"actions": set(), "refused": {no_basis("o-cn", "remove_participants")}}
}

test_has_legal_basis if {
	geoscope.has_legal_basis({"legal_basis": "Art. 1"})
	geoscope.has_legal_basis({"legal_basis": "  x  "})
	not geoscope.has_legal_basis({"legal_basis": ""})
	not geoscope.has_legal_basis({"legal_basis": "   "})
	not geoscope.has_legal_basis({})
}

not_targeted(oid, demand) := {
	"order_id": oid,
	"demand": demand,
	"code": "not_targeted",
	"reason": "the order targets neither meeting \"m1\" nor account \"acct-cn\"",
	"affected_outside": 0,
}

test_order_targeting_neither_meeting_nor_account_is_refused_not_targeted if {
	o := new_order("o-cn", "cn.cac", all_demands, ["other-meeting"], ["other-account"])
	inp := object.union(preview(o, meeting(cn_host, [person("p1", "CN")])), {"joining": person("j1", "CN")})
	d := expanded_decision with input as inp with data.authorities as authorities
	d == {"actions": set(), "refused": {
		not_targeted("o-cn", "remove_participants"),
		not_targeted("o-cn", "end_meeting"),
		not_targeted("o-cn", "suspend_account"),
	}}
}

test_registry_order_without_target_lists_is_not_targeted if {
	o := {"authority": "cn.cac", "demands": ["end_meeting"], "targets": {}, "legal_basis": basis}
	d := expanded_decision with input as standing(["CN-9"], meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {"CN-9": o}
	d == {"actions": set(), "refused": {not_targeted("CN-9", "end_meeting")}}
}

test_registry_order_with_only_meeting_targets_targets_by_meeting if {
	o := {"authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m1"]}, "legal_basis": basis}
	d := expanded_decision with input as standing(["CN-9"], meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {"CN-9": o}
	d == {"actions": {removed("CN-9", "p1", "CN")}, "refused": set()}
}

test_targets_meeting_by_meeting_id if {
	geoscope.targets_meeting({"targets": {"meetings": ["x", "m1"], "accounts": []}}) with input as {"meeting": meeting(us_host, [])}
	not geoscope.targets_meeting({"targets": {"meetings": ["m2"], "accounts": ["acct-cn"]}}) with input as {"meeting": meeting(us_host, [])}
}

test_targets_meeting_by_host_account if {
	geoscope.targets_meeting({"targets": {"meetings": [], "accounts": ["acct-us"]}}) with input as {"meeting": meeting(us_host, [])}
	not geoscope.targets_meeting({"targets": {"meetings": [], "accounts": []}}) with input as {"meeting": meeting(us_host, [])}
}

test_order_targeting_host_account_reaches_the_meeting if {
	o := new_order("o-cn", "cn.cac", ["remove_participants"], [], ["acct-us"])
	d := expanded_decision with input as preview(o, meeting(us_host, [person("p1", "CN"), person("p2", "US")]))
		with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": set()}
}

test_actionable_maps_order_to_registry_jurisdiction if {
	inp := {"meeting": meeting(us_host, []), "standing_orders": ["a", "b", "c", "d", "e"]}
	orders := {
		"a": new_order("a", "cn.cac", ["end_meeting"], ["m1"], []),
		"b": new_order("b", "eu.eda", ["end_meeting"], [], ["acct-us"]),
		"c": new_order("c", "cn.cac", ["end_meeting"], ["m2"], []),
		"d": object.remove(new_order("d", "cn.cac", ["end_meeting"], ["m1"], []), ["legal_basis"]),
		"e": new_order("e", "xx.unknown", ["end_meeting"], ["m1"], []),
	}
	actionable := geoscope.actionable with input as inp
		with data.authorities as authorities
		with data.orders as orders
	actionable == {"a": ["CN"], "b": ["DE", "FR"]}
}

test_jurisdiction_comes_from_the_registry_never_the_order if {
	o := object.union(cn_order(["remove_participants", "end_meeting"]), {"jurisdiction": ["US", "CN"]})
	d := expanded_decision with input as preview(o, meeting(us_host, [person("p1", "CN"), person("p2", "US")]))
		with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": {end_refused("o-cn", 1)}}
}

test_unknown_demand_is_refused_for_a_targeted_order if {
	o := cn_order(["remove_participants", "seize_recordings"])
	d := expanded_decision with input as preview(o, meeting(us_host, [person("p1", "CN"), person("p2", "US")]))
		with data.authorities as authorities
	d == {
		"actions": {removed("o-cn", "p1", "CN")},
		"refused": {{
			"order_id": "o-cn",
			"demand": "seize_recordings",
			"code": "unknown_demand",
			"reason": "\"seize_recordings\" is not a demand geoscope knows",
			"affected_outside": 0,
		}},
	}
}

test_unknown_demand_of_untargeted_order_is_only_refused_not_targeted if {
	o := new_order("o-cn", "cn.cac", ["seize_recordings"], ["m2"], [])
	refused := own_refused with input as preview(o, meeting(cn_host, [])) with data.authorities as authorities
	refused == {not_targeted("o-cn", "seize_recordings")}
}

test_unknown_demand_of_unknown_authority_is_only_refused_unknown_authority if {
	o := new_order("o-x", "xx.unknown", ["seize_recordings"], ["m1"], [])
	refused := own_refused with input as preview(o, meeting(cn_host, [])) with data.authorities as authorities
	refused == {{
		"order_id": "o-x",
		"demand": "seize_recordings",
		"code": "unknown_authority",
		"reason": "authority \"xx.unknown\" is not in the registry",
		"affected_outside": 0,
	}}
}

test_remove_participants_demand_is_never_refused if {
	o := cn_order(["remove_participants"])
	d := expanded_decision with input as preview(o, meeting(us_host, [person("p1", "US"), unlocated("p2")]))
		with data.authorities as authorities
	d == {"actions": set(), "refused": set()}
}

# ---------------------------------------------------------------------------
# Rule 1 and rule 3: who is inside, who is acted on
# ---------------------------------------------------------------------------

test_inside_only_when_located_in_jurisdiction if {
	geoscope.inside(person("p", "CN"), ["CN"])
	geoscope.inside(person("p", "FR"), ["DE", "FR"])
	not geoscope.inside(person("p", "US"), ["CN"])
	not geoscope.inside(person("p", "HK"), ["CN"])
	not geoscope.inside(person("p", "MO"), ["CN"])
	not geoscope.inside(person("p", "TW"), ["CN"])
	not geoscope.inside(unlocated("p"), ["CN"])
	not geoscope.inside(person("p", "CN"), [])
}

test_remove_participant_exact_action_object_is_one_batch_per_country if {
	ps := [person("p1", "CN"), person("p2", "US"), person("p3", "CN")]
	d := own_decision with input as preview(cn_order(["remove_participants"]), meeting(us_host, ps))
		with data.authorities as authorities
	d.refused == set()
	d.actions == {{
		"type": "remove_participant",
		"meeting_id": "m1",
		"participant_ids": ["p1", "p3"],
		"order_id": "o-cn",
		"jurisdiction": ["CN"],
		"country": "CN",
		"reason": "located inside the jurisdiction of the authority that issued the order",
	}}
}

test_only_participants_in_jurisdiction_are_removed if {
	ps := [person("p1", "CN"), person("p2", "US"), person("p3", "CN"), person("p4", "GB"), unlocated("p5")]
	actions := expanded_actions with input as preview(cn_order(["remove_participants"]), meeting(us_host, ps))
		with data.authorities as authorities
	actions == {removed("o-cn", "p1", "CN"), removed("o-cn", "p3", "CN")}
}

test_hk_mo_tw_participants_are_not_cn if {
	ps := [person("hk", "HK"), person("mo", "MO"), person("tw", "TW")]
	d := expanded_decision with input as preview(cn_order(["remove_participants", "end_meeting", "suspend_account"]), meeting(cn_host, ps))
		with data.authorities as authorities

	# The account holder is not connected: one more person outside.
	d == {"actions": set(), "refused": {
		end_refused("o-cn", 3),
		suspend_refused("o-cn", "the account holder is not connected, so where they are is unknown, and 3 users connected or joining are not located there", 4),
	}}
}

test_hk_mo_tw_joining_participants_are_admitted if {
	every c in ["HK", "MO", "TW"] {
		inp := object.union(preview(cn_order(["remove_participants"]), meeting(us_host, [])), {"joining": person("j1", c)})
		actions := expanded_actions with input as inp with data.authorities as authorities
		actions == set()
	}
}

test_unknown_location_is_never_acted_on if {
	ps := [unlocated("p1"), unlocated("p2")]
	inp := object.union(preview(cn_order(all_demands), meeting(cn_host, ps)), {"joining": unlocated("j1")})
	d := expanded_decision with input as inp with data.authorities as authorities

	# The joining participant would be affected too: 3 users outside, and
	# the account holder, not connected, a fourth.
	d == {"actions": set(), "refused": {
		end_refused("o-cn", 3),
		suspend_refused("o-cn", "the account holder is not connected, so where they are is unknown, and 3 users connected or joining are not located there", 4),
	}}
}

test_participant_action_for_every_known_demand if {
	every demand in all_demands {
		actions := expanded_removals with input as preview(cn_order([demand]), meeting(us_host, [person("p1", "CN"), person("p2", "HK")]))
			with data.authorities as authorities
		actions == {removed("o-cn", "p1", "CN")}
	}
}

test_connected_host_in_jurisdiction_is_removed_as_host if {
	h := online_host("acct-us", "US", "CN")
	actions := expanded_actions with input as preview(cn_order(["remove_participants"]), meeting(h, [person("p1", "US")]))
		with data.authorities as authorities
	actions == {{
		"type": "remove_participant",
		"meeting_id": "m1",
		"participant_id": "acct-us",
		"host": true,
		"order_id": "o-cn",
		"jurisdiction": ["CN"],
		"country": "CN",
		"reason": reason_cn("o-cn"),
	}}
}

test_connected_host_outside_jurisdiction_is_untouched if {
	h := online_host("acct-cn", "CN", "US")
	actions := expanded_actions with input as preview(cn_order(all_demands), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	actions == {removed("o-cn", "p1", "CN")}
}

test_connected_host_with_unknown_location_is_untouched_and_counts_outside if {
	h := unlocated_host("acct-cn", "CN")
	d := expanded_decision with input as preview(cn_order(all_demands), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {
		"actions": {removed("o-cn", "p1", "CN")},
		"refused": {
			end_refused("o-cn", 1),
			suspend_refused("o-cn", "1 user connected or joining is not located there", 1),
		},
	}
}

test_host_not_connected_is_never_acted_on if {
	d := expanded_decision with input as preview(cn_order(["remove_participants", "end_meeting"]), meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN"), end_granted("o-cn")}, "refused": set()}
}

test_host_outside_counts_connected_host_not_inside if {
	geoscope.host_outside(["CN"]) == 1 with input as {"meeting": meeting(online_host("acct-us", "US", "GB"), [])}
	geoscope.host_outside(["CN"]) == 1 with input as {"meeting": meeting(unlocated_host("acct-us", "US"), [])}
	geoscope.host_outside(["CN"]) == 0 with input as {"meeting": meeting(online_host("acct-us", "US", "CN"), [])}
	geoscope.host_outside(["CN"]) == 0 with input as {"meeting": meeting(us_host, [])}
}

test_joining_outside_counts_joining_participant_not_inside if {
	geoscope.joining_outside(["CN"]) == 1 with input as {"meeting": meeting(us_host, []), "joining": person("j", "HK")}
	geoscope.joining_outside(["CN"]) == 1 with input as {"meeting": meeting(us_host, []), "joining": unlocated("j")}
	geoscope.joining_outside(["CN"]) == 0 with input as {"meeting": meeting(us_host, []), "joining": person("j", "CN")}
	geoscope.joining_outside(["CN"]) == 0 with input as {"meeting": meeting(us_host, [])}
}

test_located_inside_sums_the_jurisdiction_countries if {
	inp := {"meeting": meeting(us_host, [person("p1", "CN"), person("p2", "DE"), person("p3", "FR"), unlocated("p4"), person("p5", "FR")])}
	geoscope.located_inside(["CN"]) == 1 with input as inp
	geoscope.located_inside(["DE", "FR"]) == 3 with input as inp
	geoscope.located_inside(["TW"]) == 0 with input as inp
}

test_joining_participant_in_jurisdiction_is_denied if {
	inp := object.union(preview(cn_order(["remove_participants"]), meeting(us_host, [person("p1", "US")])), {"joining": person("j1", "CN")})
	d := expanded_decision with input as inp with data.authorities as authorities
	d.refused == set()
	d.actions == {{
		"type": "deny_join",
		"order_id": "o-cn",
		"reason": "located inside the jurisdiction of the authority that issued the order",
	}}
}

test_joining_participant_outside_jurisdiction_is_admitted if {
	inp := object.union(preview(cn_order(["remove_participants"]), meeting(us_host, [person("p1", "CN")])), {"joining": person("j1", "US")})
	actions := expanded_actions with input as inp with data.authorities as authorities
	actions == {removed("o-cn", "p1", "CN")}
}

test_joining_participant_with_unknown_location_is_admitted if {
	inp := object.union(preview(cn_order(["remove_participants"]), meeting(us_host, [])), {"joining": unlocated("j1")})
	d := expanded_decision with input as inp with data.authorities as authorities
	d == {"actions": set(), "refused": set()}
}

test_joining_participant_outside_blocks_end_meeting if {
	# Ending the meeting would shut out the participant joining from the US.
	inp := object.union(preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN")])), {"joining": person("j1", "US")})
	d := expanded_decision with input as inp with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": {end_refused("o-cn", 1)}}
}

test_joining_participant_inside_allows_end_meeting if {
	inp := object.union(preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN")])), {"joining": person("j1", "CN")})
	d := expanded_decision with input as inp with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN"), denied("o-cn", "j1"), end_granted("o-cn")}, "refused": set()}
}

test_outside_count_per_actionable_order if {
	inp := {
		"meeting": meeting(online_host("acct-us", "US", "FR"), [person("p1", "CN"), person("p2", "DE"), unlocated("p3"), person("p4", "HK")]),
		"standing_orders": ["a", "b", "c"],
	}
	orders := {
		"a": new_order("a", "cn.cac", ["end_meeting"], ["m1"], []),
		"b": new_order("b", "eu.eda", ["end_meeting"], ["m1"], []),
		"c": new_order("c", "cn.cac", ["end_meeting"], ["m2"], []),
	}
	n := geoscope.outside_count with input as inp with data.authorities as authorities with data.orders as orders

	# a (CN): DE, unknown, HK, host FR are outside; b (DE, FR): CN, unknown, HK.
	n == {"a": 4, "b": 3}
}

test_account_inside if {
	geoscope.account_inside(["CN"]) with input as {"meeting": meeting(cn_host, [])}
	geoscope.account_inside(["DE", "FR"]) with input as {"meeting": meeting(offline_host("acct-fr", "FR"), [])}
	not geoscope.account_inside(["CN"]) with input as {"meeting": meeting(offline_host("acct-hk", "HK"), [])}
	not geoscope.account_inside(["CN"]) with input as {"meeting": meeting(no_country_host, [])}
}

# ---------------------------------------------------------------------------
# Rule 4: end_meeting
# ---------------------------------------------------------------------------

test_end_meeting_granted_when_every_participant_in_jurisdiction if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN"), person("p2", "CN")]))
		with data.authorities as authorities
	d.refused == set()
	d.actions == {
		removed("o-cn", "p1", "CN"),
		removed("o-cn", "p2", "CN"),
		{
			"type": "end_meeting",
			"meeting_id": "m1",
			"order_id": "o-cn",
			"jurisdiction": ["CN"],
			"reason": "order o-cn: every user connected to the meeting is located in CN",
		},
	}
}

test_end_meeting_refused_when_one_participant_in_hk if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN"), person("p2", "HK")]))
		with data.authorities as authorities
	d.actions == {removed("o-cn", "p1", "CN")}
	d.refused == {{
		"order_id": "o-cn",
		"demand": "end_meeting",
		"code": "affects_outside",
		"reason": "ending the meeting would affect 1 user not located in CN; narrowed to the participants located there",
		"affected_outside": 1,
	}}
}

test_end_meeting_refused_when_one_participant_unlocated if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN"), unlocated("p2")]))
		with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": {end_refused("o-cn", 1)}}
}

test_end_meeting_refused_when_connected_host_outside if {
	h := online_host("acct-cn", "CN", "TW")
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": {end_refused("o-cn", 1)}}
}

test_end_meeting_affected_outside_counts_participants_and_host if {
	h := online_host("acct-us", "US", "US")
	ps := [person("p1", "CN"), person("p2", "US"), person("p3", "HK"), unlocated("p4")]
	refused := own_refused with input as preview(cn_order(["end_meeting"]), meeting(h, ps))
		with data.authorities as authorities
	refused == {end_refused("o-cn", 4)}
}

test_end_meeting_refused_no_participants_in_empty_meeting if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(cn_host, []))
		with data.authorities as authorities
	d.actions == set()
	d.refused == {{
		"order_id": "o-cn",
		"demand": "end_meeting",
		"code": "no_participants",
		"reason": "the meeting has no participants, so ending it cannot be shown to affect only users in CN; participants located there are denied admission instead",
		"affected_outside": 0,
	}}
}

test_end_meeting_refused_no_participants_when_only_host_connected_in_jurisdiction if {
	h := online_host("acct-cn", "CN", "CN")
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(h, []))
		with data.authorities as authorities
	d == {"actions": {removed_host("o-cn", "acct-cn", "CN")}, "refused": {end_no_participants("o-cn", 0)}}
}

test_end_meeting_no_participants_counts_connected_host_outside if {
	h := online_host("acct-us", "US", "US")
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(h, []))
		with data.authorities as authorities
	d == {"actions": set(), "refused": {end_no_participants("o-cn", 1)}}
}

test_end_meeting_not_considered_when_not_demanded if {
	d := expanded_decision with input as preview(cn_order(["remove_participants"]), meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {"actions": {removed("o-cn", "p1", "CN")}, "refused": set()}
	d2 := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(us_host, []))
		with data.authorities as authorities
	every r in d2.refused {
		r.demand == "suspend_account"
	}
}

granted_predicate(name, h, ps) if {
	orders := {"o": object.remove(new_order("o", "cn.cac", all_demands, ["m1"], []), ["id"])}
	name == "end_meeting"
	geoscope.end_meeting_granted("o") with input as standing(["o"], meeting(h, ps))
		with data.authorities as authorities
		with data.orders as orders
}

granted_predicate(name, h, ps) if {
	orders := {"o": object.remove(new_order("o", "cn.cac", all_demands, ["m1"], []), ["id"])}
	name == "suspend_account"
	geoscope.suspend_account_granted("o") with input as standing(["o"], meeting(h, ps))
		with data.authorities as authorities
		with data.orders as orders
}

test_end_meeting_granted_predicate if {
	granted_predicate("end_meeting", us_host, [person("p1", "CN")])
	not granted_predicate("end_meeting", us_host, [])
	not granted_predicate("end_meeting", online_host("acct-cn", "CN", "CN"), [])
	not granted_predicate("end_meeting", us_host, [person("p1", "CN"), person("p2", "MO")])
}

# ---------------------------------------------------------------------------
# Rule 5: suspend_account
# ---------------------------------------------------------------------------

test_suspend_account_granted_when_account_and_everyone_connected_in_jurisdiction if {
	h := online_host("acct-cn", "CN", "CN")
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	d.refused == set()
	d.actions == {
		removed("o-cn", "p1", "CN"),
		removed_host("o-cn", "acct-cn", "CN"),
		{
			"type": "suspend_account",
			"meeting_id": "m1",
			"account_id": "acct-cn",
			"order_id": "o-cn",
			"jurisdiction": ["CN"],
			"country": "CN",
			"reason": "order o-cn: the account is registered in CN and every connected user is located in CN",
		},
	}
}

test_suspend_account_granted_for_account_in_jurisdiction_with_only_its_holder_connected if {
	h := online_host("acct-cn", "CN", "CN")
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(h, []))
		with data.authorities as authorities
	d == {"actions": {suspend_granted("o-cn", "acct-cn"), removed_host("o-cn", "acct-cn", "CN")}, "refused": set()}
}

# Where an account is registered is not where its holder is: a holder who
# is not connected is of unknown location, and counts as outside.
test_suspend_account_refused_when_the_holder_is_not_connected if {
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(cn_host, []))
		with data.authorities as authorities
	d == {"actions": set(), "refused": {suspend_refused("o-cn", "the account holder is not connected, so where they are is unknown", 1)}}
}

test_suspend_account_refused_when_account_registered_outside if {
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
	d.actions == {removed("o-cn", "p1", "CN")}
	d.refused == {{
		"order_id": "o-cn",
		"demand": "suspend_account",
		"code": "affects_outside",
		"reason": "suspending the account would affect users outside CN (the account is registered in US); narrowed to participants located there, in every meeting of the account",
		"affected_outside": 1,
	}}
}

test_suspend_account_refused_when_account_registered_in_hk if {
	h := online_host("acct-hk", "HK", "CN")
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {
		"actions": {removed("o-cn", "p1", "CN"), removed_host("o-cn", "acct-hk", "CN")},
		"refused": {suspend_refused("o-cn", "the account is registered in HK", 1)},
	}
}

test_suspend_account_refused_when_account_country_unknown if {
	h := no_country_host
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	d.actions == {removed("o-cn", "p1", "CN")}
	d.refused == {{
		"order_id": "o-cn",
		"demand": "suspend_account",
		"code": "affects_outside",
		"reason": "suspending the account would affect users outside CN (the account's country is unknown); narrowed to participants located there, in every meeting of the account",
		"affected_outside": 1,
	}}
}

test_suspend_account_refused_when_participants_outside_and_account_inside if {
	ps := [person("p1", "CN"), person("p2", "US"), unlocated("p3")]
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(cn_host, ps))
		with data.authorities as authorities
	d.actions == {removed("o-cn", "p1", "CN")}
	d.refused == {{
		"order_id": "o-cn",
		"demand": "suspend_account",
		"code": "affects_outside",
		"reason": "suspending the account would affect users outside CN (the account holder is not connected, so where they are is unknown, and 2 users connected or joining are not located there); narrowed to participants located there, in every meeting of the account",
		"affected_outside": 3,
	}}
}

test_suspend_account_refused_when_connected_host_outside_and_account_inside if {
	h := online_host("acct-cn", "CN", "US")
	d := expanded_decision with input as preview(cn_order(["suspend_account"]), meeting(h, [person("p1", "CN")]))
		with data.authorities as authorities
	d == {
		"actions": {removed("o-cn", "p1", "CN")},
		"refused": {suspend_refused("o-cn", "1 user connected or joining is not located there", 1)},
	}
}

test_suspend_account_affected_outside_adds_one_for_account_outside if {
	h := online_host("acct-us", "US", "US")
	ps := [person("p1", "CN"), person("p2", "GB"), person("p3", "TW")]
	refused := own_refused with input as preview(cn_order(["suspend_account"]), meeting(h, ps))
		with data.authorities as authorities

	# p2, p3 and the connected host are outside (3); the US account belongs
	# to that host and is not counted twice.
	refused == {suspend_refused("o-cn", "the account is registered in US", 3)}
}

test_suspend_account_affected_outside_for_unknown_account_and_outside_users if {
	h := no_country_host
	refused := own_refused with input as preview(cn_order(["suspend_account"]), meeting(h, [person("p1", "HK")]))
		with data.authorities as authorities
	refused == {suspend_refused("o-cn", "the account's country is unknown", 2)}
}

test_suspend_account_granted_predicate if {
	granted_predicate("suspend_account", online_host("acct-cn", "CN", "CN"), [person("p1", "CN")])
	not granted_predicate("suspend_account", cn_host, [person("p1", "CN")])
	not granted_predicate("suspend_account", us_host, [person("p1", "CN")])
	not granted_predicate("suspend_account", cn_host, [person("p1", "HK")])
	not granted_predicate("suspend_account", online_host("acct-cn", "CN", "MO"), [])
}

test_account_holder_not_counted_when_account_inside_and_holder_connected_inside if {
	n := geoscope.account_holder_outside_uncounted(["CN"]) with input as {"meeting": meeting(online_host("acct-cn", "CN", "CN"), [])}
	n == 0
}

test_account_holder_counted_when_account_inside_and_holder_not_connected if {
	n := geoscope.account_holder_outside_uncounted(["CN"]) with input as {"meeting": meeting(cn_host, [])}
	n == 1
}

test_account_holder_counted_when_account_outside_and_host_offline if {
	n := geoscope.account_holder_outside_uncounted(["CN"]) with input as {"meeting": meeting(offline_host("acct-tw", "TW"), [])}
	n == 1
}

test_account_holder_counted_when_account_country_unknown if {
	n := geoscope.account_holder_outside_uncounted(["CN"]) with input as {"meeting": meeting(no_country_host, [])}
	n == 1
}

test_account_holder_counted_once_when_connected_from_outside if {
	# The host connection outside is already in outside_count; the account
	# registered outside is the same person and is not counted again.
	n := geoscope.account_holder_outside_uncounted(["CN"]) with input as {"meeting": meeting(online_host("acct-us", "US", "US"), [])}
	n == 0
}

test_suspend_obstacle_account_registered_outside if {
	s := geoscope.suspend_obstacle(["CN"], 7) with input as {"meeting": meeting(us_host, [])}
	s == "the account is registered in US"
}

test_suspend_obstacle_account_country_unknown if {
	s := geoscope.suspend_obstacle(["CN"], 7) with input as {"meeting": meeting(no_country_host, [])}
	s == "the account's country is unknown"
}

test_suspend_obstacle_connected_users_outside if {
	s := geoscope.suspend_obstacle(["CN"], 7) with input as {"meeting": meeting(online_host("acct-cn", "CN", "CN"), [])}
	s == "7 users connected or joining are not located there"
}

test_suspend_obstacle_holder_not_connected if {
	s := geoscope.suspend_obstacle(["CN"], 0) with input as {"meeting": meeting(cn_host, [])}
	s == "the account holder is not connected, so where they are is unknown"
}

test_suspend_obstacle_holder_not_connected_and_users_outside if {
	s := geoscope.suspend_obstacle(["CN"], 1) with input as {"meeting": meeting(cn_host, [])}
	s == "the account holder is not connected, so where they are is unknown, and 1 user connected or joining is not located there"
}

# ---------------------------------------------------------------------------
# Several orders, several jurisdictions
# ---------------------------------------------------------------------------

eu_reason(_) := "located inside the jurisdiction of the authority that issued the order"

eu_removed(oid, pid, country) := {
	"type": "remove_participant",
	"meeting_id": "m1",
	"participant_id": pid,
	"order_id": oid,
	"jurisdiction": ["DE", "FR"],
	"country": country,
	"reason": eu_reason(oid),
}

test_multi_country_jurisdiction_removes_participants_in_any_of_its_countries if {
	o := new_order("o-eu", "eu.eda", ["remove_participants"], ["m1"], [])
	ps := [person("p1", "DE"), person("p2", "FR"), person("p3", "CN"), person("p4", "AT")]
	d := expanded_decision with input as preview(o, meeting(us_host, ps)) with data.authorities as authorities
	d == {"actions": {eu_removed("o-eu", "p1", "DE"), eu_removed("o-eu", "p2", "FR")}, "refused": set()}
}

test_multi_country_jurisdiction_end_meeting_and_suspend_granted if {
	o := new_order("o-eu", "eu.eda", ["end_meeting", "suspend_account"], ["m1"], [])
	h := online_host("acct-fr", "FR", "DE")
	d := expanded_decision with input as preview(o, meeting(h, [person("p1", "DE"), person("p2", "FR")]))
		with data.authorities as authorities
	d.refused == set()
	d.actions == {
		eu_removed("o-eu", "p1", "DE"),
		eu_removed("o-eu", "p2", "FR"),
		object.union(eu_removed("o-eu", "acct-fr", "DE"), {"host": true}),
		{
			"type": "end_meeting",
			"meeting_id": "m1",
			"order_id": "o-eu",
			"jurisdiction": ["DE", "FR"],
			"reason": "order o-eu: every user connected to the meeting is located in DE, FR",
		},
		{
			"type": "suspend_account",
			"meeting_id": "m1",
			"account_id": "acct-fr",
			"order_id": "o-eu",
			"jurisdiction": ["DE", "FR"],
			"country": "FR",
			"reason": "order o-eu: the account is registered in FR and every connected user is located in DE, FR",
		},
	}
}

test_multi_country_jurisdiction_refusal_reasons_list_every_country if {
	o := new_order("o-eu", "eu.eda", ["end_meeting", "suspend_account"], ["m1"], [])
	refused := own_refused with input as preview(o, meeting(us_host, [person("p1", "DE"), person("p2", "IT")]))
		with data.authorities as authorities
	refused == {
		{
			"order_id": "o-eu",
			"demand": "end_meeting",
			"code": "affects_outside",
			"reason": "ending the meeting would affect 1 user not located in DE, FR; narrowed to the participants located there",
			"affected_outside": 1,
		},
		{
			"order_id": "o-eu",
			"demand": "suspend_account",
			"code": "affects_outside",
			"reason": "suspending the account would affect users outside DE, FR (the account is registered in US); narrowed to participants located there, in every meeting of the account",
			"affected_outside": 2,
		},
	}
}

test_orders_with_different_jurisdictions_each_act_inside_their_own if {
	inp := object.union(
		standing(["CN-1", "EU-1"], meeting(us_host, [person("p1", "CN"), person("p2", "DE"), person("p3", "FR"), person("p4", "US")])),
		{"joining": person("j1", "DE")},
	)
	orders := {
		"CN-1": object.remove(new_order("x", "cn.cac", ["end_meeting"], ["m1"], []), ["id"]),
		"EU-1": object.remove(new_order("x", "eu.eda", ["end_meeting", "suspend_account"], [], ["acct-us"]), ["id"]),
	}
	d := expanded_decision with input as inp with data.authorities as authorities with data.orders as orders
	d.actions == {
		removed("CN-1", "p1", "CN"),
		eu_removed("EU-1", "p2", "DE"),
		eu_removed("EU-1", "p3", "FR"),
		{
			"type": "deny_join",
			"order_id": "EU-1",
			"reason": eu_reason("EU-1"),
		},
	}
	d.refused == {
		end_refused("CN-1", 4),
		{
			"order_id": "EU-1",
			"demand": "end_meeting",
			"code": "affects_outside",
			"reason": "ending the meeting would affect 2 users not located in DE, FR; narrowed to the participants located there",
			"affected_outside": 2,
		},
		{
			"order_id": "EU-1",
			"demand": "suspend_account",
			"code": "affects_outside",
			"reason": "suspending the account would affect users outside DE, FR (the account is registered in US); narrowed to participants located there, in every meeting of the account",
			"affected_outside": 3,
		},
	}
}

test_two_orders_of_the_same_authority_each_cite_their_own_order if {
	orders := {
		"CN-1": object.remove(cn_order(["remove_participants"]), ["id"]),
		"CN-2": object.remove(new_order("x", "cn.cac", ["end_meeting"], [], ["acct-us"]), ["id"]),
	}
	d := expanded_decision with input as standing(["CN-1", "CN-2"], meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as orders
	d == {
		"actions": {removed("CN-1", "p1", "CN"), removed("CN-2", "p1", "CN"), end_granted("CN-2")},
		"refused": set(),
	}
}

test_each_order_is_refused_for_its_own_reason if {
	orders := {
		"A": {"authority": "xx.unknown", "demands": ["end_meeting"], "targets": {"meetings": ["m1"]}, "legal_basis": basis},
		"B": {"authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m1"]}},
		"C": {"authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m9"]}, "legal_basis": basis},
		"D": {"authority": "cn.cac", "demands": ["end_meeting"], "targets": {"accounts": ["acct-cn"]}, "legal_basis": basis},
	}
	d := expanded_decision with input as standing(["A", "B", "C", "D"], meeting(cn_host, [person("p1", "CN"), person("p2", "US")]))
		with data.authorities as authorities
		with data.orders as orders
	d.actions == {removed("D", "p1", "CN")}
	d.refused == {
		{
			"order_id": "A",
			"demand": "end_meeting",
			"code": "unknown_authority",
			"reason": "authority \"xx.unknown\" is not in the registry",
			"affected_outside": 0,
		},
		no_basis("B", "end_meeting"),
		not_targeted("C", "end_meeting"),
		end_refused("D", 1),
	}
}

# ---------------------------------------------------------------------------
# The 2020 founding scenarios (authority cn.cac, jurisdiction ["CN"])
# ---------------------------------------------------------------------------

founding_authorities := {"cn.cac": {"name": cac, "jurisdiction": ["CN"]}}

founding_order := {
	"authority": "cn.cac",
	"demands": ["end_meeting", "suspend_account"],
	"targets": {
		"meetings": ["m1"],
		"accounts": ["acct-us-a", "acct-us-b", "acct-hk-c", "acct-us-d"],
	},
	"legal_basis": "Demand to terminate June 4th commemoration meetings and shut down their host accounts",
	"received": "2020-06-01",
}

founding_orders := {"CN-2020-0601": founding_order}

oid_2020 := "CN-2020-0601"

# A) ~60 participants in US, CA, GB, DE, TW, HK; host (US account) connected
# from the US; nobody in CN.
test_founding_a_no_participant_in_cn_nothing_is_done if {
	ps := [person(sprintf("a-%s-%d", [c, i]), c) |
		some c in ["US", "CA", "GB", "DE", "TW", "HK"]
		some i in numbers.range(1, 10)
	]
	count(ps) == 60
	h := online_host("acct-us-a", "US", "US")
	d := expanded_decision with input as standing([oid_2020], meeting(h, ps))
		with data.authorities as founding_authorities
		with data.orders as founding_orders
	d.actions == set()
	d.refused == {
		end_refused(oid_2020, 61),
		suspend_refused(oid_2020, "the account is registered in US", 61),
	}
}

# B) US account; participants in US, HK and several in CN: only the CN
# participants are removed.
test_founding_b_only_cn_participants_are_removed if {
	ps := [
		person("b-us-1", "US"), person("b-us-2", "US"),
		person("b-hk-1", "HK"),
		person("b-cn-1", "CN"), person("b-cn-2", "CN"), person("b-cn-3", "CN"),
	]
	d := expanded_decision with input as standing([oid_2020], meeting(offline_host("acct-us-b", "US"), ps))
		with data.authorities as founding_authorities
		with data.orders as founding_orders
	d.actions == {
		removed(oid_2020, "b-cn-1", "CN"),
		removed(oid_2020, "b-cn-2", "CN"),
		removed(oid_2020, "b-cn-3", "CN"),
	}
	d.refused == {
		end_refused(oid_2020, 3),
		suspend_refused(oid_2020, "the account is registered in US", 4),
	}
}

# C) HK account, host connected from HK, participants in HK and CN: the CN
# participants are removed, the HK host is untouched.
test_founding_c_hk_host_is_untouched if {
	h := online_host("acct-hk-c", "HK", "HK")
	ps := [person("c-hk-1", "HK"), person("c-hk-2", "HK"), person("c-cn-1", "CN"), person("c-cn-2", "CN")]
	d := expanded_decision with input as standing([oid_2020], meeting(h, ps))
		with data.authorities as founding_authorities
		with data.orders as founding_orders
	d.actions == {removed(oid_2020, "c-cn-1", "CN"), removed(oid_2020, "c-cn-2", "CN")}
	d.refused == {
		end_refused(oid_2020, 3),
		suspend_refused(oid_2020, "the account is registered in HK", 3),
	}
	every a in d.actions {
		not a.host
		a.participant_id != "acct-hk-c"
	}
}

# D) A scheduled meeting (nobody connected) of an account named in the
# order's targets.accounts; the meeting id itself is not named.
founding_d_input(joining) := {
	"meeting": object.union(meeting(offline_host("acct-us-d", "US"), []), {"id": "june4-d-scheduled"}),
	"joining": joining,
	"standing_orders": [oid_2020],
}

# The joining participant counts as affected when located outside; the US
# account holder always does.
founding_d_refused(joining_outside) := {
	{
		"order_id": oid_2020,
		"demand": "end_meeting",
		"code": "no_participants",
		"reason": "the meeting has no participants, so ending it cannot be shown to affect only users in CN; participants located there are denied admission instead",
		"affected_outside": joining_outside,
	},
	suspend_refused(oid_2020, "the account is registered in US", joining_outside + 1),
}

test_founding_d_joining_participant_in_cn_is_denied if {
	d := expanded_decision with input as founding_d_input(person("d-cn", "CN"))
		with data.authorities as founding_authorities
		with data.orders as founding_orders
	d.actions == {{
		"type": "deny_join",
		"order_id": oid_2020,
		"reason": reason_cn(oid_2020),
	}}
	d.refused == founding_d_refused(0)
}

test_founding_d_joining_participant_in_us_is_admitted if {
	d := expanded_decision with input as founding_d_input(person("d-us", "US"))
		with data.authorities as founding_authorities
		with data.orders as founding_orders
	d == {"actions": set(), "refused": founding_d_refused(1)}
}

# E) Control: CN account, host connected from CN, everyone in CN.
test_founding_e_all_cn_meeting_is_ended if {
	orders := {"CN-2020-0602": {
		"authority": "cn.cac",
		"demands": ["end_meeting"],
		"targets": {"meetings": ["m1"]},
		"legal_basis": "Demand to terminate a meeting held entirely within mainland China",
		"received": "2020-06-02",
	}}
	h := online_host("acct-cn", "CN", "CN")
	ps := [person("e-1", "CN"), person("e-2", "CN"), person("e-3", "CN")]
	d := expanded_decision with input as standing(["CN-2020-0602"], meeting(h, ps))
		with data.authorities as founding_authorities
		with data.orders as orders
	d.refused == set()
	d.actions == {
		end_granted("CN-2020-0602"),
		removed("CN-2020-0602", "e-1", "CN"),
		removed("CN-2020-0602", "e-2", "CN"),
		removed("CN-2020-0602", "e-3", "CN"),
		removed_host("CN-2020-0602", "acct-cn", "CN"),
	}
}

# F) One participant with an unknown location in an otherwise all-CN meeting.
test_founding_f_unlocated_participant_blocks_end_and_suspend if {
	orders := {"CN-F": object.union(founding_order, {"targets": {"meetings": ["m1"]}})}
	h := online_host("acct-cn", "CN", "CN")
	ps := [person("f-1", "CN"), person("f-2", "CN"), unlocated("f-unknown")]
	d := expanded_decision with input as standing(["CN-F"], meeting(h, ps))
		with data.authorities as founding_authorities
		with data.orders as orders
	d.actions == {
		removed("CN-F", "f-1", "CN"),
		removed("CN-F", "f-2", "CN"),
		removed_host("CN-F", "acct-cn", "CN"),
	}
	d.refused == {
		end_refused("CN-F", 1),
		suspend_refused("CN-F", "1 user connected or joining is not located there", 1),
	}
	every a in d.actions {
		a.participant_id != "f-unknown"
	}
}

test_joining_participant_is_denied_once_per_order if {
	orders := {
		"CN-1": object.remove(cn_order(["remove_participants"]), ["id"]),
		"CN-2": object.remove(new_order("x", "cn.cac", ["suspend_account"], [], ["acct-us"]), ["id"]),
	}
	inp := object.union(standing(["CN-1", "CN-2"], meeting(us_host, [])), {"joining": person("j1", "CN")})
	actions := expanded_actions with input as inp with data.authorities as authorities with data.orders as orders
	actions == {denied("CN-1", "j1"), denied("CN-2", "j1")}
}

# ---------------------------------------------------------------------------
# Malformed registry entries withhold enforcement, never extend it
# ---------------------------------------------------------------------------

test_authority_without_name_still_scopes_by_jurisdiction if {
	d := expanded_decision with input as preview(cn_order(["remove_participants"]), meeting(us_host, [person("p1", "CN")]))
		with data.authorities as {"cn.cac": {"jurisdiction": ["CN"]}}
	d.actions == {removed("o-cn", "p1", "CN")}
}

test_authority_without_jurisdiction_is_refused_as_unknown if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(us_host, [person("p1", "CN")]))
		with data.authorities as {"cn.cac": {"name": cac}}
	d == {"actions": set(), "refused": {{
		"order_id": "o-cn",
		"demand": "end_meeting",
		"code": "unknown_authority",
		"reason": "authority \"cn.cac\" has no jurisdiction in the registry",
		"affected_outside": 0,
	}}}
}

test_authority_with_empty_jurisdiction_is_refused_as_unknown if {
	d := expanded_decision with input as preview(cn_order(["end_meeting"]), meeting(us_host, [person("p1", "CN")]))
		with data.authorities as {"cn.cac": {"name": cac, "jurisdiction": []}}
	d.actions == set()
	[r.code | some r in d.refused] == ["unknown_authority"]
}

test_registry_order_without_authority_is_refused if {
	orders := {"X": {"demands": ["end_meeting"], "targets": {"meetings": ["m1"]}, "legal_basis": basis}}
	d := expanded_decision with input as standing(["X"], meeting(us_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as orders
	d == {"actions": set(), "refused": {{
		"order_id": "X",
		"demand": "end_meeting",
		"code": "unknown_authority",
		"reason": "authority \"\" is not in the registry",
		"affected_outside": 0,
	}}}
}

test_empty_account_id_is_never_targeted if {
	o := new_order("o-cn", "cn.cac", ["remove_participants"], [], [""])
	h := offline_host("", "US")
	d := expanded_decision with input as preview(o, meeting(h, [person("p1", "CN")])) with data.authorities as authorities
	d.actions == set()
	[r.code | some r in d.refused] == ["not_targeted"]
}

test_order_with_only_unknown_demands_acts_on_nobody if {
	o := cn_order(["seize_recordings"])
	d := expanded_decision with input as preview(o, meeting(us_host, [person("p1", "CN")])) with data.authorities as authorities
	d.actions == set()
	[r.code | some r in d.refused] == ["unknown_demand"]
}

test_order_without_demands_acts_on_nobody if {
	o := cn_order([])
	d := expanded_decision with input as preview(o, meeting(us_host, [person("p1", "CN")])) with data.authorities as authorities
	d == {"actions": set(), "refused": set()}
}

# ---------------------------------------------------------------------------
# Admission entry point
# ---------------------------------------------------------------------------

test_admission_denies_joining_participant_inside_and_refuses_nothing if {
	inp := object.union(preview(cn_order(all_demands), meeting(us_host, [])), {"joining": person("j1", "CN")})
	a := own_admission with input as inp with data.authorities as authorities
	a == {"actions": {denied("o-cn", "j1")}, "refused": set()}
}

test_admission_admits_joining_participant_outside if {
	every c in ["HK", "MO", "TW", "US"] {
		inp := object.union(preview(cn_order(all_demands), meeting(us_host, [])), {"joining": person("j1", c)})
		a := own_admission with input as inp with data.authorities as authorities
		a == {"actions": set(), "refused": set()}
	}
}

test_counts_read_as_english if {
	geoscope.users(1) == "1 user"
	geoscope.users(0) == "0 users"
	geoscope.users(7) == "7 users"
	geoscope.are(1) == "is"
	geoscope.are(2) == "are"
}
