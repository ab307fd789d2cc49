# METADATA
# title: geoscope default enforcement policy
# description: |
#   Decides what to do with an authority's demand against a meeting or an
#   account. Enforcement is scoped to participants located inside the
#   authority's jurisdiction; meeting-wide and account-level demands are
#   granted only when nobody outside the jurisdiction would be affected.
#
#   The engine prepares the input (docs/policy.md has the full contract):
#   every IP address is replaced by the located country ("country", absent
#   when the location is unknown) and, with a GeoIP City database, the
#   subdivisions it is located in ("subdivisions", ISO 3166-2); "by_country"
#   and "by_subdivision" group participant ids by them; "standing_orders"
#   lists the registry orders in force that target the meeting, its host
#   account or every meeting (the engine leaves out orders not in force).
#
#   Rules work on countries, not people: participants are removed in one
#   action per order and country ("participant_ids"), which the engine
#   expands, so evaluation cost does not grow with the size of the meeting.
#   A jurisdiction may list subdivisions beside countries ("UA-43"): the
#   participants located in those (and not in a listed country) are removed
#   in one more action per order.
#
#   Operators extend it without editing it: rules of their own in package
#   geoscope.extensions (a file added to the bundle) name people never acted
#   on and demands withheld or refused. Extensions can only withhold
#   enforcement; see "Extension points" below and docs/policy.md.
#
#   The Go guard re-checks every action this policy returns, so a mistake
#   here can withhold enforcement but can never extend it past the
#   jurisdiction.
#
#   With `opa check --strict --schema docs/schemas`, every reference to the
#   input in this package and the packages below it (extensions included)
#   is type-checked against docs/schemas/input.json, so a misspelt field is
#   a compile error instead of a rule that never holds. (OPA types only an
#   object's listed properties; the registry documents are keyed by id, so
#   their schemas give the type checker little more than "object".)
# scope: subpackages
# schemas:
#   - input: schema.input
#   - data.authorities: schema.registry.authorities
#   - data.orders: schema.registry.orders
package geoscope

# The demand vocabulary.
demands := {"remove_participants", "end_meeting", "suspend_account"}

# METADATA
# title: Decision
# description: The actions to carry out and the demands refused.
# entrypoint: true
decision := {"actions": actions, "refused": refused}

# METADATA
# title: Admission
# description: |
#   The join-time question alone: may input.joining join? Only deny_join
#   actions are computed; the meeting-wide demands are decided when the
#   roster is evaluated.
# entrypoint: true
admission := {"actions": denials, "refused": set()}

