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
#   "host"), then the participant asking to join, if any.
#
#   An array rather than a set, which would hash every person object; built
#   with a comprehension rather than array.concat, whose result the type
#   checker knows only as an array of anything, so that `opa check
#   --schema` still reports a misspelt field read from a person.
everyone := [person | some group in [participants, [input.meeting.host], joining]; some person in group]

default participants := []

participants := input.meeting.participants

default joining := []

joining := [input.joining]
