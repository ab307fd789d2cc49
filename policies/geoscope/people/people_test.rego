package geoscope.people_test

import data.geoscope.people

# people.everyone is typed from docs/schemas/input.json, where every field
# is listed; a literal object with fewer fields has another static type, so
# the tests compare ids, and objects by membership, rather than with ==,
# which `opa check --schema` would reject as never true.

host := {"id": "acct-1", "account_id": "acct-1", "role": "host", "account_country": "US", "connected": false}

p1 := {"id": "p1", "country": "CN", "located_by": "ip", "role": "co_host", "account_id": "acct-2", "attributes": {"team": "press"}}

p2 := {"id": "p2"}

joining := {"id": "j1", "country": "HK", "located_by": "phone"}

meeting(ps) := {
	"id": "m1",
	"host": host,
	"participant_count": count(ps),
	"by_country": {},
	"unlocated": [],
	"participants": ps,
}

same(got, want) if {
	count(got) == count(want)
	every x in want {
		x in got
	}
}

test_everyone_is_participants_host_and_joining if {
	e := people.everyone with input as {"meeting": meeting([p1, p2]), "joining": joining}
	same(e, {p1, p2, host, joining})
}

test_everyone_is_in_request_order_then_host_then_joining if {
	e := people.everyone with input as {"meeting": meeting([p2, p1]), "joining": joining}
	[p.id | some p in e] == ["p2", "p1", "acct-1", "j1"]
}

test_everyone_includes_the_host_when_not_connected if {
	e := people.everyone with input as {"meeting": meeting([])}
	same(e, {host})
}

test_everyone_without_joining_participant if {
	e := people.everyone with input as {"meeting": meeting([p2])}
	same(e, {p2, host})
}

test_everyone_is_empty_of_participants_when_the_engine_gives_none if {
	# The engine builds input.meeting.participants only when a reachable
	# rule reads it; this package does, so it is always given. Without it
	# the host and the joining participant are still there.
	m := object.remove(meeting([]), ["participants"])
	e := people.everyone with input as {"meeting": m, "joining": joining}
	same(e, {host, joining})
}
