package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
)

// newEngine returns an engine on the standard test GeoIP database and the
// given bundle paths (nil: the embedded policy and example registry).
func newEngine(t testing.TB, paths ...string) *engine.Engine {
	t.Helper()
	snap, err := policy.LoadSnapshot(context.Background(), paths, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New()
	e.SetPolicy(snap)
	e.SetGeo(db)
	return e
}

func decide(t *testing.T, e *engine.Engine, body string) *decision.Decision {
	t.Helper()
	req, err := input.Decode([]byte(body), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// summary renders an action compactly for comparisons.
func summary(a decision.Action) string {
	who := a.ParticipantID
	if a.Type == decision.SuspendAccount {
		who = "account:" + a.AccountID
	}
	if a.Host {
		who = "host:" + who
	}
	return a.Type + " " + who + " " + a.OrderID
}

func TestGuardStopsMaliciousPolicy(t *testing.T) {
	e := newEngine(t, "testdata/malicious", "../bundles/registry")
	d := decide(t, e, `{
	  "meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.9"},
	    "participants": [{"id": "p-cn", "ip": "1.0.16.5"}, {"id": "p-hk", "ip": "147.8.1.1"},
	                     {"id": "p-us", "ip": "8.8.8.8"}, {"id": "p-unknown", "ip": "10.0.0.1"}]},
	  "joining": {"id": "j-us", "ip": "23.1.1.1"}}`)

	var kept []string
	for _, a := range d.Actions {
		kept = append(kept, summary(a))
	}
	if want := []string{"remove_participant p-cn CN-2020-0601"}; !slices.Equal(kept, want) {
		t.Errorf("kept actions = %q, want %q", kept, want)
	}
	if a := d.Actions[0]; a.Country != "CN" || !slices.Equal(a.Jurisdiction, []string{"CN"}) || a.MeetingID != "june4-b" {
		t.Errorf("kept action facts = %+v", a)
	}
	if d.AllowJoin == nil || !*d.AllowJoin {
		t.Error("the joining participant in the US must be admitted despite the policy")
	}

	got := map[string][]string{}
	for _, b := range d.GuardBlocked {
		got[b.Code] = append(got[b.Code], summary(b.Action))
		if b.Reason == "" {
			t.Errorf("blocked action without reason: %+v", b)
		}
	}
	for _, l := range got {
		slices.Sort(l)
	}
	want := map[string][]string{
		"outside_jurisdiction": {
			"deny_join j-us CN-2020-0601",
			"remove_participant host:acct-us-b CN-2020-0601",
			"remove_participant p-hk CN-2020-0601",
			"remove_participant p-unknown CN-2020-0601",
			"remove_participant p-us CN-2020-0601",
		},
		"affects_outside": {"end_meeting  CN-2020-0601", "suspend_account account:acct-us-b CN-2020-0601"},
		"misstated_facts": {
			"remove_participant p-cn CN-2020-0601", "remove_participant p-cn CN-2020-0601", "remove_participant p-cn CN-2020-0601",
			"remove_participant p-cn CN-2020-0601", "remove_participant p-cn CN-2020-0601",
			"remove_participant p-hk CN-2020-0601", "remove_participant p-hk CN-2020-0601", "remove_participant p-hk CN-2020-0601",
			"remove_participant p-unknown CN-2020-0601", "remove_participant p-unknown CN-2020-0601",
			"remove_participant p-us CN-2020-0601", "remove_participant p-us CN-2020-0601", "remove_participant p-us CN-2020-0601",
		},
		"unknown_order":       {"remove_participant p-cn NOT-AN-ORDER"},
		"unknown_participant": {"remove_participant ghost CN-2020-0601"},
		"unknown_type": {"  ", "ban_forever p-cn CN-2020-0601", "kick p-cn p-cn x_p-cn", "kick p-hk p-hk x_p-hk", "kick p-unknown p-unknown x_p-unknown",
			"kick p-us p-us x_p-us", "p-cn p-cn p-cn", "p-hk p-hk p-hk", "p-unknown p-unknown p-unknown", "p-us p-us p-us"},
		"wrong_meeting": {"end_meeting  CN-2020-0601", "remove_participant p-cn CN-2020-0601", "remove_participant p-cn CN-2020-0601",
			"remove_participant p-hk CN-2020-0601", "remove_participant p-unknown CN-2020-0601", "remove_participant p-us CN-2020-0601"},
		"wrong_account": {"suspend_account account:someone-else CN-2020-0601"},
	}
	for code, w := range want {
		if !slices.Equal(got[code], w) {
			t.Errorf("blocked %s = %q, want %q", code, got[code], w)
		}
	}
	for code := range got {
		if _, ok := want[code]; !ok {
			t.Errorf("unexpected block code %s: %q", code, got[code])
		}
	}
}

func TestGuardLetsMaliciousPolicyEndAMeetingEntirelyInside(t *testing.T) {
	// Everyone in CN and an order demanding end_meeting: the one meeting-wide
	// action the guard must let through. suspend_account is not demanded by
	// CN-2020-0602, so it stays blocked even though everyone is inside.
	e := newEngine(t, "testdata/malicious", "../bundles/registry")
	d := decide(t, e, `{
	  "meeting": {"id": "control-cn", "host": {"account_id": "acct-cn", "account_country": "CN", "ip": "36.110.1.1"},
	    "participants": [{"id": "p-cn", "ip": "1.0.16.5"}, {"id": "p-cn2", "ip": "2408:8000::2"}]}}`)
	var kept []string
	for _, a := range d.Actions {
		kept = append(kept, summary(a))
	}
	slices.Sort(kept)
	want := []string{
		"end_meeting  CN-2020-0602",
		"remove_participant host:acct-cn CN-2020-0602",
		"remove_participant p-cn CN-2020-0602",
		"remove_participant p-cn2 CN-2020-0602",
	}
	if !slices.Equal(kept, want) {
		t.Errorf("kept = %q, want %q", kept, want)
	}
	var notDemanded int
	for _, b := range d.GuardBlocked {
		if b.Code == "not_demanded" {
			notDemanded++
			if b.Action.Type != decision.SuspendAccount {
				t.Errorf("not_demanded for %+v", b.Action)
			}
		}
	}
	// Both suspend_account actions (this account's and another's).
	if notDemanded != 2 {
		t.Errorf("want both suspend_account actions blocked as not_demanded, got %d; blocked: %+v", notDemanded, d.GuardBlocked)
	}
}

func TestMaliciousPolicyActsOnNobodyWithoutAnOrder(t *testing.T) {
	// A meeting no order targets: the policy is not consulted and nothing
	// happens, however much it would like to.
	e := newEngine(t, "testdata/malicious", "../bundles/registry")
	d := decide(t, e, `{"meeting": {"id": "untargeted", "host": {"account_id": "acct-x", "account_country": "CN"},
	    "participants": [{"id": "p-cn", "ip": "1.0.16.5"}]}, "joining": {"id": "j", "ip": "1.0.16.6"}}`)
	if len(d.Actions)+len(d.GuardBlocked)+len(d.Refused)+len(d.OrderIDs) != 0 || d.AllowJoin == nil || !*d.AllowJoin {
		t.Errorf("decision = %+v", d)
	}
}

func TestDecideNotReady(t *testing.T) {
	req, err := input.Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New().Decide(context.Background(), req); !errors.Is(err, engine.ErrNotReady) {
		t.Errorf("err = %v, want ErrNotReady", err)
	}
}

func TestDecisionNamesItsInputs(t *testing.T) {
	e := newEngine(t)
	d := decide(t, e, `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
	    "participants": [{"id": "p1", "ip": "1.0.16.5"}]}}`)
	if d.Geo.Database != geotest.StandardType || !d.Geo.Build.Equal(geotest.BuildTime) {
		t.Errorf("geo = %+v", d.Geo)
	}
	if len(d.Bundles) != 2 || !strings.HasPrefix(d.Bundles["policies"], "sha256:") || !strings.HasPrefix(d.Bundles["registry"], "sha256:") {
		t.Errorf("bundles = %v", d.Bundles)
	}
	if !slices.Equal(d.OrderIDs, []string{"CN-2020-0601"}) {
		t.Errorf("order_ids = %v", d.OrderIDs)
	}
	if len(d.DecisionID) != 36 {
		t.Errorf("decision_id = %q", d.DecisionID)
	}
}

type failingRecorder struct{ calls int }

func (f *failingRecorder) Record(context.Context, *engine.Record) error {
	f.calls++
	return errors.New("disk full")
}

func TestRecorderFailureFailsTheDecision(t *testing.T) {
	snap, err := policy.LoadSnapshot(context.Background(), nil, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	rec := &failingRecorder{}
	e := engine.New(engine.WithRecorder(rec))
	e.SetPolicy(snap)
	e.SetGeo(db)
	req, err := input.Decode([]byte(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b"}, "participants": [{"id": "p1", "ip": "1.0.16.5"}]}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(context.Background(), req)
	if err == nil || d != nil || rec.calls != 1 {
		t.Errorf("Decide = %v, %v after %d record calls; an unrecorded decision must not be answered", d, err, rec.calls)
	}
}

func admit(t *testing.T, e *engine.Engine, body string) *decision.Decision {
	t.Helper()
	req, err := input.DecodeAdmission([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Admit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAdmitUsesTheAdmissionEntryPoint(t *testing.T) {
	e := newEngine(t)
	body := `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}}, "participant": {"id": "j", "ip": %q}}`
	d := admit(t, e, fmt.Sprintf(body, "2408:8000::7"))
	if *d.AllowJoin || len(d.Actions) != 1 || summary(d.Actions[0]) != "deny_join j CN-2020-0601" || d.Actions[0].Country != "CN" {
		t.Errorf("CN joiner: %+v", d)
	}
	// The roster-level demands (end_meeting, suspend_account) are not
	// decided at join time.
	if len(d.Refused) != 0 {
		t.Errorf("admission refused %+v", d.Refused)
	}
	for _, ip := range []string{"147.8.9.9", "168.95.1.1", "60.246.1.1", "8.8.8.8", "10.1.1.1"} {
		if d := admit(t, e, fmt.Sprintf(body, ip)); !*d.AllowJoin || len(d.Actions) != 0 {
			t.Errorf("joiner from %s: %+v", ip, d)
		}
	}
}

// Joiners to the same meeting from the same country get the same answer
// from the policy (the engine reuses it): each is still denied by their own
// id, and the reused answer is not changed by the guard along the way.
func TestAdmitReusedAnswersNameEachJoiner(t *testing.T) {
	e := newEngine(t)
	body := `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}}, "participant": {"id": %q, "ip": %q}}`
	for round := range 3 {
		for i, ip := range []string{"2408:8000::7", "1.0.16.9", "36.110.1.1"} {
			id := fmt.Sprintf("j-%d-%d", round, i)
			d := admit(t, e, fmt.Sprintf(body, id, ip))
			if *d.AllowJoin || len(d.Actions) != 1 || summary(d.Actions[0]) != "deny_join "+id+" CN-2020-0601" || d.Actions[0].Country != "CN" {
				t.Fatalf("joiner %s: %+v", id, d)
			}
			if d := admit(t, e, fmt.Sprintf(body, id+"-us", "8.8.8.8")); !*d.AllowJoin || len(d.Actions) != 0 {
				t.Fatalf("US joiner: %+v", d)
			}
		}
	}
}

func TestAdmitFallsBackToDecisionWithoutAdmissionEntryPoint(t *testing.T) {
	// The malicious policy defines no admission rule: its decision is
	// evaluated and only deny_join actions are kept, then guarded. Of
	// everything it returns (removals, an end, suspensions, ...), only
	// the deny_join of the participant located in CN is left.
	e := newEngine(t, "testdata/malicious", "../bundles/registry")
	d := admit(t, e, `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}}, "participant": {"id": "j", "ip": "1.0.16.7"}}`)
	if *d.AllowJoin || len(d.Actions) != 1 || summary(d.Actions[0]) != "deny_join j CN-2020-0601" || len(d.Refused) != 0 || len(d.GuardBlocked) != 0 {
		t.Fatalf("decision = %+v", d)
	}
	// A participant located outside every order's jurisdiction: nothing
	// the policy could answer would pass the guard, so it is not consulted.
	d = admit(t, e, `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}}, "participant": {"id": "j", "ip": "8.8.8.8"}}`)
	if !*d.AllowJoin || len(d.Actions)+len(d.Refused)+len(d.GuardBlocked) != 0 || !slices.Equal(d.OrderIDs, []string{"CN-2020-0601"}) {
		t.Fatalf("decision = %+v", d)
	}
}

func TestAdmitRejectsRoster(t *testing.T) {
	req, err := input.Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]}, "joining": {"id": "j", "ip": "8.8.8.8"}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newEngine(t).Admit(context.Background(), req); !errors.Is(err, input.ErrInvalid) {
		t.Errorf("err = %v", err)
	}
}

// A policy's admission entry point may only deny the joining participant:
// a join-time question sees nobody else, so an account suspension or a
// meeting end it returns is blocked, even when everyone it names is inside.
func TestAdmissionAnswersWithDenyJoinOnly(t *testing.T) {
	e := newEngine(t, "testdata/admission-overreach", "testdata/registry-cn-account")
	req, err := input.DecodeAdmission([]byte(`{"meeting": {"id": "m-cn", "host": {"account_id": "acct-cn", "account_country": "CN"}},
	  "participant": {"id": "j-cn", "ip": "1.0.16.9"}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Admit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, a := range d.Actions {
		kept = append(kept, summary(a))
	}
	if want := []string{"deny_join j-cn CN-TEST-1"}; !slices.Equal(kept, want) {
		t.Errorf("actions = %q, want %q", kept, want)
	}
	var codes []string
	for _, b := range d.GuardBlocked {
		codes = append(codes, b.Action.Type+":"+b.Code)
	}
	slices.Sort(codes)
	want := []string{"end_meeting:not_at_admission", "remove_participant:not_at_admission", "suspend_account:not_at_admission"}
	if !slices.Equal(codes, want) {
		t.Errorf("guard_blocked = %q, want %q", codes, want)
	}
	if d.AllowJoin == nil || *d.AllowJoin {
		t.Error("the joining participant located inside must be denied")
	}
}

// The same action returned twice, once with fields that do not belong to
// its type, is answered once and without the stray fields.
func TestActionsDeduplicatedOnWhatTheyDo(t *testing.T) {
	e := newEngine(t, "testdata/admission-overreach", "testdata/registry-cn-account")
	d := decide(t, e, `{"meeting": {"id": "m-cn", "host": {"account_id": "acct-cn", "account_country": "CN"},
	  "participants": [{"id": "p1", "ip": "1.0.16.5"}, {"id": "p2", "ip": "1.0.16.6"}]}}`)
	var got []string
	for _, a := range d.Actions {
		got = append(got, summary(a))
		if a.AccountID != "" || a.Host {
			t.Errorf("%s carries a stray field: %+v", a.Type, a)
		}
	}
	slices.Sort(got)
	if want := []string{"end_meeting  CN-TEST-1", "remove_participant p1 CN-TEST-1", "remove_participant p2 CN-TEST-1"}; !slices.Equal(got, want) {
		t.Errorf("actions = %q, want %q", got, want)
	}
	if len(d.GuardBlocked) != 0 {
		t.Errorf("guard_blocked = %+v", d.GuardBlocked)
	}
}

// A policy that reads one object per participant gets them, with the
// located country and how it was established, and nothing it reads there
// (an attribute, an account country) can bring anyone into scope.
func TestPerParticipantInputCannotWidenScope(t *testing.T) {
	snap, err := policy.LoadSnapshot(context.Background(), []string{"testdata/reads-participants", "testdata/registry-cn-account"}, policy.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !snap.ReadsParticipants() {
		t.Fatal("a policy reading input.meeting.participants must be given it")
	}
	db, err := geo.Open(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"meeting": {"id": "m-cn", "host": {"account_id": "acct-cn", "account_country": "CN"},
	  "participants": [
	    {"id": "hk-claims-cn", "ip": "147.8.1.1", "attributes": {"country": "CN"}},
	    {"id": "us-account-cn", "ip": "8.8.8.8", "account_country": "CN"},
	    {"id": "caller-cn", "phone": "+861012345678", "attributes": {"country": "CN"}},
	    {"id": "caller-us", "phone": "+12025550123"},
	    {"id": "cn-claims-cn", "ip": "1.0.16.5", "attributes": {"country": "CN"}}]}}`
	for _, tc := range []struct {
		phones bool
		want   []string
	}{
		{false, []string{"remove_participant cn-claims-cn CN-TEST-1"}},
		{true, []string{"remove_participant caller-cn CN-TEST-1", "remove_participant cn-claims-cn CN-TEST-1"}},
	} {
		e := engine.New(engine.WithPhoneLocation(tc.phones))
		e.SetPolicy(snap)
		e.SetGeo(db)
		d := decide(t, e, body)
		var got []string
		for _, a := range d.Actions {
			got = append(got, summary(a))
			want := decision.LocatedByIP
			if a.ParticipantID == "caller-cn" {
				want = decision.LocatedByPhone
			}
			if a.LocatedBy != want {
				t.Errorf("phones=%v: %s located_by = %q, want %q", tc.phones, a.ParticipantID, a.LocatedBy, want)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("phones=%v: actions = %q, want %q", tc.phones, got, tc.want)
		}
		blocked := map[string]string{}
		for _, b := range d.GuardBlocked {
			blocked[b.Action.ParticipantID] = b.Code
		}
		for _, id := range []string{"hk-claims-cn", "us-account-cn"} {
			if blocked[id] != "outside_jurisdiction" {
				t.Errorf("phones=%v: %s blocked with %q, want outside_jurisdiction", tc.phones, id, blocked[id])
			}
		}
		if !tc.phones && blocked["caller-cn"] != "outside_jurisdiction" {
			t.Errorf("an unlocated caller claiming CN must be blocked: %q", blocked["caller-cn"])
		}
		if tc.phones && blocked["caller-us"] != "outside_jurisdiction" {
			t.Errorf("caller-us, located by phone in the US, must be blocked: %q", blocked["caller-us"])
		}
	}
}

// A previewed order cannot take a standing order's id: its decision would
// be found in the ledger as that order's.
func TestPreviewCannotReuseAStandingOrderID(t *testing.T) {
	e := newEngine(t)
	req, err := input.Decode([]byte(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b"}},
	  "order": {"id": "CN-2020-0601", "authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["june4-b"]}, "legal_basis": "x"}}`), input.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Decide(context.Background(), req)
	var fe *input.FieldError
	if !errors.Is(err, input.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "order.id" {
		t.Errorf("Decide = %v, want invalid input naming order.id", err)
	}
}

// TestLargeRosterLocatedAsOneByOne decides large rosters (located in
// parallel) one after another, each request and decision released as the
// server releases them, so that later ones reuse the arrays of earlier ones
// (participants, located people, the input's id terms, actions): every
// decision removes exactly the participants located in mainland China one
// by one, with that country, and nobody else.
func TestLargeRosterLocatedAsOneByOne(t *testing.T) {
	e := newEngine(t, "../policies", registryBundle(t, 10))
	for _, roster := range []struct{ n, rot int }{{10_000, 0}, {9_000, 1}, {10_000, 2}, {9_500, 3}, {10_000, 4}} {
		req, err := input.Decode(rotatedRosterRequest(roster.n, roster.rot), input.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Decide(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, p := range req.Meeting.Participants {
			if loc := e.Geo().Locate(p.Addr); loc.Known && loc.Country == "CN" {
				want[p.ID] = true
			}
		}
		if len(want) == 0 || len(want) == len(req.Meeting.Participants) {
			t.Fatalf("the roster has %d of %d participants in CN: the test needs some inside and some outside", len(want), len(req.Meeting.Participants))
		}
		removed := map[string]bool{}
		for _, a := range d.Actions {
			if a.Type != decision.RemoveParticipant {
				continue
			}
			if !want[a.ParticipantID] || a.Country != "CN" || a.LocatedBy != decision.LocatedByIP {
				t.Fatalf("roster %+v: removed %+v, who is not located in CN", roster, a)
			}
			removed[a.ParticipantID] = true
		}
		if len(removed) != len(want) {
			t.Errorf("roster %+v: %d participants removed, %d are located in CN", roster, len(removed), len(want))
		}
		e.Release(d)
		req.Release()
	}
}
