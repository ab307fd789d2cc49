package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/registry"
)

// The policy input as the default policy and an extension reading people
// see it: located countries and what the meeting server said about people,
// never an address or a calling number.
func TestPolicyInput(t *testing.T) {
	req, err := input.Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "acct", "account_country": "US", "phone": "+12025550123",
	    "attributes": {"verified": true}},
	  "participants": [
	    {"id": "p1", "ip": "1.0.16.5", "role": "co_host", "account_id": "a1", "account_country": "HK", "attributes": {"press": "yes", "n": 2, "tags": ["x"]}},
	    {"id": "p2", "phone": "+861012345678"},
	    {"id": "p3", "phone": "+85221234567", "role": "attendee"}]},
	  "joining": {"id": "j", "ip": "10.1.1.1", "role": "panelist"}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f := &guard.Facts{
		Host: &guard.Person{ID: "acct", Located: guard.Located{Country: "US", By: decision.LocatedByPhone}},
		Participants: []guard.Person{
			{ID: "p1", Located: guard.Located{Country: "CN", By: decision.LocatedByIP}},
			{ID: "p2"},
			{ID: "p3", Located: guard.Located{Country: "HK", By: decision.LocatedByPhone}},
		},
		Joining: &guard.Person{ID: "j"},
		Orders:  map[string]registry.Order{"O-1": {}},
	}
	meeting := `"id": "m",
	  "host": {"id": "acct", "account_id": "acct", "account_country": "US", "connected": true, "role": "host",
	           "country": "US", "located_by": "phone", "attributes": {"verified": true}},
	  "participant_count": 3,
	  "by_country": {"CN": ["p1"], "HK": ["p3"]},
	  "by_subdivision": {},
	  "unlocated": ["p2"]`
	people := `"participants": [
	    {"id": "p1", "country": "CN", "located_by": "ip", "role": "co_host", "account_id": "a1", "account_country": "HK",
	     "attributes": {"press": "yes", "n": 2, "tags": ["x"]}},
	    {"id": "p2"},
	    {"id": "p3", "country": "HK", "located_by": "phone", "role": "attendee"}]`
	rest := `"joining": {"id": "j", "role": "panelist"}, "standing_orders": ["O-1"]`
	for _, tc := range []struct {
		withParticipants bool
		want             string
	}{
		{false, `{"meeting": {` + meeting + `}, ` + rest + `}`},
		{true, `{"meeting": {` + meeting + `, ` + people + `}, ` + rest + `}`},
	} {
		got := builtInput(req, f, tc.withParticipants)
		want := ast.MustParseTerm(tc.want).Value
		if got.Compare(want) != 0 {
			t.Errorf("withParticipants=%v:\n got  %v\n want %v", tc.withParticipants, got, want)
		}
		raw, _ := json.Marshal(ast.MustJSON(got))
		for _, secret := range []string{"1.0.16.5", "10.1.1.1", "+1202", "2025550123", "+86", "1012345678", "2123"} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("the policy input carries %q: %s", secret, raw)
			}
		}
	}
}

// builtInput is the input decide gives the policy.
func builtInput(req *input.Request, f *guard.Facts, withParticipants bool) ast.Value {
	return (&lazyInput{req: req, facts: f, withParticipants: withParticipants}).input()
}

// A roster large enough for its arrays to be reused is grouped by country
// in request order, the unlocated apart, and a country code outside the
// two-letter ones in a group of its own; built again on arrays given back
// by an earlier request, it is the same.
func TestPolicyInputGroupsLargeRosters(t *testing.T) {
	countries := []string{"CN", "", "US", "ZZ", "AA", "CN", "X1", "HK"}
	const n = 5_000
	ps := make([]input.Participant, n)
	f := &guard.Facts{Participants: make([]guard.Person, n)}
	want := map[string][]*ast.Term{}
	for i := range ps {
		ps[i].ID = fmt.Sprintf("p-%d", i)
		c := countries[i*7%len(countries)]
		f.Participants[i] = guard.Person{ID: ps[i].ID, Located: guard.Located{Country: c, By: decision.LocatedByIP}}
		want[c] = append(want[c], ast.StringTerm(ps[i].ID))
	}
	req := &input.Request{Meeting: input.Meeting{ID: "m", Host: input.Host{AccountID: "a"}, Participants: ps}}
	wantCountries := ast.NewObject()
	for c, ids := range want {
		if c != "" {
			wantCountries.Insert(ast.StringTerm(c), ast.ArrayTerm(ids...))
		}
	}
	for round := range 3 {
		l := &lazyInput{req: req, facts: f}
		meeting, err := l.input().Find(ast.Ref{ast.StringTerm("meeting")})
		if err != nil {
			t.Fatal(err)
		}
		m := meeting.(ast.Object)
		if got := m.Get(ast.StringTerm("by_country")).Value; got.Compare(wantCountries) != 0 {
			t.Fatalf("round %d: by_country\n got  %v\n want %v", round, got, wantCountries)
		}
		if got, want := m.Get(ast.StringTerm("unlocated")).Value, ast.NewArray(want[""]...); got.Compare(want) != 0 {
			t.Fatalf("round %d: unlocated\n got  %v\n want %v", round, got, want)
		}
		l.release()
	}
}

