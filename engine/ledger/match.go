package ledger

import (
	"slices"
	"strings"
)

// matcher finds, in one pass over a text, every one of a set of patterns
// the text holds (an Aho–Corasick automaton): what strings.Contains tells
// for each pattern, in time linear in the text and the matches, whatever
// the number of patterns.
//
// The trie's states are numbered breadth first, and in the sorted order
// of their prefixes within one depth, so the children of a state are
// consecutive states with their labels sorted: the children of v are
// first[v] to first[v+1]-1. Each state costs 17 bytes, and a trie has at
// most one state per byte of pattern (fewer where patterns share a
// prefix): for the ids of a request within the default body limit of
// 4 MiB, some 70 MB at the very most, for as long as the entry is built.
//
// It is written here because the Go libraries tried
// (github.com/coregx/ahocorasick, petar-dambovaliev/aho-corasick,
// BobuSumisu/aho-corasick, cloudflare/ahocorasick) keep a dense row of
// transitions, or pointers and slices, for each state, at 100 bytes to
// 4 KB a state: over 100,000 random UUIDs (3.6 MB) they retained 325 MB
// to 6.8 GB and took 8 to 46 s to build (cloudflare's, 3.3 GB for
// 100,000 ids of 8 bytes), where this one retains 58 MB and builds in
// 0.2 to 0.4 s (docs/benchmarks.md).
type matcher struct {
	label []byte  // the byte on the edge into each state
	first []int32 // where each state's children begin (one more entry, the end)
	// fail is the state of the longest proper suffix of a state's prefix
	// that is in the trie; out the pattern (in distinct) that ends at a
	// state, -1 when none does; dict the nearest state on its chain of
	// fail links where a pattern ends, -1 when none does.
	fail, out, dict []int32
	root            [256]int32 // the root's child for each byte, 0 when none
	// distinct are the patterns, sorted, each once; the indices of those
	// equal to distinct[i] are keys[from[i]:from[i+1]].
	distinct   []string
	keys, from []int32
}

// newMatcher builds the automaton of patterns. Empty patterns are left
// out; several may be the same.
func newMatcher(patterns []string) *matcher {
	m := &matcher{keys: make([]int32, 0, len(patterns))}
	for k, p := range patterns {
		if p != "" {
			m.keys = append(m.keys, int32(k))
		}
	}
	slices.SortFunc(m.keys, func(a, b int32) int { return strings.Compare(patterns[a], patterns[b]) })
	// lcp[i] is how many leading bytes distinct[i] shares with the one
	// before it; the states of distinct[i] not on an earlier pattern's
	// path are those of depths lcp[i]+1 to len(distinct[i]).
	m.distinct, m.from = make([]string, 0, len(m.keys)), make([]int32, 0, len(m.keys)+1)
	lcp := make([]int32, 0, len(m.keys))
	maxLen := 0
	for i, k := range m.keys {
		p := patterns[k]
		if i > 0 && p == m.distinct[len(m.distinct)-1] {
			continue
		}
		n := 0
		if i > 0 {
			prev := m.distinct[len(m.distinct)-1]
			for n < len(prev) && n < len(p) && prev[n] == p[n] {
				n++
			}
		}
		m.distinct, m.from, lcp = append(m.distinct, p), append(m.from, int32(i)), append(lcp, int32(n))
		maxLen = max(maxLen, len(p))
	}
	m.from = append(m.from, int32(len(m.keys)))
	// next[d] is the number the next new state of depth d gets: the states
	// of depth d follow those of depth d-1, in the order of the patterns
	// that reach them first.
	next := make([]int32, maxLen+2)
	for i, p := range m.distinct {
		for d := int(lcp[i]) + 1; d <= len(p); d++ {
			next[d+1]++
		}
	}
	next[1] = 1 // the root is state 0
	for d := 2; d < len(next); d++ {
		next[d] += next[d-1]
	}
	n := int(next[len(next)-1])
	m.label, m.fail, m.out, m.dict = make([]byte, n), make([]int32, n), make([]int32, n), make([]int32, n)
	m.first = make([]int32, n+1)
	for v := range n + 1 {
		m.first[v] = -1
	}
	m.out[0], m.dict[0] = -1, -1
	for i, p := range m.distinct {
		for d := int(lcp[i]) + 1; d <= len(p); d++ {
			// The parent is the last state of depth d-1: the one just
			// made, or the one an earlier pattern with the same prefix
			// made, since no pattern between the two has another prefix.
			parent := next[d-1] - 1
			if d == 1 {
				parent = 0
			}
			w := next[d]
			next[d]++
			if m.first[parent] < 0 {
				m.first[parent] = w
			}
			m.label[w], m.out[w] = p[d-1], -1
			if d == len(p) {
				m.out[w] = int32(i)
			}
		}
	}
	// A state without children has an empty range where the next one's
	// children begin (the states of each depth have theirs in order).
	m.first[n] = int32(n)
	for v := n - 1; v >= 0; v-- {
		if m.first[v] < 0 {
			m.first[v] = m.first[v+1]
		}
	}
	// Fail links in breadth-first order: the fail link of a child by c is
	// the child by c of the nearest state on its parent's chain that has
	// one; the states of lower depth have their links already.
	for v := range int32(n) {
		for w := m.first[v]; w < m.first[v+1]; w++ {
			c := m.label[w]
			f := int32(0)
			if v == 0 {
				m.root[c] = w
			} else {
				for f = m.fail[v]; ; f = m.fail[f] {
					if g := m.child(f, c); g != 0 || f == 0 {
						f = g
						break
					}
				}
			}
			m.fail[w], m.dict[w] = f, m.dict[f]
			if m.out[f] >= 0 {
				m.dict[w] = f
			}
		}
	}
	return m
}

// child is v's child by c, 0 when it has none.
func (m *matcher) child(v int32, c byte) int32 {
	if v == 0 {
		return m.root[c]
	}
	if i, ok := slices.BinarySearch(m.label[m.first[v]:m.first[v+1]], c); ok {
		return m.first[v] + int32(i)
	}
	return 0
}

// find calls found with the indices of each pattern text holds (of all
// the patterns that are the same), once per place where it ends: a
// pattern held twice is found twice.
func (m *matcher) find(text string, found func(keys []int32)) {
	v := int32(0)
	for i := 0; i < len(text); i++ {
		c := text[i]
		for v != 0 {
			if w := m.child(v, c); w != 0 {
				v = w
				break
			}
			v = m.fail[v]
		}
		if v == 0 {
			v = m.root[c]
		}
		for u := v; u > 0; u = m.dict[u] {
			if o := m.out[u]; o >= 0 {
				found(m.keys[m.from[o]:m.from[o+1]])
			}
		}
	}
}
