// Package reuse keeps the large per-request arrays of big rosters (the
// participants, their located people, the id index's table) for later
// requests instead of leaving each to the garbage collector.
//
// Why: a 10,000-participant decision allocated about 4 MB, more than half in
// three arrays. A fresh array that large is cleared page by page, and on
// this kind of virtual machine mostly page-faulted in as well, since the
// runtime hands freed pages back to the system; and every megabyte
// allocated brings the next collection closer. A kept array is memory held
// between requests: sync.Pool lets the collector drop what two collections
// in a row found unused, so an idle server returns to its baseline.
//
// Below Min entries allocating is cheaper than the pool, and nothing is
// kept.
package reuse

import (
	"math"
	"sync"
)

// Min is the smallest capacity kept.
const Min = 2048

// sizes are the capacities handed out: Min, then about √2 times the one
// before (the powers of two, and each times √2 between them), so a slice is
// at most 42% larger than asked for; past the last one nothing is kept.
var sizes = func() []int {
	var s []int
	for pow := Min; pow <= 1<<22; pow *= 2 {
		s = append(s, pow, int(math.Ceil(float64(pow)*math.Sqrt2)))
	}
	return s
}()

// class returns the index in sizes of the smallest size holding n.
func class(n int) (int, bool) {
	if n < Min {
		return 0, false
	}
	for c, size := range sizes {
		if size >= n {
			return c, true
		}
	}
	return 0, false
}

// Slices keeps slices of T by capacity. The zero value is ready to use.
type Slices[T any] struct {
	pools [32]sync.Pool // one per size; sizes has fewer than 32
}

// Get returns an empty slice with capacity at least n, every element the
// zero value.
func (s *Slices[T]) Get(n int) []T {
	c, ok := class(n)
	if !ok {
		return make([]T, 0, n)
	}
	if kept, _ := s.pools[c].Get().(*[]T); kept != nil {
		return (*kept)[:0]
	}
	return make([]T, 0, sizes[c])
}

// Put clears x's array and keeps it for a later Get, if its capacity is
// one of the sizes Get makes (any other is left to the collector). Nothing
// may use x's array afterwards; values copied out of it (strings among
// them) stay valid.
func (s *Slices[T]) Put(x []T) {
	c, ok := class(cap(x))
	if !ok || sizes[c] != cap(x) {
		return
	}
	// A variable of its own: the pool keeps a pointer to it, so it is
	// allocated, and only here (x itself escaping would allocate on every
	// call, kept or not).
	kept := x[:cap(x)]
	clear(kept)
	kept = kept[:0]
	s.pools[c].Put(&kept)
}
