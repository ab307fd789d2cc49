package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
)

// publishedSums lists the sums a published JSON report states, each as
// its total and its parts (values as published: a number or a marker),
// read from the JSON rather than from the code that builds the report.
// A missing row counts 0.
func publishedSums(t *testing.T, doc map[string]any) map[string][]any {
	t.Helper()
	sums := map[string][]any{}
	obj := func(v any) map[string]any { m, _ := v.(map[string]any); return m }
	list := func(v any) []any { l, _ := v.([]any); return l }
	groups := append([]any{doc["totals"]}, list(doc["authorities"])...)
	label := func(g map[string]any) string { return fmt.Sprint(g["authority"]) }

	for _, gv := range groups {
		g := obj(gv)
		who := label(g)
		for _, row := range append([]any{g["demands_total"]}, list(g["demands"])...) {
			r := obj(row)
			sums[who+" "+fmt.Sprint(r["demand"])+" outcomes"] = []any{r["evaluated"], r["granted"], r["nothing_carried_out"], r["narrowed"], r["refused"], r["not_decided"]}
		}
		for _, col := range []string{"evaluated", "granted", "nothing_carried_out", "narrowed", "refused", "not_decided"} {
			s := []any{obj(g["demands_total"])[col]}
			for _, row := range list(g["demands"]) {
				s = append(s, obj(row)[col])
			}
			sums[who+" "+col+" over demands"] = s
		}
		pa := obj(g["participant_actions"])
		sums[who+" participant actions"] = []any{pa["total"], pa["remove_participant"], pa["deny_join"]}
		for _, col := range []string{"remove_participant", "deny_join", "total"} {
			s := []any{pa[col]}
			for _, c := range list(g["participant_actions_by_country"]) {
				s = append(s, obj(c)[col])
				sums[who+" "+fmt.Sprint(obj(c)["country"])] = []any{obj(c)["total"], obj(c)["remove_participant"], obj(c)["deny_join"]}
			}
			sums[who+" "+col+" over countries"] = s
		}
		// Each refused demand is narrowed or refused, with one reason.
		reasons := []any{obj(g["demands_total"])["narrowed"], obj(g["demands_total"])["refused"]}
		for _, c := range list(g["refusal_reasons"]) {
			reasons = append(reasons, obj(c)["count"])
		}
		sums[who+" refusal reasons"] = reasons
		mw := obj(g["meeting_wide"])
		sums[who+" action records"] = []any{obj(g["outside_affected"])["action_records"], pa["total"], mw["meetings_ended"], mw["accounts_suspended"]}
		s := []any{g["guard_blocks_total"]}
		for _, b := range list(g["guard_blocks"]) {
			s = append(s, obj(b)["count"])
		}
		sums[who+" guard blocks"] = s
	}
	totals := obj(doc["totals"])
	summary := obj(doc["summary"])
	sums["decisions recorded"] = []any{totals["decisions"], summary["decisions_recorded"], summary["admissions_recorded"]}
	geo := []any{totals["decisions"]}
	for _, d := range list(doc["geoip_databases"]) {
		geo = append(geo, obj(d)["decisions"])
	}
	sums["decisions by GeoIP database"] = geo
	// Each country's and each code's row, across authorities (a row an
	// authority lacks is 0).
	keyed := func(list []any, key, name string) any {
		for _, x := range list {
			if obj(x)[key] == name {
				return x
			}
		}
		return nil
	}
	for _, spec := range []struct{ list, key, value string }{
		{"participant_actions_by_country", "country", "total"},
		{"participant_actions_by_country", "country", "remove_participant"},
		{"refusal_reasons", "code", "count"},
		{"guard_blocks", "code", "count"},
	} {
		for _, row := range list(totals[spec.list]) {
			name := fmt.Sprint(obj(row)[spec.key])
			s := []any{obj(row)[spec.value]}
			for _, a := range list(doc["authorities"]) {
				if x := keyed(list(obj(a)[spec.list]), spec.key, name); x != nil {
					s = append(s, obj(x)[spec.value])
				}
			}
			sums[spec.list+" "+name+" "+spec.value+" over authorities"] = s
		}
	}
	for _, path := range [][]string{
		{"participant_actions", "total"}, {"participant_actions", "remove_participant"}, {"meeting_wide", "meetings_ended"},
		{"outside_affected", "action_records"}, {"demands_total", "granted"}, {"demands_total", "refused"}, {"guard_blocks_total"},
	} {
		at := func(g map[string]any) any {
			for _, k := range path[:len(path)-1] {
				g = obj(g[k])
			}
			return g[path[len(path)-1]]
		}
		s := []any{at(totals)}
		for _, a := range list(doc["authorities"]) {
			s = append(s, at(obj(a)))
		}
		sums[fmt.Sprint(path)+" over authorities"] = s
	}
	return sums
}

