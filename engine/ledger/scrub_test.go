package ledger

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"

	"github.com/geoscope/geoscope/engine/input"
)

// bothWays runs a test of the scrubber with ids searched one after
// another in every text, and with the matcher from the first text on.
func bothWays(t *testing.T, test func(t *testing.T, scanAfter int)) {
	t.Run("scan", func(t *testing.T) { test(t, math.MaxInt) })
	t.Run("match", func(t *testing.T) { test(t, -1) })
}

// Ids are replaced where they stand as tokens, so an id that is also a
// word or a number does not garble longer words, and the guard's own
// reasons are scrubbed only where they quote an id. Punctuation, "-" and
// "_" too, ends a token: an id glued to another name is replaced, even a
// participant called "CN" in "CN-11".
func TestScrubberKeepsReasonsReadable(t *testing.T) { bothWays(t, testScrubberKeepsReasonsReadable) }

func testScrubberKeepsReasonsReadable(t *testing.T, scanAfter int) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	s := &scrubber{p: p, participants: []input.Participant{{ID: "1"}, {ID: "CN"}, {ID: "located"}, {ID: "p1"}}, accounts: map[string]bool{"the": true}, cache: map[string]string{}, scanAfter: scanAfter}
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
	bothWays(t, testScrubberFindsIdsHoweverTheyAreWritten)
}

func testScrubberFindsIdsHoweverTheyAreWritten(t *testing.T, scanAfter int) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	ids := []string{"LEAKMARK-r1", `CORP\alice`, `say"hi"`, "a<b>&c", "p1"}
	s := &scrubber{p: p, participants: []input.Participant{{ID: ids[0]}, {ID: ids[1]}, {ID: ids[2]}, {ID: ids[3]}, {ID: "p1"}}, accounts: map[string]bool{}, cache: map[string]string{}, scanAfter: scanAfter}
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
	bothWays(t, testScrubberKeepsOrderIDsAndKnowsTargetedAccounts)
}

func testScrubberKeepsOrderIDsAndKnowsTargetedAccounts(t *testing.T, scanAfter int) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	r := &engine.Record{
		Decision:     &decision.Decision{MeetingID: "m-1", Preview: true},
		Participants: []input.Participant{{ID: "CN"}, {ID: "0601"}, {ID: "p-7"}},
		Orders:       map[string]registry.Order{"CN-2020-0601": {Targets: registry.Targets{Accounts: []string{"acct-secret"}}}},
	}
	s := newScrubber(r, p)
	s.scanAfter = scanAfter
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
	bothWays(t, testScrubberLeavesNoIdBehindAnOrderID)
}

func testScrubberLeavesNoIdBehindAnOrderID(t *testing.T, scanAfter int) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	r := &engine.Record{
		Decision:         &decision.Decision{MeetingID: "m-1", Preview: true},
		Participants:     []input.Participant{{ID: "0601-7"}, {ID: "user_4471"}},
		Orders:           map[string]registry.Order{"CN-2020-0601": {}},
		OrdersNotInForce: map[string]registry.Order{"PREVIEW-1": {Targets: registry.Targets{Accounts: []string{"acct-secret-9"}}}},
	}
	s := newScrubber(r, p)
	s.scanAfter = scanAfter
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
	bothWays(t, testScrubberTellsAccountsOfOneFormTheSameWayEveryTime)
}

