package proctest

import (
	"strings"
	"testing"
)

// Port keeps to GEOSCOPE_TEST_PORTS when it is set, for every server the
// tests start (internal/pgtest's PostgreSQL included, which has no
// testing.TB to fail), and says what is wrong with a range it cannot use.
func TestPortKeepsToTheRange(t *testing.T) {
	// A range of one port: the one the run's own range, or the system,
	// gives now (a machine that sets a range may allow no other port).
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GEOSCOPE_TEST_PORTS", p+"-"+p)
	if got, err := Port(); err != nil || got != p {
		t.Errorf("GEOSCOPE_TEST_PORTS=%s-%s: port %q (%v), want %s", p, p, got, err, p)
	}
	for _, bad := range []string{p, p + "-1", "0-" + p, "a-b"} {
		t.Setenv("GEOSCOPE_TEST_PORTS", bad)
		if _, err := Port(); err == nil || !strings.Contains(err.Error(), "want a range LO-HI") {
			t.Errorf("GEOSCOPE_TEST_PORTS=%q: %v, want an error asking for a range", bad, err)
		}
	}
}
