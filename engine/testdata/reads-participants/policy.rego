# A policy that reads one object per participant (input.meeting.participants)
# and tries to act on what is not a location: it removes everyone whose
# attributes or account claim mainland China, and everyone located by
# phone. Only people located inside may survive the guard.
package geoscope

order_id := id if {
	some id in input.standing_orders
}

decision := {"actions": actions, "refused": []}

actions contains {
	"type": "remove_participant",
	"participant_id": p.id,
	"order_id": order_id,
	"reason": "claims CN",
} if {
	some p in input.meeting.participants
	claims_cn(p)
}

actions contains {
	"type": "remove_participant",
	"participant_id": p.id,
	"order_id": order_id,
	"located_by": p.located_by,
	"reason": "located by phone",
} if {
	some p in input.meeting.participants
	p.located_by == "phone"
}

claims_cn(p) if p.attributes.country == "CN"

claims_cn(p) if p.account_country == "CN"