// checkNoSumGivesAway fails when a published sum has exactly one hidden
// member: subtracting the others from it would give that one away.
func checkNoSumGivesAway(t *testing.T, r *Report) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.JSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	// Rows are in the order of what is shown: a hidden count's place
	// among shown ones would bound it (after a 5 shown, a 5+ is 5).
	groups := append([]any{doc["totals"]}, doc["authorities"].([]any)...)
	for _, gv := range groups {
		g := gv.(map[string]any)
		for _, spec := range [][2]string{{"participant_actions_by_country", "total"}, {"refusal_reasons", "count"}, {"guard_blocks", "count"}} {
			rows, _ := g[spec[0]].([]any)
			hiddenSeen, last, lastName := false, math.Inf(1), ""
			for _, row := range rows {
				name := fmt.Sprint(row.(map[string]any)["country"], row.(map[string]any)["code"])
				switch v := row.(map[string]any)[spec[1]].(type) {
				case string:
					// Hidden counts by name: in the order of their true
					// counts, their places would bound them.
					if hiddenSeen && name < lastName {
						t.Errorf("%v %s: hidden %s after hidden %s; hidden rows must be in name order", g["authority"], spec[0], name, lastName)
					}
					hiddenSeen, lastName = true, name
				case float64:
					if hiddenSeen || v > last {
						t.Errorf("%v %s: %v after a hidden or smaller count; rows must be ordered by what is shown", g["authority"], spec[0], row)
					}
					last = v
				}
			}
		}
	}
	// The refusal reasons add up to the narrowed and the refused only
	// when each refusal states one reason: which the JSON cannot tell.
	reasonsHold := map[string]bool{}
	for _, g := range append([]Group{r.Totals}, r.Authorities...) {
		n := 0
		for _, c := range g.RefusalReasons {
			n += c.Count.n
		}
		reasonsHold[g.Authority] = n == g.DemandsTotal.Narrowed.n+g.DemandsTotal.Refused.n
	}
	for name, members := range publishedSums(t, doc) {
		// The first member is the total, or the first two for the
		// refusal reasons (narrowed + refused).
		totals := 1
		if who, ok := strings.CutSuffix(name, " refusal reasons"); ok {
			if !reasonsHold[who] {
				continue
			}
			totals = 2
		}
		hidden, hiddenAt, sum := 0, -1, 0.0
		for i, m := range members {
			sign := -1.0
			if i < totals {
				sign = 1
			}
			switch v := m.(type) {
			case string:
				hidden, hiddenAt = hidden+1, i
			case float64:
				sum += sign * v
			}
		}
		if hidden != 1 {
			continue
		}
		// What the others give it: 0 is a zero the report masked among
		// the parts of a suppressed total, known 0 by a reader; not a
		// count given away.
		given := sum
		if hiddenAt < totals {
			given = -sum
		}
		// A value the marker rules out means the sum does not hold in
		// this report (a refusal with two reasons counts under both).
		marker := members[hiddenAt].(string)
		var threshold float64
		if strings.HasPrefix(marker, "<") {
			fmt.Sscan(marker[1:], &threshold)
			if given < 1 || given >= threshold {
				continue
			}
		} else {
			fmt.Sscan(strings.TrimSuffix(marker, "+"), &threshold)
			if given < threshold {
				continue
			}
		}
		if given != 0 {
			t.Errorf("%s: %v has one hidden member, which the others give away (%v)", name, members, given)
		}
	}
}

