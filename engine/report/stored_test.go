package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/internal/pgtest"
)

// The types the report decodes a stored entry into name fields of
// ledger.Entry and its parts, by the same JSON names and of the same
// types: a field renamed in the ledger and not here would be read as
// absent, and its figures counted as zero without an error.
func TestStoredNamesEntryFields(t *testing.T) {
	for _, c := range []struct{ view, entry any }{
		{stored{}, ledger.Entry{}},
		{storedCitation{}, ledger.Entry{}},
		{storedOrder{}, ledger.Order{}},
		{storedAction{}, ledger.Action{}},
		{storedRefusal{}, ledger.Refusal{}},
		{storedBlock{}, ledger.Blocked{}},
	} {
		vt, et := reflect.TypeOf(c.view), reflect.TypeOf(c.entry)
		fields := map[string]reflect.StructField{}
		for _, f := range reflect.VisibleFields(et) {
			fields[jsonName(f)] = f
		}
		for i := range vt.NumField() {
			f := vt.Field(i)
			name := jsonName(f)
			ef, ok := fields[name]
			if !ok {
				t.Errorf("%s.%s reads %q, which %s has not", vt.Name(), f.Name, name, et)
				continue
			}
			want := ef.Type
			if view, ok := viewOf[want]; ok {
				want = view
			}
			if f.Type != want {
				t.Errorf("%s.%s is a %s, %s.%s a %s", vt.Name(), f.Name, f.Type, et, ef.Name, ef.Type)
			}
		}
	}
}

