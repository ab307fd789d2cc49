package ledger_test

import (
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
)

// A bound past what the ledger can compare (its instants are int64
// nanoseconds) is taken as the ledger's first or last instant, never
// wrapped around into a period that selects nothing, nor left as the zero
// time that means "not given".
func TestParseTimeRange(t *testing.T) {
	for v, want := range map[string]time.Time{
		"1970-01-01":                time.Unix(0, 0).UTC(),
		"2026-06-04T12:00:00+08:00": time.Date(2026, 6, 4, 4, 0, 0, 0, time.UTC),
		"2262-04-11":                time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC),
		"0001-01-01T00:00:00Z":      ledger.Earliest,
		"2999-01-01T00:00:00Z":      ledger.Latest,
		// A date out of range is the first or last whole day in it: a
		// date stays the start of a day (a public report takes only those).
		"0001-01-01": time.Date(1677, 9, 22, 0, 0, 0, 0, time.UTC),
		"1600-01-01": time.Date(1677, 9, 22, 0, 0, 0, 0, time.UTC),
		"2262-04-12": time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC),
		"9999-12-31": time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ledger.ParseTime(v)
		if err != nil || !got.Equal(want) || got.IsZero() {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if ledger.Earliest.UnixNano() >= 0 || ledger.Latest.UnixNano() <= 0 || ledger.Earliest.Nanosecond() != 0 || ledger.Latest.Nanosecond() != 0 {
		t.Errorf("Earliest %v and Latest %v: want whole seconds that int64 nanoseconds hold", ledger.Earliest, ledger.Latest)
	}
}

// A bound is an RFC 3339 time or a date, as the registry's dates are: a
// fraction of a second after a comma (ISO 8601, which Go's parser takes)
// and an offset of 24 hours are refused, not read as some other instant.
func TestParseTimeRefusesWhatRFC3339DoesNot(t *testing.T) {
	for _, v := range []string{"2026-01-01T00:00:00,5Z", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00", "2026-1-1"} {
		if got, err := ledger.ParseTime(v); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", v, got)
		}
	}
}