// checkNothingPinned fails when bounding every hidden count through the
// report's sums and bounds pins one that is not 0 to a single value, or
// when a bound excludes the true count (which would make the check
// unsound). It uses the report's own relations: the JSON check above is
// the one that reads what is published.
func checkNothingPinned(t *testing.T, r *Report) {
	t.Helper()
	checkNothingPinnedWith(t, r, nil)
}

// checkNothingPinnedWith is checkNothingPinned with inequalities a reader
// knows stated again by the test, apart from the report's own list.
func checkNothingPinnedWith(t *testing.T, r *Report, extra []bound) {
	t.Helper()
	live, liveBounds := holding(r.relations(), append(r.bounds(), extra...))
	for c, v := range propagate(live, liveBounds) {
		if int64(c.n) < v.lo || int64(c.n) > v.hi {
			t.Errorf("the bounds [%d, %d] of a cell shown %s exclude its count %d", v.lo, v.hi, c, c.n)
		}
		if k := known(c); c.Suppressed() && c.n > 0 && v.lo == v.hi && k.lo != k.hi && !allHidden(live, c) {
			// (A "<2" is 1 by what it says; nothing to protect.)
			t.Errorf("a cell shown %s is pinned to %d by the sums and bounds", c, c.n)
		}
	}
}

func TestNoPublishedSumGivesASuppressedCountAway(t *testing.T) {
	l := openFixture(t, fixtureRecords())
	for _, minCount := range []int{2, 3, 5, 10, 20} {
		r, err := Build(context.Background(), l, fixturePeriod, Options{MinCount: minCount})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint("min count ", minCount), func(t *testing.T) {
			checkNoSumGivesAway(t, r)
			if minCount > 2 {
				// A "<2" is 1 by what it says, and pins what it adds up
				// to: at a threshold of 2 there is nothing to protect.
				checkNothingPinned(t, r)
			}
		})
	}
}

