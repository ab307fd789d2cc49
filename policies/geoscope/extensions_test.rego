package geoscope.decision_test

# Tests for the extension points of the default policy
# (data.geoscope.extensions.exempt, .withheld and .refusals). The helpers
# and fixtures are those of decision_test.rego. Each test supplies the
# extension rules' values with `with data.geoscope.extensions as {...}`,
# which is what the rules of an operator's file evaluate to.

import data.geoscope

# The decision (batches expanded) with the given extension values.
decide(inp, ext) := d if {
	d := {"actions": expand(geoscope.actions), "refused": geoscope.refused} with input as inp
		with data.authorities as authorities
		with data.geoscope.extensions as ext
}

admit(inp, ext) := a if {
	a := geoscope.admission with input as inp
		with data.authorities as authorities
		with data.geoscope.extensions as ext
}

with_joining(inp, j) := object.union(inp, {"joining": j})

withheld(oid, demand, reason) := {
	"order_id": oid,
	"demand": demand,
	"code": "withheld",
	"reason": reason,
	"affected_outside": 0,
}

exempt_end(oid) := {
	"order_id": oid,
	"demand": "end_meeting",
	"code": "exempt",
	"reason": "ending the meeting would reach a person the operator's policy exempts from enforcement",
	"affected_outside": 0,
}

exempt_suspend(oid) := {
	"order_id": oid,
	"demand": "suspend_account",
	"code": "exempt",
	"reason": "suspending the account would reach a person the operator's policy exempts from enforcement",
	"affected_outside": 0,
}

# An all-CN meeting with a CN host connected from CN: without extensions a
# CN order with every demand is granted in full.
all_cn := preview(cn_order(all_demands), meeting(online_host("acct-cn", "CN", "CN"), [person("p1", "CN"), person("p2", "CN")]))

all_cn_granted := {
	removed("o-cn", "p1", "CN"),
	removed("o-cn", "p2", "CN"),
	removed_host("o-cn", "acct-cn", "CN"),
	end_granted("o-cn"),
	suspend_granted("o-cn", "acct-cn"),
}

# ---------------------------------------------------------------------------
# No extension: today's behaviour
# ---------------------------------------------------------------------------

test_no_extension_grants_all_cn_meeting_in_full if {
	d := decide(all_cn, {})
	d == {"actions": all_cn_granted, "refused": set()}
}

test_empty_extensions_change_nothing if {
	d := decide(all_cn, {"exempt": set(), "withheld": set(), "refusals": set()})
	d == {"actions": all_cn_granted, "refused": set()}
}

test_extension_values_default_to_empty_sets if {
	geoscope.exempt_ids == set() with input as all_cn with data.geoscope.extensions as {}
	geoscope.withheld_entries == set() with input as all_cn with data.geoscope.extensions as {}
	geoscope.operator_refusals == set() with input as all_cn with data.geoscope.extensions as {}
}

test_extension_values_are_read_from_data_geoscope_extensions if {
	ext := {"exempt": {"p1"}, "withheld": {{"order_id": "o-cn", "reason": "r"}}, "refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": "c", "reason": "r"}}}
	geoscope.exempt_ids == {"p1"} with data.geoscope.extensions as ext
	geoscope.withheld_entries == ext.withheld with data.geoscope.extensions as ext
	geoscope.operator_refusals == ext.refusals with data.geoscope.extensions as ext
}

# The hot paths test these first: undefined unless an extension rule has
# entries for this input.
test_exempting_only_with_exempt_entries if {
	not geoscope.exempting with data.geoscope.extensions as {}
	not geoscope.exempting with data.geoscope.extensions as {"exempt": set()}
	geoscope.exempting with data.geoscope.extensions as {"exempt": {"p1"}}
	not geoscope.exempting with data.geoscope.extensions as {"withheld": {{"order_id": "o"}}}
}

test_withholding_only_with_withheld_or_refusal_entries if {
	not geoscope.withholding with data.geoscope.extensions as {}
	not geoscope.withholding with data.geoscope.extensions as {"withheld": set(), "refusals": set()}
	geoscope.withholding with data.geoscope.extensions as {"withheld": {{"order_id": "o"}}}
	geoscope.withholding with data.geoscope.extensions as {"refusals": {{"order_id": "o", "code": "c"}}}
	not geoscope.withholding with data.geoscope.extensions as {"exempt": {"p1"}}
}

