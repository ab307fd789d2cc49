package registry

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

// Date-only values are UTC days: effective from the start of its day,
// expires through the end of its day, revoked from the start of its day.
func TestStatusAtDayBoundaries(t *testing.T) {
	o := Order{Effective: "2026-01-01", Expires: "2026-12-31"}
	for when, want := range map[string]string{
		"2025-12-31T23:59:59.999999999Z": StatusNotYetEffective,
		"2026-01-01T00:00:00Z":           StatusInForce,
		"2026-06-15T12:00:00+09:00":      StatusInForce,
		"2026-12-31T23:59:59.999999999Z": StatusInForce,
		"2027-01-01T00:00:00Z":           StatusExpired,
		"2027-01-01T00:30:00+01:00":      StatusInForce, // 2026-12-31T23:30Z
	} {
		if got := o.StatusAt(at(when)); got != want {
			t.Errorf("StatusAt(%s) = %s, want %s", when, got, want)
		}
	}
	revoked := Order{Effective: "2026-01-01", Revoked: &Revocation{Date: "2026-03-10", Reason: "withdrawn by the authority"}}
	for when, want := range map[string]string{
		"2026-03-09T23:59:59Z": StatusInForce,
		"2026-03-10T00:00:00Z": StatusRevoked,
		"2030-01-01T00:00:00Z": StatusRevoked,
		"2025-01-01T00:00:00Z": StatusNotYetEffective,
	} {
		if got := revoked.StatusAt(at(when)); got != want {
			t.Errorf("revoked StatusAt(%s) = %s, want %s", when, got, want)
		}
	}
	// A revocation before the order took effect: revoked from then on.
	early := Order{Effective: "2026-06-01", Revoked: &Revocation{Date: "2026-05-01", Reason: "r"}}
	if got := early.StatusAt(at("2026-07-01T00:00:00Z")); got != StatusRevoked {
		t.Errorf("revoked before effective: %s", got)
	}
	// An expired order later revoked reads as revoked.
	if got := (Order{Expires: "2026-01-31", Revoked: &Revocation{Date: "2026-03-01", Reason: "r"}}).StatusAt(at("2026-04-01T00:00:00Z")); got != StatusRevoked {
		t.Errorf("expired then revoked: %s", got)
	}
	if got := (Order{}).StatusAt(time.Time{}); got != StatusInForce {
		t.Errorf("an order without dates: %s", got)
	}
}

func TestStatusAtInstants(t *testing.T) {
	o := Order{Effective: "2026-01-01T09:00:00+01:00", Expires: "2026-01-02T08:00:00Z"}
	for when, want := range map[string]string{
		"2026-01-01T07:59:59Z": StatusNotYetEffective,
		"2026-01-01T08:00:00Z": StatusInForce, // effective is inclusive
		"2026-01-02T07:59:59Z": StatusInForce,
		"2026-01-02T08:00:00Z": StatusExpired, // expires is exclusive
	} {
		if got := o.StatusAt(at(when)); got != want {
			t.Errorf("StatusAt(%s) = %s, want %s", when, got, want)
		}
	}
}

