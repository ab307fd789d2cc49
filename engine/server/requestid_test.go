package server

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// An X-Request-Id given on two lines is not read as its first: a proxy or
// a log may read the other, and the id tells a request sent again from a
// new one. Every route that takes it as the request's id refuses the
// request naming it, in its own error shape; the others answer, under an
// id of their own making rather than either line.
func TestRequestIDGivenTwice(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()
	send := func(t *testing.T, method, path string, body []byte, ids ...string) response {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(method, hs.URL+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		for _, id := range ids {
			req.Header.Add("X-Request-Id", id)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return response{status: resp.StatusCode, header: resp.Header, body: raw}
	}
	wrap := func(body string) []byte { return []byte(`{"input": ` + body + `}`) }
	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, "/v1/decisions", []byte(decisionBody)},
		{http.MethodPost, "/v1/admission", []byte(admissionBody)},
		{http.MethodPost, DataDecisionPath, wrap(decisionBody)},
		{http.MethodPost, DataAdmissionPath, wrap(admissionBody)},
		{http.MethodGet, DataDecisionPath + "?input=" + url.QueryEscape(decisionBody), nil},
		{http.MethodGet, DataAdmissionPath + "?input=" + url.QueryEscape(admissionBody), nil},
	} {
		name := c.method + " " + c.path[:min(len(c.path), len(DataAdmissionPath))]
		if r := send(t, c.method, c.path, c.body, "retry-1"); r.status != http.StatusOK || r.header.Get("X-Request-Id") != "retry-1" {
			t.Errorf("%s with one X-Request-Id: %s (id %q)", name, r, r.header.Get("X-Request-Id"))
		}
		for _, ids := range [][]string{{"retry-1", "retry-2"}, {"retry-1", "retry-1"}, {"retry-1", ""}} {
			r := send(t, c.method, c.path, c.body, ids...)
			if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "invalid_input" || e.Field != "X-Request-Id" {
				t.Errorf("%s with X-Request-Id %q: %s; want 400 invalid_input naming X-Request-Id", name, ids, r)
			}
			if id := r.header.Get("X-Request-Id"); id == "" || id == ids[0] || id == ids[1] {
				t.Errorf("%s with X-Request-Id %q: answered under %q, want an id of the server's", name, ids, id)
			}
		}
	}
	r := send(t, http.MethodGet, "/health", nil, "probe-1", "probe-2")
	if id := r.header.Get("X-Request-Id"); r.status != http.StatusOK || id == "" || id == "probe-1" || id == "probe-2" {
		t.Errorf("/health with two X-Request-Id lines: %s under %q; want 200 under an id of the server's", r, id)
	}
}