// People a City database located in subdivisions carry them, and are
// grouped by each subdivision beside their country; a preview order
// carries what was submitted of its validity and all_meetings.
func TestPolicyInputSubdivisionsAndPreviewOrder(t *testing.T) {
	req, err := input.Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "acct", "ip": "81.2.69.1"},
	  "participants": [{"id": "p1", "ip": "91.200.1.1"}, {"id": "p2", "ip": "91.203.1.1"}, {"id": "p3", "ip": "81.2.69.2"}, {"id": "p4", "ip": "91.200.1.2"}]},
	  "joining": {"id": "j", "ip": "91.201.1.1"},
	  "order": {"id": "O", "authority": "ua", "demands": ["remove_participants"], "targets": {"all_meetings": true},
	            "effective": "2026-01-01", "revoked": {"date": "2027-01-01", "reason": "r"}}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ua := func(sd ...string) guard.Located {
		return guard.Located{Country: "UA", By: decision.LocatedByIP, Subdivisions: sd}
	}
	gb := guard.Located{Country: "GB", By: decision.LocatedByIP, Subdivisions: []string{"GB-ENG", "GB-LND"}}
	f := &guard.Facts{
		Host:         &guard.Person{ID: "acct", Located: gb},
		Participants: []guard.Person{{ID: "p1", Located: ua("UA-43")}, {ID: "p2", Located: ua()}, {ID: "p3", Located: gb}, {ID: "p4", Located: ua("UA-43")}},
		Joining:      &guard.Person{ID: "j", Located: ua("UA-40")},
	}
	got := builtInput(req, f, true)
	want := ast.MustParseTerm(`{"meeting": {"id": "m",
	  "host": {"id": "acct", "account_id": "acct", "connected": true, "role": "host", "country": "GB", "located_by": "ip", "subdivisions": ["GB-ENG", "GB-LND"]},
	  "participant_count": 4,
	  "by_country": {"UA": ["p1", "p2", "p4"], "GB": ["p3"]},
	  "by_subdivision": {"UA-43": ["p1", "p4"], "GB-ENG": ["p3"], "GB-LND": ["p3"]},
	  "unlocated": [],
	  "participants": [
	    {"id": "p1", "country": "UA", "located_by": "ip", "subdivisions": ["UA-43"]},
	    {"id": "p2", "country": "UA", "located_by": "ip"},
	    {"id": "p3", "country": "GB", "located_by": "ip", "subdivisions": ["GB-ENG", "GB-LND"]},
	    {"id": "p4", "country": "UA", "located_by": "ip", "subdivisions": ["UA-43"]}]},
	 "joining": {"id": "j", "country": "UA", "located_by": "ip", "subdivisions": ["UA-40"]},
	 "order": {"id": "O", "authority": "ua", "demands": ["remove_participants"],
	           "targets": {"meetings": [], "accounts": [], "all_meetings": true},
	           "legal_basis": "", "received": "", "effective": "2026-01-01", "revoked": {"date": "2027-01-01", "reason": "r"}}}`).Value
	if got.Compare(want) != 0 {
		t.Errorf("\n got  %v\n want %v", got, want)
	}
}

