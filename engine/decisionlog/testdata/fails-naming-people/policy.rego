# A policy whose answer is malformed in a way the engine's error quotes: a
# refusal keyed by a participant's id. The decision log's tests use it to
# see a failed evaluation logged without the id.
package geoscope

decision := {"actions": [], "refused": [{"order_id": id, "code": "held", pid: true} |
	some id in input.standing_orders
	some ids in input.meeting.by_country
	some pid in ids
]}

admission := decision
