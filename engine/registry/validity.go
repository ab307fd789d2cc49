package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Statuses of an order at a given time. An order without effective,
// expires or revoked is always in force.
const (
	StatusInForce         = "in_force"
	StatusNotYetEffective = "not_yet_effective"
	StatusExpired         = "expired"
	StatusRevoked         = "revoked"
)

// Statuses lists the order statuses in a stable order.
var Statuses = []string{StatusInForce, StatusNotYetEffective, StatusExpired, StatusRevoked}

// Revocation withdraws an order from a date on. The reason is required: a
// revocation nobody can explain is not one a reviewer can check.
type Revocation struct {
	Date   string `json:"date"`
	Reason string `json:"reason"`
}

// Validity is when an order is in force, as instants. A zero field is no
// bound.
//
//   - Effective is the first instant the order is in force: the start
//     (00:00 UTC) of a date-only effective day, or the instant given.
//   - Expires is the first instant it is no longer in force: the end of a
//     date-only expires day (00:00 UTC of the next day, so the day named
//     is included), or the instant given.
//   - Revoked is the first instant it is revoked: the start of a date-only
//     revocation day, or the instant given.
//
// Date-only values are UTC days, not the authority's local days: a
// registry that must end an order at local midnight writes the RFC 3339
// instant with its offset ("2026-12-31T23:59:59+02:00" or, exclusive,
// "2027-01-01T00:00:00+02:00").
type Validity struct {
	Effective, Expires, Revoked time.Time
}

// Bounded reports whether the validity limits the order at all.
func (v Validity) Bounded() bool {
	return !v.Effective.IsZero() || !v.Expires.IsZero() || !v.Revoked.IsZero()
}

// Status is the order's status at t. A revocation in force wins over the
// period: an order revoked before it expired is reported as revoked.
func (v Validity) Status(t time.Time) string {
	switch {
	case !v.Revoked.IsZero() && !t.Before(v.Revoked):
		return StatusRevoked
	case !v.Effective.IsZero() && t.Before(v.Effective):
		return StatusNotYetEffective
	case !v.Expires.IsZero() && !t.Before(v.Expires):
		return StatusExpired
	}
	return StatusInForce
}

// InForceDuring reports whether the order is in force at some instant of
// [since, until).
func (v Validity) InForceDuring(since, until time.Time) bool {
	from := since
	if v.Effective.After(from) {
		from = v.Effective
	}
	end := until
	if !v.Expires.IsZero() && v.Expires.Before(end) {
		end = v.Expires
	}
	if !v.Revoked.IsZero() && v.Revoked.Before(end) {
		end = v.Revoked
	}
	return from.Before(end)
}

// Date forms accepted for effective, expires and revoked.date.
const (
	// DateLayout is a UTC day.
	DateLayout = time.DateOnly
	// MinYear and MaxYear bound the years accepted, in the validation
	// rules too: they keep every instant within what OPA's nanosecond
	// timestamps represent, so both compare the same way.
	MinYear = 1900
	MaxYear = 2199
)

// ErrDate is matched by errors for a date that is malformed or out of range.
var ErrDate = errors.New("invalid date")

// ParseInstant parses a date-only value (YYYY-MM-DD, a UTC day) or an RFC
// 3339 date-time ("2026-01-01T00:00:00Z", "…+02:00", upper-case T and Z,
// optional fractional seconds). For a date-only value it returns the start
// of the day, or with endOfDay the start of the next day (the first instant
// after it). dateOnly reports which form s had.
func ParseInstant(s string, endOfDay bool) (t time.Time, dateOnly bool, err error) {
	return parseInstant(s, endOfDay, ParseRFC3339)
}

