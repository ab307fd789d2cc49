package geoscope.decision_test

# Tests for service-wide orders (targets.all_meetings) and jurisdictions
# that list ISO 3166-2 subdivisions. The helpers are decision_test.rego's.

import data.geoscope

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

reach_authorities := object.union(authorities, {
	"ua.crimea": {"name": "Crimea Sanctions Office", "jurisdiction": ["UA-43", "UA-40"]},
	"mixed": {"name": "CN and Crimea", "jurisdiction": ["CN", "UA-43"]},
	# Both invalid in a registry (the validation refuses a code listed with
	# the country or subdivision it lies in); the policy still counts and
	# removes each person once.
	"overlap": {"name": "Ukraine and Crimea", "jurisdiction": ["UA", "UA-43"]},
	"nested": {"name": "England and London", "jurisdiction": ["GB-ENG", "GB-LND"]},
})

# A person located by IP in subdivisions of a country.
located_in(id, country, subdivisions) := object.union(person(id, country), {"subdivisions": subdivisions})

crimean(id) := located_in(id, "UA", ["UA-43"])

kyivan(id) := located_in(id, "UA", ["UA-30"])

londoner(id) := located_in(id, "GB", ["GB-ENG", "GB-LND"])

# An order of authority naming meeting m1, with the given demands.
reach_order(authority, demands) := new_order("o-r", authority, demands, ["m1"], [])

service_wide_order(authority, demands) := {
	"authority": authority,
	"demands": demands,
	"targets": {"all_meetings": true},
	"legal_basis": basis,
}

removed_in(oid, pid, j) := {
	"type": "remove_participant",
	"meeting_id": "m1",
	"participant_id": pid,
	"order_id": oid,
	"jurisdiction": j,
	"reason": reason_cn(oid),
}

# Removals as the policy returns them (per participant), without "country"
# (which the subdivision batch does not state; the guard fills it).
removed_ids(actions) := {[a.order_id, a.participant_id] | some a in actions; a.type == "remove_participant"}

# ---------------------------------------------------------------------------
# Service-wide orders
# ---------------------------------------------------------------------------

test_service_wide_order_targets_every_meeting if {
	geoscope.targets_meeting(service_wide_order("cn.cac", ["remove_participants"])) with input as {"meeting": meeting(us_host, [])}
	geoscope.service_wide(service_wide_order("cn.cac", ["remove_participants"]))
	not geoscope.service_wide(cn_order(["remove_participants"]))
	not geoscope.service_wide(object.union(cn_order(["remove_participants"]), {"targets": {"meetings": [], "all_meetings": false}}))
}

test_service_wide_standing_order_removes_participants_inside if {
	d := expanded_decision with input as standing(["SW-1"], meeting(us_host, [person("p1", "CN"), person("p2", "US"), unlocated("p3")]))
		with data.authorities as authorities
		with data.orders as {"SW-1": service_wide_order("cn.cac", ["remove_participants"])}
	d == {"actions": {removed("SW-1", "p1", "CN")}, "refused": set()}
}

test_service_wide_preview_order_removes_participants_inside if {
	o := object.union(service_wide_order("cn.cac", ["remove_participants"]), {"id": "SW-P", "received": ""})
	d := expanded_decision with input as preview(o, meeting(online_host("acct-cn", "CN", "CN"), [person("p1", "CN")]))
		with data.authorities as authorities
	d == {"actions": {removed("SW-P", "p1", "CN"), removed_host("SW-P", "acct-cn", "CN")}, "refused": set()}
}

test_service_wide_order_denies_joining_inside if {
	orders := {"SW-1": service_wide_order("cn.cac", ["remove_participants"])}
	inside := object.union(standing(["SW-1"], meeting(us_host, [])), {"joining": person("j1", "CN")})
	outside := object.union(standing(["SW-1"], meeting(us_host, [])), {"joining": person("j1", "HK")})
	a := own_admission with input as inside with data.authorities as authorities with data.orders as orders
	a == {"actions": {denied("SW-1", "j1")}, "refused": set()}
	b := own_admission with input as outside with data.authorities as authorities with data.orders as orders
	b == {"actions": set(), "refused": set()}
}

