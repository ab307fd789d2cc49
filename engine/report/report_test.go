package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"html/template"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func buildFixture(t *testing.T, o Options) *Report {
	t.Helper()
	l := openFixture(t, fixtureRecords())
	r, err := Build(context.Background(), l, fixturePeriod, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReportGolden renders the fixture's report in Markdown, CSV and JSON
// and compares each with testdata/fixture.<format>.golden (go test
// ./engine/report -run Golden -update rewrites them).
//
// The ledger's head is the fixture ledger's own (its entries hold this
// machine's host name and a generated key's pseudonyms): it must be the
// head, and is written in the golden files as headMarker.
func TestReportGolden(t *testing.T) {
	l := openFixture(t, fixtureRecords())
	r, err := Build(context.Background(), l, fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	head, err := l.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if head.Seq == 0 || !ledger.IsLink(r.LedgerHead) || r.LedgerHead != head.Link {
		t.Fatalf("the report's ledger head is %q, want the ledger's, %+v", r.LedgerHead, head)
	}
	const headMarker = "<the fixture ledger's head>"
	for _, format := range []string{FormatMarkdown, FormatCSV, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, format); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "fixture."+format+".golden"), bytes.ReplaceAll(buf.Bytes(), []byte(r.LedgerHead), []byte(headMarker)))
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./engine/report -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			g, w := "", ""
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run with -update if the change is intended)", path, i+1, g, w)
			}
		}
	}
}

// TestReportFigures checks the fixture's figures one by one, so the golden
// files are not the only statement of what the report must say.
func TestReportFigures(t *testing.T) {
	r := buildFixture(t, Options{})
	tot := r.Totals
	check := func(what string, c Cell, want int) {
		t.Helper()
		if c.n != want {
			t.Errorf("%s = %d, want %d", what, c.n, want)
		}
	}
	check("decisions recorded", r.Summary.Decisions, 16)
	check("admissions recorded", r.Summary.Admissions, 3)
	check("plain admissions", r.Summary.PlainAdmissions, 10)
	check("plain admissions under an order", r.Summary.PlainUnderOrder, 7)
	check("quiet decisions", r.Summary.QuietDecisions, 2)
	check("orders cited", tot.OrdersCited, 3)
	check("orders received", tot.OrdersReceived, 3) // CN-2026-0601, RU-2026-0001, CN-2026-0630 (cited only after)
	check("remove_participant", tot.ParticipantActions.RemoveParticipant, 30)
	check("deny_join", tot.ParticipantActions.DenyJoin, 3)
	check("meetings ended", tot.MeetingWide.MeetingsEnded, 2)
	check("accounts suspended", tot.MeetingWide.AccountsSuspended, 1)
	check("affected by meeting-wide actions", tot.MeetingWide.AffectedUsers, 13)
	check("action records", tot.OutsideAffected.ActionRecords, 36)
	check("guard blocks", tot.GuardBlocksTotal, 15)

	if r.Violation || tot.OutsideAffected.Value != 0 || !tot.OutsideAffected.Proved {
		t.Errorf("violation %v, outside %d, proved %v; want no violation, 0, proved", r.Violation, tot.OutsideAffected.Value, tot.OutsideAffected.Proved)
	}
	if want := "0, computed from 36 action records"; r.OutsideAffected.Statement != want {
		t.Errorf("statement %q, want %q", r.OutsideAffected.Statement, want)
	}
	if want := "all 13 affected users were located inside the jurisdiction"; tot.MeetingWide.Statement != want {
		t.Errorf("meeting-wide statement %q, want %q", tot.MeetingWide.Statement, want)
	}

	wantDemands := map[string][6]int{ // orders, evaluated, granted, narrowed, refused, not decided
		"remove_participants": {1, 2, 1, 0, 1, 0},
		"end_meeting":         {2, 16, 2, 7, 2, 5},
		"suspend_account":     {1, 15, 1, 7, 2, 5},
	}
	var order []string
	for _, d := range tot.Demands {
		order = append(order, d.Demand)
		got := [6]int{d.Orders.n, d.Evaluated.n, d.Granted.n, d.Narrowed.n, d.Refused.n, d.NotDecided.n}
		if got != wantDemands[d.Demand] {
			t.Errorf("demand %s: %v, want %v", d.Demand, got, wantDemands[d.Demand])
		}
	}
	if !slices.Equal(order, []string{"remove_participants", "end_meeting", "suspend_account"}) {
		t.Errorf("demands in order %v", order)
	}

	// 18 affects_outside, withheld: the narrowed 14 and refused <5 they add
	// up to would give the refused away.
	if got := codes(tot.RefusalReasons); !slices.Equal(got, []string{"affects_outside=5+", "no_participants=<5"}) {
		t.Errorf("refusal reasons %v", got)
	}
	if got := codes(tot.GuardBlocks); !slices.Equal(got, []string{"outside_jurisdiction=6", "affects_outside=<5", "misstated_facts=<5", "order_not_in_force=<5", "unknown_order=<5"}) {
		t.Errorf("guard blocks %v", got)
	}
	var countries []string
	for _, c := range tot.ByCountry {
		countries = append(countries, c.Country+"="+c.Total.String())
	}
	// CN's 31 is withheld: with RU's <5, the total 33 would give it away.
	if !slices.Equal(countries, []string{"CN=5+", "RU=<5"}) || tot.ByCountry[0].Total.n != 31 {
		t.Errorf("by country %v", countries)
	}

	var groups []string
	for _, g := range r.Authorities {
		groups = append(groups, g.Authority+"/"+g.JurisdictionText()+"/"+g.Decisions.String())
	}
	if !slices.Equal(groups, []string{"cn.cac/CN/16", "ru.rkn/RU/<5", "(unattributed)/(none)/0"}) {
		t.Errorf("groups %v", groups)
	}
	if cn := r.Authorities[0]; cn.OrdersReceived.n != 2 || cn.OrdersCited.n != 2 || cn.AuthorityName != "Cyberspace Administration of China" {
		t.Errorf("cn.cac: received %d cited %d name %q", cn.OrdersReceived.n, cn.OrdersCited.n, cn.AuthorityName)
	}

	var geo []string
	for _, s := range r.GeoIPDatabases {
		geo = append(geo, s.Version+" "+s.FirstSeen+".."+s.LastSeen+" "+s.Decisions.String())
	}
	if !slices.Equal(geo, []string{"2026-01-02T03:04:05Z 2026-01-10..2026-03-15 13", "2026-04-01T00:00:00Z 2026-04-02..2026-05-25 6"}) {
		t.Errorf("geoip databases %v", geo)
	}
	if len(r.BundleRevisions) != 4 {
		t.Errorf("bundle revisions %+v, want 4", r.BundleRevisions)
	}

	// Orders by status: CN-2026-0601 (no period of validity), CN-2026-0602
	// (in force from March, revoked on 20 May), CN-2026-0901 (received in
	// May, effective in September) and RU-2026-0001 (expired at the end of
	// May). CN-2026-0630 is stated only by an entry after the period.
	statuses := func(st OrderStatuses) []int {
		out := []int{st.Orders.n, st.InForceDuringPeriod.n, st.RevokedInPeriod.n, st.ExpiredInPeriod.n}
		for i, sc := range st.AtEnd {
			if sc.Status != []string{"in_force", "not_yet_effective", "expired", "revoked"}[i] {
				t.Errorf("at_end[%d] is %s", i, sc.Status)
			}
			out = append(out, sc.Orders.n)
		}
		return out
	}
	// orders, in force during, revoked in, expired in; at the end: in
	// force, not yet effective, expired, revoked.
	for _, tc := range []struct {
		g    Group
		want []int
	}{
		{tot, []int{4, 3, 1, 1, 1, 1, 1, 1}},
		{r.Authorities[0], []int{3, 2, 1, 0, 1, 1, 0, 1}},
		{r.Authorities[1], []int{1, 1, 0, 1, 0, 0, 1, 0}},
		{r.Authorities[2], []int{0, 0, 0, 0, 0, 0, 0, 0}},
	} {
		if got := statuses(tc.g.OrdersByStatus); !slices.Equal(got, tc.want) {
			t.Errorf("%s: orders by status %v, want %v", tc.g.Authority, got, tc.want)
		}
	}
	// The guard block citing the revoked order is the authority's.
	if got := codes(r.Authorities[0].GuardBlocks); !slices.Contains(got, "order_not_in_force=<5") {
		t.Errorf("cn.cac guard blocks %v", got)
	}
}