actions := (removals | denials) | meeting_actions

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
actionable[id] := j if {
	some id, o in orders
	j := data.authorities[o.authority].jurisdiction
	count(j) > 0
	has_legal_basis(o)
	targets_meeting(o)
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

has_legal_basis(o) if trim_space(o.legal_basis) != ""

makes_known_demand(o) if {
	some d in o.demands
	d in demands
}

# A meeting is targeted by naming it, by naming its host account (which
# covers every meeting of the account, including future ones), or by a
# service-wide order, which targets every meeting.
targets_meeting(o) if input.meeting.id in o.targets.meetings

targets_meeting(o) if {
	input.meeting.host.account_id != ""
	input.meeting.host.account_id in o.targets.accounts
}

targets_meeting(o) if service_wide(o)

# A service-wide order applies to every meeting; only participant actions
# (removals, deny_join) follow from it, never end_meeting or
# suspend_account (the registry validation refuses such demands in one).
service_wide(o) if o.targets.all_meetings == true

# A person is inside only when located inside: in a country of the
# jurisdiction, or in one of its subdivisions. An unknown location has no
# "country" (and no "subdivisions") and so is never inside.
inside(person, jurisdiction) if person.country in jurisdiction

inside(person, jurisdiction) if {
	some s in person.subdivisions
	s in jurisdiction
}

# Users a meeting-wide or account action would reach right now and who are
# not located inside: participants, the connected host, and the participant
# asking to join.
outside_count[id] := (((input.meeting.participant_count - located_inside(j)) - count(subdivision_inside[id])) + host_outside(j)) + joining_outside(j) if {
	some id, j in actionable
}

located_inside(j) := sum([count(input.meeting.by_country[c]) | some c in j])

# The participants inside the jurisdiction of an order by a subdivision
# only: located in one it lists, and not in a country it lists (those are
# counted, and removed, with their country). A set, so a person in two
# listed subdivisions counts once. Empty for a jurisdiction of countries.
subdivision_inside[id] := inside_ids if {
	some id, j in actionable
	inside_ids := {pid |
		some code in j
		pids := input.meeting.by_subdivision[code]
		not substring(code, 0, 2) in j
		some pid in pids
	}
}

host_outside(j) := 1 if {
	input.meeting.host.connected
	not inside(input.meeting.host, j)
} else := 0

joining_outside(j) := 1 if {
	input.joining
	not inside(input.joining, j)
} else := 0

account_inside(j) if input.meeting.host.account_country in j

# Participant actions carry the order, its jurisdiction and the located
# country, so one fixed reason says the rest.
inside_reason := "located inside the jurisdiction of the authority that issued the order"

# Rule 3: every demand against a targeted meeting reaches the participants
# located inside the jurisdiction, and nobody else (nor anyone exempt, nor
# for an order an extension withholds).
removals contains action if {
	some id, j in actionable
	not order_withheld(id)
	some country in j
	ids := not_exempt(input.meeting.by_country[country])
	count(ids) > 0
	action := {
		"type": "remove_participant",
		"meeting_id": input.meeting.id,
		"participant_ids": ids,
		"order_id": id,
		"jurisdiction": j,
		"country": country,
		"reason": inside_reason,
	}
}

# Those inside by a subdivision alone, in one more batch per order. It
# names no country: its participants may be in several, and the guard
# fills in each one's.
removals contains action if {
	some id, j in actionable
	not order_withheld(id)
	ids := not_exempt(sort(subdivision_inside[id]))
	count(ids) > 0
	action := {
		"type": "remove_participant",
		"meeting_id": input.meeting.id,
		"participant_ids": ids,
		"order_id": id,
		"jurisdiction": j,
		"reason": inside_reason,
	}
}

# The host is treated like any participant when connected.
removals contains action if {
	some id, j in actionable
	input.meeting.host.connected
	inside(input.meeting.host, j)
	not host_exempt
	not order_withheld(id)
	action := {
		"type": "remove_participant",
		"meeting_id": input.meeting.id,
		"participant_id": input.meeting.host.account_id,
		"host": true,
		"order_id": id,
		"jurisdiction": j,
		"country": input.meeting.host.country,
		"reason": inside_reason,
	}
}

# Join-time: the hot path, so the cheapest test (is the joining participant
# located inside?) comes first and nothing else is built; the extensions
# are consulted only for a participant who would be denied. The guard adds
# the participant's id, the meeting, the jurisdiction and the located
# country to the action.
denials contains denial(id) if {
	some id in input.standing_orders
	may_deny(data.orders[id])
	not joining_withheld(id)
}

denials contains denial(id) if {
	id := input.order.id
	may_deny(input.order)
	not joining_withheld(id)
}

may_deny(o) if {
	input.joining.country in data.authorities[o.authority].jurisdiction
	has_legal_basis(o)
	targets_meeting(o)
	makes_known_demand(o)
}

# Located in a subdivision of the jurisdiction. Only a City database
# locates anyone in one; with a Country database "subdivisions" is absent
# and this fails at its first expression.
may_deny(o) if {
	some s in input.joining.subdivisions
	s in data.authorities[o.authority].jurisdiction
	has_legal_basis(o)
	targets_meeting(o)
	makes_known_demand(o)
}

# A deny_join can only name the participant asking to join, so it names
# nobody: the guard fills in input.joining's id. An answer that depends on
# the joiner's location and not on their id is one the engine can reuse
# for everyone joining the meeting from the same country.
denial(id) := {"type": "deny_join", "order_id": id, "reason": inside_reason}

# Rule 4: a meeting may be ended only when it has participants and nobody
# it would reach is outside.
end_meeting_granted(id) if {
	input.meeting.participant_count > 0
	outside_count[id] == 0
}

meeting_actions contains action if {
	some id, j in actionable
	"end_meeting" in orders[id].demands
	not service_wide(orders[id])
	end_meeting_granted(id)
	not demand_withheld(id, "end_meeting")
	not exempt_reached
	action := {
		"type": "end_meeting",
		"meeting_id": input.meeting.id,
		"order_id": id,
		"jurisdiction": j,
		"reason": sprintf("order %s: every user connected to the meeting is located in %s", [id, concat(", ", j)]),
	}
}

# Rule 5: an account may be suspended only when it is registered inside and
# nobody it would reach is outside. It reaches its holder, whose location is
# known only while connected: where an account is registered is not where
# its holder is.
suspend_account_granted(id) if {
	input.meeting.host.connected
	account_inside(actionable[id])
	outside_count[id] == 0
}

meeting_actions contains action if {
	some id, j in actionable
	"suspend_account" in orders[id].demands
	not service_wide(orders[id])
	suspend_account_granted(id)
	not demand_withheld(id, "suspend_account")
	not exempt_account_reached
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

# A service-wide order names no meeting and no account: a meeting-wide or
# account demand in one (which the registry validation and the decoding of
# a preview order refuse) is refused, whoever it would reach.
refused contains refusal(id, d, "service_wide", reason, 0) if {
	some id, _ in actionable
	service_wide(orders[id])
	some d in orders[id].demands
	d in {"end_meeting", "suspend_account"}
	reason := sprintf("order %s applies to every meeting; only participants located inside are acted on, never a meeting or an account as a whole", [id])
}

refused contains refusal(id, "end_meeting", "no_participants", reason, outside_count[id]) if {
	some id, j in actionable
	"end_meeting" in orders[id].demands
	not service_wide(orders[id])
	input.meeting.participant_count == 0
	reason := sprintf("the meeting has no participants, so ending it cannot be shown to affect only users in %s; participants located there are denied admission instead", [concat(", ", j)])
}

refused contains refusal(id, "end_meeting", "affects_outside", reason, n) if {
	some id, j in actionable
	"end_meeting" in orders[id].demands
	not service_wide(orders[id])
	input.meeting.participant_count > 0
	n := outside_count[id]
	n > 0
	reason := sprintf("ending the meeting would affect %s not located in %s; narrowed to the participants located there", [users(n), concat(", ", j)])
}

refused contains refusal(id, "suspend_account", "affects_outside", reason, n) if {
	some id, j in actionable
	"suspend_account" in orders[id].demands
	not service_wide(orders[id])
	not suspend_account_granted(id)
	n := outside_count[id] + account_holder_outside_uncounted(j)
	reason := sprintf("suspending the account would affect users outside %s (%s); narrowed to participants located there, in every meeting of the account", [concat(", ", j), suspend_obstacle(j, outside_count[id])])
}

# The account holder is one person: counted once, whether as a connected
# host outside, as a holder who is not connected (of unknown location) or
# as an account registered outside.
account_holder_outside_uncounted(j) := 1 if {
	not input.meeting.host.connected
} else := 1 if {
	not account_inside(j)
	host_outside(j) == 0
} else := 0

suspend_obstacle(j, _) := sprintf("the account is registered in %s", [input.meeting.host.account_country]) if {
	input.meeting.host.account_country
	not account_inside(j)
}

suspend_obstacle(j, _) := "the account's country is unknown" if {
	not input.meeting.host.account_country
	not account_inside(j)
}

suspend_obstacle(j, n) := sprintf("%s connected or joining %s not located there", [users(n), are(n)]) if {
	account_inside(j)
	input.meeting.host.connected
}

suspend_obstacle(j, 0) := "the account holder is not connected, so where they are is unknown" if {
	account_inside(j)
	not input.meeting.host.connected
}

suspend_obstacle(j, n) := sprintf("the account holder is not connected, so where they are is unknown, and %s connected or joining %s not located there", [users(n), are(n)]) if {
	account_inside(j)
	not input.meeting.host.connected
	n > 0
}

# ---------------------------------------------------------------------------
# Extension points
#
# An operator extends this policy by adding a file of their own to the
# bundle, in package geoscope.extensions, with partial set rules (rules of
# the same name merge across files):
#
#   exempt contains id if ...     participant ids never acted on
#   withheld contains w if ...    {"order_id", "demand"?, "reason"}
#   refusals contains r if ...    {"order_id", "demand"?, "code", "reason"}
#
# They can only withhold enforcement: they remove actions, and add
# refusals, never the reverse. docs/policy.md is the reference;
# docs/extensions/ holds worked examples.
#
# Cost: every rule below that the hot paths reach first tests "exempting"
# or "withholding", which are undefined unless an extension rule has
# entries for this input; so without extensions, admission and the
# per-country removal batches cost what they cost before (docs/policy.md
# has the measurements).
# ---------------------------------------------------------------------------

exempting if count(data.geoscope.extensions.exempt) > 0

withholding if count(data.geoscope.extensions.withheld) > 0

withholding if count(data.geoscope.extensions.refusals) > 0

default exempt_ids := set()

exempt_ids := data.geoscope.extensions.exempt

default withheld_entries := set()

withheld_entries := data.geoscope.extensions.withheld

default operator_refusals := set()

operator_refusals := data.geoscope.extensions.refusals

# A batch of participant ids without the exempt ones.
not_exempt(ids) := ids if {
	not exempting
} else := [id | some id in ids; not id in exempt_ids]

host_exempt if {
	exempting
	input.meeting.host.account_id in exempt_ids
}

# The joining participant is exempt, or the order's participant actions
# are withheld. One function rather than two tests: this is on the join
# path, and only reached for a participant who would be denied.
joining_withheld(_) if {
	exempting
	input.joining.id in exempt_ids
}

joining_withheld(id) if order_withheld(id)

# A meeting-wide action reaches every participant, the connected host and
# the participant joining: one of them exempt refuses it. The ids come from
# by_country and unlocated, not from input.meeting.participants, so that
# exempting people costs the engine nothing more to build.
exempt_reached if {
	exempting
	exempt_connected
}

# The cheap tests come first: the rule stops at the first that holds, so
# the scan of every participant id runs only when nobody else is exempt.
exempt_connected if {
	input.meeting.host.connected
	input.meeting.host.account_id in exempt_ids
}

exempt_connected if input.joining.id in exempt_ids

exempt_connected if {
	some id in input.meeting.unlocated
	id in exempt_ids
}

exempt_connected if {
	some ids in input.meeting.by_country
	some id in ids
	id in exempt_ids
}

# Suspending the account also reaches its holder, connected or not.
exempt_account_reached if exempt_reached

exempt_account_reached if host_exempt

# Every demand an extension withholds, as the refusal that reports it. An
# entry without a "demand" covers every demand of its order; an entry
# naming an order that is not under evaluation, or a demand the order does
# not make, covers nothing.
extension_refusals contains refusal(id, d, "withheld", entry_reason(w, "withheld by the operator's policy"), 0) if {
	some w in withheld_entries
	some [id, d] in covered(w)
}

extension_refusals contains refusal(id, d, operator_code(r), operator_reason(r), 0) if {
	some r in operator_refusals
	some [id, d] in covered(r)
}

covered(entry) := {[id, d] |
	id := entry.order_id
	some d in orders[id].demands
	covers(entry, d)
}

covers(entry, _) if {
	is_object(entry)
	object.get(entry, "demand", null) == null
}

covers(entry, d) if entry.demand == d

# [order_id, demand] pairs that are not to be enforced.
withheld_demands contains [r.order_id, r.demand] if some r in extension_refusals

# Participant actions (removals, deny_join) follow from any known demand of
# an order, so they are withheld only when every known demand is.
order_withheld(id) if {
	withholding
	not enforceable_demand(id)
}

demand_withheld(id, d) if {
	withholding
	[id, d] in withheld_demands
}

enforceable_demand(id) if {
	some d in orders[id].demands
	d in demands
	not [id, d] in withheld_demands
}

entry_reason(entry, fallback) := entry.reason if {
	is_string(entry.reason)
	trim_space(entry.reason) != ""
} else := fallback

# The default policy's own codes say what geoscope found; an operator's
# refusal may not claim one of them.
builtin_codes := {
	"unknown_authority", "no_legal_basis", "not_targeted", "unknown_demand",
	"no_participants", "affects_outside", "exempt", "service_wide",
}

# An operator's code is lower_snake_case, at most 64 bytes, and not one of
# the built-in codes. Any other code still withholds the demand (the safe
# direction), reported under "withheld" with a note saying why.
valid_operator_code(code) if {
	is_string(code)
	count(code) <= 64
	regex.match(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`, code)
	not code in builtin_codes
}

operator_code(r) := r.code if {
	valid_operator_code(r.code)
} else := "withheld"

operator_reason(r) := entry_reason(r, "refused by the operator's policy") if {
	valid_operator_code(r.code)
} else := sprintf("%s (refusal code %s is not a lower_snake_case code of the operator's own; reported as withheld)", [entry_reason(r, "refused by the operator's policy"), code_text(r)])

code_text(r) := json.marshal(object.get(r, "code", null))

refused contains r if {
	withholding
	some r in extension_refusals
}

refused contains refusal(id, "end_meeting", "exempt", reason, 0) if {
	exempting
	some id, _ in actionable
	"end_meeting" in orders[id].demands
	not service_wide(orders[id])
	exempt_reached
	reason := "ending the meeting would reach a person the operator's policy exempts from enforcement"
}

refused contains refusal(id, "suspend_account", "exempt", reason, 0) if {
	exempting
	some id, _ in actionable
	"suspend_account" in orders[id].demands
	not service_wide(orders[id])
	exempt_account_reached
	reason := "suspending the account would reach a person the operator's policy exempts from enforcement"
}

# "1 user", "2 users": counts in reasons read as English.
users(1) := "1 user"

users(n) := sprintf("%d users", [n]) if n != 1

are(1) := "is"

are(n) := "are" if n != 1
