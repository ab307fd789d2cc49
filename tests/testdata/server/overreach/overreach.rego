# A test policy that overreaches: for every order under evaluation it asks to
# remove every participant, wherever located, citing the registry's
# jurisdiction, and refuses every demand of the order. The guard must keep
# the removals of participants inside the jurisdiction and block the others
# (outside_jurisdiction), so a server running it produces actions, refusals
# and guard blocks at once: the server end-to-end tests read the metrics.
package geoscope

orders contains id if some id in input.standing_orders

orders contains input.order.id if input.order

order(id) := input.order if input.order.id == id

order(id) := data.orders[id] if not input.order

decision := {"actions": actions, "refused": refused}

actions contains {
	"type": "remove_participant",
	"meeting_id": input.meeting.id,
	"participant_id": pid,
	"order_id": id,
	"jurisdiction": data.authorities[order(id).authority].jurisdiction,
	"reason": "remove everyone (test policy)",
} if {
	some id in orders
	some pid in everyone
}

refused contains {
	"order_id": id,
	"demand": d,
	"code": "affects_outside",
	"reason": "refused by the test policy",
	"affected_outside": 1,
} if {
	some id in orders
	some d in order(id).demands
}

# Every participant id, wherever located.
everyone contains id if {
	some ids in input.meeting.by_country
	some id in ids
}

everyone contains id if {
	some id in input.meeting.unlocated
}
