package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

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
// An answer over MaxResponse is refused (413 too_large): the Go client
// refuses bodies over 64 MiB, and memory must stay bounded whatever the
// policy returns. It is encoded before the decision is recorded (see
// answerCheck), so a refused answer leaves nothing in the ledger: the
// meeting server enforces nothing and sends the roster in parts.
func (s *Server) encodeDecision(d *decision.Decision) ([]byte, error) {
	var body []byte
	var err error
	if len(d.Actions) == 0 {
		body, err = json.Marshal(d)
		if err == nil && int64(len(body)) > s.cfg.MaxResponse {
			err = jsonarray.ErrTooLarge
		}
	} else {
		shell := *d
		shell.Actions = []decision.Action{}
		body, err = jsonarray.Encode(&shell, "actions", d.Actions, s.cfg.MaxResponse)
	}
	switch {
	case errors.Is(err, jsonarray.ErrTooLarge) && len(d.Actions) >= len(d.GuardBlocked)+len(d.Refused):
		return nil, input.TooLarge("meeting.participants", "the answer (%d actions) exceeds the response limit of %s; apply no enforcement and send the roster in parts",
			len(d.Actions), bytesText(s.cfg.MaxResponse))
	case errors.Is(err, jsonarray.ErrTooLarge):
		// Mostly what the guard blocked or the policy refused: the policy's
		// doing, not the roster's, so a policy error (500, logged as an
		// error) and not the client's 413.
		return nil, fmt.Errorf("%w: the answer (%d actions, %d blocked by the guard, %d refusals) exceeds the response limit of %s; apply no enforcement: the policy returns more than an answer can hold",
			policy.ErrEvaluation, len(d.Actions), len(d.GuardBlocked), len(d.Refused), bytesText(s.cfg.MaxResponse))
	case err != nil:
		return nil, fmt.Errorf("encoding the decision: %w", err)
	}
	return body, nil
}

// answerKey holds, in a decision's context, where answerCheck leaves the
// encoded answer.
type answerKey struct{}

type encodedAnswer struct{ body []byte }

// withAnswer asks answerCheck to encode the decision decided under ctx.
func withAnswer(ctx context.Context) (context.Context, *encodedAnswer) {
	a := &encodedAnswer{}
	return context.WithValue(ctx, answerKey{}, a), a
}

// answerCheck encodes a decision before it is recorded, for the endpoints
// that answer one (see withAnswer): an answer over MaxResponse fails the
// request and nothing is recorded.
func (s *Server) answerCheck(ctx context.Context, d *decision.Decision) error {
	a, _ := ctx.Value(answerKey{}).(*encodedAnswer)
	if a == nil {
		return nil
	}
	body, err := s.encodeDecision(d)
	a.body = body
	return err
}

// writeDecision answers a decision encoded by answerCheck.
func (s *Server) writeDecision(c *gin.Context, a *encodedAnswer) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", a.body)
}