# The default policy decides from by_country and unlocated; the
# per-participant array (which the engine builds only for a policy that
# reads it) changes nothing, whatever it says.
test_default_policy_ignores_the_participants_array if {
	ps := [person("p1", "CN"), person("p2", "US"), unlocated("p3")]
	inp := with_joining(preview(cn_order(all_demands), meeting(online_host("acct-cn", "CN", "CN"), ps)), person("j1", "CN"))
	without := json.patch(inp, [{"op": "remove", "path": "/meeting/participants"}])
	contradicting := json.patch(inp, [{"op": "replace", "path": "/meeting/participants", "value": [
		the_person("p1", "US", {"role": "host"}),
		the_person("p2", "CN", {"account_country": "CN"}),
		the_person("p3", "CN", {"located_by": "phone"}),
	]}])
	d := decide(inp, {})
	d == decide(without, {})
	d == decide(contradicting, {})
	d.actions == {removed("o-cn", "p1", "CN"), removed_host("o-cn", "acct-cn", "CN"), denied("o-cn", "j1")}
}

# Neither an account country, an attribute nor a role is a location.
test_account_country_attributes_and_role_are_not_locations if {
	ps := [
		the_person("p1", "US", {"account_country": "CN", "role": "host", "attributes": {"country": "CN", "located_in": "CN"}}),
		the_person("p2", "CN", {"account_country": "US"}),
	]
	d := decide(preview(cn_order(all_demands), meeting(cn_host, ps)), {})
	d.actions == {removed("o-cn", "p2", "CN")}
	d.refused == {end_refused("o-cn", 1), suspend_refused("o-cn", "the account holder is not connected, so where they are is unknown, and 1 user connected or joining is not located there", 2)}
}

test_phone_located_participants_are_grouped_and_acted_on_like_any_other if {
	ps := [the_person("c1", "CN", {"located_by": "phone"}), person("p1", "CN")]
	d := decide(preview(cn_order(["remove_participants"]), meeting(us_host, ps)), {})
	d == {"actions": {removed("o-cn", "c1", "CN"), removed("o-cn", "p1", "CN")}, "refused": set()}
}

# ---------------------------------------------------------------------------
# exempt: participants never acted on
# ---------------------------------------------------------------------------

test_exempt_participant_is_not_removed_and_blocks_end_meeting if {
	d := decide(all_cn, {"exempt": {"p1"}})
	d.actions == {removed("o-cn", "p2", "CN"), removed_host("o-cn", "acct-cn", "CN")}
	d.refused == {exempt_end("o-cn"), exempt_suspend("o-cn")}
}

test_exempt_participant_leaves_the_rest_of_the_batch if {
	inp := preview(cn_order(["remove_participants"]), meeting(us_host, [person("p1", "CN"), person("p2", "CN"), person("p3", "CN")]))
	d := geoscope.decision with input as inp with data.authorities as authorities with data.geoscope.extensions as {"exempt": {"p2"}}
	[a.participant_ids | some a in d.actions] == [["p1", "p3"]]
}

test_batch_of_only_exempt_participants_is_not_returned if {
	inp := preview(cn_order(["remove_participants"]), meeting(us_host, [person("p1", "CN"), person("p2", "DE")]))
	d := geoscope.decision with input as inp with data.authorities as authorities with data.geoscope.extensions as {"exempt": {"p1"}}
	d == {"actions": set(), "refused": set()}
}

test_exempt_host_is_not_removed_and_blocks_meeting_wide_demands if {
	d := decide(all_cn, {"exempt": {"acct-cn"}})
	d.actions == {removed("o-cn", "p1", "CN"), removed("o-cn", "p2", "CN")}
	d.refused == {exempt_end("o-cn"), exempt_suspend("o-cn")}
}

test_exempt_account_holder_not_connected_blocks_only_suspend_account if {
	inp := preview(cn_order(all_demands), meeting(cn_host, [person("p1", "CN")]))
	d := decide(inp, {"exempt": {"acct-cn"}})
	d.actions == {removed("o-cn", "p1", "CN"), end_granted("o-cn")}

	# Not connected, the holder is of unknown location: the default
	# policy refuses the suspension too.
	d.refused == {exempt_suspend("o-cn"), suspend_refused("o-cn", "the account holder is not connected, so where they are is unknown", 1)}
}

