package report

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
)

// withOrder is a decision removing one participant located in CN under
// order id, which the entry states as o (of cn.cac).
func withOrder(n int, at time.Time, id string, o registry.Order) *rb {
	o.Authority, o.LegalBasis = "cn.cac", "fixture-legal-basis"
	if o.Demands == nil {
		o.Demands = []string{"remove_participants"}
	}
	b := newRec(fmt.Sprintf("00000000-0000-7000-8000-0000000002%02x", n), at, fmt.Sprintf("m-bounds-%d", n), "acct-bounds")
	b.rec.Decision.OrderIDs = []string{id}
	b.rec.Orders[id] = o
	b.rec.Authorities["cn.cac"] = fixtureAuthorities["cn.cac"]
	b.rec.Decision.Actions = append(b.rec.Decision.Actions, decision.Action{
		Type: decision.RemoveParticipant, MeetingID: b.rec.Decision.MeetingID, ParticipantID: fmt.Sprintf("p-%d", n),
		OrderID: id, Jurisdiction: []string{"CN"}, Country: "CN", Reason: "fixture-reason: located inside",
	})
	return b
}

func buildOf(t *testing.T, p Period, recs ...*engine.Record) *Report {
	t.Helper()
	r, err := Build(context.Background(), openFixture(t, recs), p, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// An order is received in the period when the day it was received, in
// UTC, is on or after the day of since and before the day of until: one
// received on the day the period ends is the next period's, and a time
// with an offset is read on its UTC day.
func TestReportOrdersReceivedWithinThePeriod(t *testing.T) {
	p := Period{Since: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		received string
		want     int
	}{
		{"2026-02-28", 0},
		{"2026-03-01", 1},
		{"2026-03-31", 1},
		{"2026-04-01", 0},
		{"2026-03-31T23:30:00-02:00", 0}, // 1 April, 01:30 UTC
		{"2026-04-01T01:00:00+02:00", 1}, // 31 March, 23:00 UTC
	} {
		r := buildOf(t, p, withOrder(1, at, "CN-R", registry.Order{Received: tc.received}).rec)
		if got := r.Totals.OrdersReceived.n; got != tc.want {
			t.Errorf("received %s: %d orders received in [2026-03-01, 2026-04-01), want %d", tc.received, got, tc.want)
		}
	}
}

// An order that expires when the period ends (its first instant no longer
// in force is until) expired after it, and is in force at its end; one
// that expires when the period begins expired in it.
func TestReportOrdersExpiringAtTheBoundsOfThePeriod(t *testing.T) {
	p := Period{Since: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	atEnd := withOrder(1, time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC), "CN-END", registry.Order{Received: "2026-01-01", Expires: "2026-04-01T00:00:00Z"})
	atStart := withOrder(2, time.Date(2026, 2, 27, 12, 0, 0, 0, time.UTC), "CN-START", registry.Order{Received: "2026-01-01", Expires: "2026-03-01T00:00:00Z"})
	// Stated as not in force in the period.
	stale := newRec("00000000-0000-7000-8000-0000000002ff", time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), "m-stale", "acct-bounds")
	stale.rec.Decision.OrdersNotInForce = []decision.OrderStatus{{OrderID: "CN-START", Status: registry.StatusExpired}}
	stale.rec.OrdersNotInForce = map[string]registry.Order{"CN-START": atStart.rec.Orders["CN-START"]}
	stale.rec.Authorities["cn.cac"] = fixtureAuthorities["cn.cac"]
	stale.block("order_not_in_force", decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-x", OrderID: "CN-START", Country: "CN"})

	st := buildOf(t, p, atEnd.rec, atStart.rec, stale.rec).Totals.OrdersByStatus
	atEndOf := map[string]int{}
	for _, s := range st.AtEnd {
		atEndOf[s.Status] = s.Orders.n
	}
	if st.Orders.n != 2 || st.ExpiredInPeriod.n != 1 || st.InForceDuringPeriod.n != 1 ||
		atEndOf[registry.StatusInForce] != 1 || atEndOf[registry.StatusExpired] != 1 {
		t.Errorf("orders %d, expired in the period %d, in force during it %d, at its end %v; want 2, 1 (CN-START), 1 (CN-END), 1 in force and 1 expired",
			st.Orders.n, st.ExpiredInPeriod.n, st.InForceDuringPeriod.n, atEndOf)
	}
}

// An order that states a demand twice is evaluated once for it in each
// decision.
func TestReportDemandStatedTwiceIsEvaluatedOnce(t *testing.T) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	r := buildOf(t, fixturePeriod, withOrder(1, at, "CN-TWICE", registry.Order{Received: "2026-03-01", Demands: []string{"remove_participants", "remove_participants"}}).rec)
	if len(r.Totals.Demands) != 1 {
		t.Fatalf("demands %+v, want remove_participants alone", r.Totals.Demands)
	}
	if d := r.Totals.Demands[0]; d.Evaluated.n != 1 || d.Granted.n != 1 || r.Totals.DemandsTotal.Evaluated.n != 1 {
		t.Errorf("remove_participants evaluated %d, granted %d, all demands evaluated %d; want 1, 1, 1", d.Evaluated.n, d.Granted.n, r.Totals.DemandsTotal.Evaluated.n)
	}
}

// WithDefaults fills in the year to date: until the start of the UTC day
// after now, since 1 January of the year of the period's last instant.
func TestPeriodWithDefaults(t *testing.T) {
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name string
		p    Period
		now  time.Time
		want Period
	}{
		{"nothing given", Period{}, utc(2026, 3, 5, 14), Period{utc(2026, 1, 1, 0), utc(2026, 3, 6, 0)}},
		{"on the last day of a year", Period{}, utc(2026, 12, 31, 23), Period{utc(2026, 1, 1, 0), utc(2027, 1, 1, 0)}},
		{"now with an offset", Period{}, time.Date(2027, 1, 1, 1, 0, 0, 0, time.FixedZone("+02", 2*3600)), Period{utc(2026, 1, 1, 0), utc(2027, 1, 1, 0)}},
		{"until given, on 1 January", Period{Until: utc(2027, 1, 1, 0)}, utc(2027, 6, 1, 0), Period{utc(2026, 1, 1, 0), utc(2027, 1, 1, 0)}},
		{"since given", Period{Since: utc(2025, 7, 1, 0)}, utc(2026, 3, 5, 14), Period{utc(2025, 7, 1, 0), utc(2026, 3, 6, 0)}},
	} {
		if got := tc.p.WithDefaults(tc.now); !got.Since.Equal(tc.want.Since) || !got.Until.Equal(tc.want.Until) {
			t.Errorf("%s: [%v, %v), want [%v, %v)", tc.name, got.Since, got.Until, tc.want.Since, tc.want.Until)
		}
	}
}

