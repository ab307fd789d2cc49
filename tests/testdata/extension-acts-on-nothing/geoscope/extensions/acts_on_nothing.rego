# An extension that changes every answer it can: it exempts every person
# and withholds every order. The default policy's tests must pass with it
# installed (`make rego-test`), as docs/policy.md promises of any
# extension: they test the default policy's own answers.
package geoscope.extensions

exempt contains input.joining.id

exempt contains p.id if some p in input.meeting.participants

withheld contains {"order_id": id, "reason": "under appeal"} if some id in input.standing_orders

refusals contains {"order_id": id, "demand": "end_meeting", "code": "withheld", "reason": "under review"} if {
	some id in input.standing_orders
}
