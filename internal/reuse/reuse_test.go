package reuse

import (
	"testing"
	"unsafe"
)

func TestSizes(t *testing.T) {
	if sizes[0] != Min {
		t.Fatalf("smallest size %d, want %d", sizes[0], Min)
	}
	for i := 1; i < len(sizes); i++ {
		if r := float64(sizes[i]) / float64(sizes[i-1]); r <= 1 || r > 1.42 {
			t.Errorf("size %d is %.3f times the one before", sizes[i], r)
		}
	}
	if len(sizes) > len(Slices[int]{}.pools) {
		t.Fatalf("%d sizes, %d pools", len(sizes), len(Slices[int]{}.pools))
	}
	for _, n := range []int{Min, Min + 1, 10_000, 100_000, sizes[len(sizes)-1]} {
		c, ok := class(n)
		if !ok || sizes[c] < n || (c > 0 && sizes[c-1] >= n) {
			t.Errorf("class(%d) = %d (size %d), %v: not the smallest size holding it", n, c, sizes[c], ok)
		}
	}
	for _, n := range []int{0, Min - 1, sizes[len(sizes)-1] + 1} {
		if _, ok := class(n); ok {
			t.Errorf("class(%d) is kept", n)
		}
	}
}

type item struct {
	name string
	n    int
	refs []int
}

// TestSlicesComeBackCleared puts back arrays full of values until one comes
// back from Get (a pool may drop what it is given): it must come back
// empty, every element the zero value, with the capacity Get promises.
func TestSlicesComeBackCleared(t *testing.T) {
	var s Slices[item]
	for range 100 {
		x := s.Get(3_000)
		if len(x) != 0 || cap(x) < 3_000 {
			t.Fatalf("Get(3000): len %d cap %d", len(x), cap(x))
		}
		x = x[:cap(x)]
		for i := range x {
			x[i] = item{name: "someone", n: i + 1, refs: []int{i}}
		}
		array := unsafe.SliceData(x)
		s.Put(x[:17])
		y := s.Get(2_900)
		if unsafe.SliceData(y) != array {
			continue
		}
		for i, v := range y[:cap(y)] {
			if v.name != "" || v.n != 0 || v.refs != nil {
				t.Fatalf("element %d came back as %+v", i, v)
			}
		}
		return
	}
	t.Fatal("no array came back in 100 tries")
}

// TestSlicesKeepOnlyTheirSizes: an array whose capacity is not one of the
// sizes Get makes is not kept (small ones are made as asked).
func TestSlicesKeepOnlyTheirSizes(t *testing.T) {
	var s Slices[int]
	if x := s.Get(10); cap(x) != 10 {
		t.Errorf("Get(10): capacity %d, want 10 (small slices are made as asked)", cap(x))
	}
	odd := make([]int, 5_000)
	for range 100 {
		s.Put(odd)
		if y := s.Get(5_000); unsafe.SliceData(y) == unsafe.SliceData(odd) {
			t.Fatal("an array of a capacity Get does not make was kept")
		}
	}
}

// Putting back a slice that is not kept (small, or of a capacity Get does
// not make) allocates nothing: every request puts back its arrays, and
// most requests' are small.
func TestPutOfSmallSlicesDoesNotAllocate(t *testing.T) {
	var s Slices[item]
	small, odd := make([]item, 3), make([]item, 5_000)
	if n := testing.AllocsPerRun(100, func() { s.Put(small); s.Put(odd); s.Put(nil) }); n != 0 {
		t.Errorf("Put of slices not kept: %v allocations, want 0", n)
	}
}
