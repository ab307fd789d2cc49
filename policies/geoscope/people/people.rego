# METADATA
# title: People in the meeting, one object each
# description: |
#   A helper for extension rules (package geoscope.extensions): every person
#   a decision concerns, as the objects the engine puts in the input
#   ({"id", "country"?, "located_by"?, "role"?, "account_id"?,
#   "account_country"?, "attributes"?}).
#
#   It reads input.meeting.participants, which the engine builds only for a
#   policy that can read it. The default policy never refers to this
#   package, so it costs nothing until an extension does; an extension that
#   does makes the engine build one object per participant (see
#   docs/benchmarks.md for what that costs on a large meeting).
package geoscope.people

# METADATA
# title: Everyone
# description: |
#   An array: the participants (input.meeting.participants, in request
#   order), then the host (connected or not: suspending the account reaches
#   its holder either way; the host's "id" is its account_id and its role
#   "host"), then the participant asking to join, if any. An array rather
#   than a set: a set of ten thousand objects would hash every one of them.
everyone := array.concat(array.concat(participants, [input.meeting.host]), joining)

default participants := []

participants := input.meeting.participants

default joining := []

joining := [input.joining]
