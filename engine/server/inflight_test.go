package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/decision"
)

// fillLanes takes every byte of both lanes of ts's budget until the test
// ends, so nothing more is admitted.
func (ts *testServer) fillLanes(t *testing.T) {
	t.Helper()
	f := ts.inflight
	ctx := context.Background()
	if err := f.small.Acquire(ctx, f.smallCap); err != nil {
		t.Fatal(err)
	}
	if err := f.large.Acquire(ctx, f.largeCap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.small.Release(f.smallCap)
		f.large.Release(f.largeCap)
	})
}

func TestInflightLanes(t *testing.T) {
	var drained atomic.Int32
	f := newInflight(2<<20, 20*time.Millisecond, func() { drained.Add(1) })
	ctx := context.Background()

	// A big request that takes the whole large lane leaves small ones
	// unaffected, and makes the next big one wait, then fail.
	big, err := f.acquire(ctx, 2<<20, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	small, err := f.acquire(ctx, 300, 4<<20)
	if err != nil {
		t.Fatalf("a small request waited for a big one: %v", err)
	}
	if small.large || small.weight != minWeight {
		t.Errorf("small reservation = large %v weight %d, want the small lane and %d", small.large, small.weight, minWeight)
	}
	if _, err := f.acquire(ctx, SmallBody+1, 4<<20); !errors.Is(err, errOverloaded) {
		t.Errorf("second big request: %v, want errOverloaded", err)
	}
	if got := f.largeUsed.Load(); got != 2<<20 {
		t.Errorf("large lane in use = %d, want %d", got, 2<<20)
	}
	big.release()
	big.release() // idempotent
	if got := f.largeUsed.Load(); got != 0 {
		t.Errorf("large lane in use after release = %d, want 0", got)
	}
	if drained.Load() != 1 {
		t.Errorf("drained called %d times, want 1", drained.Load())
	}
	small.release()
	if got := f.smallUsed.Load(); got != 0 {
		t.Errorf("small lane in use after release = %d, want 0", got)
	}

	// A body of unknown length reserves the limit (capped at the lane) and
	// gives back what it did not use.
	unknown, err := f.acquire(ctx, -1, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !unknown.large || unknown.weight != 2<<20 {
		t.Errorf("unknown length: large %v weight %d, want the large lane and %d", unknown.large, unknown.weight, 2<<20)
	}
	unknown.shrink(1000)
	if got := f.largeUsed.Load(); got != 1000 {
		t.Errorf("after shrink, large lane in use = %d, want 1000", got)
	}
	next, err := f.acquire(ctx, 1<<20, 4<<20)
	if err != nil {
		t.Fatalf("the room given back is not usable: %v", err)
	}
	next.release()
	unknown.release()

	// A client that leaves while waiting is told so, not "overloaded".
	hold, _ := f.acquire(ctx, 2<<20, 4<<20)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.acquire(gone, 2<<20, 4<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v, want context.Canceled", err)
	}
	hold.release()
}

func TestConfigRefusesABudgetSmallerThanABody(t *testing.T) {
	err := Config{MaxBody: 4 << 20, MaxInflight: 1 << 20}.Validate()
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--max-inflight") {
		t.Errorf("Validate = %v, want ErrConfig naming --max-inflight", err)
	}
	if err := (Config{MaxBody: 16 << 20}).Validate(); err != nil {
		t.Errorf("the default budget follows --max-body: %v", err)
	}
	// Near the largest int64, --max-body times the default bodies in
	// flight (here 4, from 8 CPUs) saturates instead of wrapping around
	// below --max-body.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	if err := (Config{MaxBody: math.MaxInt64 - 1}).Validate(); err != nil {
		t.Errorf("the default budget for the largest --max-body: %v", err)
	}
}

func TestWriteDecisionMatchesEncodingJSON(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	allow := false
	action := func(i int) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, MeetingID: "m<1>", ParticipantID: "p-" + strings.Repeat("é", i%3),
			OrderID: "O&1", Jurisdiction: []string{"CN"}, Country: "CN", Reason: "inside \"the\" jurisdiction\u2028"}
	}
	many := make([]decision.Action, 1000)
	for i := range many {
		many[i] = action(i)
	}
	for name, d := range map[string]*decision.Decision{
		"no actions":  {DecisionID: "d", MeetingID: "m", Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{}, OrderIDs: []string{}},
		"nil actions": {DecisionID: "d", MeetingID: "m"},
		"one action":  {DecisionID: "d", MeetingID: "m", AllowJoin: &allow, Actions: []decision.Action{action(1)}, Bundles: map[string]string{"p": "r"}},
		"many actions, a reason quoting actions": {DecisionID: "d", MeetingID: `"actions":[]`, Actions: many,
			Refused: []decision.Refusal{{OrderID: "O", Demand: "end_meeting", Code: "affects_outside", Reason: `"actions":[]`}}},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			s := &Server{cfg: Config{MaxResponse: DefaultMaxResponse}}
			body, err := s.encodeDecision(d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body differs from json.Marshal:\n got %.400s\nwant %.400s", body, want)
			}
		})
	}
}

func TestErrorMessagesAreBounded(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"short", 5},
		{strings.Repeat("x", maxMessage), maxMessage},
		{strings.Repeat("x", 10*maxMessage), maxMessage},
		{strings.Repeat("é", maxMessage), maxMessage - 1}, // never half a character: 510 of them and the mark
	} {
		got := shorten(tc.in, maxMessage)
		if len(got) != tc.want {
			t.Errorf("shorten(%d bytes) = %d bytes, want %d", len(tc.in), len(got), tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("shorten(%d bytes) is not valid UTF-8", len(tc.in))
		}
		if len(tc.in) > maxMessage && !strings.HasSuffix(got, "…") {
			t.Errorf("a cut message is not marked")
		}
	}
}
