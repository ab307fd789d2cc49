# An extension of the default policy (docs/policy.md, "Extending the
# default policy without forking it"): it adds to the exempt rule of
# package geoscope.extensions and defines nothing else there, so it
# combines with other extension files in the same bundle.
package geoscope.extensions

import data.geoscope.people

# Dial-in callers are acted on only with a verified caller id.
#
# With --locate-phone-numbers, a dial-in caller is located by the country
# of the calling number (located_by "phone"). A caller id can be spoofed:
# someone calling from outside the jurisdiction could present a number
# from inside it, and be removed, or let a meeting be ended, as if they
# were inside. This extension exempts every phone-located person unless
# the meeting server reports a STIR/SHAKEN attestation of "A" (the
# carrier vouches that the caller may use the number) in the attribute
# caller_id_attestation.
#
# The trade-off: callers genuinely inside the jurisdiction whose carrier
# does not attest (most international calls, many gateways) are never
# removed or denied, and a meeting or account with one of them connected
# is not ended or suspended (refused with code "exempt"). Attestation "A"
# verifies the number, not where the caller is: a roaming phone keeps its
# home country's number.
exempt contains person.id if {
	some person in people.everyone
	person.located_by == "phone"
	object.get(person, ["attributes", "caller_id_attestation"], "") != "A"
}
