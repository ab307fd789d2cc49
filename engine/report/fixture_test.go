package report

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

// The fixture's registry: the 2020 orders restated in 2026, and a second
// authority with a small number of decisions whose cells are suppressed.
var (
	fixtureAuthorities = map[string]registry.Authority{
		"cn.cac": {Name: "Cyberspace Administration of China", Jurisdiction: []string{"CN"}},
		"ru.rkn": {Name: "Roskomnadzor", Jurisdiction: []string{"RU"}},
	}
	fixtureOrders = map[string]registry.Order{
		// Like CN-2020-0601: end the commemoration meetings, suspend their hosts.
		"CN-2026-0601": {Authority: "cn.cac", Demands: []string{"end_meeting", "suspend_account"}, LegalBasis: "fixture-legal-basis", Received: "2026-01-05"},
		// Like CN-2020-0602: a meeting held entirely in mainland China;
		// in force from March, revoked in May.
		"CN-2026-0602": {Authority: "cn.cac", Demands: []string{"end_meeting"}, LegalBasis: "fixture-legal-basis", Received: "2025-12-20",
			Effective: "2026-03-01", Revoked: &registry.Revocation{Date: "2026-05-20", Reason: "fixture-revocation"}},
		// Received in May, in force only from September.
		"CN-2026-0901": {Authority: "cn.cac", Demands: []string{"remove_participants"}, LegalBasis: "fixture-legal-basis", Received: "2026-05-10",
			Effective: "2026-09-01"},
		// Received at the end of the period, first enforced after it.
		"CN-2026-0630": {Authority: "cn.cac", Demands: []string{"remove_participants"}, LegalBasis: "fixture-legal-basis", Received: "2026-06-30"},
		// In force until the end of May.
		"RU-2026-0001": {Authority: "ru.rkn", Demands: []string{"remove_participants"}, LegalBasis: "fixture-legal-basis", Received: "2026-04-01",
			Expires: "2026-05-31"},
	}
	fixturePeriod = Period{
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Until: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC),
	}
	geoJanuary = decision.Geo{Database: "DBIP-Country-Lite", Build: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	geoApril   = decision.Geo{Database: "DBIP-Country-Lite", Build: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	bundlesV1  = map[string]string{"policies": "sha256:p1", "registry": "sha256:r1"}
	bundlesV2  = map[string]string{"policies": "sha256:p2", "registry": "sha256:r2"}
)

// rb builds one engine.Record the way the engine would, with fixed ids and
// times.
type rb struct {
	rec *engine.Record
}

func newRec(id string, at time.Time, meeting, account string, orders ...string) *rb {
	d := &decision.Decision{
		DecisionID: id, Time: at, MeetingID: meeting,
		Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{},
		OrderIDs: orders, Geo: geoJanuary, Bundles: bundlesV1,
	}
	if at.After(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
		d.Geo, d.Bundles = geoApril, bundlesV2
	}
	r := &engine.Record{Decision: d, AccountID: account, Orders: map[string]registry.Order{}, Authorities: map[string]registry.Authority{}}
	for _, id := range orders {
		o := fixtureOrders[id]
		r.Orders[id] = o
		r.Authorities[o.Authority] = fixtureAuthorities[o.Authority]
	}
	return &rb{rec: r}
}

func (b *rb) jurisdiction(order string) []string {
	return fixtureAuthorities[fixtureOrders[order].Authority].Jurisdiction
}

// remove adds remove_participant actions for participants located in country.
func (b *rb) remove(order, country string, ids ...string) *rb {
	for _, id := range ids {
		b.rec.Decision.Actions = append(b.rec.Decision.Actions, decision.Action{
			Type: decision.RemoveParticipant, MeetingID: b.rec.Decision.MeetingID, ParticipantID: id,
			OrderID: order, Jurisdiction: b.jurisdiction(order), Country: country, Reason: "fixture-reason: located inside",
		})
		b.rec.Networks = append(b.rec.Networks, netip.MustParsePrefix("1.0.16.0/24"))
	}
	return b
}

func (b *rb) deny(order, country, id string) *rb {
	b.rec.Admission = true
	allow := false
	b.rec.Decision.AllowJoin = &allow
	b.rec.Decision.Actions = append(b.rec.Decision.Actions, decision.Action{
		Type: decision.DenyJoin, MeetingID: b.rec.Decision.MeetingID, ParticipantID: id,
		OrderID: order, Jurisdiction: b.jurisdiction(order), Country: country, Reason: "fixture-reason: located inside",
	})
	b.rec.Networks = append(b.rec.Networks, netip.MustParsePrefix("36.110.1.0/24"))
	return b
}

// wide adds an end_meeting or suspend_account action; reached is what the
// engine records for it.
func (b *rb) wide(typ, order, accountCountry string, reached map[string]int) *rb {
	a := decision.Action{Type: typ, MeetingID: b.rec.Decision.MeetingID, OrderID: order, Jurisdiction: b.jurisdiction(order), Reason: "fixture-reason: everyone inside"}
	if typ == decision.SuspendAccount {
		a.AccountID, a.Country = b.rec.AccountID, accountCountry
	}
	b.rec.Decision.Actions = append(b.rec.Decision.Actions, a)
	b.rec.Networks = append(b.rec.Networks, netip.Prefix{})
	b.rec.Reached = reached
	return b
}

// notInForce reports an order that targeted the meeting but was not in
// force at the decision's time.
func (b *rb) notInForce(order, status string) *rb {
	o := fixtureOrders[order]
	b.rec.Decision.OrdersNotInForce = append(b.rec.Decision.OrdersNotInForce, decision.OrderStatus{OrderID: order, Status: status})
	if b.rec.OrdersNotInForce == nil {
		b.rec.OrdersNotInForce = map[string]registry.Order{}
	}
	b.rec.OrdersNotInForce[order] = o
	b.rec.Authorities[o.Authority] = fixtureAuthorities[o.Authority]
	return b
}

func (b *rb) refuse(order, demand, code string, outside int) *rb {
	b.rec.Decision.Refused = append(b.rec.Decision.Refused, decision.Refusal{
		OrderID: order, Demand: demand, Code: code, Reason: "fixture-reason: refused " + code, AffectedOutside: outside,
	})
	return b
}

func (b *rb) block(code string, a decision.Action) *rb {
	b.rec.Decision.GuardBlocked = append(b.rec.Decision.GuardBlocked, decision.Blocked{Action: a, Code: code, Reason: "fixture-reason: blocked " + code})
	return b
}

func (b *rb) plainAdmission() *rb {
	b.rec.Admission = true
	allow := true
	b.rec.Decision.AllowJoin = &allow
	return b
}

func day(month time.Month, d, hour int) time.Time {
	return time.Date(2026, month, d, hour, 0, 0, 0, time.UTC)
}

// fixtureRecords are the 2020 cases, restated in the first half of 2026.
func fixtureRecords() []*engine.Record {
	var out []*engine.Record
	add := func(b *rb) { out = append(out, b.rec) }
	n := 0
	id := func() string { n++; return fmt.Sprintf("00000000-0000-7000-8000-%012d", n) }

	// Before the period: not counted.
	add(newRec(id(), time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), "june4-early", "acct-us-0", "CN-2026-0601").
		refuse("CN-2026-0601", "end_meeting", "affects_outside", 3).refuse("CN-2026-0601", "suspend_account", "affects_outside", 4))

	// Meeting B, many times over: a US host, participants in CN, the US and
	// Hong Kong. Ending the meeting and suspending the account are refused;
	// the participants located in CN are removed.
	for i := range 6 {
		m := fmt.Sprintf("june4-b%d", i)
		add(newRec(id(), day(time.January, 10+i, 12), m, "acct-us-b", "CN-2026-0601").
			remove("CN-2026-0601", "CN", m+"-p1", m+"-p2").
			refuse("CN-2026-0601", "end_meeting", "affects_outside", 3).
			refuse("CN-2026-0601", "suspend_account", "affects_outside", 4))
	}
	// Meeting A: nobody in CN. Both demands refused, nothing carried out.
	for i := range 2 {
		add(newRec(id(), day(time.February, 3+i, 9), fmt.Sprintf("june4-a%d", i), "acct-us-a", "CN-2026-0601").
			refuse("CN-2026-0601", "end_meeting", "affects_outside", 61).
			refuse("CN-2026-0601", "suspend_account", "affects_outside", 61))
	}
	// Meeting C: a Hong Kong host; the CN participants are removed.
	add(newRec(id(), day(time.February, 20, 15), "june4-c", "acct-hk-c", "CN-2026-0601").
		remove("CN-2026-0601", "CN", "cn-01", "cn-02", "cn-03", "cn-04", "cn-05", "cn-06", "cn-07", "cn-08").
		refuse("CN-2026-0601", "end_meeting", "affects_outside", 7).
		refuse("CN-2026-0601", "suspend_account", "affects_outside", 7))
	// Meeting D, scheduled: participants in CN asking to join are denied
	// (join-time decisions decide nothing else).
	for i := range 3 {
		add(newRec(id(), day(time.March, 2+i, 8), "june4-d", "acct-us-d", "CN-2026-0601").
			deny("CN-2026-0601", "CN", fmt.Sprintf("joiner-cn-%d", i)))
	}
	// The control meeting, entirely in mainland China: ended, and its
	// participants (the host included) removed.
	add(newRec(id(), day(time.March, 15, 10), "control-cn", "acct-cn-e", "CN-2026-0602").
		wide(decision.EndMeeting, "CN-2026-0602", "", map[string]int{"CN": 6}).
		remove("CN-2026-0602", "CN", "cn-01", "cn-02", "cn-03", "cn-04", "cn-05", "acct-cn-e"))
	// An account registered in CN with everyone in CN: suspended.
	add(newRec(id(), day(time.April, 2, 10), "cn-hosted", "acct-cn-f", "CN-2026-0601").
		wide(decision.EndMeeting, "CN-2026-0601", "", map[string]int{"CN": 3}).
		wide(decision.SuspendAccount, "CN-2026-0601", "CN", map[string]int{"CN": 3}))
	// A malicious policy, twice: the guard blocks every outside action; the
	// participant located in CN is removed.
	for i := range 2 {
		m := fmt.Sprintf("june4-b-mal%d", i)
		// It refuses nothing, so neither meeting-wide demand is decided.
		b := newRec(id(), day(time.April, 10+i, 11), m, "acct-us-b", "CN-2026-0601").
			remove("CN-2026-0601", "CN", "p-cn")
		for _, p := range []struct{ id, country string }{{"p-us", "US"}, {"p-hk", "HK"}, {"p-tw", "TW"}} {
			b.block("outside_jurisdiction", decision.Action{Type: decision.RemoveParticipant, ParticipantID: p.id, OrderID: "CN-2026-0601", Country: p.country})
		}
		b.block("affects_outside", decision.Action{Type: decision.EndMeeting, MeetingID: m, OrderID: "CN-2026-0601"})
		b.block("affects_outside", decision.Action{Type: decision.SuspendAccount, AccountID: "acct-us-b", OrderID: "CN-2026-0601"})
		b.block("misstated_facts", decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-us", OrderID: "CN-2026-0601", Country: "CN"})
		b.block("unknown_order", decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "NOT-AN-ORDER"})
		add(b)
	}
	// The control meeting again, after its order was revoked, with the
	// September order not yet effective: a malicious policy cites both;
	// the guard blocks it, and nothing is carried out.
	add(newRec(id(), day(time.May, 25, 10), "control-cn", "acct-cn-e").
		notInForce("CN-2026-0602", "revoked").notInForce("CN-2026-0901", "not_yet_effective").
		block("order_not_in_force", decision.Action{Type: decision.EndMeeting, MeetingID: "control-cn", OrderID: "CN-2026-0602"}))
	// A second authority, with few decisions: its cells are suppressed.
	add(newRec(id(), day(time.May, 5, 14), "ru-meeting", "acct-ru-1", "RU-2026-0001").
		remove("RU-2026-0001", "RU", "ru-01", "ru-02"))
	add(newRec(id(), day(time.May, 6, 14), "ru-meeting-2", "acct-ru-2", "RU-2026-0001").
		refuse("RU-2026-0001", "remove_participants", "no_participants", 0))

	// Plain admissions and decisions with nothing to do: counted only.
	for i := range 7 {
		add(newRec(id(), day(time.June, 1, 9+i), "june4-d", "acct-us-d", "CN-2026-0601").plainAdmission())
	}
	for i := range 3 {
		add(newRec(id(), day(time.June, 2, 9+i), "ordinary", "acct-x").plainAdmission())
	}
	for i := range 2 {
		add(newRec(id(), day(time.June, 3, 9+i), "ordinary", "acct-x"))
	}

	// After the period: the order received on 30 June is first enforced in
	// July. It counts as received in the period, not as cited.
	add(newRec(id(), time.Date(2026, 7, 2, 10, 0, 0, 0, time.UTC), "m-after-period", "acct-us-z", "CN-2026-0630").
		remove("CN-2026-0630", "CN", "late-01"))
	return out
}

// openFixture records recs through a fresh SQLite ledger, closes it (which
// flushes the aggregate counts) and reopens it for reading.
func openFixture(t testing.TB, recs []*engine.Record) *ledger.Ledger {
	t.Helper()
	return openRecorded(t, recordFixture(t, recs))
}

// openRecorded opens the ledger of cfg for the test.
func openRecorded(t testing.TB, cfg ledger.Config) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// recordFixture records recs through a fresh SQLite ledger and closes it;
// cfg opens it again.
func recordFixture(t testing.TB, recs []*engine.Record) (cfg ledger.Config) {
	t.Helper()
	cfg = ledger.Config{DataDir: t.TempDir(), EngineVersion: "test", Logger: slog.New(slog.DiscardHandler)}
	recordInto(t, cfg, recs)
	return cfg
}

// recordInto records recs through the ledger of cfg and closes it.
func recordInto(t testing.TB, cfg ledger.Config, recs []*engine.Record) {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := l.Record(ctx, r); err != nil {
			t.Fatalf("recording %s: %v", r.Decision.DecisionID, err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
