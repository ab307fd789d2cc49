package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

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
		abortWith(c, err)
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
		abortWith(c, err)
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
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		v := c.Query(p.name)
		if v == "" {
			continue
		}
		t, err := ParseTime(v)
		if err != nil {
			return q, &apiError{Code: apierror.InvalidInput, Message: p.name + ": " + err.Error(), Field: p.name}
		}
		*p.dst = t
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

// ParseTime accepts RFC 3339 timestamps and YYYY-MM-DD dates (midnight UTC).
func ParseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time or a YYYY-MM-DD date, got " + strconv.Quote(v))
}
