# An extension of the default policy (docs/policy.md, "Extending the
# default policy without forking it"): it adds to the exempt rule of
# package geoscope.extensions and defines nothing else there, so it
# combines with other extension files in the same bundle.
package geoscope.extensions

import data.geoscope.people

# Accredited journalists are never acted on.
#
# People signed in with an account listed in
# data.geoscope.extensions.accredited_press.accounts (this directory's
# accredited_press/data.json, an object keyed by account id) are exempt:
# never removed or denied admission, and a meeting-wide or account demand
# that would reach one of them is refused with code "exempt".
#
# The list is data, so it changes without touching Rego: edit data.json,
# rebuild and sign the bundle. An account id is what the meeting server
# says the person signed in with; someone who joins without signing in
# has no account_id and is not exempt.
# The list is read once, then looked up per person: a lookup through
# data.geoscope.extensions on every iteration would cost several times
# more on a large meeting.
exempt contains person.id if {
	accredited := data.geoscope.extensions.accredited_press.accounts
	some person in people.everyone
	_ = accredited[person.account_id] # the key alone: its value may be anything, false included
}
