package guard

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/idindex"
)

func facts() *Facts {
	return &Facts{
		MeetingID:      "m1",
		AccountID:      "acct",
		AccountCountry: "CN",
		Host:           &Person{ID: "acct", Located: byIP("CN")},
		Participants: []Person{{ID: "p-cn", Located: byIP("CN")}, {ID: "p-hk", Located: byIP("HK")}, {ID: "p-unknown"}, {ID: "p-dial-in"},
			{ID: "p-cn-phone", Located: Located{Country: "CN", By: decision.LocatedByPhone}}},
		Joining: &Person{ID: "j-cn", Located: byIP("CN")},
		Orders: map[string]registry.Order{
			"ok":        {Authority: "cn", Demands: []string{"end_meeting", "suspend_account"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"},
			"by-acct":   {Authority: "cn", Demands: []string{"remove_participants"}, Targets: registry.Targets{Accounts: []string{"acct"}}, LegalBasis: "law"},
			"no-basis":  {Authority: "cn", Demands: []string{"end_meeting"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "  "},
			"unknown":   {Authority: "xx", Demands: []string{"end_meeting"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"},
			"elsewhere": {Authority: "cn", Demands: []string{"end_meeting"}, Targets: registry.Targets{Meetings: []string{"m2"}}, LegalBasis: "law"},
			"no-demand": {Authority: "cn", Demands: []string{"seize"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"},
			"empty-j":   {Authority: "nowhere", Demands: []string{"end_meeting"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"},
		},
		NotInForce:  map[string]string{"expired": registry.StatusExpired, "later": registry.StatusNotYetEffective, "revoked": registry.StatusRevoked},
		Authorities: map[string]registry.Authority{"cn": {Name: "CN", Jurisdiction: []string{"CN"}}, "nowhere": {Name: "none"}},
	}
}

// subdivisionFacts: a meeting with people in and around Crimea (UA-43),
// an order of an authority over UA-43 alone, one over CN and UA-43, and a
// service-wide order.
func subdivisionFacts() *Facts {
	ua := func(subdivisions ...string) Located {
		return Located{Country: "UA", By: decision.LocatedByIP, Subdivisions: subdivisions}
	}
	return &Facts{
		MeetingID:      "m1",
		AccountID:      "acct",
		AccountCountry: "UA",
		Host:           &Person{ID: "acct", Located: ua("UA-43")},
		Participants: []Person{
			{ID: "p-crimea", Located: ua("UA-43")}, {ID: "p-kyiv", Located: ua("UA-30")}, {ID: "p-ua", Located: ua()}, {ID: "p-cn", Located: byIP("CN")},
			{ID: "p-phone", Located: Located{Country: "UA", By: decision.LocatedByPhone}},
		},
		Joining: &Person{ID: "j-crimea", Located: ua("UA-43")},
		Orders: map[string]registry.Order{
			"crimea":   {Authority: "ua43", Demands: []string{"end_meeting", "suspend_account", "remove_participants"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"},
			"mixed":    {Authority: "mixed", Demands: []string{"end_meeting"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"},
			"everyone": {Authority: "ua43", Demands: []string{"remove_participants"}, Targets: registry.Targets{AllMeetings: true}, LegalBasis: "law"},
			// A service-wide order that (against the registry validation)
			// demands everything: the guard still allows participant
			// actions only.
			"everyone-all": {Authority: "ua43", Demands: []string{"end_meeting", "suspend_account", "remove_participants"}, Targets: registry.Targets{AllMeetings: true}, LegalBasis: "law"},
		},
		Authorities: map[string]registry.Authority{
			"ua43":  {Name: "Crimea", Jurisdiction: []string{"UA-43"}},
			"mixed": {Name: "CN and Crimea", Jurisdiction: []string{"CN", "UA-43"}},
		},
	}
}

func allInCrimea(f *Facts) {
	f.Participants = []Person{{ID: "p-crimea", Located: f.Host.Located}, {ID: "p-crimea2", Located: f.Host.Located}}
}

// Orders not in force, service-wide orders and subdivision jurisdictions:
// no action may cite an order that is not in force, a service-wide order
// leads to participant actions only, and a subdivision covers only people
// located in it.
func TestCheckValidityServiceWideAndSubdivisions(t *testing.T) {
	remove := func(order, who string) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: who, OrderID: order}
	}
	cases := []struct {
		name   string
		facts  func() *Facts
		action decision.Action
		code   string
	}{
		{name: "expired order", facts: facts, action: remove("expired", "p-cn"), code: CodeOrderNotInForce},
		{name: "order not yet effective", facts: facts, action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-cn", OrderID: "later"}, code: CodeOrderNotInForce},
		{name: "revoked order ending a meeting", facts: func() *Facts { f := facts(); everyoneInside(f); return f }, action: decision.Action{Type: decision.EndMeeting, OrderID: "revoked"}, code: CodeOrderNotInForce},
		{name: "order neither in force nor targeting", facts: facts, action: remove("elsewhere-expired", "p-cn"), code: CodeUnknownOrder},

		{name: "located in the subdivision", facts: subdivisionFacts, action: remove("crimea", "p-crimea")},
		{name: "located elsewhere in the country", facts: subdivisionFacts, action: remove("crimea", "p-kyiv"), code: CodeOutsideJurisdiction},
		{name: "located in the country, no subdivision", facts: subdivisionFacts, action: remove("crimea", "p-ua"), code: CodeOutsideJurisdiction},
		{name: "located by phone in the country", facts: subdivisionFacts, action: remove("crimea", "p-phone"), code: CodeOutsideJurisdiction},
		{name: "host in the subdivision", facts: subdivisionFacts, action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "acct", Host: true, OrderID: "crimea"}},
		{name: "joining in the subdivision", facts: subdivisionFacts, action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-crimea", OrderID: "crimea"}},
		{name: "mixed jurisdiction, the country", facts: subdivisionFacts, action: remove("mixed", "p-cn")},
		{name: "mixed jurisdiction, the subdivision", facts: subdivisionFacts, action: remove("mixed", "p-crimea")},
		{name: "mixed jurisdiction, the subdivision's country", facts: subdivisionFacts, action: remove("mixed", "p-kyiv"), code: CodeOutsideJurisdiction},
		// A jurisdiction claimed is compared as a set: as many codes as
		// the registry gives, one of them repeated, is not the same.
		{name: "mixed jurisdiction claimed with a code repeated", facts: subdivisionFacts, action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "mixed", Jurisdiction: []string{"CN", "CN"}}, code: CodeMisstatedFacts},
		{name: "subdivisions claimed with one repeated", facts: func() *Facts {
			f := subdivisionFacts()
			f.Participants[0].Subdivisions = []string{"UA-43", "UA-40"}
			return f
		}, action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-crimea", OrderID: "crimea", Subdivisions: []string{"UA-43", "UA-43"}}, code: CodeMisstatedFacts},
		{name: "misstated subdivision", facts: subdivisionFacts, action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-kyiv", OrderID: "crimea", Subdivisions: []string{"UA-43"}}, code: CodeMisstatedFacts},
		{name: "end_meeting with someone elsewhere in the country", facts: subdivisionFacts, action: decision.Action{Type: decision.EndMeeting, OrderID: "crimea"}, code: CodeAffectsOutside},
		{name: "end_meeting everyone in the subdivision", facts: func() *Facts { f := subdivisionFacts(); allInCrimea(f); return f }, action: decision.Action{Type: decision.EndMeeting, OrderID: "crimea"}},
		{name: "end_meeting with the joining participant in the country only", facts: func() *Facts { f := subdivisionFacts(); allInCrimea(f); f.Joining.Subdivisions = nil; return f }, action: decision.Action{Type: decision.EndMeeting, OrderID: "crimea"}, code: CodeAffectsOutside},
		// An account is registered in a country, never in a subdivision.
		{name: "suspend an account of a subdivision jurisdiction", facts: func() *Facts { f := subdivisionFacts(); allInCrimea(f); return f }, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "crimea"}, code: CodeAffectsOutside},

		{name: "service-wide order removes inside", facts: subdivisionFacts, action: remove("everyone", "p-crimea")},
		{name: "service-wide order removes outside", facts: subdivisionFacts, action: remove("everyone", "p-kyiv"), code: CodeOutsideJurisdiction},
		{name: "service-wide order denies joining inside", facts: subdivisionFacts, action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-crimea", OrderID: "everyone"}},
		{name: "service-wide order ends a meeting entirely inside", facts: func() *Facts { f := subdivisionFacts(); allInCrimea(f); return f }, action: decision.Action{Type: decision.EndMeeting, OrderID: "everyone-all"}, code: CodeServiceWideOrder},
		{name: "service-wide order suspends an account", facts: func() *Facts { f := subdivisionFacts(); allInCrimea(f); return f }, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "everyone-all"}, code: CodeServiceWideOrder},
		{name: "service-wide order, undemanded end_meeting", facts: func() *Facts { f := subdivisionFacts(); allInCrimea(f); return f }, action: decision.Action{Type: decision.EndMeeting, OrderID: "everyone"}, code: CodeServiceWideOrder},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.facts()
			kept, blocked := Check(f, []decision.Action{tc.action})
			if tc.code == "" {
				if len(kept) != 1 || len(blocked) != 0 {
					t.Fatalf("kept %+v, blocked %+v; want kept", kept, blocked)
				}
				return
			}
			if len(kept) != 0 || len(blocked) != 1 || blocked[0].Code != tc.code || blocked[0].Reason == "" {
				t.Fatalf("kept %+v, blocked %+v; want blocked %s", kept, blocked, tc.code)
			}
		})
	}
}

// A kept action on a person states the subdivisions they were located in.
func TestCheckFillsSubdivisions(t *testing.T) {
	f := subdivisionFacts()
	kept, blocked := Check(f, []decision.Action{
		{Type: decision.RemoveParticipant, ParticipantID: "p-crimea", OrderID: "mixed"},
		{Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "mixed"},
		{Type: decision.RemoveParticipant, ParticipantID: "p-crimea", OrderID: "crimea", Subdivisions: []string{"UA-43"}},
	})
	if len(blocked) != 0 || len(kept) != 3 {
		t.Fatalf("kept %+v blocked %+v", kept, blocked)
	}
	if !slices.Equal(kept[0].Subdivisions, []string{"UA-43"}) || kept[0].Country != "UA" || kept[1].Subdivisions != nil ||
		!slices.Equal(kept[0].Jurisdiction, []string{"CN", "UA-43"}) {
		t.Errorf("kept = %+v", kept)
	}
	_, blocked = Check(f, []decision.Action{{Type: decision.RemoveParticipant, ParticipantID: "p-kyiv", OrderID: "crimea"}})
	if len(blocked) != 1 || !strings.Contains(blocked[0].Reason, "UA (UA-30)") {
		t.Errorf("the reason should say where the person is located: %+v", blocked)
	}
}

func byIP(country string) Located { return Located{Country: country, By: decision.LocatedByIP} }

func TestCheckCodes(t *testing.T) {
	remove := func(order, who string) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: who, OrderID: order}
	}
	cases := []struct {
		name   string
		facts  func(*Facts)
		action decision.Action
		code   string
	}{
		{name: "participant inside", action: remove("ok", "p-cn")},
		{name: "participant inside by account target", action: remove("by-acct", "p-cn")},
		{name: "participant outside", action: remove("ok", "p-hk"), code: CodeOutsideJurisdiction},
		{name: "participant with unknown location", action: remove("ok", "p-unknown"), code: CodeOutsideJurisdiction},
		{name: "unknown participant", action: remove("ok", "ghost"), code: CodeUnknownParticipant},
		{name: "joining id is not a participant", action: remove("ok", "j-cn"), code: CodeUnknownParticipant},
		{name: "deny_join inside", action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-cn", OrderID: "ok"}},
		{name: "deny_join of a connected participant", action: decision.Action{Type: decision.DenyJoin, ParticipantID: "p-cn", OrderID: "ok"}, code: CodeUnknownParticipant},
		{name: "deny_join without joining", facts: func(f *Facts) { f.Joining = nil }, action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-cn", OrderID: "ok"}, code: CodeUnknownParticipant},
		{name: "deny_join naming nobody", action: decision.Action{Type: decision.DenyJoin, OrderID: "ok"}},
		{name: "deny_join naming nobody, joining outside", facts: func(f *Facts) { f.Joining.Located = byIP("US") }, action: decision.Action{Type: decision.DenyJoin, OrderID: "ok"}, code: CodeOutsideJurisdiction},
		{name: "deny_join naming nobody, joining not located", facts: func(f *Facts) { f.Joining.Located = Located{} }, action: decision.Action{Type: decision.DenyJoin, OrderID: "ok"}, code: CodeOutsideJurisdiction},
		{name: "deny_join naming nobody without joining", facts: func(f *Facts) { f.Joining = nil }, action: decision.Action{Type: decision.DenyJoin, OrderID: "ok"}, code: CodeUnknownParticipant},
		{name: "deny_join naming nobody as the host", action: decision.Action{Type: decision.DenyJoin, Host: true, OrderID: "ok"}, code: CodeUnknownParticipant},
		{name: "host inside", action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "acct", Host: true, OrderID: "ok"}},
		{name: "host not connected", facts: func(f *Facts) { f.Host = nil }, action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "acct", Host: true, OrderID: "ok"}, code: CodeUnknownParticipant},
		// The host flag names the connected host by its account id: with
		// another id it names nobody, and the host's location (inside)
		// must not be lent to whoever is named.
		{name: "host flag naming another participant", action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn", Host: true, OrderID: "ok"}, code: CodeUnknownParticipant},
		{name: "host flag naming someone outside", action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-hk", Host: true, OrderID: "ok"}, code: CodeUnknownParticipant},
		// A deny_join names the participant asking to join, never the
		// host: one flagged as the host's names nobody, even with the
		// joining participant's id.
		{name: "deny_join of the joining participant flagged as the host", action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-cn", Host: true, OrderID: "ok"}, code: CodeUnknownParticipant},
		{name: "unknown order", action: remove("nope", "p-cn"), code: CodeUnknownOrder},
		{name: "unknown authority", action: remove("unknown", "p-cn"), code: CodeUnknownAuthority},
		{name: "authority without jurisdiction", action: remove("empty-j", "p-cn"), code: CodeOutsideJurisdiction},
		{name: "no legal basis", action: remove("no-basis", "p-cn"), code: CodeNoLegalBasis},
		{name: "order targets another meeting", action: remove("elsewhere", "p-cn"), code: CodeNotTargeted},
		{name: "order makes no known demand", action: remove("no-demand", "p-cn"), code: CodeNotDemanded},
		{name: "unknown type", action: decision.Action{Type: "ban", ParticipantID: "p-cn", OrderID: "ok"}, code: CodeUnknownType},
		{name: "wrong meeting", action: decision.Action{Type: decision.RemoveParticipant, MeetingID: "m2", ParticipantID: "p-cn", OrderID: "ok"}, code: CodeWrongMeeting},
		{name: "widened jurisdiction", action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "ok", Jurisdiction: []string{"CN", "HK"}}, code: CodeMisstatedFacts},
		{name: "misstated country", action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-hk", OrderID: "ok", Country: "CN"}, code: CodeMisstatedFacts},
		{name: "end_meeting with someone outside", action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "end_meeting everyone inside", facts: everyoneInside, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}},
		{name: "participant located by phone", action: remove("ok", "p-cn-phone")},
		{name: "dial-in caller not located", action: remove("ok", "p-dial-in"), code: CodeOutsideJurisdiction},
		{name: "misstated located_by", action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn-phone", OrderID: "ok", LocatedBy: "ip"}, code: CodeMisstatedFacts},
		{name: "end_meeting with a dial-in caller not located", facts: func(f *Facts) { everyoneInside(f); f.Participants = append(f.Participants, Person{ID: "p-dial-in"}) }, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "end_meeting with a caller located inside by phone", facts: func(f *Facts) {
			everyoneInside(f)
			f.Participants = append(f.Participants, Person{ID: "p-cn-phone", Located: Located{Country: "CN", By: decision.LocatedByPhone}})
		}, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}},
		{name: "suspend_account at admission", facts: func(f *Facts) { everyoneInside(f); f.Participants = nil; f.Admission = true }, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}, code: CodeNotAtAdmission},
		{name: "end_meeting at admission", facts: func(f *Facts) { everyoneInside(f); f.Admission = true }, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}, code: CodeNotAtAdmission},
		{name: "remove_participant at admission", facts: func(f *Facts) { f.Admission = true }, action: remove("ok", "p-cn"), code: CodeNotAtAdmission},
		{name: "deny_join at admission", facts: func(f *Facts) { f.Admission = true }, action: decision.Action{Type: decision.DenyJoin, ParticipantID: "j-cn", OrderID: "ok"}},
		{name: "end_meeting host outside", facts: func(f *Facts) { everyoneInside(f); f.Host.Country = "US" }, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "end_meeting joining outside", facts: func(f *Facts) { everyoneInside(f); f.Joining.Country = "TW" }, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "end_meeting without participants", facts: func(f *Facts) { everyoneInside(f); f.Participants = nil }, action: decision.Action{Type: decision.EndMeeting, OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "end_meeting not demanded", facts: everyoneInside, action: decision.Action{Type: decision.EndMeeting, OrderID: "by-acct"}, code: CodeNotDemanded},
		{name: "suspend everyone inside", facts: everyoneInside, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}},
		{name: "suspend account outside", facts: func(f *Facts) { everyoneInside(f); f.AccountCountry = "HK" }, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "suspend account country unknown", facts: func(f *Facts) { everyoneInside(f); f.AccountCountry = "" }, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "suspend with the account holder not connected", facts: func(f *Facts) { everyoneInside(f); f.Host = nil }, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "suspend participant outside", action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}, code: CodeAffectsOutside},
		{name: "suspend another account", facts: everyoneInside, action: decision.Action{Type: decision.SuspendAccount, AccountID: "other", OrderID: "ok"}, code: CodeWrongAccount},
		{name: "suspend not demanded", facts: everyoneInside, action: decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "by-acct"}, code: CodeNotDemanded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := facts()
			if tc.facts != nil {
				tc.facts(f)
			}
			kept, blocked := Check(f, []decision.Action{tc.action})
			if tc.code == "" {
				if len(kept) != 1 || len(blocked) != 0 {
					t.Fatalf("kept %+v, blocked %+v; want kept", kept, blocked)
				}
				if !slices.Equal(kept[0].Jurisdiction, f.Authorities["cn"].Jurisdiction) || kept[0].MeetingID != "m1" {
					t.Errorf("kept action not completed from the facts: %+v", kept[0])
				}
				return
			}
			if len(kept) != 0 || len(blocked) != 1 || blocked[0].Code != tc.code || blocked[0].Reason == "" {
				t.Fatalf("kept %+v, blocked %+v; want blocked %s", kept, blocked, tc.code)
			}
			if blocked[0].Action.Type != tc.action.Type || blocked[0].Action.ParticipantID != tc.action.ParticipantID {
				t.Errorf("blocked entry must carry the action as the policy returned it: %+v", blocked[0].Action)
			}
		})
	}
}

func everyoneInside(f *Facts) {
	f.Participants = []Person{{ID: "p-cn", Located: byIP("CN")}, {ID: "p-cn2", Located: byIP("CN")}}
}

func TestCheckFillsFactsAndDeduplicates(t *testing.T) {
	f := facts()
	a := decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "ok"}
	kept, blocked := Check(f, []decision.Action{a, a, {Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "by-acct"}})
	if len(blocked) != 0 || len(kept) != 2 {
		t.Fatalf("kept %+v blocked %+v", kept, blocked)
	}
	if kept[0].Country != "CN" || kept[0].LocatedBy != decision.LocatedByIP || kept[0].OrderID != "ok" || kept[1].OrderID != "by-acct" {
		t.Errorf("kept = %+v", kept)
	}
}

// A policy that adds fields which do not belong to an action's type cannot
// get the same action returned twice, nor the stray fields onto the wire.
func TestCheckDeduplicatesOnWhatTheActionDoes(t *testing.T) {
	f := facts()
	everyoneInside(f)
	remove := decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-cn", OrderID: "ok", Reason: "first"}
	stray := remove
	stray.AccountID, stray.Reason = "acct", "second"
	end := decision.Action{Type: decision.EndMeeting, OrderID: "ok"}
	endStray := decision.Action{Type: decision.EndMeeting, OrderID: "ok", ParticipantID: "p-cn", AccountID: "acct", Country: "CN", LocatedBy: "ip"}
	suspend := decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok"}
	suspendStray := decision.Action{Type: decision.SuspendAccount, AccountID: "acct", OrderID: "ok", ParticipantID: "p-cn", LocatedBy: "ip"}
	kept, blocked := Check(f, []decision.Action{remove, stray, end, endStray, suspend, suspendStray})
	if len(blocked) != 0 {
		t.Fatalf("blocked %+v", blocked)
	}
	want := []decision.Action{
		{Type: decision.RemoveParticipant, MeetingID: "m1", ParticipantID: "p-cn", OrderID: "ok", Jurisdiction: []string{"CN"}, Country: "CN", LocatedBy: "ip", Reason: "first"},
		{Type: decision.EndMeeting, MeetingID: "m1", OrderID: "ok", Jurisdiction: []string{"CN"}},
		{Type: decision.SuspendAccount, MeetingID: "m1", AccountID: "acct", OrderID: "ok", Jurisdiction: []string{"CN"}, Country: "CN"},
	}
	if len(kept) != len(want) {
		t.Fatalf("kept %d actions, want %d: %+v", len(kept), len(want), kept)
	}
	for i := range want {
		if !equalAction(kept[i], want[i]) {
			t.Errorf("kept[%d] = %+v\n want %+v", i, kept[i], want[i])
		}
	}
}

func equalAction(a, b decision.Action) bool {
	return a.Type == b.Type && a.MeetingID == b.MeetingID && a.ParticipantID == b.ParticipantID && a.AccountID == b.AccountID &&
		a.Host == b.Host && a.OrderID == b.OrderID && slices.Equal(a.Jurisdiction, b.Jurisdiction) && a.Country == b.Country &&
		a.LocatedBy == b.LocatedBy && slices.Equal(a.Subdivisions, b.Subdivisions) && a.Reason == b.Reason
}

func TestRefusalsKeepOnlyOrdersUnderEvaluation(t *testing.T) {
	f := facts()
	in := []decision.Refusal{
		{OrderID: "ok", Demand: "end_meeting", Code: "affects_outside"},
		{OrderID: "ok", Demand: "remove_participants", Code: "x"}, // not demanded by "ok"
		{OrderID: "ghost", Demand: "end_meeting", Code: "x"},
	}
	out := Refusals(f, in)
	if len(out) != 1 || out[0] != in[0] {
		t.Errorf("Refusals = %+v", out)
	}
}

// A deny_join that names nobody names the participant asking to join: the
// answer carries their id, and it is deduplicated with one that names them.
func TestDenyJoinNamingNobodyNamesTheJoiner(t *testing.T) {
	f := facts()
	kept, blocked := Check(f, []decision.Action{
		{Type: decision.DenyJoin, OrderID: "ok", Reason: "r"},
		{Type: decision.DenyJoin, ParticipantID: "j-cn", OrderID: "ok", Reason: "r"},
	})
	if len(blocked) != 0 || len(kept) != 1 {
		t.Fatalf("kept %+v, blocked %+v", kept, blocked)
	}
	if a := kept[0]; a.ParticipantID != "j-cn" || a.Country != "CN" || a.LocatedBy != decision.LocatedByIP {
		t.Errorf("kept %+v, want the joining participant's id, country and located_by", a)
	}
}

// The participant index is a hint: one that does not describe the
// participants (out of range, another id at the position, an id missing)
// never makes the guard act on the wrong person, or miss the right one.
func TestStaleParticipantIndexIsNotTrusted(t *testing.T) {
	remove := func(who string) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: who, OrderID: "ok"}
	}
	// index indexes positions as if the ids were at them.
	index := func(at map[string]int) *idindex.Index {
		x := idindex.New(len(at))
		for id, i := range at {
			x.Add(id, i, func(j int) bool { return j == i })
		}
		return x
	}
	for _, tc := range []struct {
		name  string
		index *idindex.Index
	}{
		{"positions swapped", index(map[string]int{"p-cn": 1, "p-hk": 0})},
		{"out of range", index(map[string]int{"p-cn": 0, "p-hk": 99})},
		{"an id missing", index(map[string]int{"p-hk": 1})},
		{"empty", index(map[string]int{})},
	} {
		f := facts()
		if f.Participants[0].ID != "p-cn" || f.Participants[1].ID != "p-hk" {
			t.Fatalf("the cases need p-cn at 0 and p-hk at 1: %+v", f.Participants)
		}
		f.ParticipantIndex = tc.index
		kept, blocked := Check(f, []decision.Action{remove("p-hk"), remove("p-cn")})
		if len(kept) != 1 || kept[0].ParticipantID != "p-cn" || kept[0].Country != "CN" {
			t.Errorf("%s: kept %+v", tc.name, kept)
		}
		if len(blocked) != 1 || blocked[0].Action.ParticipantID != "p-hk" || blocked[0].Code != CodeOutsideJurisdiction {
			t.Errorf("%s: blocked %+v", tc.name, blocked)
		}
	}
}

// CheckInPlace keeps and blocks exactly what Check does, in the same
// order, writing the kept actions over the ones it was given; Check leaves
// its argument as it was.
func TestCheckInPlaceIsCheck(t *testing.T) {
	remove := func(id, order string) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: id, OrderID: order, Reason: "r-" + id}
	}
	actions := []decision.Action{
		remove("p-hk", "by-acct"),                  // outside: blocked
		remove("p-cn", "by-acct"),                  // kept
		remove("p-cn", "by-acct"),                  // the same again: dropped
		{Type: decision.EndMeeting, OrderID: "ok"}, // someone outside: blocked
		remove("p-unknown", "by-acct"),             // unknown location: blocked
		remove("p-cn-phone", "by-acct"),            // kept
		remove("nobody", "by-acct"),                // not in the meeting: blocked
		remove("p-cn", "expired"),                  // not in force: blocked
		remove("p-cn", "ok"),                       // kept (another order)
	}
	given := slices.Clone(actions)
	wantKept, wantBlocked := Check(facts(), actions)
	if !slices.EqualFunc(actions, given, equalAction) {
		t.Fatal("Check modified the actions it was given")
	}
	if len(wantKept) != 3 || len(wantBlocked) != 5 {
		t.Fatalf("the case needs kept and blocked actions: kept %d, blocked %d", len(wantKept), len(wantBlocked))
	}
	kept, blocked := CheckInPlace(facts(), actions)
	if !slices.EqualFunc(kept, wantKept, equalAction) {
		t.Errorf("kept\n %+v\nwant\n %+v", kept, wantKept)
	}
	if !slices.EqualFunc(blocked, wantBlocked, func(a, b decision.Blocked) bool {
		return equalAction(a.Action, b.Action) && a.Code == b.Code && a.Reason == b.Reason
	}) {
		t.Errorf("blocked\n %+v\nwant\n %+v", blocked, wantBlocked)
	}
	if &kept[0] != &actions[0] {
		t.Error("CheckInPlace did not write the kept actions over the given ones")
	}
}

