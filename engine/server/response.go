package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
)

// actionsMember is how encoding/json writes a decision with no actions.
// Inside a JSON string every quote is escaped, so these bytes can only be
// the member itself.
var actionsMember = []byte(`"actions":[]`)

// encodeDecision encodes d as encoding/json would, in one buffer sized up
// front and with the actions encoded one at a time. json.Marshal of a
// decision with 40,000 actions (a roster of 100,000) grows its buffer by
// doubling and then copies the result, three times the memory of the
// answer; here it is the answer's size once.
//
// An answer over MaxResponse is refused (413 too_large): the Go client
// refuses bodies over 64 MiB, and memory must stay bounded whatever the
// policy returns. It is encoded before the decision is recorded (see
// answerCheck), so a refused answer leaves nothing in the ledger: the
// meeting server enforces nothing and sends the roster in parts.
func (s *Server) encodeDecision(d *decision.Decision) ([]byte, error) {
	if len(d.Actions) == 0 {
		return json.Marshal(d)
	}
	shell := *d
	shell.Actions = []decision.Action{}
	frame, err := json.Marshal(&shell)
	if err != nil {
		return nil, fmt.Errorf("encoding the decision: %w", err)
	}
	head, tail, ok := bytes.Cut(frame, actionsMember)
	if !ok {
		return nil, fmt.Errorf("encoding the decision: no %s member", actionsMember)
	}
	// Sized from the first action: they are alike.
	var buf bytes.Buffer
	buf.Grow(int(min(int64(len(frame)+len(d.Actions)*(actionSize(&d.Actions[0])+1)), s.cfg.MaxResponse+1)))
	buf.Write(head)
	buf.WriteString(`"actions":[`)
	enc := json.NewEncoder(&buf)
	for i := range d.Actions {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(&d.Actions[i]); err != nil {
			return nil, fmt.Errorf("encoding action %d: %w", i, err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		if int64(buf.Len()) > s.cfg.MaxResponse {
			return nil, input.TooLarge("meeting.participants", "the answer (%d actions) exceeds the response limit of %s; apply no enforcement and send the roster in parts",
				len(d.Actions), bytesText(s.cfg.MaxResponse))
		}
	}
	buf.WriteByte(']')
	buf.Write(tail)
	return buf.Bytes(), nil
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

// actionSize is the encoded size of a, plus room for longer ids.
func actionSize(a *decision.Action) int {
	raw, _ := json.Marshal(a)
	return len(raw) + len(raw)/8
}
