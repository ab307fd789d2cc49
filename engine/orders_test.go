package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
)

// engineAt returns an engine on the GeoIP database at dbPath whose clock
// reads *now, with the bundles at paths.
func engineAt(t testing.TB, dbPath string, now *time.Time, paths ...string) *engine.Engine {
	t.Helper()
	snap, err := policy.LoadSnapshot(context.Background(), paths, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.WithClock(func() time.Time { return *now }))
	e.SetPolicy(snap)
	e.SetGeo(db)
	return e
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// meetingM1 is meeting m1 of account acct-1 (registered in UA): the host
// and one participant in Crimea (UA-43), one in Kyiv (UA-30), one in
// Beijing (CN), one in Hong Kong, and a participant in Crimea joining.
const meetingM1 = `{"meeting": {"id": "m1", "host": {"account_id": "acct-1", "account_country": "UA", "ip": "91.200.1.9"},
  "participants": [{"id": "p-crimea", "ip": "91.200.1.1"}, {"id": "p-kyiv", "ip": "91.202.1.1"},
                   {"id": "p-cn", "ip": "1.0.16.5"}, {"id": "p-hk", "ip": "147.8.1.1"}]},
  "joining": {"id": "j-crimea", "ip": "91.200.1.2"}}`

// No policy can act on an order that is not in force, end a meeting or
// suspend an account through a service-wide order, or reach a person
// outside the subdivisions of a jurisdiction: the guard drops all of it,
// whatever the policy returns.
func TestGuardStopsMaliciousPolicyOnValidityServiceWideAndSubdivisions(t *testing.T) {
	now := mustTime("2026-05-01T12:00:00Z")
	e := engineAt(t, geotest.StandardCity(t), &now, "testdata/malicious-orders", "testdata/registry-orders")
	d := decide(t, e, meetingM1)

	if want := []string{"CN-IN-FORCE", "UA-43-EVERYONE", "UA-43-M1"}; !slices.Equal(d.OrderIDs, want) {
		t.Errorf("order_ids = %v, want %v", d.OrderIDs, want)
	}
	wantNotInForce := []decision.OrderStatus{
		{OrderID: "CN-EXPIRED", Status: "expired"}, {OrderID: "CN-LATER", Status: "not_yet_effective"}, {OrderID: "CN-REVOKED", Status: "revoked"},
	}
	if !slices.Equal(d.OrdersNotInForce, wantNotInForce) {
		t.Errorf("orders_not_in_force = %v, want %v", d.OrdersNotInForce, wantNotInForce)
	}

	var kept []string
	for _, a := range d.Actions {
		kept = append(kept, summary(a))
		if a.ParticipantID == "p-crimea" && !slices.Equal(a.Subdivisions, []string{"UA-43"}) {
			t.Errorf("the action on p-crimea does not state the subdivision: %+v", a)
		}
	}
	slices.Sort(kept)
	want := []string{
		"deny_join j-crimea UA-43-EVERYONE",
		"deny_join j-crimea UA-43-M1",
		"remove_participant host:acct-1 UA-43-EVERYONE",
		"remove_participant host:acct-1 UA-43-M1",
		"remove_participant p-cn CN-IN-FORCE",
		"remove_participant p-crimea UA-43-EVERYONE",
		"remove_participant p-crimea UA-43-M1",
	}
	if !slices.Equal(kept, want) {
		t.Errorf("kept = %q\n want %q", kept, want)
	}
	if *d.AllowJoin {
		t.Error("the participant joining from Crimea must be denied")
	}

	byOrder := map[string]map[string]int{}
	for _, b := range d.GuardBlocked {
		if byOrder[b.Action.OrderID] == nil {
			byOrder[b.Action.OrderID] = map[string]int{}
		}
		byOrder[b.Action.OrderID][b.Code]++
	}
	// Every action citing an order not in force is blocked as such: four
	// participants, the host, the joining one, end_meeting and
	// suspend_account.
	for _, id := range []string{"CN-LATER", "CN-EXPIRED", "CN-REVOKED"} {
		if got := byOrder[id]; len(got) != 1 || got["order_not_in_force"] != 8 {
			t.Errorf("blocked actions citing %s: %v, want 8 order_not_in_force", id, got)
		}
	}
	if got := byOrder["CN-ELSEWHERE-EXPIRED"]; len(got) != 1 || got["unknown_order"] != 8 {
		t.Errorf("an order not in force for another meeting is unknown here: %v", got)
	}
	if got := byOrder["UA-43-EVERYONE"]; got["service_wide_order"] != 2 || got["misstated_facts"] != 1 {
		t.Errorf("blocked actions citing the service-wide order: %v, want its end_meeting and suspend_account as service_wide_order and the false claim about p-kyiv as misstated_facts", got)
	}
	if got := byOrder["UA-43-M1"]; got["affects_outside"] != 2 || got["outside_jurisdiction"] != 3 {
		t.Errorf("blocked actions citing UA-43-M1: %v, want end_meeting and suspend_account affecting people outside UA-43, and p-kyiv, p-cn and p-hk outside it", got)
	}
}

// An order's status follows the engine's clock: a date-only effective is
// from the start of its UTC day, an RFC 3339 one from its instant, and a
// date-only expires is in force through the end of its UTC day.
func TestOrdersFollowTheClock(t *testing.T) {
	var now time.Time
	e := engineAt(t, geotest.StandardCity(t), &now, "../policies", "testdata/registry-orders")
	const cnParticipant = `{"meeting": {"id": "m1", "host": {"account_id": "acct-x", "account_country": "US"}, "participants": [{"id": "p-cn", "ip": "1.0.16.5"}]}}`
	for _, tc := range []struct {
		at         string
		inForce    []string
		notInForce []decision.OrderStatus
	}{
		{"2025-12-31T23:59:59Z", []string{"CN-REVOKED", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-IN-FORCE", Status: "not_yet_effective"}, {OrderID: "CN-LATER", Status: "not_yet_effective"}}},
		{"2026-01-01T00:00:00Z", []string{"CN-IN-FORCE", "CN-REVOKED", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-LATER", Status: "not_yet_effective"}}},
		{"2026-02-28T23:59:59Z", []string{"CN-IN-FORCE", "CN-REVOKED", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-LATER", Status: "not_yet_effective"}}},
		{"2026-03-01T00:00:00Z", []string{"CN-IN-FORCE", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-LATER", Status: "not_yet_effective"}, {OrderID: "CN-REVOKED", Status: "revoked"}}},
		{"2026-07-01T11:59:59Z", []string{"CN-IN-FORCE", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-LATER", Status: "not_yet_effective"}, {OrderID: "CN-REVOKED", Status: "revoked"}}},
		{"2026-07-01T12:00:00Z", []string{"CN-IN-FORCE", "CN-LATER", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-REVOKED", Status: "revoked"}}},
		{"2026-12-31T23:59:59.999Z", []string{"CN-IN-FORCE", "CN-LATER", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-REVOKED", Status: "revoked"}}},
		{"2027-01-01T00:00:00Z", []string{"CN-LATER", "UA-43-EVERYONE", "UA-43-M1"},
			[]decision.OrderStatus{{OrderID: "CN-IN-FORCE", Status: "expired"}, {OrderID: "CN-REVOKED", Status: "revoked"}}},
	} {
		now = mustTime(tc.at)
		d := decide(t, e, cnParticipant)
		if !slices.Equal(d.OrderIDs, tc.inForce) || !slices.Equal(d.OrdersNotInForce, tc.notInForce) {
			t.Errorf("at %s: order_ids %v, not in force %v\n want %v, %v", tc.at, d.OrderIDs, d.OrdersNotInForce, tc.inForce, tc.notInForce)
		}
		if !d.Time.Equal(now) {
			t.Errorf("at %s: the decision's time is %s", tc.at, d.Time)
		}
		// The removal of the participant in CN follows the CN orders in
		// force.
		var removedBy []string
		for _, a := range d.Actions {
			if a.Type == decision.RemoveParticipant {
				removedBy = append(removedBy, a.OrderID)
			}
		}
		var wantBy []string
		for _, id := range tc.inForce {
			if id[:3] == "CN-" {
				wantBy = append(wantBy, id)
			}
		}
		slices.Sort(removedBy)
		if !slices.Equal(removedBy, wantBy) {
			t.Errorf("at %s: removals cite %v, want %v", tc.at, removedBy, wantBy)
		}
	}
}

// A service-wide order reaches every meeting, also one nobody named, and
// only the participants located inside its jurisdiction (here a
// subdivision). With a Country database nobody is located in one, so the
// same order acts on nobody.
func TestServiceWideOrderAtAdmission(t *testing.T) {
	now := mustTime("2026-05-01T12:00:00Z")
	body := `{"meeting": {"id": "m-nobody-named", "host": {"account_id": "acct-z", "account_country": "US"}}, "participant": {"id": "j", "ip": %q}}`
	city := engineAt(t, geotest.StandardCity(t), &now, "../policies", "testdata/registry-orders")
	country := engineAt(t, geotest.Standard(t), &now, "../policies", "testdata/registry-orders")
	for _, tc := range []struct {
		e     *engine.Engine
		ip    string
		allow bool
	}{
		{city, "91.200.1.1", false}, // Crimea
		{city, "91.202.1.1", true},  // Kyiv
		{city, "91.203.1.1", true},  // Ukraine, no subdivision
		{city, "1.0.16.5", true},    // CN: the CN orders name other meetings
		{country, "91.200.1.1", true},
	} {
		d := admit(t, tc.e, fmt.Sprintf(body, tc.ip))
		if *d.AllowJoin != tc.allow || !slices.Equal(d.OrderIDs, []string{"UA-43-EVERYONE"}) {
			t.Errorf("%s: allow %v, order_ids %v; want allow %v and the service-wide order evaluated", tc.ip, *d.AllowJoin, d.OrderIDs, tc.allow)
		}
		if !tc.allow && (len(d.Actions) != 1 || d.Actions[0].OrderID != "UA-43-EVERYONE" || !slices.Equal(d.Actions[0].Subdivisions, []string{"UA-43"})) {
			t.Errorf("%s: actions %+v", tc.ip, d.Actions)
		}
	}
}

// A preview order that is not in force at the decision's time is not
// evaluated; the decision says why nothing happened.
func TestPreviewOrderNotInForce(t *testing.T) {
	now := mustTime("2026-05-01T12:00:00Z")
	e := engineAt(t, geotest.Standard(t), &now, "../policies", "testdata/registry-orders")
	body := `{"meeting": {"id": "m9", "host": {"account_id": "acct-9"}, "participants": [{"id": "p-cn", "ip": "1.0.16.5"}]},
	  "order": {"id": "NEW", "authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m9"]}, "legal_basis": "b", %s}}`
	for validity, status := range map[string]string{
		`"effective": "2026-05-02"`: "not_yet_effective",
		`"expires": "2026-04-30"`:   "expired",
		`"revoked": {"date": "2026-05-01T11:00:00Z", "reason": "withdrawn"}`: "revoked",
		`"effective": "2026-05-01", "expires": "2026-05-01"`:                 "",
	} {
		req, err := input.Decode(fmt.Appendf(nil, body, validity), input.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Decide(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if status == "" {
			if len(d.Actions) != 1 || !slices.Equal(d.OrderIDs, []string{"NEW"}) || d.OrdersNotInForce != nil {
				t.Errorf("%s: %+v", validity, d)
			}
			continue
		}
		want := []decision.OrderStatus{{OrderID: "NEW", Status: status}}
		if len(d.Actions)+len(d.Refused)+len(d.GuardBlocked)+len(d.OrderIDs) != 0 || !slices.Equal(d.OrdersNotInForce, want) || !d.Preview {
			t.Errorf("%s: %+v, want nothing evaluated and %v", validity, d, want)
		}
	}
}

// A join-time question evaluates the policy only when an order under
// evaluation could deny the participant: when their location is inside
// its authority's jurisdiction. Otherwise the guard would drop whatever
// the policy answered, so the engine answers without it; a service-wide
// order in force (every meeting targeted) then costs admissions outside
// its jurisdiction nothing.
func TestAdmissionEvaluatesOnlyWhenAnOrderCouldDeny(t *testing.T) {
	now := mustTime("2026-05-01T12:00:00Z")
	e := engineAt(t, geotest.StandardCity(t), &now, "testdata/admission-fails", "testdata/registry-orders")
	body := `{"meeting": {"id": %q, "host": {"account_id": "acct-z"}}, "participant": {"id": "j", "ip": %q}}`
	for _, tc := range []struct {
		meeting, ip string
		evaluated   bool
	}{
		{"m-any", "91.202.1.1", false}, // Kyiv: outside the service-wide order's jurisdiction
		{"m-any", "147.8.1.1", false},  // HK
		{"m-any", "10.0.0.1", false},   // unknown location
		{"m-any", "91.200.1.1", true},  // Crimea
		{"m1", "147.8.1.1", false},     // m1's CN orders, and the service-wide one: none covers HK
		{"m1", "1.0.16.5", true},       // CN
	} {
		req, err := input.DecodeAdmission(fmt.Appendf(nil, body, tc.meeting, tc.ip))
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Admit(context.Background(), req)
		if evaluated := errors.Is(err, policy.ErrEvaluation); evaluated != tc.evaluated {
			t.Errorf("%s, %s: evaluated %v (err %v), want %v", tc.meeting, tc.ip, evaluated, err, tc.evaluated)
		}
		if !tc.evaluated && (d == nil || !*d.AllowJoin || len(d.OrderIDs) == 0) {
			t.Errorf("%s, %s: %+v, want the participant admitted under the orders in force", tc.meeting, tc.ip, d)
		}
	}
}

// A policy that reads the clock (time.now_ns) reads the decision's time:
// the instant the orders in force were chosen at and the decision and its
// ledger entry state, and the one decide --at gives. It read the machine's
// clock, so decide --at evaluated such a policy as of now, and a decision
// near an instant the policy names could be recorded at one side of it and
// evaluated at the other.
func TestPolicyClockIsTheDecisionTime(t *testing.T) {
	now := mustTime("2026-05-01T12:00:00.5Z")
	e := engineAt(t, geotest.StandardCity(t), &now, "testdata/clock-policy", "testdata/registry-orders")
	d := decide(t, e, meetingM1)
	if !d.Time.Equal(now) {
		t.Errorf("time = %v, want %v", d.Time, now)
	}
	var got []string
	for _, a := range d.Actions {
		got = append(got, summary(a)+" ("+a.Reason+")")
	}
	if want := []string{fmt.Sprintf("remove_participant p-cn CN-IN-FORCE (read %d)", now.UnixNano())}; !slices.Equal(got, want) {
		t.Errorf("actions = %q, want %q: the policy did not read the decision's time", got, want)
	}
}
