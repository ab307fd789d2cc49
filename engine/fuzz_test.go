package engine_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/registry"
)

// FuzzPipeline puts whatever the decoder accepts through the whole
// pipeline (locate, evaluate, guard) on four engines: the embedded policy
// and example registry, and the malicious test policy on them, both with
// the Country database; and the default policy and a malicious one on a
// registry with periods of validity, a service-wide order and a
// subdivision's jurisdiction (UA-43), with the City database. It checks
// what the guard promises on every answer, against the registry itself
// rather than what an action claims: no panic; no error for a request the
// decoder accepted; every action of a known type, citing an order under
// evaluation; an action on a person only on someone in the request,
// located inside the jurisdiction of the cited order's authority;
// end_meeting and suspend_account only when every person in the request
// is located inside (for suspend_account, the account holder connected
// among them), and never through a service-wide order. A person
// with a phone number may be located by it, which this test does not
// redo: such a person is skipped in the location checks, never counted as
// inside.
//
// The seed corpus runs with go test; to search further:
//
//	go test -run '^$' -fuzz FuzzPipeline -fuzztime 5m ./engine/
func FuzzPipeline(f *testing.F) {
	for _, body := range []string{
		`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a", "account_country": "US"}, "participants": [{"id": "p1", "ip": "1.0.16.9"}, {"id": "p2", "ip": "8.8.8.8"}]}}`,
		`{"meeting": {"id": "control-cn", "host": {"account_id": "acct-cn", "ip": "1.0.16.1"}, "participants": [{"id": "p1", "ip": "1.0.16.9"}, {"id": "p2", "ip": "36.110.1.1"}]}}`,
		`{"meeting": {"id": "m1", "host": {"account_id": "acct-cn", "account_country": "CN"}, "participants": [{"id": "p1", "ip": "1.0.16.9"}]}}`,
		`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b"}, "participants": [{"id": "p1", "ip": "101.32.0.1"}, {"id": "p2", "ip": "45.112.0.1"}, {"id": "p3", "ip": "2408:8000::1"}]}}`,
		`{"meeting": {"id": "june4-c", "host": {"account_id": "acct-hk-c"}, "participants": [{"id": "p1", "phone": "+8613800000000"}, {"id": "p2"}]}}`,
		`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a"}}, "participant": {"id": "j", "ip": "1.0.16.9"}}`,
		`{"meeting": {"id": "weekly", "host": {"account_id": "acct-nobody"}}, "participant": {"id": "j", "ip": "8.8.8.8"}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "1.0.16.9"}]}, "order": {"id": "PREVIEW-1", "authority": "cn.cac", "demands": ["end_meeting", "remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x"}}`,
		meetingM1,
		`{"meeting": {"id": "m1", "host": {"account_id": "acct-1", "ip": "91.200.1.9"}, "participants": [{"id": "a", "ip": "91.200.1.1"}, {"id": "b", "ip": "91.201.1.1"}, {"id": "c", "ip": "91.203.1.1"}, {"id": "d", "ip": "91.204.1.1"}, {"id": "e", "ip": "91.205.1.1"}, {"id": "f", "ip": "91.206.1.1"}]}}`,
		`{"meeting": {"id": "m2", "host": {"account_id": "acct-2"}}, "participant": {"id": "j", "ip": "91.200.1.2"}}`,
	} {
		f.Add([]byte(body))
	}
	now := mustTime("2026-05-01T12:00:00Z")
	country, city := geotest.Standard(f), geotest.StandardCity(f)
	example, orders := readRegistry(f, "../bundles/registry"), readRegistry(f, "testdata/registry-orders")
	engines := []struct {
		name string
		e    *engine.Engine
		db   *geo.DB
		reg  registryView
	}{
		{"default", newEngine(f), openGeo(f, country), example},
		{"malicious", newEngine(f, "testdata/malicious", "../bundles/registry"), openGeo(f, country), example},
		{"default with periods and subdivisions", engineAt(f, city, &now, "../policies", "testdata/registry-orders"), openGeo(f, city), orders},
		{"malicious with periods and subdivisions", engineAt(f, city, &now, "testdata/malicious-orders", "testdata/registry-orders"), openGeo(f, city), orders},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Decoded once: the engines only read a request.
		if req, err := input.Decode(data, input.Limits{MaxParticipants: 1000}); err == nil {
			people := peopleIn(req)
			for _, c := range engines {
				d, err := c.e.Decide(context.Background(), req)
				if err != nil {
					t.Fatalf("%s policy: Decide refused a request the decoder accepted: %v", c.name, err)
				}
				keepsThePromises(t, c.name, c.db, c.reg.with(req.Order), d, people)
			}
			req.Release()
		}
		if req, err := input.DecodeAdmission(data); err == nil {
			people := peopleIn(req)
			for _, c := range engines {
				d, err := c.e.Admit(context.Background(), req)
				if err != nil {
					t.Fatalf("%s policy: Admit refused a request the decoder accepted: %v", c.name, err)
				}
				for _, a := range d.Actions {
					if a.Type != decision.DenyJoin {
						t.Fatalf("%s policy: an admission answered with %s", c.name, a.Type)
					}
				}
				keepsThePromises(t, c.name, c.db, c.reg, d, people)
			}
			req.Release()
		}
	})
}

