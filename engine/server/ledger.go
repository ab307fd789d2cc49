package server

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/input"
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
	if e := onlyParams(c, "since", "until", "order", "authority", "limit", "cursor"); e != nil {
		return q, e
	}
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

// onlyParams refuses a query parameter the endpoint does not take, or one
// given twice, naming it, as a body's unknown or repeated member is
// refused: "?LIMIT=1" or "limit=1&limit=2" must not be read as something
// else than what the client meant.
//
// A query that is not key=value pairs joined by "&" (a bad %-escape, a
// ";") is refused: Go's URL.Query drops a pair it cannot read, and
// "?order=A;limit=5" answered for every order.
func onlyParams(c *gin.Context, names ...string) *apiError {
	q, e := parseQuery(c.Request.URL.RawQuery)
	if e != nil {
		return e
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		short := input.Shorten(name, input.MaxQuoted)
		switch {
		case !slices.Contains(names, name):
			return &apiError{Code: apierror.InvalidInput, Message: strconv.Quote(short) + ": unknown query parameter (this endpoint takes " + strings.Join(names, ", ") + ")", Field: short}
		case len(q[name]) > 1:
			return &apiError{Code: apierror.InvalidInput, Message: name + ": given more than once", Field: name}
		}
	}
	return nil
}

// parseQuery reads a query string, refusing one that is not name=value
// pairs joined by "&" (a bad %-escape, a ";"), which Go's URL.Query reads
// by dropping the pair.
func parseQuery(raw string) (url.Values, *apiError) {
	q, err := url.ParseQuery(raw)
	if err == nil {
		return q, nil
	}
	msg := "the query string is malformed: "
	var esc url.EscapeError
	switch {
	case errors.As(err, &esc):
		msg += "a \"%\" must start an escape of two hex digits (" + input.Quote(string(esc)) + ")"
	case strings.Contains(err.Error(), "semicolon"):
		msg += "separate parameters with an ampersand, not a semicolon"
	default:
		msg += "it must be name=value pairs joined by ampersands"
	}
	return nil, &apiError{Code: apierror.InvalidInput, Message: msg, Field: "query"}
}
