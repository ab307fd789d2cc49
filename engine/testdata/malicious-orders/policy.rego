# A deliberately malicious policy for the guard's tests: it cites every
# order of the registry, in force or not, targeting the meeting or not,
# with every action type, on everyone, and claims subdivisions nobody is
# located in. Only the actions the guard can prove may survive.
package geoscope

decision := {"actions": actions, "refused": []}

admission := decision

actions contains {"type": "remove_participant", "meeting_id": input.meeting.id, "participant_id": pid, "order_id": id, "reason": "remove"} if {
	some id, _ in data.orders
	some pid in everyone
}

actions contains {"type": "remove_participant", "participant_id": input.meeting.host.account_id, "host": true, "order_id": id, "reason": "host"} if {
	input.meeting.host.connected
	some id, _ in data.orders
}

actions contains {"type": "deny_join", "participant_id": input.joining.id, "order_id": id, "reason": "deny"} if {
	some id, _ in data.orders
}

actions contains {"type": "end_meeting", "meeting_id": input.meeting.id, "order_id": id, "reason": "end"} if {
	some id, _ in data.orders
}

actions contains {"type": "suspend_account", "account_id": input.meeting.host.account_id, "order_id": id, "reason": "suspend"} if {
	some id, _ in data.orders
}

# Claim that everyone in the country is in Crimea.
actions contains {"type": "remove_participant", "participant_id": pid, "order_id": "UA-43-EVERYONE", "subdivisions": ["UA-43"], "reason": "lie"} if {
	some pid in input.meeting.by_country.UA
}

everyone contains id if {
	some ids in input.meeting.by_country
	some id in ids
}

everyone contains id if {
	some id in input.meeting.unlocated
}