// The statuses are those of the end of the period asked for: the same
// ledger read over the first quarter has the revoked order in force and
// the one that expired in May too.
func TestReportOrderStatusesFollowThePeriod(t *testing.T) {
	l := openFixture(t, fixtureRecords())
	r, err := Build(context.Background(), l, Period{Since: fixturePeriod.Since, Until: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Totals.OrdersByStatus
	// Only CN-2026-0601 and CN-2026-0602 are stated before April.
	if st.Orders.n != 2 || st.InForceDuringPeriod.n != 2 || st.RevokedInPeriod.n != 0 || st.AtEnd[0].Orders.n != 2 {
		t.Errorf("first quarter: %+v", st)
	}
}

func codes(cc []CodeCount) []string {
	var out []string
	for _, c := range cc {
		out = append(out, c.Code+"="+c.Count.String())
	}
	return out
}

// TestReportSuppression checks that every count from 1 to MinCount-1 is
// shown as "<MinCount" in every format, that the threshold in the text
// follows MinCount, and that JSON cells are numbers or the marker string.
func TestReportSuppression(t *testing.T) {
	l := openFixture(t, fixtureRecords())
	for _, minCount := range []int{1, 5, 10} {
		r, err := Build(context.Background(), l, fixturePeriod, Options{MinCount: minCount})
		if err != nil {
			t.Fatal(err)
		}
		marker := r.Suppressed
		for _, format := range Formats {
			var buf bytes.Buffer
			if err := r.Render(&buf, format); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if format == FormatHTML {
				out = strings.ReplaceAll(out, "&lt;", "<")
			}
			if minCount == 1 {
				// Only the marker itself may appear.
				out = strings.NewReplacer(`"suppressed_marker": "<1"`, "", "suppressed_marker,<1", "").Replace(out)
				if regexp.MustCompile(`<\d`).MatchString(out) {
					t.Errorf("min count 1, %s: something is suppressed", format)
				}
				continue
			}
			if !strings.Contains(out, marker) {
				t.Errorf("min count %d, %s: no %q in the output", minCount, format, marker)
			}
			if other := map[int]string{5: "<10", 10: "<5"}[minCount]; strings.Contains(out, other) {
				t.Errorf("min count %d, %s: the output has %q", minCount, format, other)
			}
		}
		if minCount == 10 {
			// 3 admissions, 7 plain admissions under an order, and the 6
			// guard blocks of a code are suppressed; the 16 decisions are
			// withheld, since the 19 of all authorities would give the
			// admissions away.
			if r.Summary.Decisions.String() != "10+" || r.Summary.Admissions.String() != "<10" ||
				r.Summary.PlainUnderOrder.String() != "<10" || r.Totals.GuardBlocks[0].Count.String() != "<10" {
				t.Errorf("min count 10: %+v, %+v", r.Summary, r.Totals.GuardBlocks)
			}
			if !strings.Contains(suppressionText(10), "from 1 to 9 are shown as <10") {
				t.Errorf("suppression text %q", suppressionText(10))
			}
		}
	}

	// JSON: every count is a number or the marker.
	r, err := Build(context.Background(), l, fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.JSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	markers := 0
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(x, path+"."+k)
			}
		case []any:
			for _, x := range v {
				walk(x, path+"[]")
			}
		case string:
			if strings.HasPrefix(v, "<") {
				if v != "<5" {
					t.Errorf("%s = %q", path, v)
				}
				markers++
			}
		case float64:
			if v >= 1 && v < 5 && !strings.HasSuffix(path, "min_count") {
				t.Errorf("%s = %v: a count from 1 to 4 is published", path, v)
			}
		}
	}
	walk(doc, "")
	if markers == 0 {
		t.Error("no suppressed cell in the JSON")
	}
}

