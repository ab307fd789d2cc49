package geoscope.extensions_test

import data.geoscope

test_acts_on_nothing if {
	d := geoscope.decision with input as {
		"meeting": {"id": "m1", "host": {"account_id": "a1"}, "participants": [{"id": "p1", "location": {"country": "CN"}}]},
		"standing_orders": ["o1"],
	}
		with data.authorities as {"cn.cac": {"name": "CAC", "jurisdiction": ["CN"]}}
		with data.orders as {"o1": {"authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m1"]}, "legal_basis": "letter"}}
	count(d.actions) == 0
}
