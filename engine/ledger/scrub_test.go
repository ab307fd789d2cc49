package ledger

import (
	"regexp"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"

	"github.com/geoscope/geoscope/engine/input"
)

// Ids are replaced where they stand as tokens, so an id that is also a
// word or a number does not garble longer words, and the guard's own
// reasons are scrubbed only where they quote an id. Punctuation, "-" and
// "_" too, ends a token: an id glued to another name is replaced, even a
// participant called "CN" in "CN-11".
func TestScrubberKeepsReasonsReadable(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	s := &scrubber{p: p, participants: []input.Participant{{ID: "1"}, {ID: "CN"}, {ID: "located"}, {ID: "p1"}}, accounts: map[string]bool{"the": true}, cache: map[string]string{}}
	for _, tc := range []struct{ in, want string }{
		{"ending the meeting would affect 3 users not located in CN-11 or p10",
			"ending " + p.Account("the") + " meeting would affect 3 users not " + p.Participant("located") + " in " + p.Participant("CN") + "-11 or p10"},
		{"p1 and 1 are in CN", p.Participant("p1") + " and " + p.Participant("1") + " are in " + p.Participant("CN")},
		{"p1's address", p.Participant("p1") + "'s address"},
	} {
		if got := s.apply(tc.in); got != tc.want {
			t.Errorf("apply(%q)\n = %q\n want %q", tc.in, got, tc.want)
		}
	}
	guard := `"1" is located in CN, outside HK; the host "the" is not connected`
	want := `"` + p.Participant("1") + `" is located in CN, outside HK; the host "` + p.Account("the") + `" is not connected`
	if got := s.applyQuoted(guard); got != want {
		t.Errorf("applyQuoted(%q)\n = %q\n want %q", guard, got, want)
	}
}

var pseudonymShape = regexp.MustCompile(`ps:[0-9a-f]{32}`)

// A reason a policy wrote may hold an id however the policy spelt it out:
// glued to other names with "-" or "_", quoted by sprintf("%q"), or
// escaped inside a JSON text (json.marshal, "%v" of an object). None of
// them may reach the ledger.
func TestScrubberFindsIdsHoweverTheyAreWritten(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	ids := []string{"LEAKMARK-r1", `CORP\alice`, `say"hi"`, "a<b>&c", "p1"}
	s := &scrubber{p: p, participants: []input.Participant{{ID: ids[0]}, {ID: ids[1]}, {ID: ids[2]}, {ID: ids[3]}, {ID: "p1"}}, accounts: map[string]bool{}, cache: map[string]string{}}
	for _, text := range []string{
		"CN-2020-0601-LEAKMARK-r1 removed; ref case_LEAKMARK-r1",
		`account "CORP\\alice" is not targeted`,
		`{"who":"CORP\\alice","also":"say\"hi\""}`,
		`reason: "{\"who\":\"CORP\\\\alice\"}"`,
		`{"who":"a\u003cb\u003e\u0026c"}`,
		"p1_p1-p1",
	} {
		got := s.apply(text)
		rest := pseudonymShape.ReplaceAllString(got, "")
		for _, id := range ids {
			for _, form := range append([]string{id}, escapedForms(id)...) {
				if strings.Contains(rest, form) {
					t.Errorf("apply(%q) = %q: still holds %q", text, got, form)
				}
			}
		}
		if rest == got {
			t.Errorf("apply(%q) = %q: nothing replaced", text, got)
		}
	}
	// Each form stands for its own id's pseudonym.
	if got, want := s.apply(`"CORP\\alice"`), `"`+p.Participant(`CORP\alice`)+`"`; got != want {
		t.Errorf("escaped id: got %q, want %q", got, want)
	}
	if got, want := s.applyQuoted(`account "say\"hi\"" is not targeted`), `account "`+p.Participant(`say"hi"`)+`" is not targeted`; got != want {
		t.Errorf("quoted id with a quote in it: got %q, want %q", got, want)
	}
}

// An order's id stays whole in a reason even when part of it is someone's
// id; the accounts an order targets are ids too.
func TestScrubberKeepsOrderIDsAndKnowsTargetedAccounts(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	r := &engine.Record{
		Decision:     &decision.Decision{MeetingID: "m-1", Preview: true},
		Participants: []input.Participant{{ID: "CN"}, {ID: "0601"}, {ID: "p-7"}},
		Orders:       map[string]registry.Order{"CN-2020-0601": {Targets: registry.Targets{Accounts: []string{"acct-secret"}}}},
	}
	s := newScrubber(r, p)
	got := s.apply("order CN-2020-0601: CN-0601 and p-7 removed; targets acct-secret")
	want := "order CN-2020-0601: " + p.Participant("CN") + "-" + p.Participant("0601") + " and " + p.Participant("p-7") + " removed; targets " + p.Account("acct-secret")
	if got != want {
		t.Errorf("apply\n = %q\n want %q", got, want)
	}
}

// An order's id kept whole never shields the end of an id that starts
// inside it; the accounts a preview not in force targets are ids; a
// refusal code that holds an id is withheld.
func TestScrubberLeavesNoIdBehindAnOrderID(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	r := &engine.Record{
		Decision:         &decision.Decision{MeetingID: "m-1", Preview: true},
		Participants:     []input.Participant{{ID: "0601-7"}, {ID: "user_4471"}},
		Orders:           map[string]registry.Order{"CN-2020-0601": {}},
		OrdersNotInForce: map[string]registry.Order{"PREVIEW-1": {Targets: registry.Targets{Accounts: []string{"acct-secret-9"}}}},
	}
	s := newScrubber(r, p)
	for in, want := range map[string]string{
		"ref CN-2020-0601-7":                 "ref CN-2020-" + p.Participant("0601-7"),
		"order CN-2020-0601 applies":         "order CN-2020-0601 applies",
		"preview targets acct-secret-9":      "preview targets " + p.Account("acct-secret-9"),
		"CN-2020-0601: 0601-7 and user_4471": "CN-2020-0601: " + p.Participant("0601-7") + " and " + p.Participant("user_4471"),
	} {
		if got := s.apply(in); got != want {
			t.Errorf("apply(%q)\n = %q\n want %q", in, got, want)
		}
	}
	for code, want := range map[string]string{"withheld_user_4471": WithheldCode, "press_review": "press_review", "user_4471": WithheldCode} {
		if got := s.code(code); got != want {
			t.Errorf("code(%q) = %q, want %q", code, got, want)
		}
	}
}

// Two accounts that hold the same form (the account `a\\b`, and `a\b`
// as a quoted string escapes it) scrub a text the same way every time,
// whatever order the accounts' map gives them in.
func TestScrubberTellsAccountsOfOneFormTheSameWayEveryTime(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	text := `account "a\\b" is not targeted`
	var first string
	for i := range 50 {
		s := &scrubber{p: p, accounts: map[string]bool{`a\b`: true, `a\\b`: true, "x": true, "y": true, "z": true}, cache: map[string]string{}}
		got := s.apply(text)
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("apply(%q) = %q, then %q", text, first, got)
		}
	}
	// The greater of the two: `a\b`, whose third byte, 'b', sorts after '\\'.
	if want := `account "` + p.Account(`a\b`) + `" is not targeted`; first != want {
		t.Errorf("apply(%q) = %q, want %q", text, first, want)
	}
}
