package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/internal/jsonarray"
)

// encodeDecision encodes d as encoding/json would, in one buffer sized up
// front and with the actions encoded one at a time (see jsonarray): a
// roster of 100,000 can be answered with 40,000 actions.
//
// An answer over limit (MaxResponse, less what is sent around it) is
// refused: the Go client refuses bodies over 64 MiB, and memory must stay
// bounded whatever the policy returns. It is encoded before the decision
// is recorded (see answerCheck), so a refused answer leaves nothing in the
// ledger and nobody enforces anything. Whose doing it is decides the
// answer (tooLarge).
func (s *Server) encodeDecision(d *decision.Decision, limit int64) ([]byte, error) {
	var body []byte
	var err error
	if len(d.Actions) == 0 {
		body, err = json.Marshal(d)
		if err == nil && int64(len(body)) > limit {
			err = jsonarray.ErrTooLarge
		}
	} else {
		shell := *d
		shell.Actions = []decision.Action{}
		body, err = jsonarray.Encode(&shell, "actions", d.Actions, limit)
	}
	switch {
	case errors.Is(err, jsonarray.ErrTooLarge):
		return nil, s.tooLarge(d, limit)
	case err != nil:
		return nil, fmt.Errorf("encoding the decision: %w", err)
	}
	return body, nil
}

// tooLarge is the error of a decision whose answer exceeds within (what
// encodeDecision was given: MaxResponse, less what is sent around the
// answer), answered as whose doing it is:
//
//   - a preview's order id, when the answer would fit were that id one byte
//     long: the answer repeats it in order_ids and in every action, refusal
//     and block (they all cite the one order under evaluation), so a long
//     id under a small --max-response is what the request can change.
//     413 too_large, field order.id;
//   - the roster, when most of the answer is actions: 413 too_large, field
//     meeting.participants (the operator raises --max-response; a roster
//     sent in parts is no remedy: each part is decided as the whole
//     meeting, so a meeting-wide demand granted for a part would reach
//     the participants left out of it);
//   - a preview's refusals, when they are most of it (the policy declining
//     the demands the request submitted): 413 too_large, field order;
//   - otherwise the policy, whose blocked actions or refusals of standing
//     orders make the answer: a policy error (500, logged as an error),
//     not the client's 413.
//
// A preview is never answered with a 5xx for its own order: what it
// submitted is the client's, as a roster is.
func (s *Server) tooLarge(d *decision.Decision, within int64) error {
	// Said as the operator set it (--max-response), which the client can
	// look up, not as what is left of it inside OPA's envelope.
	limit := bytesText(s.cfg.MaxResponse)
	counts := fmt.Sprintf("%d actions, %d blocked by the guard, %d refusals", len(d.Actions), len(d.GuardBlocked), len(d.Refused))
	if id := previewID(d); id != "" && len(id) > 1 && fitsWithOrderID(d, id, "o", within) {
		return input.TooLarge("order.id", "the answer to this preview (%s) repeats the order's id (%d bytes) in each of them and in order_ids, and exceeds the response limit of %s; it was neither answered nor recorded: preview the order under a shorter id",
			counts, len(id), limit)
	}
	switch {
	case len(d.Actions) >= len(d.GuardBlocked)+len(d.Refused):
		return input.TooLarge("meeting.participants", "the answer (%d actions) exceeds the response limit of %s; apply no enforcement, and raise --max-response (and the client's limit with it) rather than send the roster in parts: each part would be decided as the whole meeting, and a meeting-wide demand granted for one would reach the participants left out",
			len(d.Actions), limit)
	case d.Preview && len(d.Refused) >= len(d.GuardBlocked):
		return input.TooLarge("order", "the answer to this preview (%s) exceeds the response limit of %s; it was neither answered nor recorded: preview fewer demands at once",
			counts, limit)
	}
	// Mostly what the guard blocked or the policy refused: the policy's
	// doing, not the client's.
	return fmt.Errorf("%w: the answer (%s) exceeds the response limit of %s; apply no enforcement: the policy returns more than an answer can hold",
		policy.ErrEvaluation, counts, limit)
}

