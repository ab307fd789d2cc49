# METADATA
# title: geoscope default enforcement policy
# description: |
#   Decides what to do with an authority's demand against a meeting or an
#   account. Enforcement is scoped to participants located inside the
#   authority's jurisdiction; meeting-wide and account-level demands are
#   granted only when nobody outside the jurisdiction would be affected.
#
#   The engine prepares the input: every IP address is replaced by the
#   located country ("country", absent when the location is unknown), and
#   "standing_orders" lists the registry orders that target the meeting or
#   its host account. See docs/policy.md for the full input contract.
#
#   The Go guard re-checks every action this policy returns, so a mistake
#   here can withhold enforcement but can never extend it past the
#   jurisdiction.
package geoscope

# The demand vocabulary.
demands := {"remove_participants", "end_meeting", "suspend_account"}

# METADATA
# title: Decision
# description: The actions to carry out and the demands refused.
# entrypoint: true
decision := {"actions": actions, "refused": refused}

actions := participant_actions | meeting_actions

# Orders under evaluation, by id: the order submitted for preview, or else
# the standing orders the engine selected from the registry.
orders[id] := input.order if {
	id := input.order.id
}

orders[id] := data.orders[id] if {
	not input.order
	some id in input.standing_orders
}

# Orders that may lead to enforcement, mapped to their authority's
# jurisdiction. The jurisdiction comes from the registry, never the order.
actionable[id] := data.authorities[o.authority].jurisdiction if {
	some id, o in orders
	admissible(o)
	makes_known_demand(o)
}

# An order is admissible when its authority is registered with a
# jurisdiction, it states a legal basis, and it targets this meeting.
admissible(o) if {
	registered(o)
	has_legal_basis(o)
	targets_meeting(o)
}

# An authority without a jurisdiction cannot scope anything, so it is
# treated like an unknown one.
registered(o) if count(data.authorities[o.authority].jurisdiction) > 0

makes_known_demand(o) if {
	some d in o.demands
	d in demands
}

has_legal_basis(o) if trim_space(o.legal_basis) != ""

# A meeting is targeted by naming it, or by naming its host account (which
# covers every meeting of the account, including future ones).
targets_meeting(o) if input.meeting.id in o.targets.meetings

targets_meeting(o) if {
	input.meeting.host.account_id != ""
	input.meeting.host.account_id in o.targets.accounts
}

# Everyone connected to the meeting: the participants and, when its address
# was given, the host.
connected := array.concat(input.meeting.participants, host_connection)

# Everyone a meeting-wide or account action would reach right now: those
# connected and the participant asking to join.
affected := array.concat(connected, joining)

joining := [input.joining] if input.joining

else := []

host_connection := [object.union(input.meeting.host, {"id": input.meeting.host.account_id, "host": true})] if {
	input.meeting.host.connected
} else := []

# A person is inside only when located inside. An unknown location has no
# "country" and so is never inside.
inside(person, jurisdiction) if person.country in jurisdiction

outside_count[id] := count([p | some p in affected; not inside(p, j)]) if {
	some id, j in actionable
}

everyone_inside(j) if {
	every p in affected {
		inside(p, j)
	}
}

account_inside(j) if input.meeting.host.account_country in j

scope_reason[id] := sprintf("order %s: located in %s, inside the jurisdiction of %s", [id, concat(", ", j), authority_name(id)]) if {
	some id, j in actionable
}

authority_name(id) := object.get(data.authorities[orders[id].authority], "name", orders[id].authority)

# Rule 3: every demand against a targeted meeting reaches the participants
# located inside the jurisdiction, and nobody else.
participant_actions contains action if {
	some id, j in actionable
	some p in connected
	inside(p, j)
	action := {
		"type": "remove_participant",
		"meeting_id": input.meeting.id,
		"participant_id": p.id,
		"host": object.get(p, "host", false),
		"order_id": id,
		"jurisdiction": j,
		"country": p.country,
		"reason": scope_reason[id],
	}
}

participant_actions contains action if {
	some id, j in actionable
	inside(input.joining, j)
	action := {
		"type": "deny_join",
		"meeting_id": input.meeting.id,
		"participant_id": input.joining.id,
		"order_id": id,
		"jurisdiction": j,
		"country": input.joining.country,
		"reason": scope_reason[id],
	}
}

# Rule 4: a meeting may be ended only when it has participants and everyone
# connected is inside.
end_meeting_granted(j) if {
	count(input.meeting.participants) > 0
	everyone_inside(j)
}

