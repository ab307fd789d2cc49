package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReportServer checks GET /report and GET /v1/report of the real
// binary: authentication (admin, or open with --public-report), the
// period parameters, and the ledger being off.
func TestReportServer(t *testing.T) {
	dir := t.TempDir()
	rptSeed(t, dir)
	decide, admin := "decide-"+t.Name(), "admin-"+t.Name()
	tokens := writeTokensFile(t, decide, admin)
	const q = "?since=2026-01-01&until=2026-07-01"

	s := rptServe(t, dir, "--tokens-file", tokens)
	for _, path := range []string{"/report" + q, "/v1/report" + q} {
		if r := s.get(path, ""); r.status != http.StatusUnauthorized {
			t.Errorf("%s without a token: %s", path, r)
		}
		if r := s.get(path, decide); r.status != http.StatusForbidden {
			t.Errorf("%s with a decide token: %s", path, r)
		}
	}
	r := s.get("/v1/report"+q, admin)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("/v1/report: %s", r)
	}
	rptCheckFigures(t, r.body)

	r = s.get("/report"+q, admin)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("/report: %d %s", r.status, r.header.Get("Content-Type"))
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("/report Content-Security-Policy %q", csp)
	}
	// Following the page's links to DB-IP and Creative Commons tells them
	// nothing of the server the report came from.
	if rp := r.header.Get("Referrer-Policy"); rp != "no-referrer" || !strings.Contains(string(r.body), `<meta name="referrer" content="no-referrer">`) {
		t.Errorf("/report Referrer-Policy %q, want no-referrer, in the header and the page", rp)
	}
	page := string(r.body)
	for _, want := range []string{`id="outside-affected-value">0<`, `data-figure="remove_participant" data-authority="(all)">5&#43;<`, `value="2026-01-01"`, `value="2026-07-01"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/report lacks %q", want)
		}
	}

	// Bad periods name the parameter.
	for _, tc := range []struct{ query, field string }{
		{"?since=yesterday", "since"},
		{"?until=2026-02-30", "until"},
		{"?since=2026-07-01&until=2026-01-01", "until"},
		{"?since=2999-01-01", "since"},
	} {
		for _, path := range []string{"/report", "/v1/report"} {
			r := s.get(path+tc.query, admin)
			var e struct{ Code, Field, Message string }
			if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusBadRequest || e.Code != "invalid_input" || e.Field != tc.field {
				t.Errorf("%s%s: %s; want 400 invalid_input naming %s", path, tc.query, r, tc.field)
			}
		}
	}

	// Without a period: the year to date.
	r = s.get("/v1/report", admin)
	var p struct {
		Period struct{ Since, Until time.Time } `json:"period"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != http.StatusOK {
		t.Fatalf("/v1/report without a period: %s", r)
	}
	now := time.Now().UTC()
	if p.Period.Since != time.Date(now.Year(), 1, 1, 0, 0, 0, 0, time.UTC) || !p.Period.Until.After(now) || p.Period.Until.Sub(now) > 24*time.Hour {
		t.Errorf("default period %v .. %v, want the year to date", p.Period.Since, p.Period.Until)
	}
	rptStop(t, s)

	// --public-report opens both, and only them. The ledger's head is in
	// the reports admins ask for, not in public ones: it changes with
	// every recorded decision.
	s = rptServe(t, dir, "--tokens-file", tokens, "--public-report")
	for _, path := range []string{"/report" + q, "/v1/report" + q} {
		r := s.get(path, "")
		if r.status != http.StatusOK {
			t.Errorf("%s without a token, --public-report: %s", path, r)
		}
		if strings.Contains(string(r.body), "ledger_head") || strings.Contains(string(r.body), "ledger-head") {
			t.Errorf("%s without a token, --public-report, shows the ledger head", path)
		}
		if r := s.get(path, admin); !strings.Contains(string(r.body), "ledger_head") && !strings.Contains(string(r.body), `id="ledger-head"`) {
			t.Errorf("%s with an admin token, --public-report, lacks the ledger head", path)
		}
	}
	if r := s.get("/v1/ledger", ""); r.status != http.StatusUnauthorized {
		t.Errorf("/v1/ledger without a token, --public-report: %s", r)
	}
	// A public report covers whole days that have ended: bounds to the
	// second, or a period into today, would let two reports a moment
	// apart single out one decision. Without a period: the year up to
	// the start of today. An admin token may ask for any period.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for _, tc := range []struct{ query, field string }{
		{"?since=2026-01-01T00:00:01Z&until=2026-07-01", "since"},
		{"?since=2026-01-01&until=2026-07-01T12:00:00Z", "until"},
		{"?until=" + today.AddDate(0, 0, 1).Format(time.DateOnly), "until"},
	} {
		var e struct{ Code, Field string }
		r := s.get("/v1/report"+tc.query, "")
		if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusBadRequest || e.Field != tc.field {
			t.Errorf("public %s: %s; want 400 naming %s", tc.query, r, tc.field)
		}
		if r := s.get("/v1/report"+tc.query, admin); r.status != http.StatusOK {
			t.Errorf("public %s with an admin token: %s", tc.query, r)
		}
	}
	// A date before the ledger's range is still a date: the first whole
	// day the ledger can compare.
	r = s.get("/v1/report?since=0001-01-01&until=2026-07-01", "")
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != http.StatusOK || !p.Period.Since.Equal(time.Date(1677, 9, 22, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("public ?since=0001-01-01: %s; want the period from 1677-09-22", r)
	}
	r = s.get("/v1/report", "")
	p.Period.Since, p.Period.Until = time.Time{}, time.Time{}
	if err := json.Unmarshal(r.body, &p); err != nil || r.status != http.StatusOK {
		t.Fatalf("public /v1/report without a period: %s", r)
	}
	if yesterday := today.Add(-time.Nanosecond); !p.Period.Until.Equal(today) || !p.Period.Since.Equal(time.Date(yesterday.Year(), 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("public default period %v .. %v, want the year to the start of today", p.Period.Since, p.Period.Until)
	}
	// The threshold cannot be lowered from a request: the parameter is
	// refused, like any the endpoint does not take.
	r = s.get("/v1/report"+q+"&min_count=1", "")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"min_count"`) || strings.Contains(string(r.body), `"deny_join"`) {
		t.Errorf("min_count=1: %s; want 400 naming min_count, and no report", r)
	}
	rptStop(t, s)

	// No ledger, no report.
	s = rptServe(t, dir, "--ledger", "off")
	for _, path := range []string{"/report", "/v1/report"} {
		r := s.get(path, "")
		if r.status != http.StatusNotFound || !strings.Contains(string(r.body), "the ledger is off") {
			t.Errorf("%s with --ledger off: %s", path, r)
		}
	}
}