// A case where a count was given away: ten decisions each removing one participant
// and refusing to end the meeting, and one ending a meeting everyone was
// in CN for. "Meetings ended <5" was the action records (12) minus the
// participant actions (11), and "end_meeting granted <5" the demands
// evaluated (11) minus the narrowed (10).
func TestMeetingsEndedCannotBeSubtracted(t *testing.T) {
	var recs []*engine.Record
	add := func(b *rb) { recs = append(recs, b.rec) }
	n := 0
	id := func() string { n++; return fmt.Sprintf("00000000-0000-7000-9000-%012d", n) }
	{
		for i := range 10 {
			add(newRec(id(), day(time.February, 1+i, 10), "june4-b", "acct-us-b", "CN-2026-0601").
				remove("CN-2026-0601", "CN", fmt.Sprint("p", i)).
				refuse("CN-2026-0601", "end_meeting", "affects_outside", 1).
				refuse("CN-2026-0601", "suspend_account", "affects_outside", 2))
		}
		add(newRec(id(), day(time.March, 1, 10), "june4-a", "acct-us-a", "CN-2026-0601").
			wide("end_meeting", "CN-2026-0601", "", map[string]int{"CN": 2}).
			refuse("CN-2026-0601", "suspend_account", "affects_outside", 1))
	}
	r, err := Build(context.Background(), openFixture(t, recs), fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tot := r.Totals
	if !tot.MeetingWide.MeetingsEnded.Suppressed() || tot.MeetingWide.MeetingsEnded.n != 1 {
		t.Fatalf("meetings ended %s (%d), want 1 shown as <5", tot.MeetingWide.MeetingsEnded, tot.MeetingWide.MeetingsEnded.n)
	}
	if !tot.OutsideAffected.ActionRecords.Suppressed() && !tot.ParticipantActions.Total.Suppressed() {
		t.Errorf("action records %s and participant actions %s are both shown: their difference is the meetings ended",
			tot.OutsideAffected.ActionRecords, tot.ParticipantActions.Total)
	}
	checkNoSumGivesAway(t, r)
}

// A case where a count was given away: rows sorted by their true counts put a
// withheld 5+ right after a 5 shown, so it was 5, and the total of the
// row across authorities then gave another authority's <5 away.
func TestRowOrderGivesNothingAway(t *testing.T) {
	var recs []*engine.Record
	n := 0
	id := func() string { n++; return fmt.Sprintf("00000000-0000-7000-a000-%012d", n) }
	remove := func(order, country string, k int) {
		for i := range k {
			recs = append(recs, newRec(id(), day(time.February, 1+n%27, 10), "m-"+country, "acct-x", order).
				remove(order, country, fmt.Sprint(country, i)).rec)
		}
	}
	remove("CN-2026-0601", "DE", 5)
	remove("CN-2026-0601", "FR", 5)
	remove("CN-2026-0601", "GB", 2)
	remove("CN-2026-0601", "IT", 3)
	remove("RU-2026-0001", "FR", 2)
	remove("RU-2026-0001", "JP", 3)
	r, err := Build(context.Background(), openFixture(t, recs), fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkNoSumGivesAway(t, r)
}

// allHidden reports whether every sum c is in has every member hidden:
// then nothing more can be withheld (the notes say what that gives away).
func allHidden(live []relation, c *Cell) bool {
	for _, r := range live {
		if slices.Contains(r.members(), c) && slices.ContainsFunc(r.members(), func(m *Cell) bool { return !m.Suppressed() && m.n > 0 }) {
			return false
		}
	}
	return true
}

// withOrders adds orders to the fixture's registry for the test.
func withOrders(t *testing.T, orders map[string]registry.Order) {
	for k, v := range orders {
		fixtureOrders[k] = v
	}
	t.Cleanup(func() {
		for k := range orders {
			delete(fixtureOrders, k)
		}
	})
}

// ledgerOf collects records with ids and times of their own.
type ledgerOf struct {
	out []*engine.Record
	n   int
}

func (s *ledgerOf) id() string { s.n++; return fmt.Sprintf("00000000-0000-7000-b000-%012d", s.n) }
func (s *ledgerOf) at() time.Time {
	return day(time.February, 1+s.n%27, 10).Add(time.Duration(s.n) * time.Minute)
}
func (s *ledgerOf) add(b *rb) { s.out = append(s.out, b.rec) }

func (s *ledgerOf) build(t *testing.T) *Report {
	t.Helper()
	r, err := Build(context.Background(), openFixture(t, s.out), fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation {
		t.Fatalf("the ledger has a violation: %s", r.ViolationText)
	}
	return r
}

func (s *ledgerOf) guardBlock(order, code string) {
	s.add(newRec(s.id(), s.at(), "m-"+code, "acct-x", order).
		block(code, decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p", OrderID: order, Country: "US"}))
}

// Cases where a hidden count was pinned by one sum and
// what its markers say, or by a bound, or by the dates beside it.
func TestHiddenCountsArePinnedByNothing(t *testing.T) {
	// Guard blocks: five outside_jurisdiction, and one each of these.
	for name, small := range map[string][]string{
		"7 = 5 + <5 + <5: both 1": {"misstated_facts", "affects_outside"},
		"6 = 5+ + <5: 5 and 1":    {"misstated_facts"},
	} {
		t.Run(name, func(t *testing.T) {
			s := &ledgerOf{}
			for range 5 {
				s.guardBlock("CN-2026-0601", "outside_jurisdiction")
			}
			for _, code := range small {
				s.guardBlock("CN-2026-0601", code)
			}
			r := s.build(t)
			checkNoSumGivesAway(t, r)
			checkNothingPinned(t, r)
		})
	}
	t.Run("end_meeting granted is the meetings ended", func(t *testing.T) {
		s := &ledgerOf{}
		for i := range 6 {
			s.add(newRec(s.id(), day(time.March, 2+i, 10), fmt.Sprint("m", i), "acct", "CN-2026-0602").
				wide(decision.EndMeeting, "CN-2026-0602", "", map[string]int{"CN": 2}))
		}
		for i := range 3 {
			s.add(newRec(s.id(), day(time.April, 2+i, 10), fmt.Sprint("n", i), "acct", "CN-2026-0602").
				refuse("CN-2026-0602", "end_meeting", "affects_outside", 0))
		}
		r := s.build(t)
		d, mw := r.Totals.demand("end_meeting"), r.Totals.MeetingWide
		if d.Granted.Suppressed() != mw.MeetingsEnded.Suppressed() {
			t.Errorf("end_meeting granted %s, meetings ended %s: the same count, shown once and hidden once", d.Granted, mw.MeetingsEnded)
		}
		checkNoSumGivesAway(t, r)
		checkNothingPinned(t, r)
	})
	t.Run("a 5+ in force at the end under 5 in force during the period", func(t *testing.T) {
		orders := map[string]registry.Order{}
		for i := range 5 {
			orders[fmt.Sprintf("CN-X%d", i)] = registry.Order{Authority: "cn.cac", Demands: []string{"remove_participants"}, Received: "2025-11-01"}
		}
		for i := range 2 {
			orders[fmt.Sprintf("CN-R%d", i)] = registry.Order{Authority: "cn.cac", Demands: []string{"remove_participants"}, Received: "2025-11-01",
				Revoked: &registry.Revocation{Date: "2025-12-01", Reason: "x"}}
		}
		withOrders(t, orders)
		s := &ledgerOf{}
		for i := range 5 {
			o := fmt.Sprintf("CN-X%d", i)
			s.add(newRec(s.id(), s.at(), "m", "acct", o).remove(o, "CN", "p"))
		}
		s.add(newRec(s.id(), s.at(), "m", "acct").notInForce("CN-R0", "revoked").notInForce("CN-R1", "revoked").
			block("order_not_in_force", decision.Action{Type: decision.EndMeeting, MeetingID: "m", OrderID: "CN-R0"}))
		r := s.build(t)
		st := r.Totals.OrdersByStatus
		if st.AtEnd[0].Orders.Withheld() && !st.InForceDuringPeriod.Suppressed() && st.InForceDuringPeriod.n == r.MinCount {
			t.Errorf("in force at the end %s, during the period %s: the 5+ is 5", st.AtEnd[0].Orders, st.InForceDuringPeriod)
		}
		checkNoSumGivesAway(t, r)
		checkNothingPinned(t, r)
	})
	t.Run("two days of use under a hidden count", func(t *testing.T) {
		s := &ledgerOf{}
		for i := range 5 {
			s.add(newRec(s.id(), day(time.February, 1+i, 10), "m", "acct", "CN-2026-0601").
				refuse("CN-2026-0601", "end_meeting", "affects_outside", 0))
		}
		for _, d := range []int{10, 20} {
			s.add(newRec(s.id(), day(time.May, d, 10), "m", "acct", "CN-2026-0601").
				refuse("CN-2026-0601", "end_meeting", "affects_outside", 0))
		}
		r := s.build(t)
		for _, seen := range [][]Seen{r.GeoIPDatabases, r.BundleRevisions} {
			for _, x := range seen {
				if x.Decisions.Suppressed() && x.LastSeen != "" {
					t.Errorf("%s %s: %s decisions, first used %s, last %s: two days tell two decisions", x.Name, x.Version, x.Decisions, x.FirstSeen, x.LastSeen)
				}
			}
		}
		checkNoSumGivesAway(t, r)
		checkNothingPinned(t, r)
	})
}

// Random ledgers: no sum gives a count away, and bounding each hidden
// count through every sum pins none that another withheld count could
// have freed.
func TestRandomReportsPinNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	codes := []string{"affects_outside", "no_participants", "exempt", "legal_review"}
	blocks := []string{"outside_jurisdiction", "misstated_facts", "unknown_order", "affects_outside"}
	for trial := range 40 {
		s := &ledgerOf{}
		for range 3 + rng.IntN(25) {
			order := "CN-2026-0601"
			if rng.IntN(4) == 0 {
				order = "RU-2026-0001"
			}
			country := map[string]string{"CN-2026-0601": "CN", "RU-2026-0001": "RU"}[order]
			b := newRec(s.id(), s.at(), fmt.Sprint("m", s.n), "acct", order)
			switch rng.IntN(7) {
			case 0:
				b.remove(order, country, "p1")
			case 1:
				if order == "CN-2026-0601" {
					b.wide(decision.EndMeeting, order, "", map[string]int{"CN": 2})
				} else {
					b.remove(order, country, "p1", "p2")
				}
			case 2:
				if order == "CN-2026-0601" {
					b.wide(decision.SuspendAccount, order, "CN", map[string]int{"CN": 1})
				}
			case 3:
				b.deny(order, country, "j1")
			case 4:
				b.block(blocks[rng.IntN(len(blocks))], decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p", OrderID: order, Country: "US"})
			}
			if order == "CN-2026-0601" {
				if rng.IntN(2) == 0 {
					b.refuse(order, "end_meeting", codes[rng.IntN(len(codes))], 0)
				}
				if rng.IntN(2) == 0 {
					b.refuse(order, "suspend_account", codes[rng.IntN(len(codes))], 0)
				}
			} else if rng.IntN(3) == 0 {
				b.refuse(order, "remove_participants", codes[rng.IntN(len(codes))], 0)
			}
			if len(b.rec.Decision.Actions)+len(b.rec.Decision.Refused)+len(b.rec.Decision.GuardBlocked) == 0 {
				b.block("outside_jurisdiction", decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p", OrderID: order, Country: "US"})
			}
			s.add(b)
		}
		r, err := Build(context.Background(), openFixture(t, s.out), fixturePeriod, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint("ledger ", trial), func(t *testing.T) {
			checkNoSumGivesAway(t, r)
			checkNothingPinned(t, r)
		})
	}
}

// Inequalities a second review found missing, each stated here on its
// own: with it, a hidden count was pinned.
func TestInequalitiesPinNothing(t *testing.T) {
	le := func(a, b *Cell) bound { return bound{le: []*Cell{a}, ge: []*Cell{b}} }
	t.Run("deny_join under admissions recorded", func(t *testing.T) {
		s := &ledgerOf{}
		for range 5 {
			s.add(newRec(s.id(), s.at(), "m", "acct", "RU-2026-0001").deny("RU-2026-0001", "RU", "j"))
		}
		s.add(newRec(s.id(), s.at(), "m", "acct", "CN-2026-0601").deny("CN-2026-0601", "CN", "j"))
		for range 5 {
			s.add(newRec(s.id(), s.at(), "m", "acct", "CN-2026-0601").refuse("CN-2026-0601", "end_meeting", "affects_outside", 0).refuse("CN-2026-0601", "suspend_account", "affects_outside", 0))
		}
		r := s.build(t)
		// One joiner a join-time decision: 5 in RU and <5 in CN under 6
		// admissions made the CN one 1.
		checkNothingPinnedWith(t, r, []bound{le(&r.Totals.ParticipantActions.DenyJoin, &r.Summary.Admissions)})
	})
	t.Run("orders of all demands under the rows' orders", func(t *testing.T) {
		orders := map[string]registry.Order{}
		for i := range 4 {
			orders[fmt.Sprintf("CN-E%d", i)] = registry.Order{Authority: "cn.cac", Demands: []string{"end_meeting"}, Received: "2025-11-01"}
		}
		for i := range 5 {
			orders[fmt.Sprintf("CN-P%d", i)] = registry.Order{Authority: "cn.cac", Demands: []string{"remove_participants"}, Received: "2025-11-01"}
		}
		withOrders(t, orders)
		s := &ledgerOf{}
		for i := range 4 {
			o := fmt.Sprintf("CN-E%d", i)
			for range 2 {
				s.add(newRec(s.id(), s.at(), "m", "acct", o).refuse(o, "end_meeting", "affects_outside", 0))
			}
		}
		for i := range 5 {
			o := fmt.Sprintf("CN-P%d", i)
			s.add(newRec(s.id(), s.at(), "m", "acct", o).remove(o, "CN", "p"))
		}
		r := s.build(t)
		var extra []bound
		for _, g := range r.groupRefs() {
			var rows []*Cell
			for i := range g.Demands {
				rows = append(rows, &g.Demands[i].Orders)
			}
			extra = append(extra, bound{le: []*Cell{&g.DemandsTotal.Orders}, ge: rows})
		}
		checkNothingPinnedWith(t, r, extra)
	})
	t.Run("not yet effective at the end, never in force", func(t *testing.T) {
		withOrders(t, map[string]registry.Order{
			"CN-EM":  {Authority: "cn.cac", Demands: []string{"end_meeting"}, Received: "2026-01-02"},
			"CN-SA":  {Authority: "cn.cac", Demands: []string{"suspend_account"}, Received: "2025-11-02"},
			"CN-REV": {Authority: "cn.cac", Demands: []string{"end_meeting"}, Received: "2025-01-02", Revoked: &registry.Revocation{Date: "2026-03-01", Reason: "x"}},
			"CN-NYE": {Authority: "cn.cac", Demands: []string{"remove_participants"}, Received: "2026-03-02", Effective: "2026-09-01"},
			"RU-RP":  {Authority: "ru.rkn", Demands: []string{"remove_participants"}, Received: "2026-04-01"},
			"RU-EM":  {Authority: "ru.rkn", Demands: []string{"end_meeting", "remove_participants"}, Received: "2025-04-01"},
		})
		s := &ledgerOf{}
		s.add(newRec(s.id(), s.at(), "m", "acct", "CN-EM").refuse("CN-EM", "end_meeting", "affects_outside", 0).notInForce("CN-NYE", "not_yet_effective"))
		s.add(newRec(s.id(), s.at(), "m", "acct", "CN-SA").refuse("CN-SA", "suspend_account", "affects_outside", 0))
		s.add(newRec(s.id(), s.at(), "m", "acct", "CN-REV").refuse("CN-REV", "end_meeting", "affects_outside", 0))
		s.add(newRec(s.id(), s.at(), "m", "acct", "RU-RP").remove("RU-RP", "RU", "p"))
		s.add(newRec(s.id(), s.at(), "m", "acct", "RU-EM").refuse("RU-EM", "end_meeting", "affects_outside", 0).remove("RU-EM", "RU", "p"))
		r := s.build(t)
		var extra []bound
		for _, g := range r.groupRefs() {
			st := &g.OrdersByStatus
			for i := range st.AtEnd {
				if st.AtEnd[i].Status == registry.StatusNotYetEffective {
					extra = append(extra, bound{le: []*Cell{&st.InForceDuringPeriod, &st.AtEnd[i].Orders}, ge: []*Cell{&st.Orders}})
				}
			}
		}
		checkNothingPinnedWith(t, r, extra)
	})
	t.Run("removals granted under participant actions", func(t *testing.T) {
		withOrders(t, map[string]registry.Order{"CN-P": {Authority: "cn.cac", Demands: []string{"remove_participants"}, Received: "2025-11-01"}})
		s := &ledgerOf{}
		for range 5 {
			s.add(newRec(s.id(), s.at(), "m", "acct", "CN-P").remove("CN-P", "CN", "p"))
		}
		s.add(newRec(s.id(), s.at(), "m", "acct", "CN-P").refuse("CN-P", "remove_participants", "no_participants", 0))
		r := s.build(t)
		var extra []bound
		for _, g := range r.groupRefs() {
			if d := g.demand("remove_participants"); d != nil {
				extra = append(extra, le(&d.Granted, &g.ParticipantActions.Total), le(&d.Narrowed, &g.ParticipantActions.Total))
			}
		}
		checkNothingPinnedWith(t, r, extra)
	})
}
