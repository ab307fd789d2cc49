package report

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/proctest"
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

// storedEntries is how many entries BenchmarkBuildStored records.
const storedEntries = 30_000

// BenchmarkBuildStored builds the report of a SQLite ledger of 30,000
// entries recorded through Ledger.Record, the mix a busy service
// stores: mostly denied admissions, then roster decisions removing 2 to
// 12 participants with the meeting-wide demands refused, a few meetings
// ended, and a third of the requests named by their client (some sent
// again). A report reads every entry of its period, so its build is
// this per entry times the entries: it reports ns and allocations per
// entry besides per build, and the CPU time per entry (the garbage
// collector's included). It logs a digest of the report as rendered in
// every format (its ledger head left out): a change to the build must
// leave it as it was.
//
//	go test -run '^$' -bench BuildStored -benchtime 5x ./engine/report/
func BenchmarkBuildStored(b *testing.B) {
	ctx := context.Background()
	cfg := ledger.Config{DataDir: b.TempDir(), EngineVersion: "test", Logger: slog.New(slog.DiscardHandler)}
	l, err := ledger.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	recordConcurrently(b, l, storedRecords(storedEntries))
	// Closed and opened again, as openFixture does: the aggregate counts
	// are flushed, and the build reads a ledger at rest.
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	l = openRecorded(b, cfg)
	r, err := Build(ctx, l, fixturePeriod, Options{})
	if err != nil {
		b.Fatal(err)
	}
	if r.Summary.Decisions.n+r.Summary.Admissions.n >= storedEntries {
		b.Fatalf("%d entries counted of %d: none was taken as sent again", r.Summary.Decisions.n+r.Summary.Admissions.n, storedEntries)
	}
	b.Logf("report digest %x", reportDigest(b, r))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := proctest.ProcessCPU()
	for b.Loop() {
		if _, err := Build(ctx, l, fixturePeriod, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N) * storedEntries
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/entry")
	b.ReportMetric(float64(proctest.ProcessCPU()-cpu)/n, "cpu-ns/entry")
}

// BenchmarkBuildPastPeriod builds the report of January from the ledger
// of BenchmarkBuildStored's half year (30,000 entries, about 5,000 of
// them in January) with 20 more orders, received in January and first
// enforced from February to June, 25 entries each. Five sixths of the
// entries come after the period: an order received in it may first be
// enforced after it, and the report must find those orders without
// reading every later entry, or the report of a past period takes the
// longer the longer the ledger grows. It reports ns per entry of the
// period.
//
//	go test -run '^$' -bench BuildPastPeriod -benchtime 5x ./engine/report/
func BenchmarkBuildPastPeriod(b *testing.B) {
	ctx := context.Background()
	cfg := ledger.Config{DataDir: b.TempDir(), EngineVersion: "test", Logger: slog.New(slog.DiscardHandler)}
	l, err := ledger.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	recs := storedRecords(storedEntries)
	recs = append(recs, firstEnforcedLater(20, 25)...)
	recordConcurrently(b, l, recs)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	l = openRecorded(b, cfg)
	january := Period{Since: fixturePeriod.Since, Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}
	r, err := Build(ctx, l, january, Options{MinCount: 1})
	if err != nil {
		b.Fatal(err)
	}
	// CN-2026-0601 (RU-2026-0001 was received in April) and the 20
	// first enforced later.
	if got := r.Totals.OrdersReceived.n; got != 21 {
		b.Fatalf("%d orders received in January, want 21", got)
	}
	inPeriod := r.Summary.Decisions.n + r.Summary.Admissions.n
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Build(ctx, l, january, Options{MinCount: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*inPeriod), "ns/entry")
}

// firstEnforcedLater are the records of orders orders received in
// January 2026 and first enforced in the months after it, each by
// perOrder entries spread over its month.
func firstEnforcedLater(orders, perOrder int) []*engine.Record {
	var out []*engine.Record
	for i := range orders {
		id := fmt.Sprintf("CN-2026-01%02d", i)
		month := time.February + time.Month(i%5)
		for j := range perOrder {
			at := time.Date(2026, month, 1+j, 12, i, 0, 0, time.UTC)
			n := i*perOrder + j
			out = append(out, withOrder(n, at, id, registry.Order{Received: "2026-01-15"}).rec)
			out[len(out)-1].Decision.DecisionID = fmt.Sprintf("00000000-0000-7000-d000-%012d", n)
		}
	}
	return out
}

// reportDigest is the SHA-256 of r rendered in every format, its ledger
// head left out (the fixture's keys and host differ from one run to the
// next).
func reportDigest(t testing.TB, r *Report) []byte {
	h := sha256.New()
	for _, format := range []string{FormatMarkdown, FormatCSV, FormatJSON, FormatHTML} {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		if r.LedgerHead != "" {
			h.Write(bytes.ReplaceAll(buf.Bytes(), []byte(r.LedgerHead), nil))
		} else {
			h.Write(buf.Bytes())
		}
	}
	return h.Sum(nil)
}

// storedRecords are n records spread over the first half of 2026, the
// same for the same n.
func storedRecords(n int) []*engine.Record {
	rng := rand.New(rand.NewPCG(5, 6))
	start, step := fixturePeriod.Since, fixturePeriod.Until.Sub(fixturePeriod.Since)/time.Duration(n+1)
	countries := []string{"CN", "CN", "CN", "US", "HK", "TW", "unknown"}
	out := make([]*engine.Record, 0, n)
	var last *engine.Record
	for i := range n {
		at := start.Add(time.Duration(i+1) * step)
		id := fmt.Sprintf("00000000-0000-7000-c000-%012d", i)
		meeting := fmt.Sprintf("m-%d", rng.IntN(2000))
		account := fmt.Sprintf("acct-%d", rng.IntN(500))
		var b *rb
		switch k := rng.IntN(100); {
		case k < 70: // a participant asking to join a targeted meeting, denied
			b = newRec(id, at, meeting, account, "CN-2026-0601").
				deny("CN-2026-0601", countries[rng.IntN(3)], fmt.Sprintf("joiner-%d", i))
		case k < 90: // a roster: the participants in CN removed, the rest refused
			b = newRec(id, at, meeting, account, "CN-2026-0601")
			for p := range 2 + rng.IntN(11) {
				b.remove("CN-2026-0601", "CN", fmt.Sprintf("%s-p%d", meeting, p))
			}
			b.refuse("CN-2026-0601", "end_meeting", "affects_outside", 1+rng.IntN(40)).
				refuse("CN-2026-0601", "suspend_account", "affects_outside", 1+rng.IntN(40))
		case k < 93: // a meeting held in CN only: ended
			b = newRec(id, at, meeting, account, "CN-2026-0601").
				wide(decision.EndMeeting, "CN-2026-0601", "", map[string]int{"CN": 2 + rng.IntN(30)})
		case k < 97: // the second authority
			b = newRec(id, at, meeting, account, "RU-2026-0001").
				remove("RU-2026-0001", countries[rng.IntN(len(countries))], fmt.Sprintf("%s-ru", meeting))
		default: // the guard blocks a policy's action outside
			b = newRec(id, at, meeting, account, "CN-2026-0601").
				block("outside_jurisdiction", decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-us", OrderID: "CN-2026-0601", Country: "US"})
		}
		switch k := rng.IntN(30); {
		case k < 2 && last != nil:
			// The request before sent again 30 s after it, and decided
			// alike: counted once.
			d := *last.Decision
			d.DecisionID, d.Time = id, last.Decision.Time.Add(30*time.Second)
			r := *last
			r.Decision = &d
			b.rec = &r
		case k < 10:
			b.rec.Request = &engine.RequestKey{ID: fmt.Sprintf("req-%d", i), Body: sha256.Sum256([]byte(id))}
		}
		if b.rec.Request != nil {
			last = b.rec
		}
		out = append(out, b.rec)
	}
	return out
}

// recordConcurrently is recordFixture's recording by 32 callers at once,
// who share commits: one by one, 30,000 durable records take minutes.
func recordConcurrently(t testing.TB, l *ledger.Ledger, recs []*engine.Record) {
	var wg sync.WaitGroup
	next := make(chan *engine.Record)
	for range 32 {
		wg.Go(func() {
			for r := range next {
				if err := l.Record(context.Background(), r); err != nil {
					t.Errorf("recording %s: %v", r.Decision.DecisionID, err)
				}
			}
		})
	}
	for _, r := range recs {
		next <- r
	}
	close(next)
	wg.Wait()
}
