package ledger

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/registry"
)

// BenchmarkNewEntry builds the entry of a decision about 100,000
// participants, a thousand of them removed, with the reasons a policy and
// the guard write, about a hundred distinct reasons: the scrubber looks
// for every id in each of the first (scanLimit), and finds the ids the
// others hold with its matcher. Ids of plain ASCII, and ids that strings
// escape or that are not ASCII (which have escaped forms to look for).
func BenchmarkNewEntry(b *testing.B) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	for _, ids := range []struct {
		name string
		id   func(int) string
	}{
		{"ascii", func(i int) string { return fmt.Sprintf("p-%06d", i) }},
		{"non-ascii", func(i int) string { return fmt.Sprintf("参加者-%06d", i) }},
		{"escaped", func(i int) string { return fmt.Sprintf(`CORP\p%06d`, i) }},
	} {
		b.Run(ids.name, func(b *testing.B) {
			const n, removed, blocked = 100_000, 1000, 100
			r := &engine.Record{
				Decision:  &decision.Decision{DecisionID: "d-1", Time: time.Unix(0, 0), MeetingID: "m-1"},
				AccountID: "acct-host",
				Orders:    map[string]registry.Order{"CN-1": {Authority: "cn.cac"}},
			}
			for i := range n {
				r.Participants = append(r.Participants, input.Participant{ID: ids.id(i)})
			}
			for i := range removed {
				r.Decision.Actions = append(r.Decision.Actions, decision.Action{Type: decision.RemoveParticipant, ParticipantID: ids.id(i), OrderID: "CN-1",
					Country: "CN", Reason: "order CN-1: located inside the jurisdiction"})
			}
			for i := range blocked {
				id := ids.id(removed + i)
				r.Decision.GuardBlocked = append(r.Decision.GuardBlocked, decision.Blocked{Code: "outside_jurisdiction",
					Action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: id, OrderID: "CN-1"},
					Reason: fmt.Sprintf("%q is located in US, outside CN", id)})
			}
			r.Decision.Refused = []decision.Refusal{{OrderID: "CN-1", Demand: "end_meeting", Code: "affects_outside",
				Reason: fmt.Sprintf(`ending the meeting would affect %q and 99,899 others`, ids.id(n-1))}}
			b.ReportAllocs()
			for b.Loop() {
				newEntry(r, p, "bench", "r-1")
			}
		})
	}
}

// BenchmarkNewEntryReasonPerParticipant builds the entry of a decision
// that removes every participant of a roster, each with a reason of its
// own naming them, as a policy writes it with sprintf("participant %s is
// inside %s", [p.id, c]): as many distinct texts to scrub as there are
// participants, each of which may hold any of their ids.
func BenchmarkNewEntryReasonPerParticipant(b *testing.B) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	for _, n := range []int{1000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := &engine.Record{
				Decision:  &decision.Decision{DecisionID: "d-1", Time: time.Unix(0, 0), MeetingID: "m-1"},
				AccountID: "acct-host",
				Orders:    map[string]registry.Order{"CN-1": {Authority: "cn.cac"}},
			}
			for i := range n {
				id := fmt.Sprintf("p-%06d", i)
				r.Participants = append(r.Participants, input.Participant{ID: id})
				r.Decision.Actions = append(r.Decision.Actions, decision.Action{Type: decision.RemoveParticipant, ParticipantID: id, OrderID: "CN-1",
					Country: "CN", Reason: fmt.Sprintf("participant %s is inside %s", id, "CN")})
			}
			b.ReportAllocs()
			for b.Loop() {
				newEntry(r, p, "bench", "r-1")
			}
		})
	}
}

// BenchmarkScrubberMatcher weighs what scanTexts trades: building the
// scrubber's matcher over a roster's ids (build), against scrubbing one
// more distinct text by searching it for one id after another (scan) or
// with the matcher built (match). The roster is that of BenchmarkNewEntry:
// n participants, 1 % of them named by an action.
func BenchmarkScrubberMatcher(b *testing.B) {
	p := NewPseudonymizer([]byte("0123456789abcdef0123456789abcdef"))
	for _, ids := range []struct {
		name string
		id   func(int) string
	}{
		{"ascii", func(i int) string { return fmt.Sprintf("p-%06d", i) }},
		{"uuid", func(i int) string { return fmt.Sprintf("%08x-4a5b-8c6d-9e0f-%012x", i*2654435761%(1<<32), i*40503) }},
		{"escaped", func(i int) string { return fmt.Sprintf(`CORP\p%06d`, i) }},
	} {
		for _, n := range []int{1000, 100_000} {
			r := &engine.Record{Decision: &decision.Decision{MeetingID: "m-1"}, AccountID: "acct-host"}
			for i := range n {
				r.Participants = append(r.Participants, input.Participant{ID: ids.id(i)})
			}
			scrubber := func(scanAfter int) *scrubber {
				s := newScrubber(r, p)
				s.scanAfter = scanAfter
				for i := range n / 100 {
					s.participant(ids.id(i))
				}
				return s
			}
			name := fmt.Sprintf("%s/n=%d", ids.name, n)
			b.Run(name+"/build", func(b *testing.B) {
				s := scrubber(0)
				s.participantRuns()
				for b.Loop() {
					s.buildMatcher()
				}
			})
			for _, way := range []struct {
				name      string
				scanAfter int
			}{{"scan", math.MaxInt}, {"match", -1}} {
				b.Run(name+"/"+way.name, func(b *testing.B) {
					s := scrubber(way.scanAfter)
					s.participantRuns()
					s.apply("-") // builds the matcher
					i := 0
					for b.Loop() {
						s.apply(fmt.Sprintf("participant %s is inside CN", ids.id(i%n)))
						i++
					}
				})
			}
		}
	}
}
