# A policy that reads the clock: it removes the participant located in CN
# under CN-IN-FORCE only when time.now_ns() is the instant
# TestPolicyClockIsTheDecisionTime decides at, and says which instant it read.
package geoscope

decision := {"actions": actions, "refused": []}

admission := {"actions": set(), "refused": []}

actions contains {"type": "remove_participant", "meeting_id": input.meeting.id, "participant_id": pid, "order_id": "CN-IN-FORCE", "reason": sprintf("read %d", [time.now_ns()])} if {
	time.now_ns() == time.parse_rfc3339_ns("2026-05-01T12:00:00.5Z")
	some pid in input.meeting.by_country.CN
}