// TestParticipantsFoundInAnyOrder: the guard looks a little ahead of the
// last participant an action named before asking the index; actions naming
// people in any order (backwards, far ahead, repeated, unknown) resolve to
// exactly the person named.
func TestParticipantsFoundInAnyOrder(t *testing.T) {
	const n = 200
	f := facts()
	f.Participants = nil
	for i := range n {
		country := "HK"
		if i%3 == 0 {
			country = "CN"
		}
		f.Participants = append(f.Participants, Person{ID: fmt.Sprintf("p-%d", i), Located: byIP(country)})
	}
	f.ParticipantIndex = idindex.Of(n, func(i int) string { return f.Participants[i].ID })
	var order []int
	for i := n - 2; i >= 0; i -= 3 { // backwards, everyone in CN
		order = append(order, i)
	}
	order = append(order, 0, 3, 150, 6, 199, 9, 9, 12, 180, 13) // ahead, behind, repeated
	var actions []decision.Action
	for _, i := range order {
		actions = append(actions, decision.Action{Type: decision.RemoveParticipant, ParticipantID: fmt.Sprintf("p-%d", i), OrderID: "by-acct"})
	}
	actions = append(actions, decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-200", OrderID: "by-acct"})
	kept, blocked := Check(f, actions)
	keptIDs := map[string]bool{}
	for _, a := range kept {
		var i int
		if _, err := fmt.Sscanf(a.ParticipantID, "p-%d", &i); err != nil || i%3 != 0 || a.Country != "CN" {
			t.Errorf("kept %+v: not someone located in CN", a)
		}
		keptIDs[a.ParticipantID] = true
	}
	wantKept := map[string]bool{}
	for _, i := range order {
		if i%3 == 0 {
			wantKept[fmt.Sprintf("p-%d", i)] = true
		}
	}
	if len(kept) != len(wantKept) || len(keptIDs) != len(wantKept) {
		t.Errorf("kept %d actions for %d people, want one each for %d", len(kept), len(keptIDs), len(wantKept))
	}
	codes := map[string]int{}
	for _, b := range blocked {
		codes[b.Code]++
		if b.Code == CodeOutsideJurisdiction {
			var i int
			if _, err := fmt.Sscanf(b.Action.ParticipantID, "p-%d", &i); err != nil || i%3 == 0 {
				t.Errorf("blocked %+v as outside, who is located in CN", b.Action)
			}
		}
	}
	if codes[CodeUnknownParticipant] != 1 || codes[CodeOutsideJurisdiction] != 2 {
		t.Errorf("blocked: %v; want p-200 unknown, p-199 and p-13 outside", codes)
	}
}

// TestRepeatedIDsResolveToTheFirst: over participants whose ids repeat
// (facts no validated request gives), an action naming a repeated id is
// checked against its first holder whatever the actions before it, as
// without an index, so that reading ahead can never pick a holder inside
// the jurisdiction over one outside.
func TestRepeatedIDsResolveToTheFirst(t *testing.T) {
	f := facts()
	f.Participants = []Person{{ID: "dup", Located: byIP("HK")}, {ID: "p-a", Located: byIP("CN")}, {ID: "dup", Located: byIP("CN")}}
	index := idindex.Of(len(f.Participants), func(i int) string { return f.Participants[i].ID })
	if index.Unique() {
		t.Fatal("an index given a repeated id reports its ids unique")
	}
	remove := func(who string) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, ParticipantID: who, OrderID: "by-acct"}
	}
	for _, given := range []*idindex.Index{index, nil} {
		f.ParticipantIndex = given
		kept, blocked := Check(f, []decision.Action{remove("p-a"), remove("dup")})
		if len(kept) != 1 || kept[0].ParticipantID != "p-a" {
			t.Errorf("index %v: kept %+v, want p-a only", given != nil, kept)
		}
		if len(blocked) != 1 || blocked[0].Action.ParticipantID != "dup" || blocked[0].Code != CodeOutsideJurisdiction {
			t.Errorf("index %v: blocked %+v, want dup as outside (its first holder is in HK)", given != nil, blocked)
		}
	}
}

