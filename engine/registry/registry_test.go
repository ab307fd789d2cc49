package registry

import (
	"slices"
	"testing"
)

func TestStanding(t *testing.T) {
	r := New(nil, map[string]Order{
		"a": {Targets: Targets{Meetings: []string{"m1", "m2"}}},
		"b": {Targets: Targets{Accounts: []string{"acct"}}},
		"c": {Targets: Targets{Meetings: []string{"m1"}, Accounts: []string{"acct"}}},
		"d": {Targets: Targets{Accounts: []string{""}}},
	})
	for _, tc := range []struct {
		meeting, account string
		want             []string
	}{
		{"m1", "acct", []string{"a", "b", "c"}},
		{"m1", "other", []string{"a", "c"}},
		{"m2", "", []string{"a"}},
		{"m3", "acct", []string{"b", "c"}},
		{"m3", "other", nil},
		{"m3", "", nil}, // an empty account id matches nothing, even an empty target
	} {
		if got := r.Standing(tc.meeting, tc.account); !slices.Equal(got, tc.want) {
			t.Errorf("Standing(%q, %q) = %v, want %v", tc.meeting, tc.account, got, tc.want)
		}
	}
}

func TestAuthorityCovers(t *testing.T) {
	a := Authority{Jurisdiction: []string{"CN"}}
	for c, want := range map[string]bool{"CN": true, "HK": false, "MO": false, "TW": false, "": false, "cn": false} {
		if a.Covers(c) != want {
			t.Errorf("Covers(%q) = %v", c, !want)
		}
	}
}

func TestOrderTargetsMeeting(t *testing.T) {
	o := Order{Targets: Targets{Meetings: []string{"m1"}, Accounts: []string{"acct", ""}}}
	if !o.TargetsMeeting("m1", "x") || !o.TargetsMeeting("m9", "acct") || o.TargetsMeeting("m9", "") || o.TargetsMeeting("m9", "x") {
		t.Error("TargetsMeeting")
	}
}

func TestStandingServiceWide(t *testing.T) {
	r := New(nil, map[string]Order{
		"a":   {Targets: Targets{Meetings: []string{"m1"}}},
		"b":   {Targets: Targets{Accounts: []string{"acct"}}},
		"all": {Targets: Targets{AllMeetings: true}},
		"zz":  {Targets: Targets{AllMeetings: true}},
	})
	for _, tc := range []struct {
		meeting, account string
		want             []string
	}{
		{"m1", "acct", []string{"a", "all", "b", "zz"}},
		{"m1", "", []string{"a", "all", "zz"}},
		{"m9", "acct", []string{"all", "b", "zz"}},
		{"m9", "", []string{"all", "zz"}},
	} {
		if got := r.Standing(tc.meeting, tc.account); !slices.Equal(got, tc.want) {
			t.Errorf("Standing(%q, %q) = %v, want %v", tc.meeting, tc.account, got, tc.want)
		}
	}
	if got := r.ServiceWide(); !slices.Equal(got, []string{"all", "zz"}) {
		t.Errorf("ServiceWide() = %v", got)
	}
	if !r.Orders["all"].TargetsMeeting("any", "") || r.Orders["a"].TargetsMeeting("any", "") {
		t.Error("TargetsMeeting of a service-wide order")
	}
}

func TestAuthorityCoversSubdivisions(t *testing.T) {
	crimea := Authority{Jurisdiction: []string{"UA-43", "UA-40"}}
	mixed := Authority{Jurisdiction: []string{"CN", "UA-43"}}
	for _, tc := range []struct {
		a            Authority
		country      string
		subdivisions []string
		want         bool
	}{
		{crimea, "UA", []string{"UA-43"}, true},
		{crimea, "UA", []string{"UA-40"}, true},
		{crimea, "UA", []string{"UA-30"}, false},
		{crimea, "UA", nil, false}, // located in the country, not in a subdivision
		{crimea, "", []string{"UA-43"}, false},
		// An unknown location is never inside, whatever comes with it: a
		// country code among the subdivisions, or a jurisdiction listing
		// "" (which the validation refuses; Covers does not rely on it).
		{mixed, "", []string{"CN"}, false},
		{Authority{Jurisdiction: []string{""}}, "", nil, false},
		{Authority{Jurisdiction: []string{"", "CN"}}, "", []string{""}, false},
		{crimea, "RU", []string{"UA-43"}, false}, // a subdivision of another country is not believed
		{crimea, "UA", []string{"ua-43"}, false},
		{mixed, "CN", nil, true},
		{mixed, "CN", []string{"CN-BJ"}, true},
		{mixed, "UA", []string{"UA-43"}, true},
		{mixed, "HK", nil, false},
		{Authority{Jurisdiction: []string{"GB-ENG"}}, "GB", []string{"GB-ENG", "GB-LND"}, true},
		{Authority{Jurisdiction: []string{"GB-LND"}}, "GB", []string{"GB-ENG", "GB-LND"}, true},
		{Authority{Jurisdiction: []string{"GB-LND"}}, "GB", []string{"GB-ENG"}, false},
	} {
		if got := tc.a.Covers(tc.country, tc.subdivisions...); got != tc.want {
			t.Errorf("%v.Covers(%q, %v) = %v, want %v", tc.a.Jurisdiction, tc.country, tc.subdivisions, got, tc.want)
		}
	}
	if !crimea.HasSubdivisions() || (Authority{Jurisdiction: []string{"CN"}}).HasSubdivisions() {
		t.Error("HasSubdivisions")
	}
	if !New(map[string]Authority{"a": {Jurisdiction: []string{"CN"}}, "b": crimea}, nil).HasSubdivisions() ||
		New(map[string]Authority{"a": {Jurisdiction: []string{"CN"}}}, nil).HasSubdivisions() {
		t.Error("Registry.HasSubdivisions")
	}
}

func TestIsSubdivision(t *testing.T) {
	for code, want := range map[string]bool{
		"UA-43": true, "GB-ENG": true, "FR-75C": true, "ES-M": true,
		"UA": false, "UA-": false, "UA-4321": false, "ua-43": false, "UA_43": false, "UA-4 ": false, "": false, "U1-43": false,
	} {
		if IsSubdivision(code) != want {
			t.Errorf("IsSubdivision(%q) = %v", code, !want)
		}
		if got := SubdivisionCountry(code); (got != "") != want || (want && got != code[:2]) {
			t.Errorf("SubdivisionCountry(%q) = %q", code, got)
		}
	}
}
