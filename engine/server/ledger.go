package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/ledger"
)

// ledgerEntry is GET /v1/ledger/{decision_id}: the entry with a statement
// of reasons for each action.
type ledgerEntry struct {
	*ledger.Entry
	Statements []ledger.Statement `json:"statements"`
}

func (s *Server) ledgerGet(c *gin.Context) {
	if !s.ledgerOn(c) {
		return
	}
	e, err := s.ledger.Get(c.Request.Context(), c.Param("decision_id"))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		abort(c, http.StatusNotFound, apiError{Code: apierror.NotFound, Message: err.Error(), Field: "decision_id"})
	case err != nil:
		s.abortWith(c, err)
	default:
		c.JSON(http.StatusOK, ledgerEntry{Entry: e, Statements: e.Statements()})
	}
}

func (s *Server) ledgerList(c *gin.Context) {
	if !s.ledgerOn(c) {
		return
	}
	q, fe := ledgerQuery(c)
	if fe != nil {
		abort(c, http.StatusBadRequest, *fe)
		return
	}
	page, err := s.ledger.List(c.Request.Context(), q)
	switch {
	case errors.Is(err, ledger.ErrBadCursor):
		abort(c, http.StatusBadRequest, apiError{Code: apierror.InvalidInput, Message: "the cursor is not one this server issued", Field: "cursor"})
	case err != nil:
		s.abortWith(c, err)
	default:
		c.JSON(http.StatusOK, page)
	}
}

func (s *Server) ledgerOn(c *gin.Context) bool {
	if s.ledger == nil {
		abort(c, http.StatusNotFound, apiError{Code: apierror.NotFound, Message: "the ledger is off on this server"})
		return false
	}
	return true
}

// ledgerQuery reads since, until (RFC 3339 or YYYY-MM-DD), order,
// authority, limit and cursor.
func ledgerQuery(c *gin.Context) (ledger.Query, *apiError) {
	var q ledger.Query
	var bad string
	var err error
	if q.Since, q.Until, bad, err = ledger.ParseBounds(c.Query("since"), c.Query("until")); err != nil {
		return q, &apiError{Code: apierror.InvalidInput, Message: bad + ": " + err.Error(), Field: bad}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, &apiError{Code: apierror.InvalidInput, Message: "until: the period is empty: since must be before until", Field: "until"}
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ledger.MaxLimit {
			return q, &apiError{Code: apierror.InvalidInput, Message: "limit: want an integer from 1 to " + strconv.Itoa(ledger.MaxLimit), Field: "limit"}
		}
		q.Limit = n
	}
	q.Order, q.Authority, q.Cursor = c.Query("order"), c.Query("authority"), c.Query("cursor")
	return q, nil
}