test_exempt_joining_participant_is_not_denied if {
	inp := with_joining(preview(cn_order(["remove_participants"]), meeting(us_host, [])), person("j1", "CN"))
	decide(inp, {"exempt": {"j1"}}) == {"actions": set(), "refused": set()}
	admit(inp, {"exempt": {"j1"}}) == {"actions": set(), "refused": set()}
	admit(inp, {"exempt": {"someone-else"}}) == {"actions": {denied("o-cn", "j1")}, "refused": set()}
}

test_exempt_joining_participant_blocks_end_meeting if {
	inp := with_joining(all_cn, person("j1", "CN"))
	d := decide(inp, {"exempt": {"j1"}})
	d.actions == all_cn_granted - {end_granted("o-cn"), suspend_granted("o-cn", "acct-cn")}
	d.refused == {exempt_end("o-cn"), exempt_suspend("o-cn")}
}

test_exempt_unlocated_participant_blocks_end_meeting_alongside_affects_outside if {
	# Extensions add refusals; the default policy's own stay.
	inp := preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN"), unlocated("p2")]))
	d := decide(inp, {"exempt": {"p2"}})
	d.actions == {removed("o-cn", "p1", "CN")}
	d.refused == {end_refused("o-cn", 1), exempt_end("o-cn")}
}

test_exempt_person_not_in_the_meeting_changes_nothing if {
	d := decide(all_cn, {"exempt": {"elsewhere", "acct-other"}})
	d == {"actions": all_cn_granted, "refused": set()}
}

test_exempt_refusals_only_for_orders_that_could_act if {
	o := new_order("o-cn", "cn.cac", all_demands, ["other-meeting"], [])
	d := decide(preview(o, meeting(cn_host, [person("p1", "CN")])), {"exempt": {"p1", "acct-cn"}})
	d.actions == set()
	{r.code | some r in d.refused} == {"not_targeted"}
}

test_exempt_refusals_only_for_the_demands_made if {
	inp := preview(cn_order(["remove_participants", "end_meeting"]), meeting(cn_host, [person("p1", "CN"), person("p2", "CN")]))
	d := decide(inp, {"exempt": {"p1"}})
	d.actions == {removed("o-cn", "p2", "CN")}
	d.refused == {exempt_end("o-cn")}
}

test_not_exempt if {
	geoscope.not_exempt(["a", "b", "c"]) == ["a", "b", "c"] with data.geoscope.extensions as {}
	geoscope.not_exempt(["a", "b", "c"]) == ["a", "c"] with data.geoscope.extensions as {"exempt": {"b", "x"}}
	geoscope.not_exempt(["a"]) == [] with data.geoscope.extensions as {"exempt": {"a"}}
}

test_host_exempt if {
	geoscope.host_exempt with input as {"meeting": meeting(us_host, [])} with data.geoscope.extensions as {"exempt": {"acct-us"}}
	not geoscope.host_exempt with input as {"meeting": meeting(us_host, [])} with data.geoscope.extensions as {"exempt": {"p1"}}
	not geoscope.host_exempt with input as {"meeting": meeting(us_host, [])} with data.geoscope.extensions as {}
}

test_joining_withheld if {
	inp := with_joining(preview(cn_order(["remove_participants", "end_meeting"]), meeting(us_host, [])), person("j1", "CN"))
	not geoscope.joining_withheld("o-cn") with input as inp with data.geoscope.extensions as {}
	geoscope.joining_withheld("o-cn") with input as inp with data.geoscope.extensions as {"exempt": {"j1"}}
	not geoscope.joining_withheld("o-cn") with input as inp with data.geoscope.extensions as {"exempt": {"p1"}}
	geoscope.joining_withheld("o-cn") with input as inp with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn"}}}
	not geoscope.joining_withheld("o-cn") with input as inp with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn", "demand": "end_meeting"}}}
}

test_demand_withheld if {
	inp := preview(cn_order(["remove_participants", "end_meeting"]), meeting(us_host, []))
	not geoscope.demand_withheld("o-cn", "end_meeting") with input as inp with data.geoscope.extensions as {}
	geoscope.demand_withheld("o-cn", "end_meeting") with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn", "demand": "end_meeting"}}}
	not geoscope.demand_withheld("o-cn", "remove_participants") with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn", "demand": "end_meeting"}}}
	geoscope.demand_withheld("o-cn", "remove_participants") with input as inp
		with data.geoscope.extensions as {"refusals": {{"order_id": "o-cn", "code": "c"}}}
}

