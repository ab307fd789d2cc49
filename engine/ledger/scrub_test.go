package ledger

import (
	"testing"

	"github.com/geoscope/geoscope/engine/input"
)

// Ids are replaced where they stand as tokens, so an id that is also a
// word, a number or a country code does not garble the rest of a reason,
// and the guard's own reasons are scrubbed only where they quote an id.
func TestScrubberKeepsReasonsReadable(t *testing.T) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	s := &scrubber{p: p, participants: []input.Participant{{ID: "1"}, {ID: "CN"}, {ID: "located"}, {ID: "p1"}}, accounts: map[string]bool{"the": true}, cache: map[string]string{}}
	for _, tc := range []struct{ in, want string }{
		{"ending the meeting would affect 3 users not located in CN-11 or p10",
			"ending " + p.Account("the") + " meeting would affect 3 users not " + p.Participant("located") + " in CN-11 or p10"},
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