meeting_actions contains action if {
	some id, j in actionable
	"end_meeting" in orders[id].demands
	end_meeting_granted(j)
	action := {
		"type": "end_meeting",
		"meeting_id": input.meeting.id,
		"order_id": id,
		"jurisdiction": j,
		"reason": sprintf("order %s: every user connected to the meeting is located in %s", [id, concat(", ", j)]),
	}
}

# Rule 5: an account may be suspended only when it is registered inside and
# everyone connected (host included) is inside.
suspend_account_granted(j) if {
	account_inside(j)
	everyone_inside(j)
}

meeting_actions contains action if {
	some id, j in actionable
	"suspend_account" in orders[id].demands
	suspend_account_granted(j)
	action := {
		"type": "suspend_account",
		"meeting_id": input.meeting.id,
		"account_id": input.meeting.host.account_id,
		"order_id": id,
		"jurisdiction": j,
		"country": input.meeting.host.account_country,
		"reason": sprintf("order %s: the account is registered in %s and every connected user is located in %s", [id, input.meeting.host.account_country, concat(", ", j)]),
	}
}

refusal(id, demand, code, reason, affected) := {
	"order_id": id,
	"demand": demand,
	"code": code,
	"reason": reason,
	"affected_outside": affected,
}

# Rule 2: an unknown authority or a missing legal basis refuses everything.
refused contains refusal(id, d, "unknown_authority", reason, 0) if {
	some id, o in orders
	not registered(o)
	some d in o.demands
	reason := unregistered_reason(object.get(o, "authority", ""))
}

unregistered_reason(name) := sprintf("authority %q is not in the registry", [name]) if {
	not data.authorities[name]
} else := sprintf("authority %q has no jurisdiction in the registry", [name])

refused contains refusal(id, d, "no_legal_basis", "the order states no legal basis", 0) if {
	some id, o in orders
	registered(o)
	not has_legal_basis(o)
	some d in o.demands
}

refused contains refusal(id, d, "not_targeted", reason, 0) if {
	some id, o in orders
	registered(o)
	has_legal_basis(o)
	not targets_meeting(o)
	some d in o.demands
	reason := sprintf("the order targets neither meeting %q nor account %q", [input.meeting.id, input.meeting.host.account_id])
}

refused contains refusal(id, d, "unknown_demand", reason, 0) if {
	some id, o in orders
	admissible(o)
	some d in o.demands
	not d in demands
	reason := sprintf("%q is not a demand geoscope knows", [d])
}

refused contains refusal(id, "end_meeting", "no_participants", reason, outside_count[id]) if {
	some id, j in actionable
	"end_meeting" in orders[id].demands
	count(input.meeting.participants) == 0
	reason := sprintf("the meeting has no participants, so ending it cannot be shown to affect only users in %s; participants located there are denied admission instead", [concat(", ", j)])
}

refused contains refusal(id, "end_meeting", "affects_outside", reason, n) if {
	some id, j in actionable
	"end_meeting" in orders[id].demands
	count(input.meeting.participants) > 0
	not everyone_inside(j)
	n := outside_count[id]
	reason := sprintf("ending the meeting would affect %d users not located in %s; narrowed to the participants located there", [n, concat(", ", j)])
}

refused contains refusal(id, "suspend_account", "affects_outside", reason, n) if {
	some id, j in actionable
	"suspend_account" in orders[id].demands
	not suspend_account_granted(j)
	n := outside_count[id] + account_holder_outside_uncounted(j)
	reason := sprintf("suspending the account would affect users outside %s (%s); narrowed to participants located there, in every meeting of the account", [concat(", ", j), suspend_obstacle(j, outside_count[id])])
}

# The account holder is one person: counted once, whether as a connected
# host outside or as an account registered outside.
account_holder_outside_uncounted(j) := 1 if {
	not account_inside(j)
	not host_connected_outside(j)
} else := 0

host_connected_outside(j) if {
	some p in host_connection
	not inside(p, j)
}

suspend_obstacle(j, _) := sprintf("the account is registered in %s", [input.meeting.host.account_country]) if {
	input.meeting.host.account_country
	not account_inside(j)
}

suspend_obstacle(j, _) := "the account's country is unknown" if {
	not input.meeting.host.account_country
	not account_inside(j)
}

suspend_obstacle(j, n) := sprintf("%d users connected or joining are not located there", [n]) if {
	account_inside(j)
}
