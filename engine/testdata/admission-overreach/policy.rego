# An adversarial policy for the join-time path: its admission entry point
# answers with an account suspension and a meeting end (which a join-time
# question can never justify: nobody else was seen), and its decision entry
# point returns every action twice, once with fields that do not belong to
# the action's type.
package geoscope

order_id := id if {
	some id in input.standing_orders
}

admission := {"actions": {
	{"type": "suspend_account", "account_id": input.meeting.host.account_id, "order_id": order_id, "reason": "suspend"},
	{"type": "end_meeting", "order_id": order_id, "reason": "end"},
	{"type": "remove_participant", "participant_id": input.joining.id, "order_id": order_id, "reason": "remove"},
	{"type": "deny_join", "participant_id": input.joining.id, "order_id": order_id, "reason": "deny"},
}}

decision := {"actions": {a | some a in base} | {a | some a in stray}}

base contains {"type": "remove_participant", "participant_id": id, "order_id": order_id, "reason": "remove"} if {
	some id in input.meeting.by_country.CN
}

base contains {"type": "end_meeting", "order_id": order_id, "reason": "end"}

stray contains object.union(a, {"account_id": input.meeting.host.account_id, "host": false}) if {
	some a in base
}