// A chart draws a hidden count as long as what its marker says, never as
// long as its true count: "<5" as 4 whatever it hides, "5+" as 5.
func TestChartDrawsHiddenCountsByTheirMarkers(t *testing.T) {
	cells := []Cell{
		{n: 5, min: 5},                  // shown 5
		{n: 1, min: 5},                  // <5
		{n: 4, min: 5},                  // <5
		{n: 40, min: 5, withheld: true}, // 5+
		{n: 8, min: 5},                  // shown 8, the longest
	}
	var in []chartInput
	for i, c := range cells {
		in = append(in, chartInput{label: fmt.Sprint(i), cell: c})
	}
	c := layout("chart", "chart", geometry{width: 400, barX: 0, barMax: 800}, in, 5)
	w := func(i int) int { return c.Rows[i].W }
	if w(4) != 800 || w(0) != 500 || w(3) != 500 || w(1) != 400 || w(2) != 400 {
		t.Errorf("bars %d (5), %d and %d (<5), %d (5+), %d (8); want 500, 400, 400, 500, 800", w(0), w(1), w(2), w(3), w(4))
	}
	if !c.Rows[1].Suppressed || c.Rows[1].Value != "<5" || c.Rows[3].Value != "5+" || c.Rows[0].Suppressed {
		t.Errorf("rows %+v", c.Rows)
	}
}

// An order first stated in force after the period by two entries decided
// in the same nanosecond is read from the first of them in the ledger's
// order (time, then decision id), as a reading of every later entry reads
// it, whichever was recorded first.
func TestReportOrderFirstEnforcedLaterByEntriesOfOneInstant(t *testing.T) {
	p := Period{Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}
	at := time.Date(2026, 2, 10, 12, 0, 0, 0, time.UTC)
	// The registry changed between the two replicas that decided them:
	// the first in the ledger's order says the order was received in
	// January, the other (recorded first) in February.
	second := withOrder(2, at, "CN-TIE", registry.Order{Received: "2026-02-03"})
	first := withOrder(1, at, "CN-TIE", registry.Order{Received: "2026-01-15"})
	if got := buildOf(t, p, second.rec, first.rec).Totals.OrdersReceived.n; got != 1 {
		t.Errorf("%d orders received in January, want 1 (CN-TIE, as its first entry after it states)", got)
	}
}
