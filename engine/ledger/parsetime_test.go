package ledger_test

import (
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/ledger"
)

// A bound the ledger cannot compare (its instants are int64 nanoseconds)
// is refused, not wrapped around into a period that selects nothing, or
// into the zero time that means "not given".
func TestParseTimeRange(t *testing.T) {
	for _, v := range []string{"1678-01-01", "1970-01-01", "2026-06-04T12:00:00+08:00", "2262-04-11", "2262-04-11T23:47:16Z"} {
		if _, err := ledger.ParseTime(v); err != nil {
			t.Errorf("ParseTime(%q) = %v", v, err)
		}
	}
	for _, v := range []string{"0001-01-01", "0001-01-01T00:00:00Z", "1600-01-01", "1677-09-21", "2262-04-12", "2300-01-01", "9999-12-31T23:59:59Z"} {
		_, err := ledger.ParseTime(v)
		if err == nil || !strings.Contains(err.Error(), "out of range") || !strings.Contains(err.Error(), v) {
			t.Errorf("ParseTime(%q) = %v, want an out-of-range error naming it", v, err)
		}
	}
	if _, _, bad, err := ledger.ParseBounds("2026-01-01", "9999-12-31"); bad != "until" || err == nil {
		t.Errorf("ParseBounds with until 9999-12-31: bad %q, err %v; want until refused", bad, err)
	}
}
