package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

// Helpers of the report tests (report_*_test.go). They are prefixed rpt so
// they never collide with the helpers of other end-to-end tests.

// rptServe starts `geoscope serve` (server_helpers_test.go's serverProc)
// with the test GeoIP database and the ledger in dataDir, and waits for
// /health.
func rptServe(t *testing.T, dataDir string, args ...string) *serverProc {
	t.Helper()
	return startServe(t, serveOpts{args: append([]string{"--geoip-db", geotest.Standard(t), "--data-dir", dataDir}, args...)})
}

// rptStop ends s with SIGINT and waits for it: the ledger is committed and
// its counts flushed when it returns.
func rptStop(t *testing.T, s *serverProc) {
	t.Helper()
	if code := s.stop(syscall.SIGINT); code != 0 {
		t.Fatalf("geoscope serve exited %d after SIGINT:\n%s", code, s.logs)
	}
}

// rptSeed records, through the ledger package, a small first half of 2026
// into a SQLite ledger in dir: meeting B's pattern (CN participants
// removed, ending the meeting and suspending the account refused) six
// times, the control meeting entirely in CN ended, a CN participant denied
// admission, a guard block, and plain admissions.
func rptSeed(t *testing.T, dir string) {
	t.Helper()
	rptSeedLedger(t, ledger.Config{DataDir: dir})
}

// rptSeedLedger is rptSeed into any ledger.
func rptSeedLedger(t *testing.T, cfg ledger.Config) {
	t.Helper()
	ctx := context.Background()
	cfg.EngineVersion, cfg.Logger = "test", slog.New(slog.DiscardHandler)
	l, err := ledger.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cn := registry.Authority{Name: "Cyberspace Administration of China", Jurisdiction: []string{"CN"}}
	orders := map[string]registry.Order{
		"CN-2026-0601": {Authority: "cn.cac", Demands: []string{"end_meeting", "suspend_account"}, LegalBasis: "seed", Received: "2026-01-05"},
		"CN-2026-0602": {Authority: "cn.cac", Demands: []string{"end_meeting"}, LegalBasis: "seed", Received: "2026-01-06"},
	}
	n := 0
	rec := func(at time.Time, meeting, order string) *engine.Record {
		n++
		return &engine.Record{
			Decision: &decision.Decision{
				DecisionID: fmt.Sprintf("00000000-0000-7000-8000-%012d", n), Time: at, MeetingID: meeting,
				Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{},
				OrderIDs: []string{order},
				Geo:      decision.Geo{Database: "GeoIP2-Country", Build: geotest.BuildTime},
				Bundles:  map[string]string{"policies": "sha256:seed-p", "registry": "sha256:seed-r"},
			},
			AccountID: "acct-" + meeting, Orders: map[string]registry.Order{order: orders[order]},
			Authorities: map[string]registry.Authority{"cn.cac": cn},
		}
	}
	remove := func(r *engine.Record, ids ...string) {
		for _, id := range ids {
			r.Decision.Actions = append(r.Decision.Actions, decision.Action{Type: decision.RemoveParticipant, MeetingID: r.Decision.MeetingID,
				ParticipantID: id, OrderID: r.Decision.OrderIDs[0], Jurisdiction: []string{"CN"}, Country: "CN", Reason: "inside"})
			r.Networks = append(r.Networks, netip.MustParsePrefix("1.0.16.0/24"))
		}
	}
	var recs []*engine.Record
	for i := range 6 {
		r := rec(time.Date(2026, 2, 1+i, 12, 0, 0, 0, time.UTC), fmt.Sprintf("june4-b%d", i), "CN-2026-0601")
		remove(r, "p1", "p2")
		r.Decision.Refused = []decision.Refusal{
			{OrderID: "CN-2026-0601", Demand: "end_meeting", Code: "affects_outside", Reason: "x", AffectedOutside: 2},
			{OrderID: "CN-2026-0601", Demand: "suspend_account", Code: "affects_outside", Reason: "x", AffectedOutside: 3},
		}
		recs = append(recs, r)
	}
	ctl := rec(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), "control-cn", "CN-2026-0602")
	ctl.Decision.Actions = append(ctl.Decision.Actions, decision.Action{Type: decision.EndMeeting, MeetingID: "control-cn", OrderID: "CN-2026-0602", Jurisdiction: []string{"CN"}, Reason: "all inside"})
	ctl.Networks = append(ctl.Networks, netip.Prefix{})
	ctl.Reached = map[string]int{"CN": 6}
	remove(ctl, "c1", "c2", "c3", "c4", "c5")
	recs = append(recs, ctl)
	deny := rec(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), "june4-d", "CN-2026-0601")
	allow := false
	deny.Admission, deny.Decision.AllowJoin = true, &allow
	deny.Decision.Actions = append(deny.Decision.Actions, decision.Action{Type: decision.DenyJoin, MeetingID: "june4-d", ParticipantID: "j1", OrderID: "CN-2026-0601", Jurisdiction: []string{"CN"}, Country: "CN", Reason: "inside"})
	deny.Networks = append(deny.Networks, netip.MustParsePrefix("36.110.1.0/24"))
	recs = append(recs, deny)
	blocked := rec(time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), "june4-b9", "CN-2026-0601")
	blocked.Decision.GuardBlocked = []decision.Blocked{{Code: "outside_jurisdiction", Reason: "x", Action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-us", OrderID: "CN-2026-0601"}}}
	recs = append(recs, blocked)
	for i := range 6 {
		r := rec(time.Date(2026, 3, 4, 10+i, 0, 0, 0, time.UTC), "june4-d", "CN-2026-0601")
		ok := true
		r.Admission, r.Decision.AllowJoin = true, &ok
		recs = append(recs, r)
	}
	for _, r := range recs {
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