// TestReportIdentifiesNobody renders every format and looks for anything
// the ledger holds about people: ids, pseudonyms, networks, meetings.
func TestReportIdentifiesNobody(t *testing.T) {
	recs := fixtureRecords()
	l := openFixture(t, recs)
	r, err := Build(context.Background(), l, fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var forbidden []string
	for _, rec := range recs {
		d := rec.Decision
		forbidden = append(forbidden, d.DecisionID, d.MeetingID, rec.AccountID, l.Pseudonymizer().Account(rec.AccountID))
		for _, a := range d.Actions {
			if a.ParticipantID != "" {
				forbidden = append(forbidden, `"`+a.ParticipantID+`"`, l.Pseudonymizer().Participant(a.ParticipantID))
			}
		}
		for _, n := range rec.Networks {
			if n.IsValid() {
				forbidden = append(forbidden, n.String(), n.Addr().String())
			}
		}
	}
	forbidden = append(forbidden, "fixture-reason", "fixture-legal-basis")
	pseudonym := regexp.MustCompile(`ps:[0-9a-f]{32}`)
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		for _, f := range forbidden {
			if f != "" && strings.Contains(buf.String(), f) {
				t.Errorf("%s output contains %q", format, f)
			}
		}
		if p := pseudonym.FindString(buf.String()); p != "" {
			t.Errorf("%s output contains the pseudonym %s", format, p)
		}
	}
}

// violating is an entry no guard would let through, written through the
// ledger like any other: a US participant removed on a CN order, and a
// meeting ended although it reached users in the US and at an unknown
// location.
func violating() []*engine.Record {
	recs := []*engine.Record{
		newRec("00000000-0000-7000-8000-00000000bad1", day(time.March, 1, 12), "m-bad", "acct-us-bad", "CN-2026-0601").
			remove("CN-2026-0601", "US", "p-us").
			remove("CN-2026-0601", "CN", "p-cn").
			wide(decision.EndMeeting, "CN-2026-0601", "", map[string]int{"CN": 1, "US": 1, engine.UnknownCountry: 1}).rec,
	}
	return recs
}

func TestReportViolation(t *testing.T) {
	l := openFixture(t, append(fixtureRecords(), violating()...))
	r, err := Build(context.Background(), l, fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// 1 (the US participant) + 2 (the meeting's US and unknown users): a
	// figure from 1 to 4, never suppressed.
	if !r.Violation || r.OutsideAffected.Value != 3 || r.OutsideAffected.Proved {
		t.Fatalf("violation %v, outside %d, proved %v; want a violation of 3", r.Violation, r.OutsideAffected.Value, r.OutsideAffected.Proved)
	}
	if r.Totals.MeetingWide.AffectedOutside != 2 || !strings.Contains(r.Totals.MeetingWide.Statement, "2 of the") {
		t.Errorf("meeting-wide: %+v", r.Totals.MeetingWide)
	}
	if got := r.Authorities[0].OutsideAffected.Value; got != 3 {
		t.Errorf("cn.cac outside = %d, want 3", got)
	}
	want := map[string][]string{
		FormatMarkdown: {"> **⚠ VIOLATION: 3 users located outside", "**3, computed from 39 action records.**", "| 3 |"},
		FormatCSV:      {"report,(all),(all),violation,true", "outside_affected,(all),(all),value,3", "outside_affected,cn.cac,CN,value,3", "meeting_wide,(all),(all),affected_outside,2"},
		FormatJSON:     {`"violation": true`, `"value": 3,`, `"violation_text": "VIOLATION: 3 users`},
		FormatHTML:     {`<div class="violation" role="region" aria-label="Violation" id="violation">`, `<strong>⚠ Violation</strong>`, `<span class="n" id="outside-affected-value">3</span>`, `class="card proof broken"`},
	}
	for format, needles := range want {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		if format == FormatHTML { // kept with go test -artifacts, to look at
			if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "violation.html"), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range needles {
			if !strings.Contains(buf.String(), n) {
				t.Errorf("%s output lacks %q", format, n)
			}
		}
	}

	// Without the violation, no warning anywhere.
	clean := buildFixture(t, Options{})
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := clean.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		if s := strings.ToLower(buf.String()); strings.Contains(s, "violation:") || strings.Contains(s, `class="violation"`) {
			t.Errorf("%s output of a clean ledger warns of a violation", format)
		}
	}
}

