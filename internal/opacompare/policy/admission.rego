# METADATA
# title: Join-time admission for stock OPA (the side-by-side benchmark)
# description: |
#   The question geoscope's POST /v1/admission answers, written for stock
#   OPA the way an expert would, so that `make bench-vs-opa` compares the
#   two on the same work:
#
#   - the caller resolves the joiner's country (input.participant.country)
#     and OPA never sees an address;
#   - the registry is the same data (data.orders, data.authorities) plus an
#     index shipped as data and built when the registry is published:
#     data.index.meetings[meeting id] and data.index.accounts[account id]
#     list the ids of the orders that target them, so no query scans the
#     orders;
#   - the answer carries what geoscope's does: allow, the deny_join actions
#     (order, jurisdiction, located country, reason) and the ids of the
#     orders that were evaluated.
#
#   It has no ledger, no guard and no decision log: it is the floor of
#   answering the question with OPA's server.
package bench

demands := {"remove_participants", "end_meeting", "suspend_account"}

reason := "located inside the jurisdiction of the authority that issued the order"

# Orders targeting the meeting, or its host account.
standing contains id if {
	some id in data.index.meetings[input.meeting.id]
}

standing contains id if {
	input.meeting.host.account_id != ""
	some id in data.index.accounts[input.meeting.host.account_id]
}

denials contains action if {
	some id in standing
	order := data.orders[id]
	jurisdiction := data.authorities[order.authority].jurisdiction
	input.participant.country in jurisdiction
	trim_space(order.legal_basis) != ""
	makes_known_demand(order)
	action := {
		"type": "deny_join",
		"meeting_id": input.meeting.id,
		"participant_id": input.participant.id,
		"order_id": id,
		"jurisdiction": jurisdiction,
		"country": input.participant.country,
		"reason": reason,
	}
}

makes_known_demand(order) if {
	some d in order.demands
	d in demands
}

# METADATA
# entrypoint: true
admission := {
	"allow": count(denials) == 0,
	"actions": denials,
	"order_ids": sort(standing),
}
