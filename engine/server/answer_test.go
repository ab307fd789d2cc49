package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
)

// countingRecorder counts the decisions it is asked to record.
type countingRecorder struct{ n atomic.Int64 }

func (r *countingRecorder) Record(context.Context, *engine.Record) error {
	r.n.Add(1)
	return nil
}

// An answer too large to send is refused before the decision is recorded:
// the meeting server, told 413, enforces nothing, so the ledger must not
// hold the decision as if it had been carried out. This holds for the
// native endpoint and the Data API alike.
func TestAnswerTooLargeIsNotRecorded(t *testing.T) {
	rec := &countingRecorder{}
	ts := newTestServer(t, serverSetup{cfg: Config{MaxResponse: 2000}, engineOpts: []engine.Option{engine.WithRecorder(rec)}})
	var b strings.Builder
	for i := range 30 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id": "p` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `", "ip": "1.0.16.9"}`)
	}
	roster := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [` + b.String() + `]}}`
	for _, tc := range []struct{ path, body string }{
		{"/v1/decisions", roster},
		{"/v1/data/geoscope/decision", `{"input": ` + roster + `}`},
	} {
		r := ts.do(t, request{method: http.MethodPost, path: tc.path, body: tc.body})
		if r.status != http.StatusRequestEntityTooLarge || r.errorBody(t).Code != apierror.TooLarge {
			t.Errorf("%s: %d %s, want 413 too_large", tc.path, r.status, r.body)
		}
	}
	if n := rec.n.Load(); n != 0 {
		t.Errorf("%d decisions recorded although none was answered", n)
	}
	// A small roster is answered and recorded.
	small := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [{"id": "p", "ip": "1.0.16.9"}]}}`
	if r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: small}); r.status != http.StatusOK {
		t.Fatalf("small roster: %d %s", r.status, r.body)
	}
	if n := rec.n.Load(); n != 1 {
		t.Errorf("%d decisions recorded, want 1", n)
	}
}

// --max-response bounds the whole answer, not only its actions: a policy
// that returns thousands of actions the guard blocks (or refusals) must not
// get an answer of megabytes through.
func TestMaxResponseBoundsTheWholeAnswer(t *testing.T) {
	s := &Server{cfg: Config{MaxResponse: 4096}}
	junk := make([]decision.Blocked, 200)
	for i := range junk {
		junk[i] = decision.Blocked{Action: decision.Action{Type: "ban_user"}, Code: "unknown_type", Reason: "an action type geoscope does not know"}
	}
	kept := []decision.Action{{Type: decision.RemoveParticipant, ParticipantID: "p1", OrderID: "o"}}
	for _, d := range []*decision.Decision{
		{DecisionID: "blocked only", GuardBlocked: junk},
		{DecisionID: "one action and blocked ones", Actions: kept, GuardBlocked: junk},
	} {
		// The policy's doing, not the client's: a policy error, not 413.
		body, err := s.encodeDecision(d, s.cfg.MaxResponse)
		if !errors.Is(err, policy.ErrEvaluation) || errors.Is(err, input.ErrTooLarge) || !strings.Contains(err.Error(), "200 blocked by the guard") {
			t.Errorf("%s: %d bytes, err %v; want a policy error naming what the guard blocked", d.DecisionID, len(body), err)
		}
	}
	// Within the bound, the same shapes are answered.
	if body, err := s.encodeDecision(&decision.Decision{Actions: kept, GuardBlocked: junk[:2]}, s.cfg.MaxResponse); err != nil || len(body) > 4096 {
		t.Errorf("a small answer: %d bytes, %v", len(body), err)
	}
}

// A preview's actions (an order submitted for review) are not enforcement:
// geoscope_actions_total does not count them, as the report does not.
func TestPreviewActionsNotCounted(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	count := func() string {
		r := ts.do(t, request{method: http.MethodGet, path: "/metrics"})
		for line := range strings.Lines(string(r.body)) {
			if strings.HasPrefix(line, `geoscope_actions_total{type="remove_participant"}`) {
				return strings.TrimSpace(line)
			}
		}
		return ""
	}
	preview := `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p1", "ip": "1.0.16.1"}]},
		"order": {"id": "o", "authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x", "received": "2020-06-01"}}`
	r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: preview})
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"remove_participant"`) {
		t.Fatalf("preview: %d %s", r.status, r.body)
	}
	if got := count(); got != "" {
		t.Errorf("after a preview: %s, want no enforcement counted", got)
	}
	if r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody}); r.status != http.StatusOK {
		t.Fatalf("decision: %d %s", r.status, r.body)
	}
	if got := count(); !strings.HasSuffix(got, " 1") {
		t.Errorf("after an enforced removal: %q, want 1", got)
	}
}

// An answer of exactly --max-response is answered, one a byte longer is
// not: with actions or without, and for the Data API with what the client
// asked for beside the decision (?pretty).
func TestAnswerAtMaxResponse(t *testing.T) {
	kept := []decision.Action{{Type: decision.RemoveParticipant, ParticipantID: "p1", OrderID: "o"}}
	for _, d := range []*decision.Decision{
		{DecisionID: "without actions"},
		{DecisionID: "with an action", Actions: kept},
	} {
		s := &Server{cfg: Config{MaxResponse: 1 << 20}}
		body, err := s.encodeDecision(d, s.cfg.MaxResponse)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(body))
		if _, err := s.encodeDecision(d, size); err != nil {
			t.Errorf("%s: an answer of exactly the limit (%d bytes): %v", d.DecisionID, size, err)
		}
		if _, err := s.encodeDecision(d, size-1); err == nil {
			t.Errorf("%s: an answer a byte over the limit (%d bytes) is answered", d.DecisionID, size-1)
		}

		data := &dataAnswer{ask: dataAsk{pretty: true}}
		pretty := dataSize(dataEnvelope(d.DecisionID, nil, nil, body), true)
		s.cfg.MaxResponse = pretty
		if err := s.checkDataAnswer(data, d, body); err != nil {
			t.Errorf("%s: a ?pretty answer of exactly --max-response (%d bytes): %v", d.DecisionID, pretty, err)
		}
		s.cfg.MaxResponse = pretty - 1
		if err := s.checkDataAnswer(data, d, body); !errors.Is(err, input.ErrTooLarge) {
			t.Errorf("%s: a ?pretty answer a byte over --max-response: %v, want too large", d.DecisionID, err)
		}
	}
}