reached(host, ps, joining, ids) if {
	inp := {"meeting": meeting(host, ps), "joining": joining}
	geoscope.exempt_reached with input as inp with data.geoscope.extensions as {"exempt": ids}
}

account_reached(host, ps, ids) if {
	geoscope.exempt_account_reached with input as {"meeting": meeting(host, ps)} with data.geoscope.extensions as {"exempt": ids}
}

test_exempt_reached if {
	ps := [person("p1", "CN"), unlocated("p2")]
	reached(us_host, ps, unlocated("j1"), {"p1"})
	reached(us_host, ps, unlocated("j1"), {"p2"})
	reached(us_host, ps, unlocated("j1"), {"j1"})
	reached(online_host("acct-us", "US", "US"), ps, unlocated("j1"), {"acct-us"})
	reached(unlocated_host("acct-us", "US"), ps, unlocated("j1"), {"acct-us"})
	not reached(us_host, ps, unlocated("j1"), {"acct-us"})
	not reached(us_host, ps, unlocated("j1"), {"p9"})
	not reached(us_host, ps, unlocated("j1"), set())
}

test_exempt_account_reached if {
	account_reached(us_host, [], {"acct-us"})
	account_reached(us_host, [person("p1", "CN")], {"p1"})
	not account_reached(us_host, [person("p1", "CN")], {"p2"})
	not account_reached(us_host, [], set())
}

# ---------------------------------------------------------------------------
# withheld: orders or demands not enforced
# ---------------------------------------------------------------------------

test_withheld_order_acts_on_nobody_and_refuses_every_demand if {
	inp := with_joining(all_cn, person("j1", "CN"))
	d := decide(inp, {"withheld": {{"order_id": "o-cn", "reason": "under appeal"}}})
	d.actions == set()
	d.refused == {
		withheld("o-cn", "remove_participants", "under appeal"),
		withheld("o-cn", "end_meeting", "under appeal"),
		withheld("o-cn", "suspend_account", "under appeal"),
	}
	admit(inp, {"withheld": {{"order_id": "o-cn", "reason": "under appeal"}}}) == {"actions": set(), "refused": set()}
}

test_withheld_entry_with_null_demand_is_the_whole_order if {
	d := decide(all_cn, {"withheld": {{"order_id": "o-cn", "demand": null, "reason": "r"}}})
	d.actions == set()
	count(d.refused) == 3
}

test_withheld_demand_keeps_the_other_demands if {
	d := decide(all_cn, {"withheld": {{"order_id": "o-cn", "demand": "end_meeting", "reason": "court review"}}})
	d.actions == all_cn_granted - {end_granted("o-cn")}
	d.refused == {withheld("o-cn", "end_meeting", "court review")}
}

test_withheld_remove_participants_alone_keeps_participant_actions_of_other_demands if {
	# Ending the meeting removes those inside anyway: the participant
	# actions follow from any demand still enforced.
	d := decide(all_cn, {"withheld": {{"order_id": "o-cn", "demand": "remove_participants", "reason": "r"}}})
	d.actions == all_cn_granted
	d.refused == {withheld("o-cn", "remove_participants", "r")}
}

test_withholding_every_demand_withholds_participant_actions if {
	ext := {
		"withheld": {
			{"order_id": "o-cn", "demand": "remove_participants", "reason": "r"},
			{"order_id": "o-cn", "demand": "end_meeting", "reason": "r"},
		},
		"refusals": {{"order_id": "o-cn", "demand": "suspend_account", "code": "account_review", "reason": "r"}},
	}
	inp := with_joining(all_cn, person("j1", "CN"))
	d := decide(inp, ext)
	d.actions == set()
	{r.code | some r in d.refused} == {"withheld", "account_review"}
	admit(inp, ext).actions == set()
}

test_withheld_unknown_demand_does_not_keep_participant_actions if {
	# Unknown demands lead to nothing; withholding every known one
	# withholds the participant actions.
	o := cn_order(["remove_participants", "seize_recordings"])
	d := decide(preview(o, meeting(us_host, [person("p1", "CN")])), {"withheld": {{"order_id": "o-cn", "demand": "remove_participants", "reason": "r"}}})
	d.actions == set()
	{r.code | some r in d.refused} == {"unknown_demand", "withheld"}
}

