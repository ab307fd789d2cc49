package bench_test

import data.bench

registry := {
	"authorities": {"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}},
	"orders": {
		"ORD-1": {
			"authority": "cn.cac",
			"demands": ["end_meeting"],
			"targets": {"meetings": ["m-1"], "accounts": ["acct-1"]},
			"legal_basis": "test",
		},
		"ORD-2": {
			"authority": "cn.cac",
			"demands": ["end_meeting"],
			"targets": {"meetings": ["m-2"]},
			"legal_basis": " ",
		},
		"ORD-3": {
			"authority": "cn.cac",
			"demands": ["shout"],
			"targets": {"meetings": ["m-3"]},
			"legal_basis": "test",
		},
		"ORD-4": {
			"authority": "xx.unknown",
			"demands": ["end_meeting"],
			"targets": {"meetings": ["m-4"]},
			"legal_basis": "test",
		},
	},
	"index": {
		"meetings": {"m-1": ["ORD-1"], "m-2": ["ORD-2"], "m-3": ["ORD-3"], "m-4": ["ORD-4"]},
		"accounts": {"acct-1": ["ORD-1"]},
	},
}

joiner(meeting, account, country) := {
	"meeting": {"id": meeting, "host": {"account_id": account}},
	"participant": {"id": "p", "country": country},
}

test_denied_inside_the_jurisdiction if {
	a := bench.admission with input as joiner("m-1", "acct-x", "CN")
		with data.authorities as registry.authorities
		with data.orders as registry.orders
		with data.index as registry.index
	a.allow == false
	a.order_ids == ["ORD-1"]
	a.actions == {{
		"type": "deny_join",
		"meeting_id": "m-1",
		"participant_id": "p",
		"order_id": "ORD-1",
		"jurisdiction": ["CN"],
		"country": "CN",
		"reason": bench.reason,
	}}
}

test_targeted_through_the_host_account if {
	a := bench.admission with input as joiner("other", "acct-1", "CN")
		with data.authorities as registry.authorities
		with data.orders as registry.orders
		with data.index as registry.index
	a.allow == false
	a.order_ids == ["ORD-1"]
}

test_allowed_outside_the_jurisdiction if {
	a := bench.admission with input as joiner("m-1", "acct-1", "US")
		with data.authorities as registry.authorities
		with data.orders as registry.orders
		with data.index as registry.index
	a == {"allow": true, "actions": set(), "order_ids": ["ORD-1"]}
}

test_allowed_when_nothing_targets_the_meeting if {
	a := bench.admission with input as joiner("m-none", "acct-none", "CN")
		with data.authorities as registry.authorities
		with data.orders as registry.orders
		with data.index as registry.index
	a == {"allow": true, "actions": set(), "order_ids": []}
}

test_empty_account_targets_nothing if {
	a := bench.admission with input as joiner("m-none", "", "CN")
		with data.authorities as registry.authorities
		with data.orders as registry.orders
		with data.index as {"meetings": {}, "accounts": {"": ["ORD-1"]}}
	a.allow == true
	a.order_ids == []
}

test_no_denial_without_legal_basis_known_demand_or_authority if {
	every m in ["m-2", "m-3", "m-4"] {
		a := bench.admission with input as joiner(m, "acct-x", "CN")
			with data.authorities as registry.authorities
			with data.orders as registry.orders
			with data.index as registry.index
		a.allow == true
		count(a.order_ids) == 1
	}
}

test_unknown_location_is_never_denied if {
	a := bench.admission with input as {"meeting": {"id": "m-1", "host": {"account_id": "acct-1"}}, "participant": {"id": "p"}}
		with data.authorities as registry.authorities
		with data.orders as registry.orders
		with data.index as registry.index
	a.allow == true
}
