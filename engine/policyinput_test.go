package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

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
		Participants: map[string]guard.Located{
			"p1": {Country: "CN", By: decision.LocatedByIP},
			"p2": {},
			"p3": {Country: "HK", By: decision.LocatedByPhone},
		},
		Joining: &guard.Person{ID: "j"},
		Orders:  map[string]registry.Order{"O-1": {}},
	}
	meeting := `"id": "m",
	  "host": {"id": "acct", "account_id": "acct", "account_country": "US", "connected": true, "role": "host",
	           "country": "US", "located_by": "phone", "attributes": {"verified": true}},
	  "participant_count": 3,
	  "by_country": {"CN": ["p1"], "HK": ["p3"]},
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
		located := make([]guard.Located, len(req.Meeting.Participants))
		for i, p := range req.Meeting.Participants {
			located[i] = f.Participants[p.ID]
		}
		got := policyInput(req, f, located, tc.withParticipants)
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
		"input.meeting.by_country", "input.nothing", "input.meeting.id.deeper", "input.joining.located_by"}
	for _, body := range bodies {
		req, err := input.Decode([]byte(body), input.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, orders := range []map[string]registry.Order{nil, {"O-2": {}, "O-1": {}}} {
			f := &guard.Facts{Participants: map[string]guard.Located{}, Orders: orders}
			located := make([]guard.Located, len(req.Meeting.Participants))
			for i, p := range req.Meeting.Participants {
				located[i] = guard.Located{Country: "CN", By: decision.LocatedByIP}
				f.Participants[p.ID] = located[i]
			}
			if req.Joining != nil {
				f.Joining = &guard.Person{ID: req.Joining.ID}
				if req.Joining.Addr.IsValid() {
					f.Joining.Located = guard.Located{Country: "CN", By: decision.LocatedByIP}
				}
			}
			full := policyInput(req, f, located, true)
			for _, p := range paths {
				ref := ast.MustParseRef(p)
				lazy := (&lazyInput{req: req, facts: f, located: located, withParticipants: true}).at(ref)
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
