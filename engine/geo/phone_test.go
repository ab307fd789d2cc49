package geo

import "testing"

func TestLocatePhone(t *testing.T) {
	for _, tc := range []struct {
		number, country, reason string
	}{
		{"+861012345678", "CN", ""},              // Beijing landline
		{"+8613812345678", "CN", ""},             // mainland mobile
		{"+85221234567", "HK", ""},               // Hong Kong
		{"+85328212345", "MO", ""},               // Macao
		{"+886221234567", "TW", ""},              // Taipei
		{"+12025550123", "US", ""},               // NANP, Washington DC
		{"+14165550123", "CA", ""},               // NANP, Toronto
		{"+442079460000", "GB", ""},              // London
		{"+861", "", ReasonPhoneNotValid},        // too short for the plan
		{"+9991234567", "", ReasonPhoneNotValid}, // unassigned country code
		{"+80012345678", "", ReasonPhoneNonGeographic},
		{"not a number", "", ReasonPhoneNotValid},
	} {
		got := LocatePhone(tc.number)
		if got.Country != tc.country || got.Known != (tc.country != "") || got.Reason != tc.reason {
			t.Errorf("LocatePhone(%s) = %+v, want country %q reason %q", tc.number, got, tc.country, tc.reason)
		}
	}
}
