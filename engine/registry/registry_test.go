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