test_withheld_entries_for_other_orders_or_demands_change_nothing if {
	ext := {"withheld": {
		{"order_id": "o-other", "reason": "r"},
		{"order_id": "o-cn", "demand": "seize_recordings", "reason": "r"},
	}}
	o := cn_order(["remove_participants", "end_meeting"])
	d := decide(preview(o, meeting(cn_host, [person("p1", "CN")])), ext)
	d == {"actions": {removed("o-cn", "p1", "CN"), end_granted("o-cn")}, "refused": set()}
}

test_withheld_standing_order_by_registry_id if {
	o := object.remove(cn_order(["remove_participants", "end_meeting"]), ["id"])
	inp := with_joining(standing(["CN-1", "CN-2"], meeting(us_host, [person("p1", "CN")])), person("j1", "CN"))
	d := {"actions": expand(geoscope.actions), "refused": geoscope.refused} with input as inp
		with data.authorities as authorities
		with data.orders as {"CN-1": o, "CN-2": o}
		with data.geoscope.extensions as {"withheld": {{"order_id": "CN-1", "reason": "r"}}}
	d.actions == {removed("CN-2", "p1", "CN"), denied("CN-2", "j1"), end_granted("CN-2")}
	d.refused == {
		withheld("CN-1", "remove_participants", "r"),
		withheld("CN-1", "end_meeting", "r"),
	}
}

test_withheld_refusal_is_added_to_the_default_refusals if {
	inp := preview(cn_order(["remove_participants", "end_meeting"]), meeting(cn_host, [person("p1", "CN"), person("p2", "HK")]))
	d := decide(inp, {"withheld": {{"order_id": "o-cn", "demand": "end_meeting", "reason": "r"}}})
	d.actions == {removed("o-cn", "p1", "CN")}
	d.refused == {end_refused("o-cn", 1), withheld("o-cn", "end_meeting", "r")}
}

test_withheld_order_of_unknown_authority_is_refused_for_both_reasons if {
	o := new_order("o-x", "xx.unknown", ["end_meeting"], ["m1"], [])
	d := decide(preview(o, meeting(cn_host, [person("p1", "CN")])), {"withheld": {{"order_id": "o-x", "reason": "r"}}})
	d.actions == set()
	{r.code | some r in d.refused} == {"unknown_authority", "withheld"}
}

