package server

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
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

// presentsAdmin reports whether the request carries a token with the
// admin scope (checked as requireScope checks it, on an endpoint that is
// open and does not require one).
func (s *Server) presentsAdmin(c *gin.Context) bool {
	return s.presents(c).has(ScopeAdmin)
}

// presents is what the request's token grants (none without a token or a
// tokens file), checked as requireScope checks it, on an endpoint that
// may be open and then does not require one.
func (s *Server) presents(c *gin.Context) grants {
	token, _ := bearerToken(c.Request)
	if s.tokens == nil || token == "" {
		return 0
	}
	return s.tokens.scopes(token)
}

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
	public := s.cfg.PublicReport && !s.presentsAdmin(c)
	p, fe := reportPeriod(c, time.Now(), public)
	if fe != nil {
		abort(c, http.StatusBadRequest, *fe)
		return
	}
	ctx := c.Request.Context()
	if err := s.reports.acquire(ctx, !public); err != nil {
		s.reportBusy(c, err)
		return
	}
	defer s.reports.release()
	r, err := report.Build(ctx, s.ledger, p, report.Options{})
	if err != nil {
		s.abortWith(c, err)
		return
	}
	if public {
		// The head changes with every recorded decision: anyone polling a
		// public report would see when decisions are recorded, which
		// reports of whole days that have ended are there to hide. The
		// reports compliance staff publish carry it (an admin token, or
		// geoscope report).
		r.LedgerHead, r.Unpinned = "", ""
	}
	// Served, the page's period form asks this endpoint for another.
	r.PeriodPicker = true
	var buf bytes.Buffer
	if err := r.Render(&buf, format); err != nil {
		s.abortWith(c, err)
		return
	}
	// The server's write timeout runs from the request's head, and a
	// report reads every entry of its period: as the ledger grows, the
	// build alone outlasts it (today's report took over 30 s after about
	// 20 minutes of recording 650 decisions a second), and the report,
	// built to the end, was never delivered, its client getting a closed
	// connection. Once built, it has the write timeout again to be
	// written; the build is bounded by the client, whose leaving ends it.
	if err := http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(s.bodyLimit + s.cfg.EvalTimeout)); err != nil {
		s.log.Debug("report: the write deadline cannot be moved; the server's write timeout stays", "error", err.Error())
	}
	c.Header("Cache-Control", "no-store")
	c.Header("X-Content-Type-Options", "nosniff")
	if format == report.FormatHTML {
		c.Header("Content-Security-Policy", reportCSP)
		// The page links to DB-IP and Creative Commons: following a
		// link tells them nothing of this server (the page says so too,
		// for a copy saved and served elsewhere).
		c.Header("Referrer-Policy", "no-referrer")
	}
	c.Data(http.StatusOK, report.ContentType(format), buf.Bytes())
}

// reportBusy answers a report request that did not get the report slot
// (reportgate.go): 503 overloaded with Retry-After, or 499 when the client
// left while it waited.
func (s *Server) reportBusy(c *gin.Context, err error) {
	if !errors.Is(err, errOverloaded) {
		abort(c, statusClientClosedRequest, apiError{Code: apierror.ClientClosed, Message: "the client closed the request before it was answered"})
		return
	}
	s.metrics.shed.WithLabelValues("report").Inc()
	c.Header("Retry-After", strconv.Itoa(reportRetryAfter))
	abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.Overloaded,
		Message: "another transparency report is being built, and reports are built one at a time: ask again after Retry-After seconds"})
}

// reportRetryAfter is the Retry-After of a report request refused while
// another report is built (seconds): a report over a large ledger takes
// seconds.
const reportRetryAfter = 5

// reportPeriod reads since and until, filling what is missing with the
// year to date.
//
// A public report (completeDays) covers whole UTC days that have ended:
// its bounds are dates, and its period ends by the start of today, which
// is also its default end. Its counts from 1 to 4 are suppressed, but
// with bounds to the nanosecond, or a period still open, two reports a
// moment apart differed by one decision: its time, what was done, and to
// how many (found by a security review). Days that have ended change only
// as late entries arrive. An admin token on a public server, and every
// request to a server that is not, may ask for any period.
func reportPeriod(c *gin.Context, now time.Time, completeDays bool) (report.Period, *apiError) {
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
	if completeDays {
		today := now.UTC().Truncate(24 * time.Hour)
		for _, b := range []struct {
			field string
			at    time.Time
		}{{"since", p.Since}, {"until", p.Until}} {
			if !b.at.IsZero() && !b.at.Equal(b.at.UTC().Truncate(24*time.Hour)) {
				return p, &apiError{Code: apierror.InvalidInput, Field: b.field,
					Message: b.field + ": a public report covers whole UTC days: give a date (YYYY-MM-DD)"}
			}
		}
		if p.Until.After(today) {
			return p, &apiError{Code: apierror.InvalidInput, Field: "until",
				Message: "until: a public report covers days that have ended: until may be " + today.Format(time.DateOnly) + " at the latest"}
		}
		// The defaults as at the last instant of yesterday: the period
		// ends with yesterday, and starts on 1 January of its year.
		now = today.Add(-time.Nanosecond)
	}
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