// TestReportViolationShapes covers the other ways an action record can
// show harm outside: a widened jurisdiction, an unknown location, an
// account registered outside, a meeting ended with no record of whom it
// reached.
func TestReportViolationShapes(t *testing.T) {
	widened := newRec("00000000-0000-7000-8000-0000000000b1", day(time.March, 1, 12), "m1", "acct-1", "CN-2026-0601").remove("CN-2026-0601", "US", "p-us")
	widened.rec.Decision.Actions[0].Jurisdiction = []string{"CN", "US"}
	unknown := newRec("00000000-0000-7000-8000-0000000000b2", day(time.March, 1, 13), "m2", "acct-2", "CN-2026-0601").remove("CN-2026-0601", "", "p-x")
	account := newRec("00000000-0000-7000-8000-0000000000b3", day(time.March, 1, 14), "m3", "acct-3", "CN-2026-0601").
		wide(decision.SuspendAccount, "CN-2026-0601", "HK", map[string]int{"CN": 2})
	unproven := newRec("00000000-0000-7000-8000-0000000000b4", day(time.March, 1, 15), "m4", "acct-4", "CN-2026-0602").
		wide(decision.EndMeeting, "CN-2026-0602", "", nil)
	// An action of a type the guard does not know cannot have passed it.
	unknownType := newRec("00000000-0000-7000-8000-0000000000b5", day(time.March, 1, 16), "m5", "acct-5", "CN-2026-0601").remove("CN-2026-0601", "CN", "p-cn")
	unknownType.rec.Decision.Actions[0].Type = "mute_participant"
	for _, tc := range []struct {
		name              string
		rec               *engine.Record
		outside, unproven int
	}{
		{"widened jurisdiction", widened.rec, 1, 0},
		{"unknown location", unknown.rec, 1, 0},
		{"account registered outside", account.rec, 1, 0},
		{"meeting ended without reach", unproven.rec, 0, 1},
		{"action of an unknown type", unknownType.rec, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openFixture(t, []*engine.Record{tc.rec})
			r, err := Build(context.Background(), l, fixturePeriod, Options{})
			if err != nil {
				t.Fatal(err)
			}
			o := r.OutsideAffected
			if !r.Violation || o.Value != tc.outside || o.Unproven != tc.unproven || o.Proved {
				t.Errorf("violation %v, outside %d, unproven %d, proved %v; want outside %d, unproven %d", r.Violation, o.Value, o.Unproven, o.Proved, tc.outside, tc.unproven)
			}
		})
	}
}

func TestReportHTML(t *testing.T) {
	r := buildFixture(t, Options{})
	// Written to a file, the page has no period form: it would load the
	// same file, the same period.
	var file bytes.Buffer
	if err := r.HTML(&file); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(file.String(), "<form") || strings.Contains(file.String(), `type="date"`) {
		t.Error("the page written to a file has a period form, which would load the same file")
	}
	r.PeriodPicker = true // as a server renders it
	var buf bytes.Buffer
	if err := r.HTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	// Kept with go test -artifacts, to look at.
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "fixture.html"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<a href="https://db-ip.com">IP Geolocation by DB-IP</a>`,
		`@media print`,
		`<form class="picker" method="get" action=""`,
		`<input type="date" id="since" name="since" value="2026-01-01" required>`,
		`<input type="date" id="until" name="until" value="2026-07-01" required>`,
		`<title id="chart-demands-title">Demands by outcome, all authorities</title>`,
		`<desc id="chart-countries-desc">CN: 5&#43;; RU: &lt;5.</desc>`,
		`<span class="n" id="outside-affected-value">0</span>`,
		`0, computed from 36 action records`,
		`All 13 affected users were located inside the jurisdiction.`,
		`<th scope="col">`,
		`data-figure="remove_participant" data-authority="(all)">5&#43;</td>`,
		`<li id="ledger-head">Ledger head when this report was built: <code>` + r.LedgerHead + `</code>. Every entry this report counted is chained under it: <code>geoscope ledger verify --head ` + r.LedgerHead + ` --since 2026-01-01T00:00:00Z --until 2026-07-01T00:00:00Z</code> on the ledger`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(strings.ToLower(page), "<script") {
		t.Error("the page has a script")
	}
	// No external resource: the only absolute URLs are the two links in
	// the footer (and the SVG namespace, which is not fetched).
	for _, m := range regexp.MustCompile(`(?:src|href|url)\s*[=(]\s*["']?([^"') >]+)`).FindAllStringSubmatch(page, -1) {
		switch u := m[1]; {
		case u == "https://db-ip.com", u == "https://creativecommons.org/licenses/by/4.0/", u == "data:,", strings.HasPrefix(u, "#"):
		default:
			t.Errorf("the page refers to %q", u)
		}
	}
	if strings.Contains(page, "@import") || strings.Contains(page, "@font-face") {
		t.Error("the page imports CSS or fonts")
	}
}

func TestReportPeriodErrors(t *testing.T) {
	l := openFixture(t, nil)
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range []Period{{}, {Since: at}, {Until: at}, {Since: at, Until: at}, {Since: at.Add(time.Hour), Until: at}} {
		if _, err := Build(ctx, l, p, Options{}); !errors.Is(err, ErrPeriod) {
			t.Errorf("%v: err %v, want ErrPeriod", p, err)
		}
	}
	if _, err := Build(ctx, l, fixturePeriod, Options{MinCount: -1}); err == nil {
		t.Error("min count -1 accepted")
	}
	// An empty ledger: a report of zeros, proved.
	r, err := Build(ctx, l, fixturePeriod, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Violation || !r.OutsideAffected.Proved || r.OutsideAffected.Statement != "0, computed from 0 action records" {
		t.Errorf("empty ledger: %+v", r.OutsideAffected)
	}
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Errorf("%s: %v", format, err)
		}
	}
	if err := r.Render(&bytes.Buffer{}, "pdf"); err == nil {
		t.Error("format pdf accepted")
	}
}