test_withheld_reason_defaults_when_missing_or_blank if {
	every w in [{"order_id": "o-cn"}, {"order_id": "o-cn", "reason": "  "}, {"order_id": "o-cn", "reason": 7}] {
		d := decide(preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN")])), {"withheld": {w}})
		d.actions == set()
		d.refused == {withheld("o-cn", "end_meeting", "withheld by the operator's policy")}
	}
}

test_malformed_withheld_entries_withhold_nothing if {
	# Nothing names an order to withhold; extension_problems reports them.
	every w in ["o-cn", ["o-cn"], {"order": "o-cn"}, {"order_id": ["o-cn"]}, {"order_id": "o-cn", "demand": 3}] {
		d := decide(preview(cn_order(["end_meeting"]), meeting(cn_host, [person("p1", "CN")])), {"withheld": {w}})
		d == {"actions": {removed("o-cn", "p1", "CN"), end_granted("o-cn")}, "refused": set()}
	}
}

test_covers if {
	geoscope.covers({"order_id": "o"}, "end_meeting")
	geoscope.covers({"order_id": "o", "demand": null}, "end_meeting")
	geoscope.covers({"order_id": "o", "demand": "end_meeting"}, "end_meeting")
	not geoscope.covers({"order_id": "o", "demand": "suspend_account"}, "end_meeting")
	not geoscope.covers("o", "end_meeting")
}

test_order_withheld if {
	inp := preview(cn_order(["remove_participants", "end_meeting"]), meeting(us_host, []))
	not geoscope.order_withheld("o-cn") with input as inp with data.geoscope.extensions as {}
	not geoscope.order_withheld("o-cn") with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn", "demand": "end_meeting"}}}
	geoscope.order_withheld("o-cn") with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn", "demand": "end_meeting"}}, "refusals": {{"order_id": "o-cn", "demand": "remove_participants", "code": "x"}}}
	geoscope.order_withheld("o-cn") with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn"}}}
}

test_withheld_demands_are_order_demand_pairs if {
	inp := preview(cn_order(["remove_participants", "end_meeting"]), meeting(us_host, []))
	w := geoscope.withheld_demands with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn"}}}
	w == {["o-cn", "remove_participants"], ["o-cn", "end_meeting"]}
}

# ---------------------------------------------------------------------------
# refusals: the operator's own refusal codes
# ---------------------------------------------------------------------------

operator_refusal(oid, demand, code, reason) := {
	"order_id": oid,
	"demand": demand,
	"code": code,
	"reason": reason,
	"affected_outside": 0,
}

test_operator_refusal_has_its_own_code_and_withholds_the_demand if {
	ext := {"refusals": {{"order_id": "o-cn", "demand": "suspend_account", "code": "press_freedom_review", "reason": "the account belongs to a newsroom"}}}
	d := decide(all_cn, ext)
	d.actions == all_cn_granted - {suspend_granted("o-cn", "acct-cn")}
	d.refused == {operator_refusal("o-cn", "suspend_account", "press_freedom_review", "the account belongs to a newsroom")}
}

test_operator_refusal_without_demand_covers_every_demand if {
	d := decide(all_cn, {"refusals": {{"order_id": "o-cn", "code": "court_injunction", "reason": "r"}}})
	d.actions == set()
	d.refused == {
		operator_refusal("o-cn", "remove_participants", "court_injunction", "r"),
		operator_refusal("o-cn", "end_meeting", "court_injunction", "r"),
		operator_refusal("o-cn", "suspend_account", "court_injunction", "r"),
	}
}

test_operator_refusal_reason_defaults_when_missing if {
	d := decide(all_cn, {"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": "c1"}}})
	d.refused == {operator_refusal("o-cn", "end_meeting", "c1", "refused by the operator's policy")}
}

test_operator_refusal_code_withheld_is_accepted if {
	d := decide(all_cn, {"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": "withheld", "reason": "r"}}})
	d.refused == {withheld("o-cn", "end_meeting", "r")}
}

malformed_note(code_json) := sprintf("r (refusal code %s is not a lower_snake_case code of the operator's own; reported as withheld)", [code_json])

test_malformed_operator_code_still_withholds_as_withheld if {
	every code in ["PressFreedom", "press freedom", "press-freedom", "1st_amendment", "_x", "x_", "a__b", "", concat("", array.concat(["x"], [c | some _ in numbers.range(1, 64); c := "y"]))] {
		d := decide(all_cn, {"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": code, "reason": "r"}}})
		d.actions == all_cn_granted - {end_granted("o-cn")}
		d.refused == {withheld("o-cn", "end_meeting", malformed_note(json.marshal(code)))}
	}
}

test_operator_refusal_may_not_claim_a_builtin_code if {
	every code in ["affects_outside", "no_participants", "unknown_authority", "no_legal_basis", "not_targeted", "unknown_demand", "exempt"] {
		d := decide(all_cn, {"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": code, "reason": "r"}}})
		d.actions == all_cn_granted - {end_granted("o-cn")}
		d.refused == {withheld("o-cn", "end_meeting", malformed_note(json.marshal(code)))}
	}
}

test_missing_or_non_string_operator_code_still_withholds if {
	d1 := decide(all_cn, {"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "reason": "r"}}})
	d1.refused == {withheld("o-cn", "end_meeting", malformed_note("null"))}
	d2 := decide(all_cn, {"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": 451, "reason": "r"}}})
	d2.refused == {withheld("o-cn", "end_meeting", malformed_note("451"))}
	d2.actions == all_cn_granted - {end_granted("o-cn")}
}

test_valid_operator_code if {
	geoscope.valid_operator_code("press_review")
	geoscope.valid_operator_code("x")
	geoscope.valid_operator_code("rule_2b")
	geoscope.valid_operator_code("withheld")
	geoscope.valid_operator_code(concat("", [c | some _ in numbers.range(1, 64); c := "a"]))
	not geoscope.valid_operator_code(concat("", [c | some _ in numbers.range(1, 65); c := "a"]))
	not geoscope.valid_operator_code("Press_review")
	not geoscope.valid_operator_code("press__review")
	not geoscope.valid_operator_code("affects_outside")
	not geoscope.valid_operator_code(null)
}