func openGeo(tb testing.TB, path string) *geo.DB {
	tb.Helper()
	db, err := geo.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

// registryView is what the checks need of a registry: each authority's
// jurisdiction, and each order's authority and whether it is
// service-wide.
type registryView struct {
	jurisdictions map[string][]string
	orders        map[string]registry.Order
}

// readRegistry reads the registry bundle in dir as files, not through the
// engine: the checks must not share what they check.
func readRegistry(tb testing.TB, dir string) registryView {
	tb.Helper()
	var authorities map[string]registry.Authority
	r := registryView{jurisdictions: map[string][]string{}}
	for file, v := range map[string]any{"authorities/data.json": &authorities, "orders/data.json": &r.orders} {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			tb.Fatal(err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			tb.Fatal(err)
		}
	}
	for id, a := range authorities {
		r.jurisdictions[id] = a.Jurisdiction
	}
	return r
}

// with adds a previewed order (a decision request's "order").
func (r registryView) with(o *input.Order) registryView {
	if o == nil {
		return r
	}
	r.orders = maps.Clone(r.orders)
	r.orders[o.ID] = o.Registry()
	return r
}

// order is the jurisdiction of order id's authority (nil for an order the
// registry does not hold) and whether the order is service-wide.
func (r registryView) order(id string) (jurisdiction []string, serviceWide bool) {
	o, ok := r.orders[id]
	if !ok {
		return nil, false
	}
	return r.jurisdictions[o.Authority], o.ServiceWide()
}

// person is someone a request names: a participant, the one asking to
// join, or the connected host (whose id in actions is its account's).
type person struct {
	id    string
	host  bool
	addr  netip.Addr
	phone string
}

func peopleIn(req *input.Request) []person {
	var out []person
	for _, p := range req.Meeting.Participants {
		out = append(out, person{id: p.ID, addr: p.Addr, phone: p.Phone})
	}
	if j := req.Joining; j != nil {
		out = append(out, person{id: j.ID, addr: j.Addr, phone: j.Phone})
	}
	if h := req.Meeting.Host; h.Connected() {
		out = append(out, person{id: h.AccountID, host: true, addr: h.Addr, phone: h.Phone})
	}
	return out
}

// keepsThePromises checks a decision's actions against the people of the
// request (see FuzzPipeline).
func keepsThePromises(t *testing.T, policyName string, db *geo.DB, reg registryView, d *decision.Decision, people []person) {
	t.Helper()
	inside := func(p person, jurisdiction []string) bool {
		if !p.addr.IsValid() {
			return false
		}
		loc := db.Locate(p.addr)
		return loc.Known && (slices.Contains(jurisdiction, loc.Country) ||
			slices.ContainsFunc(loc.Subdivisions, func(s string) bool { return slices.Contains(jurisdiction, s) }))
	}
	for _, a := range d.Actions {
		if !slices.Contains(d.OrderIDs, a.OrderID) {
			t.Fatalf("%s policy: %+v cites an order not under evaluation (%v)", policyName, a, d.OrderIDs)
		}
		jurisdiction, serviceWide := reg.order(a.OrderID)
		if len(jurisdiction) == 0 {
			t.Fatalf("%s policy: %+v cites an order with no jurisdiction in the registry", policyName, a)
		}
		switch a.Type {
		case decision.RemoveParticipant, decision.DenyJoin:
			i := slices.IndexFunc(people, func(p person) bool { return p.id == a.ParticipantID && p.host == a.Host })
			if i < 0 {
				t.Fatalf("%s policy: %+v acts on someone not in the request", policyName, a)
			}
			if p := people[i]; a.LocatedBy != decision.LocatedByPhone && !inside(p, jurisdiction) {
				t.Fatalf("%s policy: %+v acts on %q, not located inside %v", policyName, a, p.id, jurisdiction)
			}
		case decision.EndMeeting, decision.SuspendAccount:
			if len(people) == 0 {
				t.Fatalf("%s policy: %+v on a meeting nobody is in", policyName, a)
			}
			if serviceWide {
				t.Fatalf("%s policy: %+v through a service-wide order", policyName, a)
			}
			for _, p := range people {
				if p.phone == "" && !inside(p, jurisdiction) {
					t.Fatalf("%s policy: %+v although %q is not located inside %v", policyName, a, p.id, jurisdiction)
				}
			}
			// An account acts on its holder, who must be there to be located.
			if a.Type == decision.SuspendAccount && !slices.ContainsFunc(people, func(p person) bool { return p.host }) {
				t.Fatalf("%s policy: %+v although the account holder is not connected", policyName, a)
			}
		default:
			t.Fatalf("%s policy: unknown action type in %+v", policyName, a)
		}
	}
}
