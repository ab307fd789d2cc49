package geo

import (
	"github.com/nyaruka/phonenumbers"
)

// Reasons for an unknown location of a dial-in caller.
const (
	// ReasonPhoneNotValid: the calling number does not fit its country's
	// numbering plan, so its country cannot be told from it.
	ReasonPhoneNotValid = "phone_not_valid"
	// ReasonPhoneNonGeographic: the calling number belongs to a
	// non-geographic code (international freephone, satellite and
	// international networks).
	ReasonPhoneNonGeographic = "phone_non_geographic"
)

// LocatePhone returns the country a calling number (E.164, "+8610...")
// belongs to, from the ITU numbering plans as libphonenumber publishes them
// (github.com/nyaruka/phonenumbers).
//
// This is the country of the number, not of the caller, and that is the
// trade-off an operator accepts by turning it on: a mobile number roams
// with its owner (a +86 SIM used in Hong Kong is still +86), and caller id
// can be spoofed or rewritten by carriers and gateways. A number is only
// located when it is a valid number of a single country's plan; anything
// else (a number that does not fit the plan, a non-geographic code) is an
// unknown location, never acted on.
func LocatePhone(number string) Location {
	num, err := phonenumbers.Parse(number, "")
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return Location{Reason: ReasonPhoneNotValid}
	}
	region := phonenumbers.GetRegionCodeForNumber(num)
	switch {
	case region == "001":
		return Location{Reason: ReasonPhoneNonGeographic}
	case len(region) != 2 || region == phonenumbers.UNKNOWN_REGION:
		return Location{Reason: ReasonPhoneNotValid}
	}
	return Location{Country: region, Known: true}
}
