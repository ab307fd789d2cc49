package ledger

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The matcher finds what strings.Contains finds for each pattern, and
// where: patterns that hold each other, that share prefixes and
// suffixes, repeated, of bytes that are not ASCII.
func TestMatcherFindsWhatContainsFinds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"ab", "abc-", "a\\\"é€\x00\xff"}
	for round := range 500 {
		alphabet := alphabets[round%len(alphabets)]
		word := func(max int) string {
			b := make([]byte, rng.IntN(max+1))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			return string(b)
		}
		patterns := make([]string, 1+rng.IntN(40))
		for i := range patterns {
			patterns[i] = word(6)
			if i > 0 && rng.IntN(4) == 0 {
				patterns[i] = patterns[rng.IntN(i)] // the same pattern under another key
			}
		}
		m := newMatcher(patterns)
		for range 20 {
			checkFinds(t, m, patterns, word(30))
		}
	}
	// No patterns at all: nothing found.
	m := newMatcher([]string{"", ""})
	m.find("anything", func([]int32) { t.Error("found a pattern in an empty set") })
}

// FuzzMatcher holds the matcher to strings.HasPrefix at every offset over
// any patterns (the lines of the first argument) and any text.
func FuzzMatcher(f *testing.F) {
	f.Add("he\nshe\nhis\nhers", "ushers")
	f.Add("a\naa\naaa\na", "aaaa")
	f.Add("p-1\np-10\n\"p-1\"\n\\u003c", `{"who":"p-10"} \u003c`)
	f.Add("\xff\xfe\n\xfe", "\xff\xfe\xfe\x00")
	f.Fuzz(func(t *testing.T, lines, text string) {
		patterns := strings.Split(lines, "\n")
		if len(patterns) > 64 || len(text) > 4096 {
			return // the count by HasPrefix is quadratic; size finds nothing new
		}
		checkFinds(t, newMatcher(patterns), patterns, text)
	})
}

// checkFinds fails t unless m finds each of patterns in text as many times
// as it is held there, at one offset after another.
func checkFinds(t *testing.T, m *matcher, patterns []string, text string) {
	t.Helper()
	counts := make([]int, len(patterns))
	m.find(text, func(keys []int32) {
		for _, k := range keys {
			counts[k]++
		}
	})
	for k, p := range patterns {
		want := 0
		if p != "" {
			for i := 0; i+len(p) <= len(text); i++ {
				if strings.HasPrefix(text[i:], p) {
					want++
				}
			}
		}
		if counts[k] != want {
			t.Fatalf("patterns %q, text %q: pattern %d (%q) found %d times, held %d", patterns, text, k, p, counts[k], want)
		}
	}
}