test_operator_refusals_and_withheld_entries_merge if {
	ext := {
		"withheld": {{"order_id": "o-cn", "demand": "end_meeting", "reason": "a"}},
		"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": "b_code", "reason": "b"}},
	}
	d := decide(all_cn, ext)
	d.actions == all_cn_granted - {end_granted("o-cn")}
	d.refused == {withheld("o-cn", "end_meeting", "a"), operator_refusal("o-cn", "end_meeting", "b_code", "b")}
}

# ---------------------------------------------------------------------------
# All three together
# ---------------------------------------------------------------------------

test_extensions_only_withhold if {
	# Whatever the extensions say, every action is one the default policy
	# would take without them.
	inp := with_joining(all_cn, person("j1", "CN"))
	without := decide(inp, {})
	every ext in [
		{"exempt": {"p1", "acct-cn", "j1", "nobody"}},
		{"withheld": {{"order_id": "o-cn"}}},
		{"refusals": {{"order_id": "o-cn", "demand": "suspend_account", "code": "x"}}},
		{"exempt": {"p2"}, "withheld": {{"order_id": "o-cn", "demand": "end_meeting"}}, "refusals": {{"order_id": "o-cn", "code": "BAD"}}},
	] {
		d := decide(inp, ext)
		every a in d.actions {
			a in without.actions
		}
		every r in without.refused {
			r in d.refused
		}
	}
}

# ---------------------------------------------------------------------------
# extension_problems: malformed entries, for extension tests to assert on
# ---------------------------------------------------------------------------

problems(ext) := p if {
	p := geoscope.extension_problems with input as all_cn with data.geoscope.extensions as ext
}

test_no_problems_without_extensions if {
	problems({}) == set()
}

test_no_problems_for_well_formed_entries if {
	problems({
		"exempt": {"p1", "acct-cn"},
		"withheld": {{"order_id": "o-cn", "reason": "r"}, {"order_id": "o-cn", "demand": "end_meeting", "reason": "r"}},
		"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "code": "court_review", "reason": "r"}, {"order_id": "o-cn", "code": "court_review", "reason": "r"}},
	}) == set()
}

test_problem_exempt_entry_not_a_string if {
	problems({"exempt": {"p1", 7}}) == {"exempt: 7 is not a participant id (a string)"}
}

test_problem_withheld_entry_not_an_object if {
	problems({"withheld": {"o-cn"}}) == {`withheld "o-cn": must be an object`}
}

test_problem_withheld_entry_with_misspelt_key if {
	problems({"withheld": {{"order": "o-cn", "reason": "r"}}}) == {
		`withheld {"order":"o-cn","reason":"r"}: unknown key "order"; allowed: demand, order_id, reason`,
		`withheld {"order":"o-cn","reason":"r"}: order_id must be a non-empty string`,
	}
}

test_problem_withheld_entry_with_unknown_demand_and_no_reason if {
	problems({"withheld": {{"order_id": "o-cn", "demand": "end_meetings"}}}) == {
		`withheld {"demand":"end_meetings","order_id":"o-cn"}: demand must be one of end_meeting, remove_participants, suspend_account`,
		`withheld {"demand":"end_meetings","order_id":"o-cn"}: reason must be a non-empty string`,
	}
}

test_problem_refusal_with_malformed_code if {
	problems({"refusals": {{"order_id": "o-cn", "code": "PressReview", "reason": "r"}}}) == {`refusals {"code":"PressReview","order_id":"o-cn","reason":"r"}: code must be lower_snake_case, at most 64 bytes, and not a built-in code (the demand is withheld under code "withheld")`}
}

test_problem_quotes_a_large_entry_by_its_start if {
	entry := {"order": "o-cn", "reason": "r", "roster": [{"id": sprintf("p%d", [i])} | some i in numbers.range(1, 1000)]}
	p := problems({"withheld": {entry}, "exempt": {{"roster": entry.roster}}})
	count(p) == 4
	every text in p {
		count(text) < 200
		contains(text, `…`)
	}
	`withheld {"order":"o-cn","reason":"r","roster":[{"id":"p1"},{"id":"p2"},{…: unknown key "order"; allowed: demand, order_id, reason` in p
}

