package policy

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/open-policy-agent/opa/v1/ast"
)

// The answer's keys are held strictly: a misspelt key would otherwise read
// as an answer without actions, in silence.
func TestOutputKeysAreStrict(t *testing.T) {
	for _, c := range []struct{ answer, want string }{
		{`{"action": [{"type": "remove_participant", "participant_id": "p1", "order_id": "o"}]}`, `the key "action"`},
		{`{"actions": [], "refused": [], "extra": 1}`, `the key "extra"`},
		{`{"actions": [], "refuse": []}`, `the key "refuse"`},
		{`{1: []}`, `the key 1`},
	} {
		_, err := decodeOutput(ast.MustParseTerm(c.answer).Value.(ast.Object), "data.geoscope.decision")
		if !errors.Is(err, ErrEvaluation) || !strings.Contains(err.Error(), "data.geoscope.decision has "+c.want) {
			t.Errorf("%s: %v; want an evaluation error naming %s", c.answer, err, c.want)
		}
	}
	for _, answer := range []string{`{}`, `{"actions": []}`, `{"refused": set()}`, `{"actions": set(), "refused": []}`} {
		if _, err := decodeOutput(ast.MustParseTerm(answer).Value.(ast.Object), "q"); err != nil {
			t.Errorf("%s: %v", answer, err)
		}
	}
}

// participant_ids is read as a set as well as an array: a set
// comprehension is how Rego gives a batch most naturally.
func TestOutputBatchAsSet(t *testing.T) {
	out, err := decodeOutput(ast.MustParseTerm(`{"actions": {{"type": "remove_participant", "participant_ids": {"p2", "p1"}, "order_id": "o"}}}`).Value.(ast.Object), "q")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range out.Actions {
		if a.Type != "remove_participant" || a.OrderID != "o" {
			t.Errorf("action %+v", a)
		}
		ids = append(ids, a.ParticipantID)
	}
	if strings.Join(ids, ",") != "p1,p2" {
		t.Errorf("participants %v, want p1,p2", ids)
	}
}

// A refusal reaches no guard: it is answered, recorded and reported as
// stated, so a malformed one is an evaluation error naming the member
// instead of a refusal with an empty code or a count of 0.
func TestOutputRefusalsAreStrict(t *testing.T) {
	for _, c := range []struct{ refusal, want string }{
		{`"withheld"`, `an entry is string, not an object`},
		{`{"order_id": "o", "demand": "end_meeting", "code": 7}`, `code must be a non-empty string (a refusal of order "o")`},
		{`{"order_id": "o", "code": ""}`, `code must be a non-empty string`},
		{`{"order_id": "o"}`, `must name order_id and code`},
		{`{"code": "withheld"}`, `must name order_id and code`},
		{`{"order_id": ["o"], "code": "withheld"}`, `order_id must be a non-empty string`},
		{`{"order_id": "o", "code": "withheld", "demand": null}`, `demand must be a string`},
		{`{"order_id": "o", "code": "withheld", "reason": {"text": "r"}}`, `reason must be a string`},
		{`{"order_id": "o", "code": "affects_outside", "affected_outside": -1}`, `affected_outside must be a count`},
		{`{"order_id": "o", "code": "affects_outside", "affected_outside": 1.5}`, `affected_outside must be a count`},
		{`{"order_id": "o", "code": "affects_outside", "affected_outside": "2"}`, `affected_outside must be a count`},
		{`{"order_id": "o", "code": "withheld", "reasons": "r"}`, `the key "reasons"`},
		// A code labels a row of the public report: no free text.
		{`{"order_id": "o", "code": "alice smith"}`, `code must be lower_snake_case`},
		{`{"order_id": "o", "code": "pid-4a2c"}`, `code must be lower_snake_case`},
		{`{"order_id": "o", "code": "Withheld"}`, `code must be lower_snake_case`},
		{`{"order_id": "o", "code": "held_"}`, `code must be lower_snake_case`},
		{`{"order_id": "o", "code": "held__x"}`, `code must be lower_snake_case`},
		{`{"order_id": "o", "code": "9held"}`, `code must be lower_snake_case`},
		{`{"order_id": "o", "code": "` + strings.Repeat("x", 65) + `"}`, `code must be lower_snake_case`},
	} {
		_, err := decodeOutput(ast.MustParseTerm(`{"refused": [`+c.refusal+`]}`).Value.(ast.Object), "data.geoscope.decision")
		if !errors.Is(err, ErrEvaluation) || !strings.Contains(err.Error(), "data.geoscope.decision.refused: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an evaluation error saying %s", c.refusal, err, c.want)
		}
	}
	out, err := decodeOutput(ast.MustParseTerm(`{"refused": {{"order_id": "o", "demand": "end_meeting", "code": "affects_outside", "reason": "r", "affected_outside": 3}, {"order_id": "p", "code": "press_review"}, {"order_id": "q", "code": "r2d2_`+strings.Repeat("x", 59)+`"}}}`).Value.(ast.Object), "q")
	if err != nil {
		t.Fatal(err)
	}
	want := []decision.Refusal{
		{OrderID: "o", Demand: "end_meeting", Code: "affects_outside", Reason: "r", AffectedOutside: 3},
		{OrderID: "p", Code: "press_review"},
		{OrderID: "q", Code: "r2d2_" + strings.Repeat("x", 59)},
	}
	if !slices.Equal(out.Refused, want) {
		t.Errorf("refusals %+v, want %+v", out.Refused, want)
	}
}
