package idindex

import (
	"fmt"
	"testing"
)

func sameIn(ids []string, id string) func(int) bool {
	return func(j int) bool { return j < len(ids) && ids[j] == id }
}

func TestAddFindAndDuplicates(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 5_000} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("p-%d", i)
		}
		x := New(n)
		for i, id := range ids {
			if j, added := x.Add(id, i, sameIn(ids, id)); !added || j != i {
				t.Fatalf("n=%d: Add(%s, %d) = %d, %v", n, id, i, j, added)
			}
		}
		if x.Len() != n || !x.Unique() {
			t.Fatalf("n=%d: Len() = %d, Unique() = %v", n, x.Len(), x.Unique())
		}
		for i, id := range ids {
			if j, ok := x.Find(id, sameIn(ids, id)); !ok || j != i {
				t.Fatalf("n=%d: Find(%s) = %d, %v; want %d", n, id, j, ok, i)
			}
			// A duplicate reports the first position and is not indexed.
			if j, added := x.Add(id, n+i, func(j int) bool { return j == i || j == n+i }); added || j != i {
				t.Fatalf("n=%d: Add of a duplicate of %s = %d, %v; want %d, false", n, id, j, added, i)
			}
		}
		if x.Len() != n {
			t.Fatalf("n=%d: duplicates were indexed: Len() = %d", n, x.Len())
		}
		if n > 0 && x.Unique() {
			t.Fatalf("n=%d: Unique() after duplicates were refused", n)
		}
		for _, id := range []string{"", "p--1", fmt.Sprintf("p-%d", n)} {
			if j, ok := x.Find(id, sameIn(ids, id)); ok {
				t.Fatalf("n=%d: Find(%q) = %d", n, id, j)
			}
		}
		x.Release()
	}
}

// TestOf: an index of a list finds each id at its first position, and
// tells whether any repeated.
func TestOf(t *testing.T) {
	ids := []string{"a", "b", "a", "c"}
	x := Of(len(ids), func(i int) string { return ids[i] })
	for id, want := range map[string]int{"a": 0, "b": 1, "c": 3} {
		if j, ok := x.Find(id, sameIn(ids, id)); !ok || j != want {
			t.Errorf("Find(%s) = %d, %v; want %d", id, j, ok, want)
		}
	}
	if x.Len() != 3 || x.Unique() {
		t.Errorf("Len() = %d, Unique() = %v; want 3 and false", x.Len(), x.Unique())
	}
	if y := Of(2, func(i int) string { return ids[i] }); !y.Unique() {
		t.Error("an index of distinct ids is not Unique")
	}
}

// TestPositionsAreChecked: a position whose tag matches is taken only when
// the caller says it holds the id.
func TestPositionsAreChecked(t *testing.T) {
	x := New(4)
	x.Add("a", 0, func(int) bool { return true })
	if _, ok := x.Find("a", func(int) bool { return false }); ok {
		t.Fatal("Find took a position the caller said does not hold the id")
	}
	if j, added := x.Add("a", 1, func(int) bool { return false }); !added || j != 1 {
		t.Fatalf("Add treated an id at a position said not to hold it as a duplicate: %d, %v", j, added)
	}
	if j, ok := x.Find("a", func(j int) bool { return j == 1 }); !ok || j != 1 {
		t.Fatalf("Find(a) = %d, %v; want 1", j, ok)
	}
}

// TestGrows: an Index given too little room still holds everything.
func TestGrows(t *testing.T) {
	ids := make([]string, 3_000)
	x := New(1)
	for i := range ids {
		ids[i] = fmt.Sprintf("id-%d", i)
		if _, added := x.Add(ids[i], i, sameIn(ids, ids[i])); !added {
			t.Fatalf("Add(%s) refused", ids[i])
		}
	}
	if len(x.slots) < 2*len(ids) {
		t.Fatalf("%d slots for %d ids", len(x.slots), len(ids))
	}
	for i, id := range ids {
		if j, ok := x.Find(id, sameIn(ids, id)); !ok || j != i {
			t.Fatalf("Find(%s) = %d, %v after growing", id, j, ok)
		}
	}
}

// TestReleasedTablesComeBackEmpty: a table released with ids in it is
// empty when a later Index gets it.
func TestReleasedTablesComeBackEmpty(t *testing.T) {
	ids := make([]string, 4_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("x-%d", i)
	}
	for range 50 {
		x := New(len(ids))
		for i, id := range ids {
			x.Add(id, i, sameIn(ids, id))
		}
		x.Release()
		y := New(len(ids))
		for _, slot := range y.slots {
			if slot != 0 {
				t.Fatal("a new Index's table is not empty")
			}
		}
		y.Release()
	}
}

func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("p-%d", i)
		}
		b.Run(fmt.Sprintf("index/%d", n), func(b *testing.B) {
			for b.Loop() {
				x := New(n)
				for i, id := range ids {
					x.Add(id, i, sameIn(ids, id))
				}
				x.Release()
			}
		})
		b.Run(fmt.Sprintf("map/%d", n), func(b *testing.B) {
			for b.Loop() {
				m := make(map[string]int, n)
				for i, id := range ids {
					m[id] = i
				}
			}
		})
	}
}
