package policy

import (
	"errors"
	"strings"
	"testing"

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