// parseInstant is ParseInstant with the parser of date-times given.
func parseInstant(s string, endOfDay bool, parseDateTime func(string) (time.Time, error)) (t time.Time, dateOnly bool, err error) {
	if len(s) == len(DateLayout) {
		t, err = time.Parse(DateLayout, s)
		dateOnly = err == nil
	} else if strings.ContainsRune(s, 'T') && !strings.ContainsAny(s, "tz") {
		t, err = parseDateTime(s)
	} else {
		err = errors.New("not a date")
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%w: %q is neither a date YYYY-MM-DD nor an RFC 3339 date-time", ErrDate, s)
	}
	// The range is that of the instant in UTC (of the day's start for a
	// date), as the validation rules compute it.
	if y := t.UTC().Year(); y < MinYear || y > MaxYear {
		return time.Time{}, false, fmt.Errorf("%w: %q is outside the years %d to %d", ErrDate, s, MinYear, MaxYear)
	}
	if dateOnly && endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t.UTC(), dateOnly, nil
}

// ParseRFC3339 parses an RFC 3339 date-time. Go's parser also takes
// offsets of 24 hours or 60 minutes and more, which RFC 3339 does not
// (+24:00 would move the instant by a day); they are refused. So is a
// fraction of a second after a comma, which Go takes too (ISO 8601 has
// it) and the registry's validation rules do not: a preview order or a
// period would be accepted with a date a standing order is rejected for.
func ParseRFC3339(s string) (time.Time, error) {
	if strings.Contains(s, ",") {
		return time.Time{}, fmt.Errorf("the fraction of a second in %s is written after a \".\", not a \",\"", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, err
	}
	if n := len(s); n > 6 && (s[n-6] == '+' || s[n-6] == '-') {
		if s[n-5:n-3] > "23" || s[n-2:] > "59" {
			return time.Time{}, fmt.Errorf("the offset %s is not one of -23:59 to +23:59", s[n-6:])
		}
	}
	return t, nil
}

// Validity parses the order's effective, expires and revoked dates. The
// errors name the field ("expires: ..."); an order the registry
// validation accepted always parses.
func (o Order) Validity() (Validity, error) { return o.validity(ParseRFC3339) }

// RecordedValidity is Validity for an order as a ledger entry recorded
// it. Until geoscope refused them, it read offsets of 24 hours and more
// as Go does (+24:00 a day ahead); an entry recorded then keeps the
// reading its decision was made under, instead of failing to parse and
// being counted as an order with no dates.
func (o Order) RecordedValidity() (Validity, error) {
	return o.validity(func(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) })
}

func (o Order) validity(parseDateTime func(string) (time.Time, error)) (Validity, error) {
	var v Validity
	var err error
	if o.Effective != "" {
		if v.Effective, _, err = parseInstant(o.Effective, false, parseDateTime); err != nil {
			return Validity{}, fmt.Errorf("effective: %w", err)
		}
	}
	if o.Expires != "" {
		if v.Expires, _, err = parseInstant(o.Expires, true, parseDateTime); err != nil {
			return Validity{}, fmt.Errorf("expires: %w", err)
		}
	}
	if !v.Effective.IsZero() && !v.Expires.IsZero() && !v.Effective.Before(v.Expires) {
		return Validity{}, fmt.Errorf("expires: %w: %s ends before the order is effective (%s)", ErrDate, o.Expires, o.Effective)
	}
	if r := o.Revoked; r != nil {
		if r.Date == "" {
			return Validity{}, fmt.Errorf("revoked.date: %w: a revocation states its date", ErrDate)
		}
		if v.Revoked, _, err = parseInstant(r.Date, false, parseDateTime); err != nil {
			return Validity{}, fmt.Errorf("revoked.date: %w", err)
		}
		if strings.TrimSpace(r.Reason) == "" {
			return Validity{}, errors.New("revoked.reason: a revocation states its reason")
		}
	}
	return v, nil
}

// StatusAt is the order's status at t; an order whose dates do not parse
// is never in force (the registry validation rejects such an order before
// it gets here, and a preview order is refused at decoding).
func (o Order) StatusAt(t time.Time) string {
	if o.Effective == "" && o.Expires == "" && o.Revoked == nil {
		return StatusInForce
	}
	v, err := o.Validity()
	if err != nil {
		// Unreachable for a registry order or a decoded preview order;
		// anything else is kept out of force, the safe direction.
		return StatusNotYetEffective
	}
	return v.Status(t)
}