# Even with everyone inside, a service-wide order never ends a meeting or
# suspends an account: such demands are refused, and its participant
# actions still follow.
test_service_wide_order_never_ends_a_meeting_or_suspends_an_account if {
	d := expanded_decision with input as standing(["SW-1"], meeting(online_host("acct-cn", "CN", "CN"), [person("p1", "CN"), person("p2", "CN")]))
		with data.authorities as authorities
		with data.orders as {"SW-1": service_wide_order("cn.cac", all_demands)}
	d.actions == {removed("SW-1", "p1", "CN"), removed("SW-1", "p2", "CN"), removed_host("SW-1", "acct-cn", "CN")}
	reason := "order SW-1 applies to every meeting; only participants located inside are acted on, never a meeting or an account as a whole"
	d.refused == {
		{"order_id": "SW-1", "demand": "end_meeting", "code": "service_wide", "reason": reason, "affected_outside": 0},
		{"order_id": "SW-1", "demand": "suspend_account", "code": "service_wide", "reason": reason, "affected_outside": 0},
	}
}

test_service_wide_end_meeting_of_an_empty_meeting_is_refused_once if {
	d := expanded_decision with input as standing(["SW-1"], meeting(cn_host, []))
		with data.authorities as authorities
		with data.orders as {"SW-1": service_wide_order("cn.cac", ["end_meeting"])}
	{r.code | some r in d.refused} == {"service_wide"}
}