// TestActionSetPastItsInlineKeys: the set of kept action keys answers the
// same whether a key sits in its inline array or in its map: every key is
// added once, a repeat of any of them is refused, in any order, and keys
// differing in one field only are different.
func TestActionSetPastItsInlineKeys(t *testing.T) {
	var keys []actionKey
	for i := range 10 {
		keys = append(keys, actionKey{typ: "deny_join", participant: fmt.Sprint("p-", i), order: "o-1"})
	}
	keys = append(keys,
		actionKey{typ: "deny_join", participant: "p-1", order: "o-2"},
		actionKey{typ: "deny_join", participant: "p-1", order: "o-1", host: true},
		actionKey{typ: "suspend_account", account: "a-1", order: "o-1"})
	var s actionSet
	for i, k := range keys {
		if !s.add(k) {
			t.Fatalf("key %d (%+v) refused as a repeat the first time", i, k)
		}
	}
	for _, i := range []int{12, 0, 3, 4, 9, 5, 10, 11} {
		if s.add(keys[i]) {
			t.Fatalf("key %d (%+v) added twice", i, keys[i])
		}
	}
	if s.n != len(keys) {
		t.Fatalf("%d keys held, want %d", s.n, len(keys))
	}
}

// How many people an order's meeting-wide action would reach outside its
// authority's jurisdiction is counted once per order and kept for the
// check: two orders of authorities over different countries, in one
// check, each get their own count, whichever comes first. Everyone is in
// CN: the CN authority's end_meeting is kept, the HK authority's blocked.
func TestOutsideCountedPerOrder(t *testing.T) {
	cn := decision.Action{Type: decision.EndMeeting, OrderID: "ok"}
	hk := decision.Action{Type: decision.EndMeeting, OrderID: "hk"}
	for _, actions := range [][]decision.Action{{cn, hk}, {hk, cn}} {
		f := facts()
		everyoneInside(f)
		f.Joining = nil
		f.Orders["hk"] = registry.Order{Authority: "hk", Demands: []string{"end_meeting"}, Targets: registry.Targets{Meetings: []string{"m1"}}, LegalBasis: "law"}
		f.Authorities["hk"] = registry.Authority{Name: "HK", Jurisdiction: []string{"HK"}}
		kept, blocked := Check(f, actions)
		if len(kept) != 1 || kept[0].OrderID != "ok" || len(blocked) != 1 || blocked[0].Action.OrderID != "hk" || blocked[0].Code != CodeAffectsOutside {
			t.Errorf("orders %s then %s: kept %+v, blocked %+v; want the CN order's end_meeting kept and the HK order's blocked (%s)",
				actions[0].OrderID, actions[1].OrderID, kept, blocked, CodeAffectsOutside)
		}
	}
}
