# A policy that fails as OPA's evaluation fails, with one of OPA's codes
# (eval_conflict_error): two values for one complete rule. The decision
# log's tests use it to see that the event keeps OPA's error text.
package geoscope

decision := {"actions": [], "refused": []} if input.meeting.id

decision := {"actions": [], "refused": [], "conflicting": true} if input.meeting.id

admission := decision