// viewOf is the type the report decodes a part of an entry into.
var viewOf = map[reflect.Type]reflect.Type{
	reflect.TypeFor[[]ledger.Order]():   reflect.TypeFor[[]storedOrder](),
	reflect.TypeFor[[]ledger.Action]():  reflect.TypeFor[[]storedAction](),
	reflect.TypeFor[[]ledger.Refusal](): reflect.TypeFor[[]storedRefusal](),
	reflect.TypeFor[[]ledger.Blocked](): reflect.TypeFor[[]storedBlock](),
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// The report reads of each entry what the ledger's Scan decodes of it,
// but for the fields it does not count; the entry before leaves nothing
// in the one it reuses.
func TestReaderReadsWhatScanDecodes(t *testing.T) {
	recs := append(fixtureRecords(), storedRecords(600)...)
	// Subdivisions, and an entry without its arrays after one with them.
	sub := newRec("00000000-0000-7000-d000-000000000001", day(time.March, 1, 1), "m-sub", "acct-sub", "CN-2026-0601").
		remove("CN-2026-0601", "CN", "p-sub")
	sub.rec.Decision.Actions[0].Subdivisions = []string{"CN-BJ", "CN-SH"}
	recs = append(recs, sub.rec, newRec("00000000-0000-7000-d000-000000000002", day(time.March, 1, 2), "m-none", "acct-none").plainAdmission().rec)
	preview := newRec("00000000-0000-7000-d000-000000000003", day(time.March, 1, 3), "m-preview", "acct-preview", "CN-2026-0601").
		remove("CN-2026-0601", "CN", "p-preview")
	preview.rec.Decision.Preview = true
	recs = append(recs, preview.rec)
	l := openFixture(t, recs)
	ctx := context.Background()

	var want []*ledger.Entry
	if err := l.Scan(ctx, ledger.Query{}, func(e *ledger.Entry) error {
		want = append(want, read(e))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(want) < 500 {
		t.Fatalf("%d entries recorded, want 500 or more", len(want))
	}
	var rd reader
	i := 0
	if err := rd.scan(ctx, l, ledger.Query{}, func(e *ledger.Entry) error {
		if got := normal(e); !reflect.DeepEqual(got, normal(want[i])) {
			t.Errorf("entry %d: read\n%+v\nwant\n%+v", i, got, normal(want[i]))
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Errorf("%d entries read, want %d", i, len(want))
	}
}

// read is e without what the report does not read of it.
func read(e *ledger.Entry) *ledger.Entry {
	r := *e
	r.DecisionID, r.MeetingID, r.Account, r.EngineVersion, r.Replica = "", "", "", "", ""
	for _, orders := range []*[]ledger.Order{&r.Orders, &r.OrdersNotInForce} {
		*orders = append([]ledger.Order(nil), *orders...)
		for i := range *orders {
			(*orders)[i].LegalBasis, (*orders)[i].ServiceWide = "", false
		}
	}
	r.Actions = append([]ledger.Action(nil), r.Actions...)
	for i := range r.Actions {
		r.Actions[i].Reason, r.Actions[i].Network, r.Actions[i].LocatedBy = "", "", ""
	}
	r.Refused = append([]ledger.Refusal(nil), r.Refused...)
	for i := range r.Refused {
		r.Refused[i].Reason = ""
	}
	r.GuardBlocked = append([]ledger.Blocked(nil), r.GuardBlocked...)
	for i := range r.GuardBlocked {
		r.GuardBlocked[i].Reason, r.GuardBlocked[i].Country = "", ""
	}
	return &r
}

// normal is a deep copy of e with empty slices and maps as nil, which the
// report does not tell apart, and its time in UTC.
func normal(e *ledger.Entry) ledger.Entry {
	n := *e
	n.Time = n.Time.UTC()
	n.Geo = decision.Geo{Database: e.Geo.Database, Build: e.Geo.Build.UTC()}
	n.Orders, n.OrdersNotInForce = normalOrders(e.Orders), normalOrders(e.OrdersNotInForce)
	n.Actions = nil
	for _, a := range e.Actions {
		a.Subdivisions, a.Jurisdiction = strs(a.Subdivisions), strs(a.Jurisdiction)
		if len(a.Reached) == 0 {
			a.Reached = nil
		}
		n.Actions = append(n.Actions, a)
	}
	n.Refused = append([]ledger.Refusal(nil), e.Refused...)
	n.GuardBlocked = append([]ledger.Blocked(nil), e.GuardBlocked...)
	if len(n.Refused) == 0 {
		n.Refused = nil
	}
	if len(n.GuardBlocked) == 0 {
		n.GuardBlocked = nil
	}
	n.Bundles = nil
	if len(e.Bundles) > 0 {
		n.Bundles = map[string]string{}
		for k, v := range e.Bundles {
			n.Bundles[k] = v
		}
	}
	return n
}

func normalOrders(orders []ledger.Order) []ledger.Order {
	var out []ledger.Order
	for _, o := range orders {
		o.Jurisdiction, o.Demands = strs(o.Jurisdiction), strs(o.Demands)
		out = append(out, o)
	}
	return out
}

func strs(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

// A build counts what it would count of the entries decoded whole, one by
// one, with nothing kept from one entry to the next: the reader's reused
// memory and the aggregator's kept results (received days, validities,
// the GeoIP build's text, decidedAs's input) change no figure. The stored
// entries are rewritten so that consecutive ones lack, or state as null,
// fields the one before had (top-level arrays, the GeoIP build, a
// revocation, an action's reached, subdivisions and jurisdiction), and
// state some the one before lacked; a request sent again is rewritten
// alike, and still counted once.
func TestBuildCountsAsEntriesDecodedWhole(t *testing.T) {
	recs := append(fixtureRecords(), storedRecords(400)...)
	cfg := recordFixture(t, recs)
	rewriteEntries(t, filepath.Join(cfg.DataDir, "ledger.db"), mutilate)
	l, err := ledger.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// The half year and each of its months: entries before a period are
	// read too (priorEntry), by the same reader, those after it for the
	// orders they state (laterOrders), and each period's last statement
	// of an order is another entry's.
	periods := []Period{fixturePeriod}
	for m := time.January; m <= time.June; m++ {
		periods = append(periods, Period{Since: time.Date(2026, m, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, m+1, 1, 0, 0, 0, 0, time.UTC)})
	}
	for _, p := range periods {
		for _, minCount := range []int{1, DefaultMinCount} {
			got, err := Build(context.Background(), l, p, Options{MinCount: minCount})
			if err != nil {
				t.Fatal(err)
			}
			want := buildWhole(t, l, p, minCount)
			want.LedgerHead, want.Unpinned, want.Incomplete, want.periodEnded = got.LedgerHead, got.Unpinned, got.Incomplete, got.periodEnded
			if got.Summary.Decisions.n == 0 || got.Totals.ParticipantActions.Total.n == 0 {
				t.Fatalf("%v: nothing counted", p)
			}
			for _, format := range []string{FormatJSON, FormatMarkdown} {
				var g, w bytes.Buffer
				if err := got.Render(&g, format); err != nil {
					t.Fatal(err)
				}
				if err := want.Render(&w, format); err != nil {
					t.Fatal(err)
				}
				if gl, wl := strings.Split(g.String(), "\n"), strings.Split(w.String(), "\n"); !slices.Equal(gl, wl) {
					for i := range min(len(gl), len(wl)) {
						if gl[i] != wl[i] {
							t.Errorf("%s to %s, min count %d, %s line %d:\n got %s\nwant %s", p.Since.Format(time.DateOnly), p.Until.Format(time.DateOnly), minCount, format, i+1, gl[i], wl[i])
							break
						}
					}
					if len(gl) != len(wl) {
						t.Errorf("%s: %d lines, want %d", format, len(gl), len(wl))
					}
				}
			}
		}
	}
}

// buildWhole is Build's report with every entry decoded whole by the
// ledger (Scan) and the aggregator's kept results and working memory
// dropped before each entry.
func buildWhole(t *testing.T, l *ledger.Ledger, p Period, minCount int) *Report {
	t.Helper()
	ctx := context.Background()
	a := newAggregator(p)
	cold := func(fn func(*ledger.Entry) error) func(*ledger.Entry) error {
		return func(e *ledger.Entry) error {
			fresh := newAggregator(p)
			a.receivedDays, a.validities, a.scratch = fresh.receivedDays, fresh.validities, fresh.scratch
			a.geoBuild, a.geoBuildText, a.digest, a.sorted = time.Time{}, "", nil, nil
			return fn(e)
		}
	}
	for _, s := range []struct {
		q  ledger.Query
		fn func(*ledger.Entry) error
	}{
		{ledger.Query{Since: p.Since.Add(-retryWindow), Until: p.Since}, a.priorEntry},
		{ledger.Query{Since: p.Since, Until: p.Until}, a.entry},
		// Every entry after the period, for the orders it states in force.
		{ledger.Query{Since: p.Until}, func(e *ledger.Entry) error {
			if !e.Preview {
				for _, o := range e.Orders {
					a.laterOrder(o)
				}
			}
			return nil
		}},
	} {
		if err := l.Scan(ctx, s.q, cold(s.fn)); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := l.Counts(ctx, p.Since, p.Until)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		a.countRow(r)
	}
	return a.report(minCount)
}

// rewriteEntries replaces the text of every entry of the SQLite ledger at
// path with edit's (the chain's links then no longer match: a build does
// not check them).
func rewriteEntries(t *testing.T, path string, edit func(rng *rand.Rand, e map[string]any)) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type row struct{ id, entry string }
	var all []row
	rows, err := db.Query(`SELECT decision_id, entry FROM ledger_decisions ORDER BY decided_at, decision_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.entry); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	for _, r := range all {
		var e map[string]any
		if err := json.Unmarshal([]byte(r.entry), &e); err != nil {
			t.Fatal(err)
		}
		// A request sent again is rewritten as it was the first time:
		// decided alike, it is counted once (sentAgain).
		if req, ok := e["request"].(string); ok {
			h := sha256.Sum256([]byte(req))
			edit(rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:]), 9)), e)
		} else {
			edit(rng, e)
		}
		text, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE ledger_decisions SET entry = ? WHERE decision_id = ?`, string(text), r.id); err != nil {
			t.Fatal(err)
		}
		// The index of cited orders as the ledger writes it from the
		// text (Verify holds them to each other).
		if _, err := db.Exec(`DELETE FROM ledger_decision_orders WHERE decision_id = ?`, r.id); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"orders", "orders_not_in_force"} {
			list, _ := e[key].([]any)
			for _, x := range list {
				o, _ := x.(map[string]any)
				id, _ := o["order_id"].(string)
				authority, _ := o["authority"].(string)
				if _, err := db.Exec(`INSERT OR IGNORE INTO ledger_decision_orders (decision_id, order_id, authority, decided_at)
					SELECT decision_id, ?, ?, decided_at FROM ledger_decisions WHERE decision_id = ?`, id, authority, r.id); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// mutilate drops fields of e, states some as null and adds others, each
// at random.
func mutilate(rng *rand.Rand, e map[string]any) {
	// drop deletes key from m, or sets it to null, or leaves it.
	drop := func(m map[string]any, keys ...string) {
		for _, k := range keys {
			switch rng.IntN(8) {
			case 0, 1:
				delete(m, k)
			case 2:
				m[k] = nil
			}
		}
	}
	each := func(key string, fn func(m map[string]any)) {
		list, _ := e[key].([]any)
		for _, x := range list {
			if m, ok := x.(map[string]any); ok {
				fn(m)
			}
		}
	}
	// The entry's orders under ids of their own, as stated by few entries
	// each: an order's last statement in a period is then many entries'.
	suffix := "-" + strconv.Itoa(rng.IntN(40))
	for _, key := range []string{"orders", "orders_not_in_force", "actions", "refused", "guard_blocked"} {
		each(key, func(m map[string]any) {
			if id, ok := m["order_id"].(string); ok {
				m["order_id"] = id + suffix
			}
		})
	}
	for _, key := range []string{"orders", "orders_not_in_force"} {
		each(key, func(o map[string]any) {
			if rng.IntN(3) == 0 {
				// Before, in, after the period; a reason of spaces is no
				// revocation (RecordedValidity fails: in force).
				o["revoked"] = map[string]any{
					"date":   []string{"2025-12-01", "2026-03-05", "2026-06-30T23:00:00Z", "2026-09-01"}[rng.IntN(4)],
					"reason": []string{"revoked", " "}[rng.IntN(2)],
				}
			}
			if rng.IntN(6) == 0 {
				o["effective"] = []string{"2025-11-01", "2026-02-01", "2026-08-01"}[rng.IntN(3)]
			}
			if rng.IntN(6) == 0 {
				o["received"] = "2026-0" + strconv.Itoa(1+rng.IntN(9)) + "-15"
			}
			if rng.IntN(8) == 0 {
				o["jurisdiction"] = []any{"HK", "CN", "CN"}
			}
			drop(o, "jurisdiction", "demands", "revoked", "effective", "expires", "received", "authority_name", "status")
		})
	}
	each("actions", func(a map[string]any) {
		if rng.IntN(4) == 0 {
			a["subdivisions"] = []any{"CN-BJ", "CN-SH"}[:1+rng.IntN(2)]
		}
		if rng.IntN(4) == 0 {
			a["reached"] = map[string]any{"CN": 1 + rng.IntN(5), "US": rng.IntN(2)}
		}
		if rng.IntN(6) == 0 {
			a["host"] = true
		}
		drop(a, "reached", "subdivisions", "jurisdiction", "country", "host", "subject")
	})
	each("refused", func(r map[string]any) { drop(r, "code", "affected_outside") })
	each("guard_blocked", func(b map[string]any) { drop(b, "code", "subject") })
	if g, ok := e["geo"].(map[string]any); ok {
		if rng.IntN(6) == 0 {
			g["build"] = "2026-0" + strconv.Itoa(1+rng.IntN(9)) + "-01T00:00:00+02:00"
		}
		drop(g, "build", "database")
	}
	if b, ok := e["bundles"].(map[string]any); ok && rng.IntN(4) == 0 {
		b["extra"] = "sha256:x" + strconv.Itoa(rng.IntN(3))
	}
	if rng.IntN(6) == 0 {
		e["allow_join"] = rng.IntN(2) == 0
	}
	if rng.IntN(10) == 0 {
		e["preview"] = true
	}
	drop(e, "orders", "orders_not_in_force", "actions", "refused", "guard_blocked", "bundles", "geo", "allow_join", "request")
}

// A PostgreSQL ledger's rows reach the build as SQLite's do (the driver
// hands each entry's text to the one buffer the rows are read into, as a
// string where SQLite's may differ): the same entries, longer and shorter
// ones in turn, give the same report.
func TestBuildReadsPostgreSQLAsSQLite(t *testing.T) {
	recs := append(fixtureRecords(), storedRecords(300)...)
	lite := openFixture(t, recs)
	ctx := context.Background()
	// A shared PostgreSQL ledger is given its key.
	key := filepath.Join(t.TempDir(), "shared.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ledger.Config{URL: pgtest.New(t).URL(), DataDir: t.TempDir(), KeyFile: key, EngineVersion: "test", Logger: slog.New(slog.DiscardHandler)}
	recordInto(t, cfg, recs)
	l := openRecorded(t, cfg)
	for _, p := range []Period{fixturePeriod, {Since: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}} {
		var text [2]string
		for i, l := range []*ledger.Ledger{lite, l} {
			r, err := Build(ctx, l, p, Options{MinCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			if r.Summary.Decisions.n == 0 {
				t.Fatalf("%v: nothing counted", p)
			}
			r.LedgerHead = "" // each ledger's own
			var buf bytes.Buffer
			if err := r.Render(&buf, FormatJSON); err != nil {
				t.Fatal(err)
			}
			text[i] = buf.String()
		}
		if text[0] != text[1] {
			t.Errorf("%s to %s: PostgreSQL's report\n%s\nSQLite's\n%s", p.Since.Format(time.DateOnly), p.Until.Format(time.DateOnly), text[1], text[0])
		}
	}
}
