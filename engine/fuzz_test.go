package engine_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/input"
)

// FuzzPipeline puts whatever the decoder accepts through the whole
// pipeline (locate, evaluate, guard), with the embedded policy and example
// registry and, separately, the malicious test policy, and checks what the
// guard promises on every answer: no panic; no error for a request the
// decoder accepted; every action of a known type, citing an order under
// evaluation; an action on a person only on someone in the request, located
// inside the jurisdiction it cites; end_meeting and suspend_account only
// when every person in the roster is located inside. A person with a phone
// number may be located by it, which this test does not redo: such a
// person is skipped in the location checks, never counted as inside.
//
// The seed corpus runs with go test; to search further:
//
//	go test -run '^$' -fuzz FuzzPipeline -fuzztime 5m ./engine/
func FuzzPipeline(f *testing.F) {
	for _, body := range []string{
		`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a", "account_country": "US"}, "participants": [{"id": "p1", "ip": "1.0.16.9"}, {"id": "p2", "ip": "8.8.8.8"}]}}`,
		`{"meeting": {"id": "control-cn", "host": {"account_id": "acct-cn", "ip": "1.0.16.1"}, "participants": [{"id": "p1", "ip": "1.0.16.9"}, {"id": "p2", "ip": "36.110.1.1"}]}}`,
		`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b"}, "participants": [{"id": "p1", "ip": "101.32.0.1"}, {"id": "p2", "ip": "45.112.0.1"}, {"id": "p3", "ip": "2408:8000::1"}]}}`,
		`{"meeting": {"id": "june4-c", "host": {"account_id": "acct-hk-c"}, "participants": [{"id": "p1", "phone": "+8613800000000"}, {"id": "p2"}]}}`,
		`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a"}}, "participant": {"id": "j", "ip": "1.0.16.9"}}`,
		`{"meeting": {"id": "weekly", "host": {"account_id": "acct-nobody"}}, "participant": {"id": "j", "ip": "8.8.8.8"}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "1.0.16.9"}]}, "order": {"id": "PREVIEW-1", "authority": "cn.cac", "demands": ["end_meeting", "remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x"}}`,
	} {
		f.Add([]byte(body))
	}
	db, err := geo.Open(geotest.Standard(f))
	if err != nil {
		f.Fatal(err)
	}
	engines := map[string]*engine.Engine{"default": newEngine(f), "malicious": newEngine(f, "testdata/malicious", "../bundles/registry")}
	f.Fuzz(func(t *testing.T, data []byte) {
		for name, e := range engines {
			if req, err := input.Decode(data, input.Limits{MaxParticipants: 1000}); err == nil {
				d, err := e.Decide(context.Background(), req)
				if err != nil {
					t.Fatalf("%s policy: Decide refused a request the decoder accepted: %v", name, err)
				}
				keepsThePromises(t, name, db, d, peopleIn(req))
				req.Release()
			}
			if req, err := input.DecodeAdmission(data); err == nil {
				d, err := e.Admit(context.Background(), req)
				if err != nil {
					t.Fatalf("%s policy: Admit refused a request the decoder accepted: %v", name, err)
				}
				for _, a := range d.Actions {
					if a.Type != decision.DenyJoin {
						t.Fatalf("%s policy: an admission answered with %s", name, a.Type)
					}
				}
				keepsThePromises(t, name, db, d, peopleIn(req))
				req.Release()
			}
		}
	})
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
func keepsThePromises(t *testing.T, policyName string, db *geo.DB, d *decision.Decision, people []person) {
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
		switch a.Type {
		case decision.RemoveParticipant, decision.DenyJoin:
			i := slices.IndexFunc(people, func(p person) bool { return p.id == a.ParticipantID && p.host == a.Host })
			if i < 0 {
				t.Fatalf("%s policy: %+v acts on someone not in the request", policyName, a)
			}
			if p := people[i]; a.LocatedBy != decision.LocatedByPhone && !inside(p, a.Jurisdiction) {
				t.Fatalf("%s policy: %+v acts on %q, not located inside %v", policyName, a, p.id, a.Jurisdiction)
			}
		case decision.EndMeeting, decision.SuspendAccount:
			if len(people) == 0 {
				t.Fatalf("%s policy: %+v on a meeting nobody is in", policyName, a)
			}
			for _, p := range people {
				if p.phone == "" && !inside(p, a.Jurisdiction) {
					t.Fatalf("%s policy: %+v although %q is not located inside %v", policyName, a, p.id, a.Jurisdiction)
				}
			}
		default:
			t.Fatalf("%s policy: unknown action type in %+v", policyName, a)
		}
	}
}
