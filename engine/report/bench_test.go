package report

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkBuildManyCells builds a report of two authorities with
// participants removed in 150 countries each, 1 to 8 per country: about
// 2,000 entries, and some 1,000 cells of which many are hidden, so that
// the withholding (protect.go) has sums of 150 members to bound.
func BenchmarkBuildManyCells(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := &ledgerOf{}
	for _, order := range []string{"CN-2026-0601", "RU-2026-0001"} {
		for c := range 150 {
			country := fmt.Sprintf("%c%c", 'A'+c/26, 'A'+c%26)
			for range 1 + rng.IntN(8) {
				s.add(newRec(s.id(), s.at(), "m", "acct", order).remove(order, country, "p"))
			}
		}
	}
	l := openFixture(b, s.out)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Build(context.Background(), l, fixturePeriod, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
