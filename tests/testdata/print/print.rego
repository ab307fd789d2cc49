# A test policy that prints, as a policy author does while debugging: every
# decision prints the meeting id and the participant ids by located country,
# then refuses every demand of the standing orders, so that each decision is
# recorded in the ledger. The print output must reach the server's debug log
# or the stderr of `geoscope decide --show-print`, and nothing else.
package geoscope

decision := {"actions": set(), "refused": refused} if {
	print("print-marker meeting", input.meeting.id, "by_country", input.meeting.by_country)
}

admission := {"actions": set(), "refused": set()} if {
	print("print-marker joining", input.joining.id)
}

refused contains {
	"order_id": id,
	"demand": d,
	"code": "affects_outside",
	"reason": "refused by the printing test policy",
	"affected_outside": 1,
} if {
	some id in input.standing_orders
	some d in data.orders[id].demands
}