// TestReportCSVShape checks the long format: one header, five columns,
// every section known.
func TestReportCSVShape(t *testing.T) {
	r := buildFixture(t, Options{})
	var buf bytes.Buffer
	if err := r.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], []string{"section", "authority", "jurisdiction", "key", "value"}) {
		t.Fatalf("header %v", rows[0])
	}
	sections := map[string]bool{}
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		sections[row[0]] = true
		k := strings.Join(row[:4], ",")
		if seen[k] {
			t.Errorf("duplicate row %s", k)
		}
		seen[k] = true
	}
	for _, s := range []string{"report", "summary", "outside_affected", "orders", "demands", "refusal_reasons", "participant_actions",
		"participant_actions_by_country", "meeting_wide", "guard_blocks", "geoip_databases", "bundle_revisions"} {
		if !sections[s] {
			t.Errorf("no section %s", s)
		}
	}
}

// TestReportLeavesOutPreviews: a preview answers "what would this order
// do" for an order under review; nothing was enforced, so even a preview
// with actions and refusals changes no figure.
func TestReportLeavesOutPreviews(t *testing.T) {
	base := buildFixture(t, Options{MinCount: 1}) // every count as it is
	preview := newRec("00000000-0000-7000-8000-0000000000f1", day(time.March, 2, 12), "m-preview", "acct-us-preview", "CN-2026-0601").
		remove("CN-2026-0601", "CN", "p-cn-1", "p-cn-2", "p-cn-3", "p-cn-4", "p-cn-5", "p-cn-6").
		remove("CN-2026-0601", "US", "p-us").
		refuse("CN-2026-0601", "end_meeting", "affects_outside", 3).rec
	preview.Decision.Preview = true
	// And one that would do nothing: a quiet decision, were it not one.
	quiet := newRec("00000000-0000-7000-8000-0000000000f2", day(time.March, 2, 13), "m-preview", "acct-us-preview", "CN-2026-0601").rec
	quiet.Decision.Preview = true
	// And one after the period, of an order received in it: not an
	// order received, as no entry in or after the period enforces it.
	later := withOrder(1, time.Date(2026, 7, 3, 10, 0, 0, 0, time.UTC), "CN-PREVIEW", registry.Order{Received: "2026-03-01"}).rec
	later.Decision.Preview, later.PreviewOrder = true, "CN-PREVIEW"
	l := openFixture(t, append(fixtureRecords(), preview, quiet, later))
	withPreview, err := Build(context.Background(), l, fixturePeriod, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	// The ledger's head is not a figure: it is the ledger's, which holds
	// the previews' entries too.
	if base.LedgerHead == "" || withPreview.LedgerHead == base.LedgerHead {
		t.Errorf("ledger heads %q without the previews and %q with them, want two", base.LedgerHead, withPreview.LedgerHead)
	}
	base.LedgerHead, withPreview.LedgerHead = "", ""
	var a, b bytes.Buffer
	if err := base.Render(&a, FormatJSON); err != nil {
		t.Fatal(err)
	}
	if err := withPreview.Render(&b, FormatJSON); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Errorf("a preview changed the report:\nwithout:\n%s\nwith:\n%s", a.String(), b.String())
	}
	if withPreview.Violation {
		t.Error("a preview's outside action was counted as enforcement")
	}
}

// TestReportCSVCellsAreNotFormulas: a registry's authority id or name, or
// a policy's refusal code, that a spreadsheet would read as a formula is
// written after a "'" in the CSV.
func TestReportCSVCellsAreNotFormulas(t *testing.T) {
	r := buildFixture(t, Options{})
	r.Title = "=1+1"
	for i := range r.Authorities {
		r.Authorities[i].Authority = "=cmd|'/C calc'!A0"
		r.Authorities[i].AuthorityName = "@SUM(A1)"
	}
	var buf bytes.Buffer
	if err := r.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %q of %v would be read as a formula", cell, row)
			}
		}
	}
	if !strings.Contains(out, `'=cmd|'/C calc'!A0`) || !strings.Contains(out, "'@SUM(A1)") || !strings.Contains(out, "title,'=1+1") {
		t.Errorf("the cells are not kept after a \"'\":\n%s", out)
	}
}

// TestReportCSVCellsAreNotFormulasWhereSemicolonsSeparate: a spreadsheet
// in a locale whose list separator is ";" (German, French, Dutch...)
// opens a CSV by splitting its lines at semicolons, quoted or not by the
// writer's rules for commas; no piece of a cell after a ";" is a formula
// there either.
func TestReportCSVCellsAreNotFormulasWhereSemicolonsSeparate(t *testing.T) {
	r := buildFixture(t, Options{})
	for i := range r.Authorities {
		r.Authorities[i].Authority = "x;+cmd|'/C calc'!A0"
		r.Authorities[i].AuthorityName = "Ministry; =cmd|'/C calc'!A0;@SUM(A1);-2+3"
	}
	var buf bytes.Buffer
	if err := r.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, line := range strings.Split(out, "\n") {
		for _, piece := range strings.Split(line, ";") {
			if p := strings.TrimLeft(piece, " \""); p != "" && strings.ContainsRune("=+-@", rune(p[0])) {
				t.Errorf("%q of %q would be read as a formula", piece, line)
			}
		}
	}
	if !strings.Contains(out, `,Ministry;' =cmd|'/C calc'!A0;'@SUM(A1);'-2+3`) || !strings.Contains(out, `,x;'+cmd|'/C calc'!A0,`) {
		t.Errorf("the name is not kept, with each formula after a \"'\":\n%s", out)
	}
}

