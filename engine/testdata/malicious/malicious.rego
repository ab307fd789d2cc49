# A deliberately malicious policy for the guard's tests: it tries every way
# of acting past the jurisdiction. None of its outside actions may survive.
package geoscope

order_id := id if {
	some id in input.standing_orders
} else := input.order.id

decision := {"actions": actions, "refused": []}

# Remove everyone, whatever their location, and claim they are in CN.
actions contains {
	"type": "remove_participant",
	"meeting_id": input.meeting.id,
	"participant_id": pid,
	"order_id": order_id,
	"jurisdiction": ["CN"],
	"reason": "remove everyone",
} if {
	some pid in everyone
}

# End the meeting and suspend the account regardless of who is affected.
actions contains {"type": "end_meeting", "meeting_id": input.meeting.id, "order_id": order_id, "reason": "end it"}

actions contains {
	"type": "suspend_account",
	"meeting_id": input.meeting.id,
	"account_id": input.meeting.host.account_id,
	"order_id": order_id,
	"reason": "suspend it",
}

# Widen the jurisdiction the registry gives.
actions contains {
	"type": "remove_participant",
	"participant_id": "p-hk",
	"order_id": order_id,
	"jurisdiction": ["CN", "HK"],
	"reason": "widen",
}

# Misstate a location.
actions contains {
	"type": "remove_participant",
	"participant_id": "p-us",
	"order_id": order_id,
	"country": "CN",
	"reason": "lie",
}

# Misstate how a person was located, or claim facts that are not strings:
# each is a claim no fact matches, not a claim left out.
actions contains {
	"type": "remove_participant",
	"participant_id": "p-cn",
	"order_id": order_id,
	"located_by": "phone",
	"reason": "lie about how",
}

actions contains {
	"type": "remove_participant",
	"participant_id": "p-cn",
	"order_id": order_id,
	"country": 7,
	"reason": "not a country",
}

actions contains {
	"type": "remove_participant",
	"participant_id": "p-cn",
	"order_id": order_id,
	"jurisdiction": "CN",
	"reason": "not a list",
}

# Cite an order that is not under evaluation, a person who is not there, an
# action type that does not exist, another meeting, another account.
actions contains {"type": "remove_participant", "participant_id": "p-cn", "order_id": "NOT-AN-ORDER", "reason": "x"}

actions contains {"type": "remove_participant", "participant_id": "ghost", "order_id": order_id, "reason": "x"}

actions contains {"type": "ban_forever", "participant_id": "p-cn", "order_id": order_id, "reason": "x"}

actions contains {"type": "remove_participant", "meeting_id": "other-meeting", "participant_id": "p-cn", "order_id": order_id, "reason": "x"}

actions contains {"type": "suspend_account", "account_id": "someone-else", "order_id": order_id, "reason": "x"}

# Put people's ids where names and facts go, and glue, quote or encode them
# into reasons: the guard blocks these, and what is stored of them (the
# ledger, decision logs) holds no id.
actions contains {
	"type": "remove_participant",
	"participant_id": pid,
	"order_id": order_id,
	"country": {"who": pid, "account": input.meeting.host.account_id},
	"jurisdiction": [pid],
	"subdivisions": [pid, "CN-11"],
	"reason": sprintf("%s-%s removed; ref case_%s; %v", [order_id, pid, input.meeting.host.account_id, {"who": pid}]),
} if {
	some pid in everyone
}

actions contains {"type": pid, "participant_id": pid, "order_id": pid, "country": pid, "located_by": pid, "reason": sprintf("%q", [pid])} if {
	some pid in everyone
}

actions contains {"type": "end_meeting", "meeting_id": input.meeting.host.account_id, "order_id": order_id, "reason": "x"}

actions contains {"type": sprintf("kick %s", [pid]), "participant_id": pid, "order_id": sprintf("x_%s", [pid]), "reason": "x"} if {
	some pid in everyone
}

actions contains {
	"type": "remove_participant",
	"meeting_id": sprintf("m-%s", [pid]),
	"participant_id": pid,
	"order_id": order_id,
	"reason": "x",
} if {
	some pid in everyone
}

actions contains {
	"type": "remove_participant",
	"participant_id": pid,
	"order_id": order_id,
	"country": json.marshal({"who": pid}),
	"located_by": sprintf("ip-%s", [pid]),
	"reason": "x",
} if {
	some pid in everyone
}

# Deny admission to a joining participant wherever they are.
actions contains {"type": "deny_join", "participant_id": input.joining.id, "order_id": order_id, "reason": "x"}

# Remove the host connection although it is outside.
actions contains {"type": "remove_participant", "participant_id": input.meeting.host.account_id, "host": true, "order_id": order_id, "reason": "x"}

# Not even an object.
actions contains "end everything"

# Every participant id, wherever located.
everyone contains id if {
	some ids in input.meeting.by_country
	some id in ids
}

everyone contains id if {
	some id in input.meeting.unlocated
}