test_problem_refusal_entry_not_an_object if {
	problems({"refusals": {"o-cn"}}) == {`refusals "o-cn": must be an object`}
}

test_problem_blank_order_id_and_reason if {
	problems({"withheld": {{"order_id": " ", "reason": "\t"}}}) == {
		`withheld {"order_id":" ","reason":"\t"}: order_id must be a non-empty string`,
		`withheld {"order_id":" ","reason":"\t"}: reason must be a non-empty string`,
	}
}

# An entry of 64 characters is quoted whole; one of 65 by its first 64.
test_problem_quotes_an_entry_of_64_characters_whole if {
	at := {"order": "o-cn", "reason": concat("", ["r" | some _ in numbers.range(1, 36)])}
	count(json.marshal(at)) == 64
	problems({"withheld": {at}}) == {
		sprintf("withheld %s: unknown key \"order\"; allowed: demand, order_id, reason", [json.marshal(at)]),
		sprintf("withheld %s: order_id must be a non-empty string", [json.marshal(at)]),
	}
	over := {"order": "o-cn", "reason": concat("", ["r" | some _ in numbers.range(1, 37)])}
	count(json.marshal(over)) == 65
	cut := concat("", [substring(json.marshal(over), 0, 64), "…"])
	problems({"withheld": {over}}) == {
		sprintf("withheld %s: unknown key \"order\"; allowed: demand, order_id, reason", [cut]),
		sprintf("withheld %s: order_id must be a non-empty string", [cut]),
	}
}

test_problem_refusal_without_code if {
	problems({"refusals": {{"order_id": "o-cn", "demand": "end_meeting", "reason": "r"}}}) == {`refusals {"demand":"end_meeting","order_id":"o-cn","reason":"r"}: code must be lower_snake_case, at most 64 bytes, and not a built-in code (the demand is withheld under code "withheld")`}
}

# ---------------------------------------------------------------------------
# Helpers of the extension points
# ---------------------------------------------------------------------------

test_covered_pairs_only_for_orders_under_evaluation_and_demands_made if {
	inp := preview(cn_order(["remove_participants", "end_meeting"]), meeting(us_host, []))
	geoscope.covered({"order_id": "o-cn"}) == {["o-cn", "remove_participants"], ["o-cn", "end_meeting"]} with input as inp
	geoscope.covered({"order_id": "o-cn", "demand": "end_meeting"}) == {["o-cn", "end_meeting"]} with input as inp
	geoscope.covered({"order_id": "o-cn", "demand": "suspend_account"}) == set() with input as inp
	geoscope.covered({"order_id": "o-other"}) == set() with input as inp
	geoscope.covered({"order": "o-cn"}) == set() with input as inp
}

test_entry_reason if {
	geoscope.entry_reason({"reason": "r"}, "fallback") == "r"
	geoscope.entry_reason({"reason": ""}, "fallback") == "fallback"
	geoscope.entry_reason({"reason": ["r"]}, "fallback") == "fallback"
	geoscope.entry_reason({}, "fallback") == "fallback"
}

test_operator_code_and_reason if {
	geoscope.operator_code({"code": "court_review"}) == "court_review"
	geoscope.operator_code({"code": "Court review"}) == "withheld"
	geoscope.operator_code({}) == "withheld"
	geoscope.operator_reason({"code": "court_review", "reason": "r"}) == "r"
	geoscope.operator_reason({"code": "court_review"}) == "refused by the operator's policy"
	geoscope.operator_reason({"code": "Court review", "reason": "r"}) == "r (refusal code \"Court review\" is not a lower_snake_case code of the operator's own; reported as withheld)"
	geoscope.code_text({"code": "x"}) == "\"x\""
	geoscope.code_text({}) == "null"
}

test_extension_refusals_are_the_withheld_and_operator_entries if {
	inp := preview(cn_order(["end_meeting", "suspend_account"]), meeting(us_host, []))
	r := geoscope.extension_refusals with input as inp
		with data.geoscope.extensions as {"withheld": {{"order_id": "o-cn", "demand": "end_meeting", "reason": "a"}}, "refusals": {{"order_id": "o-cn", "demand": "suspend_account", "code": "b_code", "reason": "b"}}}
	r == {withheld("o-cn", "end_meeting", "a"), operator_refusal("o-cn", "suspend_account", "b_code", "b")}
}
