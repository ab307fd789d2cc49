# An extension of the default policy (docs/policy.md, "Extending the
# default policy without forking it"): it adds to the exempt rule of
# package geoscope.extensions and defines nothing else there, so it
# combines with other extension files in the same bundle.
package geoscope.extensions

import data.geoscope.people

# Hosts and co-hosts are never acted on.
#
# Everyone whose role is "host" or "co_host" is exempt: the participants
# the meeting server says are co-hosts, the participant joining as one,
# and the meeting's host (whose role is always "host", connected or not).
# They are never removed or denied admission, and a meeting-wide or
# account demand that would reach one of them is refused with code
# "exempt". So with this extension, suspend_account is never granted
# (it always reaches the host), and end_meeting only while no host or
# co-host is connected or joining.
#
# The role is what the meeting server reports; it is not a location and
# the guard never trusts it to extend enforcement, only this extension
# uses it, to withhold.
exempt contains person.id if {
	some person in people.everyone
	person.role in {"host", "co_host"}
}
