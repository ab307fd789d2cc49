package report

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
)

// The types the report decodes a stored entry into name fields of
// ledger.Entry and its parts, by the same JSON names and of the same
// types: a field renamed in the ledger and not here would be read as
// absent, and its figures counted as zero without an error.
func TestStoredNamesEntryFields(t *testing.T) {
	for _, c := range []struct{ view, entry any }{
		{stored{}, ledger.Entry{}},
		{storedOrders{}, ledger.Entry{}},
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
	for _, full := range []bool{true, false} {
		var rd reader
		i := 0
		if err := rd.scan(ctx, l, ledger.Query{}, full, func(e *ledger.Entry) error {
			w := want[i]
			if !full {
				w = &ledger.Entry{Preview: w.Preview, Orders: w.Orders}
			}
			if got := normal(e); !reflect.DeepEqual(got, normal(w)) {
				t.Errorf("entry %d (full %v): read\n%+v\nwant\n%+v", i, full, got, normal(w))
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != len(want) {
			t.Errorf("full %v: %d entries read, want %d", full, i, len(want))
		}
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
