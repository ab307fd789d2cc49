package server

import (
	"bytes"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/report"
)

// GET /report (HTML) and GET /v1/report (JSON): the transparency report of
// package report, built from the ledger for ?since=&until= (RFC 3339 or
// YYYY-MM-DD; until is exclusive). Without since and until the period is
// the year to date: from 1 January (UTC) up to the end of today (UTC).
// Given only until, since is 1 January of the year until falls in.
//
// Both need an admin token, unless --public-report opens them. The
// suppression threshold is report.DefaultMinCount and cannot be lowered
// from a request: a public report must not be asked for its small cells.

// reportSlots bounds the reports built at once: each scans the ledger for
// its whole period.
var reportSlots = make(chan struct{}, 2)

// reportCSP allows the page nothing but its own inline style and the form
// submitting to itself: no script, no external resource.
const reportCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

func (s *Server) reportHTML(c *gin.Context) { s.serveReport(c, report.FormatHTML) }

func (s *Server) reportJSON(c *gin.Context) { s.serveReport(c, report.FormatJSON) }

func (s *Server) serveReport(c *gin.Context, format string) {
	if s.ledger == nil {
		abort(c, http.StatusNotFound, apiError{Code: apierror.NotFound, Message: "the ledger is off on this server (--ledger off), so there is no record to report from"})
		return
	}
	p, fe := reportPeriod(c, time.Now())
	if fe != nil {
		abort(c, http.StatusBadRequest, *fe)
		return
	}
	ctx := c.Request.Context()
	select {
	case reportSlots <- struct{}{}:
		defer func() { <-reportSlots }()
	case <-ctx.Done():
		return
	}
	r, err := report.Build(ctx, s.ledger, p, report.Options{})
	if err != nil {
		s.abortWith(c, err)
		return
	}
	var buf bytes.Buffer
	if err := r.Render(&buf, format); err != nil {
		s.abortWith(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	if format == report.FormatHTML {
		c.Header("Content-Security-Policy", reportCSP)
	}
	c.Data(http.StatusOK, report.ContentType(format), buf.Bytes())
}

// reportPeriod reads since and until, filling what is missing with the
// year to date.
func reportPeriod(c *gin.Context, now time.Time) (report.Period, *apiError) {
	var p report.Period
	if e := onlyParams(c, "since", "until"); e != nil {
		return p, e
	}
	var bad string
	var err error
	if p.Since, p.Until, bad, err = ledger.ParseBounds(c.Query("since"), c.Query("until")); err != nil {
		return p, &apiError{Code: apierror.InvalidInput, Message: bad + ": " + err.Error(), Field: bad}
	}
	given := c.Query("until") != ""
	p = p.WithDefaults(now)
	if !p.Since.Before(p.Until) {
		field := "until"
		if !given {
			field = "since"
		}
		return p, &apiError{Code: apierror.InvalidInput, Field: field,
			Message: field + ": the period is empty: since (" + p.Since.Format(time.RFC3339) + ") must be before until (" + p.Until.Format(time.RFC3339) + ")"}
	}
	return p, nil
}
