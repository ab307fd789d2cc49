package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/decision"
)

// actionsMember is how encoding/json writes a decision with no actions.
// Inside a JSON string every quote is escaped, so these bytes can only be
// the member itself.
var actionsMember = []byte(`"actions":[]`)

// writeDecision answers d as encoding/json would, in one buffer sized up
// front and with the actions encoded one at a time. json.Marshal of a
// decision with 40,000 actions (a roster of 100,000) grows its buffer by
// doubling and then copies the result, three times the memory of the
// answer; here it is the answer's size once.
//
// An answer over MaxResponse is refused with 413 too_large: the Go client
// refuses bodies over 64 MiB, and memory must stay bounded whatever the
// policy returns. The decision has been recorded by then (the ledger keeps
// decisions that were never answered, see package ledger); the meeting
// server enforces nothing and should send the roster in parts.
func (s *Server) writeDecision(c *gin.Context, d *decision.Decision) {
	if len(d.Actions) == 0 {
		c.JSON(http.StatusOK, d)
		return
	}
	shell := *d
	shell.Actions = []decision.Action{}
	frame, err := json.Marshal(&shell)
	if err != nil {
		s.abortWith(c, fmt.Errorf("encoding the decision: %w", err))
		return
	}
	head, tail, ok := bytes.Cut(frame, actionsMember)
	if !ok {
		s.abortWith(c, fmt.Errorf("encoding the decision: no %s member", actionsMember))
		return
	}
	// Sized from the first action: they are alike.
	var buf bytes.Buffer
	buf.Grow(len(frame) + len(d.Actions)*(actionSize(&d.Actions[0])+1))
	buf.Write(head)
	buf.WriteString(`"actions":[`)
	enc := json.NewEncoder(&buf)
	for i := range d.Actions {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(&d.Actions[i]); err != nil {
			s.abortWith(c, fmt.Errorf("encoding action %d: %w", i, err))
			return
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		if int64(buf.Len()) > s.cfg.MaxResponse {
			abort(c, http.StatusRequestEntityTooLarge, apiError{Code: apierror.TooLarge, Field: "meeting.participants",
				Message: "the answer (" + strconv.Itoa(len(d.Actions)) + " actions) exceeds the response limit of " + bytesText(s.cfg.MaxResponse) +
					"; apply no enforcement and send the roster in parts"})
			return
		}
	}
	buf.WriteByte(']')
	buf.Write(tail)
	c.Data(http.StatusOK, "application/json; charset=utf-8", buf.Bytes())
}

// actionSize is the encoded size of a, plus room for longer ids.
func actionSize(a *decision.Action) int {
	raw, _ := json.Marshal(a)
	return len(raw) + len(raw)/8
}