// TestReportSubSecondPeriod: a period whose bounds are not whole seconds
// reads as that period in Markdown and CSV, not as one of no length.
func TestReportSubSecondPeriod(t *testing.T) {
	r := buildFixture(t, Options{})
	r.Period = PeriodOut{Since: time.Date(2026, 12, 3, 23, 17, 17, 191839359, time.UTC), Until: time.Date(2026, 12, 3, 23, 17, 17, 191839360, time.UTC)}
	if got, want := r.PeriodText(), "from 2026-12-03T23:17:17.191839359Z up to, not including, 2026-12-03T23:17:17.19183936Z (UTC)"; got != want {
		t.Errorf("PeriodText = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	if err := r.CSV(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "report,(all),(all),since,2026-12-03T23:17:17.191839359Z\n") || !strings.Contains(buf.String(), "report,(all),(all),until,2026-12-03T23:17:17.19183936Z\n") {
		t.Errorf("the CSV's period:\n%s", buf.String()[:400])
	}
}

// A refusal stated several times in one decision (two extension files
// withholding the same order, with different reasons) counts once per
// (decision, order, demand, code).
func TestReportRefusalStatedTwiceCountsOnce(t *testing.T) {
	at := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	b := newRec("dup-refusal", at, "m-dup", "acct-dup", "CN-2026-0601").
		refuse("CN-2026-0601", "end_meeting", "withheld", 0).
		refuse("CN-2026-0601", "end_meeting", "withheld", 0).
		refuse("CN-2026-0601", "suspend_account", "withheld", 0)
	b.rec.Decision.Refused[1].Reason = "a second extension's reason"
	l := openFixture(t, []*engine.Record{b.rec})
	r, err := Build(context.Background(), l, fixturePeriod, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := codes(r.Totals.RefusalReasons); !slices.Equal(got, []string{"withheld=2"}) {
		t.Errorf("refusal reasons %v, want withheld=2 (end_meeting and suspend_account, once each)", got)
	}
}

// A participants' removal not refused, with nobody located inside, is
// "nothing carried out", not granted: a service-wide order evaluated for every
// meeting would otherwise read as carried out each time.
func TestReportNothingCarriedOutIsNotGranted(t *testing.T) {
	at := time.Date(2026, 6, 2, 10, 0, 0, 0, time.UTC)
	recs := []*engine.Record{
		newRec("nobody-1", at, "m-a", "acct-a", "RU-2026-0001").rec,
		newRec("nobody-2", at.Add(time.Minute), "m-b", "acct-b", "RU-2026-0001").rec,
		newRec("removed", at.Add(2*time.Minute), "m-c", "acct-c", "RU-2026-0001").remove("RU-2026-0001", "RU", "p-1").rec,
	}
	for _, r := range recs[:2] {
		// A guard block makes it an entry of its own (a decision with
		// nothing at all is only counted).
		r.Decision.GuardBlocked = []decision.Blocked{{Action: decision.Action{Type: decision.RemoveParticipant, OrderID: "RU-2026-0001"}, Code: "outside_jurisdiction"}}
	}
	r, err := Build(context.Background(), openFixture(t, recs), fixturePeriod, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Totals.Demands {
		if d.Demand != "remove_participants" {
			continue
		}
		if got := [3]int{d.Evaluated.n, d.Granted.n, d.NothingCarriedOut.n}; got != [3]int{3, 1, 2} {
			t.Errorf("remove_participants evaluated, granted, nothing carried out = %v, want [3 1 2]", got)
		}
		return
	}
	t.Error("no remove_participants row")
}

// An entry recorded while geoscope still read an offset of +24:00 (a day
// ahead) keeps that reading: the order expired in the period, as its
// decisions treated it, rather than failing to parse and counting as in
// force with no dates.
func TestReportReadsAnEntryAsItWasRecorded(t *testing.T) {
	b := newRec("00000000-0000-7000-8000-000000000001", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), "m-1", "acct-1", "RU-2026-0001").remove("RU-2026-0001", "RU", "p1")
	o := b.rec.Orders["RU-2026-0001"]
	o.Received, o.Expires = "2026-01-10", "2026-03-01T00:00:00+24:00"
	b.rec.Orders["RU-2026-0001"] = o
	l := openFixture(t, []*engine.Record{b.rec})
	r, err := Build(context.Background(), l, fixturePeriod, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	st := r.Totals.OrdersByStatus
	if st.Orders.n != 1 || st.ExpiredInPeriod.n != 1 || st.AtEnd[0].Status != "in_force" || st.AtEnd[0].Orders.n != 0 {
		t.Errorf("an order recorded expiring 2026-03-01T00:00:00+24:00: %+v", st)
	}
}

// A report built while an entry has no link yet (recorded before the
// chain, or by an older replica, and not yet linked by a server) prints
// no ledger head, and says why: its head would not cover that entry, if
// in its period, and the entry, linked after it and dated before, would
// be taken for one added to the ledger's past, if not.
func TestReportUnpinnedWhileEntriesAreUnlinked(t *testing.T) {
	for _, at := range []time.Time{
		time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC),  // in the period
		time.Date(2025, 11, 2, 12, 0, 0, 0, time.UTC), // before it
	} {
		ctx := context.Background()
		cfg := recordFixture(t, fixtureRecords()[:3])
		db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		entry := `{"decision_id":"unlinked-1","time":"` + at.Format(time.RFC3339) + `","kind":"decision","meeting_id":"m-old","account":"ps:00","orders":[],"actions":[],"refused":[],"guard_blocked":[],"bundles":{},"geo":{"database":"x","build":"2026-01-01T00:00:00Z"},"engine_version":"old"}`
		if _, err := db.Exec(`INSERT INTO ledger_decisions (decision_id, decided_at, kind, meeting_id, allow_join, entry) VALUES ('unlinked-1', ?, 'decision', 'm-old', NULL, ?)`,
			at.UnixNano(), entry); err != nil {
			t.Fatal(err)
		}
		db.Close()
		cfg.ReadOnly = true // it links nothing
		ro, err := ledger.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		r, err := Build(ctx, ro, fixturePeriod, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if r.LedgerHead != "" || r.Unpinned != unpinnedText {
			t.Fatalf("an entry without a link decided %s: ledger head %q, unpinned %q; want no head, and why", at, r.LedgerHead, r.Unpinned)
		}
		for _, format := range Formats {
			var buf bytes.Buffer
			if err := r.Render(&buf, format); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "NOT PINNED") || strings.Contains(buf.String(), "ledger verify --head") {
				t.Errorf("an entry without a link decided %s: the %s report does not say it is not pinned, or prints a head", at, format)
			}
		}
	}
}

// A report built, by a reader of this version, from a ledger no server of
// it has opened yet (schema 3, written by a64b45e: compliance staff
// upgrade the command line before the servers) has no chain to print a
// head of, and says it is not pinned, as while some entries have no link:
// the first server chains them all, after any head it could print.
func TestReportUnpinnedOnALedgerBeforeTheChain(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"ledger.db", "ledger.key"} {
		data, err := os.ReadFile(filepath.Join("..", "ledger", "testdata", "before-the-chain", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	ro, err := ledger.Open(ctx, ledger.Config{DataDir: dir, ReadOnly: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err := Build(ctx, ro, Period{Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}, Options{MinCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Summary.Decisions.n != 4 || r.Summary.Admissions.n != 2 {
		t.Errorf("decisions and admissions recorded = %d, %d; want the ledger's 4 and 2", r.Summary.Decisions.n, r.Summary.Admissions.n)
	}
	if r.LedgerHead != "" || r.Unpinned != unpinnedText {
		t.Errorf("a ledger without the chain: ledger head %q, unpinned %q; want no head, and why", r.LedgerHead, r.Unpinned)
	}
}

// A report whose period has not ended prints the check of its head
// without the period: entries decided in it are still coming, and would
// be taken for entries added to it.
func TestReportOfAPeriodNotEndedChecksTheHeadAlone(t *testing.T) {
	l := openFixture(t, fixtureRecords())
	now := time.Now().UTC()
	r, err := Build(context.Background(), l, Period{Since: now.AddDate(0, 0, -1), Until: now.AddDate(0, 0, 1)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.Render(&buf, FormatMarkdown); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "`geoscope ledger verify --head "+r.LedgerHead+"` on the ledger") || strings.Contains(buf.String(), "--since") {
		t.Errorf("a report of a period not ended:\n%s\nwant the check of its head without its period", buf.String())
	}
}

// A request its client sent again (a retry after a lost answer: the same
// request id and body) and decided alike is counted once when it comes
// within retryWindow. Decided differently, with another request id or
// body, without an id, or after the window, each is counted.
func TestReportCountsARequestSentAgainOnce(t *testing.T) {
	at := day(time.March, 3, 12)
	n := 0
	// ask records the decision about a request: its id, its body (here,
	// the people it names), and those of them removed (all, unless given).
	ask := func(after time.Duration, requestID string, people []string, removed ...string) *engine.Record {
		n++
		if removed == nil {
			removed = people
		}
		r := newRec(fmt.Sprintf("00000000-0000-7000-8000-0000000001%02x", n), at.Add(after), "m-retry", "acct-us-retry", "CN-2026-0601").
			remove("CN-2026-0601", "CN", removed...).rec
		if requestID != "" {
			r.Request = &engine.RequestKey{ID: requestID, Body: sha256.Sum256([]byte(strings.Join(people, ",")))}
		}
		for _, id := range people {
			r.Participants = append(r.Participants, input.Participant{ID: id, IP: "1.0.16.7"})
		}
		return r
	}
	ab, ac := []string{"p-a", "p-b"}, []string{"p-a", "p-c"}
	removals := func(p Period, recs ...*engine.Record) (decisions, removed int) {
		t.Helper()
		r, err := Build(context.Background(), openFixture(t, recs), p, Options{MinCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		return r.Summary.Decisions.n, r.Totals.ParticipantActions.RemoveParticipant.n
	}
	for _, c := range []struct {
		name                string
		recs                []*engine.Record
		decisions, removals int
	}{
		{"sent again within the window", []*engine.Record{ask(0, "req-1", ab), ask(3*time.Second, "req-1", ab), ask(retryWindow, "req-1", ab)}, 1, 2},
		{"sent again after the window", []*engine.Record{ask(0, "req-1", ab), ask(retryWindow+time.Second, "req-1", ab)}, 2, 4},
		// The window runs from the attempt before: a third attempt more
		// than retryWindow after the first is still the same request.
		{"sent again twice, each within the window of the one before", []*engine.Record{ask(0, "req-1", ab), ask(retryWindow-time.Second, "req-1", ab), ask(2*retryWindow-2*time.Second, "req-1", ab)}, 1, 2},
		{"sent again, decided differently", []*engine.Record{ask(0, "req-1", ab), ask(time.Second, "req-1", ab, "p-a")}, 2, 3},
		{"another request id", []*engine.Record{ask(0, "req-1", ab), ask(time.Second, "req-2", ab)}, 2, 4},
		{"one id for another body", []*engine.Record{ask(0, "req-1", ab), ask(time.Second, "req-1", ac)}, 2, 4},
		{"no request id", []*engine.Record{ask(0, "", ab), ask(time.Second, "", ab)}, 2, 4},
	} {
		if d, r := removals(fixturePeriod, c.recs...); d != c.decisions || r != c.removals {
			t.Errorf("%s: %d decisions removing %d, want %d removing %d", c.name, d, r, c.decisions, c.removals)
		}
	}

	// A request first decided just before the end of a period and sent
	// again just after it is counted in the first period only: the
	// reports of two adjacent periods add up to the report of both.
	end := at.Add(time.Hour)
	before, after := Period{Since: fixturePeriod.Since, Until: end}, Period{Since: end, Until: fixturePeriod.Until}
	for _, c := range []struct {
		name string
		recs []*engine.Record
	}{
		{"sent again across the end", []*engine.Record{ask(time.Hour-time.Second, "req-1", ab), ask(time.Hour+time.Second, "req-1", ab)}},
		{"sent again three times across the end", []*engine.Record{
			ask(time.Hour-retryWindow-time.Minute, "req-1", ab), ask(time.Hour-time.Minute, "req-1", ab), ask(time.Hour+30*time.Second, "req-1", ab)}},
		{"another request just before the end", []*engine.Record{ask(time.Hour-time.Second, "req-1", ab), ask(time.Hour+time.Second, "req-1", ac)}},
		{"sent again after the window, across the end", []*engine.Record{ask(time.Hour-time.Minute, "req-1", ab), ask(time.Hour+retryWindow, "req-1", ab)}},
	} {
		wholeD, wholeR := removals(fixturePeriod, c.recs...)
		d1, r1 := removals(before, c.recs...)
		d2, r2 := removals(after, c.recs...)
		if d1+d2 != wholeD || r1+r2 != wholeR {
			t.Errorf("%s: %d+%d decisions removing %d+%d in the two periods, %d removing %d in both together", c.name, d1, d2, r1, r2, wholeD, wholeR)
		}
	}
}

// The questions remembered are swept as the entries' time moves on; one
// still within retryWindow is never swept.
func TestSentAgainSweepsOnlyQuestionsOutOfTheWindow(t *testing.T) {
	a := newAggregator(fixturePeriod)
	at := day(time.March, 3, 0)
	entry := func(i int, after time.Duration) *ledger.Entry {
		return &ledger.Entry{Request: fmt.Sprintf("rq:%d", i), Time: at.Add(after)}
	}
	for i := range 10000 {
		if a.sentAgain(entry(i, time.Duration(i)*time.Second)) {
			t.Fatalf("question %d taken for one sent again", i)
		}
	}
	last := 10000 * time.Second
	if len(a.asked) > 4*int(retryWindow/time.Second)+2048 {
		t.Errorf("%d questions remembered, want those of about the last %v", len(a.asked), retryWindow)
	}
	for i, want := range map[int]bool{9999: true, 9999 - int(retryWindow/time.Second) + 1: true, 0: false, 5000: false} {
		if got := a.sentAgain(entry(i, last)); got != want {
			t.Errorf("question %d sent again at %v: %v, want %v", i, last, got, want)
		}
	}
}

// The page's title, which a browser prints at the top of every page and
// names a tab or a bookmark by, states the period as the page does: its
// end is not included, and a bound within a day is a time. It read
// "2026-01-01 to 2026-07-01", as if 1 July were included, and a period
// of hours "2026-03-01 to 2026-03-01".
func TestReportHTMLTitleStatesThePeriod(t *testing.T) {
	for p, want := range map[Period]string{
		{Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}:   " — from 2026-01-01 up to, not including, 2026-07-01 (UTC)</title>",
		{Since: time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 1, 18, 30, 0, 0, time.UTC)}: " — from 2026-03-01T06:00:00Z up to, not including, 2026-03-01T18:30:00Z (UTC)</title>",
	} {
		r := buildOf(t, p)
		var buf bytes.Buffer
		if err := r.HTML(&buf); err != nil {
			t.Fatal(err)
		}
		if title := regexp.MustCompile(`<title>[^<]*</title>`).FindString(buf.String()); !strings.HasSuffix(title, want) {
			t.Errorf("period %v: the page's title is %q, want it to end %q", p, title, want)
		}
	}
}

// The period form proposes the whole UTC days that cover the period: an
// until within a day is proposed as the next day (not included), not as
// its own, which for a period of hours proposed an empty one.
func TestReportHTMLFormProposesTheDaysCoveringThePeriod(t *testing.T) {
	for p, want := range map[Period][2]string{
		{Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}:     {"2026-01-01", "2026-07-01"},
		{Since: time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 1, 18, 30, 0, 0, time.UTC)}:   {"2026-03-01", "2026-03-02"},
		{Since: time.Date(2026, 2, 28, 16, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 31, 16, 0, 0, 0, time.UTC)}: {"2026-02-28", "2026-04-01"},
	} {
		r := buildOf(t, p)
		r.PeriodPicker = true
		var buf bytes.Buffer
		if err := r.HTML(&buf); err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{"since", "until"} {
			if input := `<input type="date" id="` + id + `" name="` + id + `" value="` + want[i] + `" required>`; !strings.Contains(buf.String(), input) {
				t.Errorf("period %v: the form lacks %s", p, input)
			}
		}
	}
}

// TestNamedHTMLSaysLabel: the page's authority label, with a name isolated
// in a <bdi>, reads as Label does in every other format.
func TestNamedHTMLSaysLabel(t *testing.T) {
	for _, g := range []Group{
		{Authority: AllAuthorities},
		{Authority: Unattributed},
		{Authority: "cn.cac"},
		{Authority: "ae.tdra", AuthorityName: "هيئة تنظيم الاتصالات"},
		{Authority: "x<y", AuthorityName: "A & <B>"},
	} {
		got := string(namedHTML(g))
		text := html.UnescapeString(strings.NewReplacer("<bdi>", "", "</bdi>", "").Replace(got))
		if text != g.Label() {
			t.Errorf("%q: namedHTML %q reads %q, Label %q", g.Authority, got, text, g.Label())
		}
		if g.AuthorityName != "" && !strings.HasPrefix(got, "<bdi>"+template.HTMLEscapeString(g.AuthorityName)+"</bdi> (") {
			t.Errorf("%q: the name is not isolated: %q", g.Authority, got)
		}
	}
}
