// Package idindex maps the ids of a roster to their positions in it: the
// table input validation checks ids for duplicates with, and the guard
// finds the participant an action names with.
//
// Why not a map[string]int: for a roster of 100,000 participants that map
// is about 3.7 MB of 24-byte slots holding string pointers, probed at
// random while the collector is often marking; in a CPU profile of a
// 100,000-participant decision its inserts and lookups were a fifth of all
// the time, nearly all of it waiting on memory (and each insert is a
// pointer write, with the collector's write barrier). An Index holds
// positions only, 8 bytes a slot with no pointer in it: a 32-bit hash of
// the id and the position. The ids stay where they are, in the roster; the caller
// tells whether a position holds an id. Linear probing at a load of at
// most a half, over a hash seeded at random per process, so that ids a
// client chose cannot be made to collide.
package idindex

import (
	"hash/maphash"
	"math/bits"

	"github.com/geoscope/geoscope/internal/reuse"
)

// MaxLen is the most ids an Index holds.
const MaxLen = 1<<31 - 1

var seed = maphash.MakeSeed()

// slotArrays keeps the tables of large rosters for later ones.
var slotArrays reuse.Slices[uint64]

// Index maps ids to positions. The zero value is not usable; see New.
type Index struct {
	slots []uint64 // 0: empty; otherwise tag<<32 | position+1
	mask  uint64
	n     int
	// duplicates records that Add was given an id already indexed.
	duplicates bool
}

// New returns an empty Index with room for n ids (at most MaxLen).
func New(n int) *Index {
	size := 1 << bits.Len(uint(max(2*n-1, 1)))
	return &Index{slots: slotArrays.Get(size)[:size], mask: uint64(size - 1)}
}

// Of indexes the n ids id gives, by position; a repeated id is found at its
// first position (and Unique is false).
func Of(n int, id func(i int) string) *Index {
	x := New(n)
	for i := range n {
		x.Add(id(i), i, func(j int) bool { return id(j) == id(i) })
	}
	return x
}

// Len is how many positions are indexed.
func (x *Index) Len() int { return x.n }

// Add indexes position i (below MaxLen), whose id is id. If a position
// already indexed holds the same id, as same tells (same(j) reports whether
// position j holds id), Add returns that position and false, and i is not
// indexed.
func (x *Index) Add(id string, i int, same func(j int) bool) (int, bool) {
	if x.n >= len(x.slots)/2 {
		x.grow()
	}
	tag := hash(id)
	for s := tag & x.mask; ; s = (s + 1) & x.mask {
		slot := x.slots[s]
		if slot == 0 {
			x.slots[s] = tag<<32 | uint64(i+1)
			x.n++
			return i, true
		}
		if j := int(uint32(slot)) - 1; slot>>32 == tag && same(j) {
			x.duplicates = true
			return j, false
		}
	}
}

// Unique reports whether every id Add was given was new: no position
// indexed shares its id with a position Add refused.
func (x *Index) Unique() bool { return !x.duplicates }

// Find returns the position of id: the first indexed position with id's
// tag for which same reports true.
func (x *Index) Find(id string, same func(j int) bool) (int, bool) {
	tag := hash(id)
	for s := tag & x.mask; ; s = (s + 1) & x.mask {
		slot := x.slots[s]
		if slot == 0 {
			return -1, false
		}
		if j := int(uint32(slot)) - 1; slot>>32 == tag && same(j) {
			return j, true
		}
	}
}

// hash is id's 32-bit tag, which also gives where its probe starts (its
// low bits), so that a larger table is filled from the tags alone.
func hash(id string) uint64 { return maphash.String(seed, id) >> 32 }

// grow doubles the table. New's room makes it rare: only an Index given
// too little room grows.
func (x *Index) grow() {
	old := x.slots
	size := 2 * len(old)
	x.slots, x.mask = slotArrays.Get(size)[:size], uint64(size-1)
	for _, slot := range old {
		if slot == 0 {
			continue
		}
		s := slot >> 32 & x.mask
		for x.slots[s] != 0 {
			s = (s + 1) & x.mask
		}
		x.slots[s] = slot
	}
	slotArrays.Put(old)
}

// Release hands the table back for reuse; x must not be used afterwards.
func (x *Index) Release() {
	slotArrays.Put(x.slots)
	x.slots, x.mask, x.n, x.duplicates = nil, 0, 0, false
}