func testScrubberTellsAccountsOfOneFormTheSameWayEveryTime(t *testing.T, scanAfter int) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	text := `account "a\\b" is not targeted`
	var first string
	for i := range 50 {
		s := &scrubber{p: p, accounts: map[string]bool{`a\b`: true, `a\\b`: true, "x": true, "y": true, "z": true}, cache: map[string]string{}, scanAfter: scanAfter}
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

// The matcher finds the ids searching for one after another finds, so
// that a text is scrubbed alike either way: over random rosters whose ids
// hold each other, need escaping, are not ASCII or are ordinary words,
// and random texts that hold them as they are, quoted, escaped once or
// twice, in JSON, glued to order ids and to each other.
func TestScrubberMatchesAsItScans(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"p", "1", "0", "-", "_", "a", "A", "é", "参", `"`, `\`, "<", ">", "&", " ", "\u2028", "\x7f", "\t", "x"}
	words := []string{"1", "CN", "the", "is", "located", "p1", "p10", "a", "-", "participant"}
	for round := range 300 {
		var ids []string
		newID := func() string {
			switch r := rng.IntN(10); {
			case r < 2:
				return words[rng.IntN(len(words))]
			case r < 4 && len(ids) > 0: // holding another id, or held by one
				id := ids[rng.IntN(len(ids))]
				if r == 2 {
					return id[:rng.IntN(len(id))+1] + pieces[rng.IntN(len(pieces))]
				}
				return pieces[rng.IntN(len(pieces))] + id
			}
			var b strings.Builder
			for range 1 + rng.IntN(6) {
				b.WriteString(pieces[rng.IntN(len(pieces))])
			}
			return b.String()
		}
		for range 1 + rng.IntN(12) {
			ids = append(ids, newID())
		}
		r := &engine.Record{
			Decision:  &decision.Decision{MeetingID: "m-1"},
			AccountID: ids[rng.IntN(len(ids))],
			Orders:    map[string]registry.Order{"CN-" + ids[rng.IntN(len(ids))]: {}},
		}
		for i, id := range ids {
			part := input.Participant{ID: id}
			if rng.IntN(3) == 0 {
				part.AccountID = ids[(i+1)%len(ids)] + pieces[rng.IntN(len(pieces))]
				ids = append(ids, part.AccountID)
			}
			r.Participants = append(r.Participants, part)
		}
		if rng.IntN(2) == 0 {
			r.Joining = &input.Participant{ID: newID(), AccountID: newID()}
			ids = append(ids, r.Joining.ID, r.Joining.AccountID)
		}
		named := []string{ids[rng.IntN(len(ids))], newID()}
		ids = append(ids, named[1])
		text := func() string {
			var b strings.Builder
			for range 1 + rng.IntN(6) {
				id := ids[rng.IntN(len(ids))]
				switch rng.IntN(7) {
				case 0:
					b.WriteString(words[rng.IntN(len(words))])
				case 1:
					b.WriteString(strconv.Quote(id))
				case 2:
					if forms := escapedForms(id); len(forms) > 0 {
						b.WriteString(forms[rng.IntN(len(forms))])
					}
				case 3:
					js, _ := json.Marshal(map[string]string{"who": id})
					b.Write(js)
				case 4:
					b.WriteString("CN-" + id)
				default:
					b.WriteString(id)
				}
				b.WriteString([]string{" ", "", "-", "_", ", ", `\`}[rng.IntN(6)])
			}
			return b.String()
		}
		texts := make([]string, 40)
		for i := range texts {
			texts[i] = text()
		}
		scrubbers := map[string]*scrubber{}
		for way, scanAfter := range map[string]int{"scan": math.MaxInt, "match": -1, "scan then match": 10} {
			s := newScrubber(r, p)
			s.scanAfter = scanAfter
			for _, id := range named {
				s.participant(id)
			}
			scrubbers[way] = s
		}
		for _, text := range texts {
			want := scrubbers["scan"].apply(text)
			wantQuoted := scrubbers["scan"].applyQuoted(text)
			wantCode := scrubbers["scan"].code(text)
			for _, way := range []string{"match", "scan then match"} {
				s := scrubbers[way]
				if got := s.apply(text); got != want {
					t.Fatalf("round %d, ids %q, %s: apply(%q)\n = %q\n want %q", round, ids, way, text, got, want)
				}
				if got := s.applyQuoted(text); got != wantQuoted {
					t.Fatalf("round %d, ids %q, %s: applyQuoted(%q)\n = %q\n want %q", round, ids, way, text, got, wantQuoted)
				}
				if got := s.code(text); got != wantCode {
					t.Fatalf("round %d, ids %q, %s: code(%q) = %q, want %q", round, ids, way, text, got, wantCode)
				}
			}
		}
		if scrubbers["match"].ids == nil || scrubbers["scan"].ids != nil {
			t.Fatal("the matcher was not used, or used to scan")
		}
	}
}