test_service_wide_order_and_a_meeting_order_together if {
	d := expanded_decision with input as standing(["CN-1", "SW-1"], meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {
			"SW-1": service_wide_order("cn.cac", ["remove_participants"]),
			"CN-1": object.remove(cn_order(["end_meeting"]), ["id"]),
		}
	d.actions == {removed("SW-1", "p1", "CN"), removed("CN-1", "p1", "CN"), end_granted("CN-1")}
	d.refused == set()
}

# A service-wide order that may not act (its authority unknown, or no
# legal basis) is refused for that reason alone: the service_wide refusal
# says what is done instead, and nothing is.
test_service_wide_order_that_may_not_act_is_refused_only_for_why if {
	unknown := expanded_decision with input as standing(["SW-1"], meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {"SW-1": service_wide_order("xx.unknown", ["end_meeting", "suspend_account"])}
	unknown.actions == set()
	{[r.demand, r.code] | some r in unknown.refused} == {["end_meeting", "unknown_authority"], ["suspend_account", "unknown_authority"]}
	no_basis := expanded_decision with input as standing(["SW-1"], meeting(cn_host, [person("p1", "CN")]))
		with data.authorities as authorities
		with data.orders as {"SW-1": object.union(service_wide_order("cn.cac", ["end_meeting"]), {"legal_basis": " "})}
	no_basis.actions == set()
	{[r.demand, r.code] | some r in no_basis.refused} == {["end_meeting", "no_legal_basis"]}
}

test_service_wide_code_is_the_policys_own if {
	"service_wide" in geoscope.builtin_codes
	not geoscope.valid_operator_code("service_wide")
}

# ---------------------------------------------------------------------------
# Subdivisions
# ---------------------------------------------------------------------------

test_inside_a_subdivision if {
	geoscope.inside(crimean("p"), ["UA-43"])
	geoscope.inside(crimean("p"), ["CN", "UA-43"])
	not geoscope.inside(kyivan("p"), ["UA-43"])
	not geoscope.inside(person("p", "UA"), ["UA-43"])
	not geoscope.inside(unlocated("p"), ["UA-43"])
	geoscope.inside(londoner("p"), ["GB-LND"])
	geoscope.inside(londoner("p"), ["GB-ENG"])
	geoscope.inside(kyivan("p"), ["UA"])
}

test_subdivision_jurisdiction_removes_only_people_located_in_it if {
	ps := [crimean("p1"), kyivan("p2"), person("p3", "UA"), located_in("p4", "UA", ["UA-40"]), person("p5", "CN"), unlocated("p6")]
	actions := expand(own_actions) with input as preview(reach_order("ua.crimea", ["remove_participants"]), meeting(us_host, ps))
		with data.authorities as reach_authorities
	actions == {removed_in("o-r", "p1", ["UA-43", "UA-40"]), removed_in("o-r", "p4", ["UA-43", "UA-40"])}
}

test_subdivision_jurisdiction_removes_the_host_located_in_it if {
	h := object.union(online_host("acct-ua", "UA", "UA"), {"subdivisions": ["UA-43"]})
	actions := expand(own_actions) with input as preview(reach_order("ua.crimea", ["remove_participants"]), meeting(h, [kyivan("p1")]))
		with data.authorities as reach_authorities
	actions == {object.union(removed_in("o-r", "acct-ua", ["UA-43", "UA-40"]), {"host": true, "country": "UA"})}
}

test_mixed_jurisdiction_batches_countries_and_subdivisions if {
	ps := [crimean("p1"), kyivan("p2"), person("p3", "CN"), person("p4", "CN"), located_in("p5", "CN", ["CN-BJ"])]
	removals := own_removals with input as preview(reach_order("mixed", ["remove_participants"]), meeting(us_host, ps))
		with data.authorities as reach_authorities
	removals == {
		{
			"type": "remove_participant", "meeting_id": "m1", "participant_ids": ["p3", "p4", "p5"], "order_id": "o-r",
			"jurisdiction": ["CN", "UA-43"], "country": "CN", "reason": reason_cn("o-r"),
		},
		{
			"type": "remove_participant", "meeting_id": "m1", "participant_ids": ["p1"], "order_id": "o-r",
			"jurisdiction": ["CN", "UA-43"], "reason": reason_cn("o-r"),
		},
	}
}

# A person matched both by country and by subdivision is removed once and
# counted once inside.
test_person_in_a_listed_country_and_subdivision_counts_once if {
	ps := [crimean("p1"), kyivan("p2"), person("p3", "US")]
	inp := preview(reach_order("overlap", all_demands), meeting(us_host, ps))
	removals := removed_ids(expand(own_actions)) with input as inp with data.authorities as reach_authorities
	removals == {["o-r", "p1"], ["o-r", "p2"]}
	geoscope.subdivision_inside == {"o-r": set()} with input as inp with data.authorities as reach_authorities
	geoscope.outside_count == {"o-r": 1} with input as inp with data.authorities as reach_authorities
}

test_person_in_two_listed_nested_subdivisions_counts_once if {
	ps := [londoner("p1"), located_in("p2", "GB", ["GB-ENG", "GB-MAN"]), located_in("p3", "GB", ["GB-SCT", "GB-EDH"]), person("p4", "GB")]
	inp := preview(reach_order("nested", ["end_meeting"]), meeting(us_host, ps))
	geoscope.subdivision_inside == {"o-r": {"p1", "p2"}} with input as inp with data.authorities as reach_authorities
	geoscope.outside_count == {"o-r": 2} with input as inp with data.authorities as reach_authorities
	removals := removed_ids(expand(own_actions)) with input as inp with data.authorities as reach_authorities
	removals == {["o-r", "p1"], ["o-r", "p2"]}
}

test_outside_count_with_subdivisions if {
	ps := [crimean("p1"), kyivan("p2"), person("p3", "UA"), unlocated("p4")]
	h := object.union(online_host("acct-ua", "UA", "UA"), {"subdivisions": ["UA-30"]})
	inp := object.union(preview(reach_order("ua.crimea", ["end_meeting"]), meeting(h, ps)), {"joining": crimean("j1")})

	# p2, p3, p4 and the host are outside; p1 and the joining one inside.
	geoscope.outside_count == {"o-r": 4} with input as inp with data.authorities as reach_authorities
}

test_end_meeting_everyone_in_the_subdivision if {
	h := object.union(online_host("acct-ua", "UA", "UA"), {"subdivisions": ["UA-43"]})
	d := expanded_decision with input as preview(reach_order("ua.crimea", ["end_meeting"]), meeting(h, [crimean("p1"), located_in("p2", "UA", ["UA-40"])]))
		with data.authorities as reach_authorities
	{a.type | some a in d.actions} == {"remove_participant", "end_meeting"}
	d.refused == set()
}

test_end_meeting_refused_with_someone_elsewhere_in_the_country if {
	d := expanded_decision with input as preview(reach_order("ua.crimea", ["end_meeting"]), meeting(us_host, [crimean("p1"), person("p2", "UA")]))
		with data.authorities as reach_authorities
	{[r.code, r.affected_outside] | some r in d.refused} == {["affects_outside", 1]}
	not "end_meeting" in {a.type | some a in d.actions}
}

# An account is registered in a country, never in a subdivision: a
# subdivision-only jurisdiction never suspends one.
test_suspend_account_never_granted_for_a_subdivision_jurisdiction if {
	h := object.union(online_host("acct-ua", "UA", "UA"), {"subdivisions": ["UA-43"]})
	d := expanded_decision with input as preview(reach_order("ua.crimea", ["suspend_account"]), meeting(h, [crimean("p1")]))
		with data.authorities as reach_authorities
	not "suspend_account" in {a.type | some a in d.actions}
	{[r.demand, r.code, r.affected_outside] | some r in d.refused} == {["suspend_account", "affects_outside", 1]}
}

ask_crimea(joining) := a if {
	a := own_admission with input as object.union(standing(["CR-1"], meeting(us_host, [])), {"joining": joining})
		with data.authorities as reach_authorities
		with data.orders as {"CR-1": object.remove(reach_order("ua.crimea", ["remove_participants"]), ["id"])}
}

test_joining_in_a_subdivision_is_denied if {
	ask_crimea(crimean("j1")) == {"actions": {denied("CR-1", "j1")}, "refused": set()}
	ask_crimea(kyivan("j1")).actions == set()
	ask_crimea(person("j1", "UA")).actions == set()
	ask_crimea(unlocated("j1")).actions == set()
}

# With a Country database nobody has subdivisions: a subdivision
# jurisdiction acts on nobody, and refuses end_meeting as reaching people
# outside.
test_subdivision_jurisdiction_acts_on_nobody_without_subdivisions if {
	ps := [person("p1", "UA"), person("p2", "UA")]
	d := expanded_decision with input as preview(reach_order("ua.crimea", all_demands), meeting(online_host("acct-ua", "UA", "UA"), ps))
		with data.authorities as reach_authorities
	d.actions == set()
	{r.code | some r in d.refused} == {"affects_outside"}
}

# ---------------------------------------------------------------------------
# Join time: only the orders under evaluation, and each checked in full
# ---------------------------------------------------------------------------

# An order may deny a join only when the engine lists it among the orders
# under evaluation (in force now): data.orders also holds orders not in
# force, and orders of other meetings.
join_orders := {
	"o-listed": object.remove(new_order("o-listed", "cn.cac", ["remove_participants"], ["m1"], []), ["id"]),
	"o-not-listed": object.remove(new_order("o-not-listed", "cn.cac", ["remove_participants"], ["m1"], []), ["id"]),
}

join_denials(listed, joining, orders) := {d.order_id |
	some d in geoscope.denials with input as object.union(standing(listed, meeting(us_host, [])), {"joining": joining})
		with data.authorities as reach_authorities
		with data.orders as orders
		with data.geoscope.extensions as {}
}

test_join_denied_only_by_the_orders_under_evaluation if {
	join_denials(["o-listed"], person("j1", "CN"), join_orders) == {"o-listed"}
	join_denials([], person("j1", "CN"), join_orders) == set()
	join_denials(["o-listed"], crimean("j1"), join_orders) == set()
}

# By subdivision as by country: an order without a legal basis, not
# targeting the meeting, or making no demand geoscope knows denies nobody.
test_join_denied_by_subdivision_only_by_an_order_that_may_act if {
	ok := object.remove(new_order("o", "ua.crimea", ["remove_participants"], ["m1"], []), ["id"])
	join_denials(["o"], crimean("j1"), {"o": ok}) == {"o"}
	join_denials(["o"], kyivan("j1"), {"o": ok}) == set()
	join_denials(["o"], crimean("j1"), {"o": object.union(ok, {"legal_basis": ""})}) == set()
	join_denials(["o"], crimean("j1"), {"o": object.union(ok, {"targets": {"meetings": ["other"], "accounts": []}})}) == set()
	join_denials(["o"], crimean("j1"), {"o": object.union(ok, {"demands": ["ban_user"]})}) == set()
}

test_join_denied_by_country_only_by_an_order_that_may_act if {
	ok := object.remove(new_order("o", "cn.cac", ["remove_participants"], ["m1"], []), ["id"])
	join_denials(["o"], person("j1", "CN"), {"o": ok}) == {"o"}
	join_denials(["o"], person("j1", "CN"), {"o": object.union(ok, {"legal_basis": ""})}) == set()
	join_denials(["o"], person("j1", "CN"), {"o": object.union(ok, {"targets": {"meetings": ["other"], "accounts": []}})}) == set()
	join_denials(["o"], person("j1", "CN"), {"o": object.union(ok, {"demands": ["ban_user"]})}) == set()
}
