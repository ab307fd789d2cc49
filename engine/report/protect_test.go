package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
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
	for name, members := range publishedSums(t, doc) {
		hidden := 0
		for _, m := range members {
			if _, marker := m.(string); marker {
				hidden++
			}
		}
		if hidden == 1 {
			t.Errorf("%s: %v has one hidden member, which the others give away", name, members)
		}
	}
}

func TestNoPublishedSumGivesASuppressedCountAway(t *testing.T) {
	l := openFixture(t, fixtureRecords())
	for _, minCount := range []int{2, 5, 10, 20} {
		r, err := Build(context.Background(), l, fixturePeriod, Options{MinCount: minCount})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint("min count ", minCount), func(t *testing.T) { checkNoSumGivesAway(t, r) })
	}
}

// The case a review found: ten decisions each removing one participant
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

// The case a review found: rows sorted by their true counts put a
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
