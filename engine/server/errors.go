package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/policy"
)

// statusClientClosedRequest is logged (never received) for requests the
// client abandoned, following the common 499 convention.
const statusClientClosedRequest = 499

// apiError is the body of every error response.
type apiError = apierror.Body

func abort(c *gin.Context, status int, e apiError) {
	c.Set(ctxErrorCode, e.Code)
	e.Message = input.Shorten(e.Message, maxMessage)
	e.Field = input.Shorten(e.Field, maxMessage)
	if c.GetBool(ctxOPAErrors) {
		c.AbortWithStatusJSON(status, opaErrorOf(e))
		return
	}
	c.AbortWithStatusJSON(status, e)
}

// maxMessage bounds an error message. Messages quote at most a short part
// of a bad value where they are made; this keeps any error answer small
// whatever produced it (a policy's evaluation error, a driver's).
const maxMessage = 1024

// abortWith maps a pipeline error to its response. Only faults of the
// server itself are 5xx; client mistakes are 4xx and name the field.
func (s *Server) abortWith(c *gin.Context, err error) {
	var fe *input.FieldError
	switch {
	case errors.Is(err, input.ErrTooLarge):
		errors.As(err, &fe)
		abort(c, http.StatusRequestEntityTooLarge, apiError{Code: apierror.TooLarge, Message: err.Error(), Field: fieldOf(fe)})
	case errors.Is(err, input.ErrInvalid):
		errors.As(err, &fe)
		abort(c, http.StatusBadRequest, apiError{Code: apierror.InvalidInput, Message: err.Error(), Field: fieldOf(fe)})
	case errors.Is(c.Request.Context().Err(), context.Canceled):
		// The client went away; nobody reads this answer, but logs and
		// metrics must not count it as a server failure.
		abort(c, statusClientClosedRequest, apiError{Code: apierror.ClientClosed, Message: "the client closed the request before it was answered"})
	case errors.Is(err, engine.ErrNotReady):
		c.Header("Retry-After", "1")
		abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.NotReady, Message: "no decision can be made yet: the policy, registry or GeoIP database is not loaded"})
	case errors.Is(err, ledger.ErrUnavailable) && c.Request.Method == http.MethodGet:
		abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.LedgerUnavailable, Message: "the ledger cannot be read now; try again later"})
	// No Retry-After with ledger_unavailable or eval_timeout, unlike
	// not_ready and overloaded: the entry of a decision that was not
	// answered may still commit, and an evaluation that ran out of time
	// adds load when repeated, so neither is an invitation to send the
	// same request again (engine/client does not retry them either).
	case errors.Is(err, ledger.ErrUnavailable):
		abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.LedgerUnavailable, Message: "the decision could not be recorded, so it is not answered; apply no enforcement"})
	case errors.Is(err, policy.ErrTimeout):
		// The deadline and the flag that sets it: the policy's author,
		// reading this at the client, can tell a slow policy from a
		// deadline set too short.
		abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.EvalTimeout,
			Message: fmt.Sprintf("the policy did not decide within the evaluation deadline (%s, the server's --eval-timeout)", s.cfg.EvalTimeout)})
	case errors.Is(err, policy.ErrEvaluation):
		abort(c, http.StatusInternalServerError, apiError{Code: apierror.PolicyError, Message: err.Error()})
	default:
		id := s.internalError(c, err)
		abort(c, http.StatusInternalServerError, apiError{Code: apierror.Internal, Message: "internal error", ErrorID: id})
	}
}

func fieldOf(fe *input.FieldError) string {
	if fe == nil {
		return ""
	}
	return fe.Field
}