// previewID is the id of the order a preview submitted: the one order
// under evaluation, in force or not. It is "" for other decisions.
func previewID(d *decision.Decision) string {
	switch {
	case !d.Preview:
		return ""
	case len(d.OrderIDs) == 1:
		return d.OrderIDs[0]
	case len(d.OrdersNotInForce) == 1:
		return d.OrdersNotInForce[0].OrderID
	}
	return ""
}

// fitsWithOrderID reports whether d's answer would fit within limit with
// every citation of the order id from replaced by to. It adds up the
// encoded sizes of the answer's parts as encodeDecision writes them, and
// stops as soon as they exceed the limit; it builds no answer.
func fitsWithOrderID(d *decision.Decision, from, to string, limit int64) bool {
	rename := func(id string) string {
		if id == from {
			return to
		}
		return id
	}
	shell := *d
	shell.Actions, shell.Refused, shell.GuardBlocked = []decision.Action{}, []decision.Refusal{}, []decision.Blocked{}
	shell.OrderIDs = make([]string, len(d.OrderIDs))
	for i, id := range d.OrderIDs {
		shell.OrderIDs[i] = rename(id)
	}
	shell.OrdersNotInForce = slices.Clone(d.OrdersNotInForce)
	for i := range shell.OrdersNotInForce {
		shell.OrdersNotInForce[i].OrderID = rename(shell.OrdersNotInForce[i].OrderID)
	}
	size := int64(0)
	add := func(v any, first bool) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		size += int64(len(b))
		if !first {
			size++ // the comma before it
		}
		return size <= limit
	}
	if !add(&shell, true) {
		return false
	}
	for i, a := range d.Actions {
		a.OrderID = rename(a.OrderID)
		if !add(&a, i == 0) {
			return false
		}
	}
	for i, r := range d.Refused {
		r.OrderID = rename(r.OrderID)
		if !add(&r, i == 0) {
			return false
		}
	}
	for i, b := range d.GuardBlocked {
		b.Action.OrderID = rename(b.Action.OrderID)
		if !add(&b, i == 0) {
			return false
		}
	}
	return true
}

// answerKey holds, in a decision's context, where answerCheck leaves the
// encoded answer.
type answerKey struct{}

type encodedAnswer struct {
	body []byte
	// data is set for the Data API, whose answer is the decision in
	// OPA's envelope, with what the client asked for beside it.
	data *dataAnswer
}

// withAnswer asks answerCheck to encode the decision decided under ctx.
func withAnswer(ctx context.Context) (context.Context, *encodedAnswer) {
	a := &encodedAnswer{}
	return context.WithValue(ctx, answerKey{}, a), a
}

// answerCheck encodes a decision before it is recorded, for the endpoints
// that answer one (see withAnswer): an answer over MaxResponse fails the
// request and nothing is recorded. What is bounded is what is sent: for
// the Data API, the decision in OPA's envelope, and then with what the
// client asked for beside it (checkDataAnswer).
func (s *Server) answerCheck(ctx context.Context, d *decision.Decision) error {
	a, _ := ctx.Value(answerKey{}).(*encodedAnswer)
	if a == nil {
		return nil
	}
	limit := s.cfg.MaxResponse
	if a.data != nil {
		// At least 1: no decision fits in a byte, and jsonarray takes a
		// limit of 0 or less for none.
		limit = max(limit-dataOverhead(d.DecisionID), 1)
	}
	body, err := s.encodeDecision(d, limit)
	a.body = body
	if err != nil || a.data == nil {
		return err
	}
	return s.checkDataAnswer(a.data, d, body)
}

// writeDecision answers a decision encoded by answerCheck.
func (s *Server) writeDecision(c *gin.Context, a *encodedAnswer) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", a.body)
}