// Every input the engine builds matches docs/schemas/input.json, the
// schema `opa check --schema` types policies against (closed objects: a
// field the engine adds must be documented there first).
func TestPolicyInputMatchesSchema(t *testing.T) {
	raw, err := os.ReadFile("../docs/schemas/input.json")
	if err != nil {
		t.Fatal(err)
	}
	schema, err := ast.ParseTerm(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	q, err := rego.New(rego.Query(`[ok, errors] := json.match_schema(input, data.schema)`),
		rego.Store(inmem.NewFromObject(map[string]any{"schema": ast.MustJSON(schema.Value)}))).PrepareForEval(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, v ast.Value) {
		t.Helper()
		rs, err := q.Eval(t.Context(), rego.EvalParsedInput(v))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: %v %v", name, rs, err)
		}
		if ok, _ := rs[0].Bindings["ok"].(bool); !ok {
			t.Errorf("%s: the input does not match the schema: %v\n%v", name, rs[0].Bindings["errors"], v)
		}
	}
	ua := guard.Located{Country: "UA", By: decision.LocatedByIP, Subdivisions: []string{"UA-43"}}
	for _, tc := range []struct {
		name string
		body string
		f    *guard.Facts
	}{
		{"admission", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "ip": "91.200.1.1"}}`,
			&guard.Facts{Joining: &guard.Person{ID: "j", Located: ua}, Orders: map[string]registry.Order{"O": {}}}},
		{"roster", `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "UA", "ip": "91.200.1.2", "attributes": {"x": ["y"]}},
		    "participants": [{"id": "p1", "ip": "91.200.1.1", "role": "co_host", "account_id": "x", "account_country": "GB", "attributes": {"n": 1}},
		                     {"id": "p2", "phone": "+861012345678"}, {"id": "p3", "ip": "10.0.0.1"}]}}`,
			&guard.Facts{Host: &guard.Person{ID: "a", Located: ua}, Participants: []guard.Person{
				{ID: "p1", Located: ua}, {ID: "p2", Located: guard.Located{Country: "CN", By: decision.LocatedByPhone}}, {ID: "p3"}}, Orders: map[string]registry.Order{"O": {}}}},
		{"preview", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p1", "ip": "91.200.1.1"}]},
		    "order": {"id": "O", "authority": "x", "demands": ["remove_participants"], "targets": {"all_meetings": true}, "legal_basis": "b",
		              "effective": "2026-01-01", "expires": "2027-01-01T00:00:00Z", "revoked": {"date": "2026-06-01", "reason": "r"}}}`,
			&guard.Facts{Participants: []guard.Person{{ID: "p1", Located: ua}}}},
	} {
		req, err := input.Decode([]byte(tc.body), input.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, with := range []bool{false, true} {
			check(fmt.Sprintf("%s (participants %v)", tc.name, with), builtInput(req, tc.f, with))
		}
	}
	// The check is not vacuous: a field the schema does not list fails it.
	bad := builtInput(&input.Request{Meeting: input.Meeting{ID: "m", Host: input.Host{AccountID: "a"}}}, &guard.Facts{}, false).(ast.Object)
	bad.Insert(ast.StringTerm("jurisdiction"), ast.StringTerm("CN"))
	rs, err := q.Eval(t.Context(), rego.EvalParsedInput(bad))
	if err != nil || len(rs) != 1 || rs[0].Bindings["ok"] != false {
		t.Errorf("an input with an undocumented field matched the schema: %v %v", rs, err)
	}
}

// The join-time answer's key is read from the request where it can be,
// without building the input: what it reads must be what the built input
// holds, for every path and every shape of request.
func TestLazyInputIsTheInput(t *testing.T) {
	bodies := []string{
		`{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "US"}}, "joining": {"id": "j", "ip": "1.0.16.9"}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "phone": "+8610123456"}}`,
		`{"meeting": {"id": "m\"x", "host": {"account_id": "a"}}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "8.8.8.8"}, "participants": [{"id": "p", "ip": "1.0.16.9", "role": "co_host"}]},
		  "joining": {"id": "j", "ip": "8.8.8.8", "attributes": {"k": "v"}},
		  "order": {"id": "o", "authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m"]}}}`,
	}
	paths := []string{"input.meeting.id", "input.meeting.host.account_id", "input.joining.country", "input.standing_orders", "input.order",
		"input.order.id", "input.joining", "input.joining.id", "input.meeting", "input.meeting.host", "input.meeting.participants",
		"input.meeting.by_country", "input.nothing", "input.meeting.id.deeper", "input.joining.located_by", "input.joining.subdivisions"}
	for _, body := range bodies {
		req, err := input.Decode([]byte(body), input.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, orders := range []map[string]registry.Order{nil, {"O-2": {}, "O-1": {}}} {
			f := &guard.Facts{Orders: orders}
			for _, p := range req.Meeting.Participants {
				f.Participants = append(f.Participants, guard.Person{ID: p.ID, Located: guard.Located{Country: "CN", By: decision.LocatedByIP}})
			}
			if req.Joining != nil {
				f.Joining = &guard.Person{ID: req.Joining.ID}
				if req.Joining.Addr.IsValid() {
					f.Joining.Located = guard.Located{Country: "CN", By: decision.LocatedByIP}
				}
			}
			full := builtInput(req, f, true)
			for _, p := range paths {
				ref := ast.MustParseRef(p)
				lazy := (&lazyInput{req: req, facts: f, withParticipants: true}).at(ref)
				want := ast.Value(nil)
				if e, err := full.Find(ref[1:]); err == nil {
					want = e
				}
				if (lazy == nil) != (want == nil) || (lazy != nil && lazy.Compare(want) != 0) {
					t.Errorf("%s in %s (orders %v): lazily %v, built %v", p, body, orders, lazy, want)
				}
			}
		}
	}
}