func TestValidityErrors(t *testing.T) {
	for _, tc := range []struct {
		o     Order
		field string
	}{
		{Order{Effective: "2026-02-30"}, "effective"},
		{Order{Effective: "2026-1-1"}, "effective"},
		{Order{Effective: "01/02/2026"}, "effective"},
		{Order{Expires: "2026-01-01t00:00:00z"}, "expires"},
		{Order{Expires: "2026-01-01T25:00:00Z"}, "expires"},
		{Order{Expires: "2026-01-01T00:00:00"}, "expires"}, // no offset
		{Order{Expires: "1899-12-31"}, "expires"},
		{Order{Effective: "2200-01-01"}, "effective"},
		{Order{Effective: "2026-02-01", Expires: "2026-01-31"}, "expires"},
		{Order{Effective: "2026-02-01T00:00:00Z", Expires: "2026-02-01T00:00:00Z"}, "expires"},
		{Order{Revoked: &Revocation{Reason: "r"}}, "revoked.date"},
		{Order{Revoked: &Revocation{Date: "2026-13-01", Reason: "r"}}, "revoked.date"},
		{Order{Revoked: &Revocation{Date: "2026-01-01", Reason: "  "}}, "revoked.reason"},
	} {
		_, err := tc.o.Validity()
		if err == nil || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%+v: err = %v, want one naming %s", tc.o, err, tc.field)
		}
		if tc.field != "revoked.reason" && !errors.Is(err, ErrDate) {
			t.Errorf("%+v: %v does not match ErrDate", tc.o, err)
		}
	}
	// The same day as both bounds is one day in force; the last
	// representable years are accepted.
	for _, o := range []Order{
		{Effective: "2026-02-01", Expires: "2026-02-01"},
		{Effective: "1900-01-01", Expires: "2199-12-31"},
		{Effective: "2026-02-01T00:00:00.5+14:00", Expires: "2026-02-01"},
		{Revoked: &Revocation{Date: "2024-02-29T12:00:00Z", Reason: "r"}},
	} {
		if _, err := o.Validity(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestInForceDuring(t *testing.T) {
	v, err := (Order{Effective: "2026-03-01", Expires: "2026-03-31"}).Validity()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		since, until string
		want         bool
	}{
		{"2026-01-01T00:00:00Z", "2026-03-01T00:00:00Z", false},
		{"2026-01-01T00:00:00Z", "2026-03-01T00:00:01Z", true},
		{"2026-03-31T23:59:59Z", "2026-05-01T00:00:00Z", true},
		{"2026-04-01T00:00:00Z", "2026-05-01T00:00:00Z", false},
	} {
		if got := v.InForceDuring(at(tc.since), at(tc.until)); got != tc.want {
			t.Errorf("InForceDuring(%s, %s) = %v", tc.since, tc.until, got)
		}
	}
	if !(Validity{}).InForceDuring(at("2026-01-01T00:00:00Z"), at("2026-01-02T00:00:00Z")) {
		t.Error("an unbounded order is in force during any period")
	}
}

func TestRegistryStatus(t *testing.T) {
	r := New(nil, map[string]Order{
		"plain":   {},
		"later":   {Effective: "2030-01-01"},
		"revoked": {Revoked: &Revocation{Date: "2020-01-01", Reason: "r"}},
		"broken":  {Effective: "not a date"},
	})
	now := at("2026-01-01T00:00:00Z")
	for id, want := range map[string]string{"plain": StatusInForce, "later": StatusNotYetEffective, "revoked": StatusRevoked, "broken": StatusRevoked, "absent": StatusInForce} {
		if got := r.Status(id, now); got != want {
			t.Errorf("Status(%s) = %s, want %s", id, got, want)
		}
	}
	if r.Validity("plain").Bounded() || !r.Validity("later").Bounded() {
		t.Error("Validity")
	}
}

// RFC 3339 offsets go to 23:59; Go's parser takes +24:00 and :60 too.
func TestParseRFC3339Offsets(t *testing.T) {
	for _, s := range []string{"2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00-00:60", "2026-01-01T00:00:00+99:99"} {
		if _, err := ParseRFC3339(s); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	for _, s := range []string{"2026-01-01T00:00:00+23:59", "2026-01-01T00:00:00-12:00", "2026-01-01T00:00:00.5Z"} {
		if _, err := ParseRFC3339(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// An order as a ledger entry recorded it keeps the reading of +24:00
// geoscope gave it before refusing such offsets: Validity refuses it,
// RecordedValidity reads it a day ahead, as the decision did.
func TestRecordedValidityKeepsTheReadingOfItsTime(t *testing.T) {
	o := Order{Effective: "2026-03-01T00:00:00+24:00", Expires: "2026-06-01"}
	if _, err := o.Validity(); err == nil {
		t.Error("Validity took an offset of +24:00")
	}
	v, err := o.RecordedValidity()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC); !v.Effective.Equal(want) || !v.Expires.Equal(time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("recorded validity %+v, want effective %v and expires at the end of 2026-06-01", v, want)
	}
	if _, err := (Order{Expires: "2026-03-01T00:00:00+99:00"}).RecordedValidity(); err == nil {
		t.Error("RecordedValidity took an offset Go does not parse either")
	}
}
