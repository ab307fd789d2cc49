package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/ledger"
)

// FuzzEndpoints sends whatever a client could to the decision endpoints
// (a body) and to the ledger's and the report's (a query), on a server
// that records its decisions in a SQLite ledger, and checks what every
// client is promised: no 5xx and no panic, an error as one strict error
// body with a code, and an error answer that stays short whatever was
// sent (a bad value is quoted only by a prefix).
//
// The seed corpus runs with go test; to search further:
//
//	go test -run '^$' -fuzz FuzzEndpoints -fuzztime 5m ./engine/server/
func FuzzEndpoints(f *testing.F) {
	bodies := []string{
		`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a"}, "participants": [{"id": "p1", "ip": "1.0.16.9"}, {"id": "p2", "ip": "8.8.8.8"}]}}`,
		`{"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a"}}, "participant": {"id": "j", "ip": "1.0.16.9"}}`,
		`{"input": {"meeting": {"id": "june4-a", "host": {"account_id": "acct-us-a"}}, "participant": {"id": "j", "ip": "1.0.16.9", "attributes": {"a": [1, {"b": null}]}}}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "phone": "+85291234567", "role": "panelist"}]}, "order": {"id": "P-1", "authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m"]}, "legal_basis": "x"}}`,
	}
	for endpoint := range len(fuzzedEndpoints) {
		for _, b := range bodies {
			f.Add(uint8(endpoint), "", []byte(b))
		}
	}
	f.Add(uint8(4), "since=2026-01-01&until=2026-07-01&limit=5&order=CN-2020-0601&authority=cn.cac", []byte(nil))
	f.Add(uint8(4), "cursor=abc&limit=-1", []byte(nil))
	f.Add(uint8(5), "since=2026-01-01T00:00:00Z&until=2026-12-31", []byte(nil))
	f.Add(uint8(6), "since=2020-06-01", []byte(nil))
	// The Data API's GET: the body becomes its input parameter.
	f.Add(uint8(7), "pretty", []byte(bodies[0]))
	f.Add(uint8(8), "", []byte(bodies[1]))
	f.Add(uint8(7), "input=%7B%7D", []byte(bodies[0]))
	f.Add(uint8(8), "input=%ff;", []byte(nil))
	// OPA's query parameters, on both methods.
	f.Add(uint8(2), "metrics=true&provenance&pretty", []byte(`{"input": `+bodies[0]+`}`))
	f.Add(uint8(3), "metrics=maybe&explain=full&instrument", []byte(`{"input": `+bodies[1]+`}`))
	f.Add(uint8(8), "provenance=1&metrics&metrics", []byte(bodies[1]))
	f.Add(uint8(7), "explain=off&instrument=false&pretty=TRUE", []byte(bodies[0]))

	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: f.TempDir(), EngineVersion: "fuzz", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })
	ts := newTestServer(f, serverSetup{engineOpts: []engine.Option{engine.WithRecorder(l)}})
	ts.UseLedger(l)

	f.Fuzz(func(t *testing.T, endpoint uint8, query string, body []byte) {
		e := fuzzedEndpoints[int(endpoint)%len(fuzzedEndpoints)]
		req := request{method: e.method, path: e.path, rawQuery: query, body: string(body)}
		if e.method == http.MethodGet && isDataPath(e.path) {
			req.rawQuery, req.body = "input="+url.QueryEscape(string(body))+"&"+query, ""
		}
		if e.method == http.MethodPost {
			req.contentType = "application/json" // an empty body too
		}
		got := ts.do(t, req)
		switch {
		case got.status >= 500:
			t.Fatalf("%s %s?%s with %q: %s", e.method, e.path, query, body, got)
		case got.status >= 400:
			if apiErr := got.errorBody(t); apiErr.Code == "" {
				t.Fatalf("%s %s?%s: an error without a code: %s", e.method, e.path, query, got)
			}
			if len(got.body) > maxErrorAnswer {
				t.Fatalf("%s %s?%s: an error answer of %d bytes for a request of %d: %s", e.method, e.path, query, len(got.body), len(body)+len(query), got)
			}
		case (e.method == http.MethodPost || isDataPath(e.path)) && !json.Valid(got.body):
			t.Fatalf("%s %s: %d with a body that is not JSON: %q", e.method, e.path, got.status, got.body)
		}
	})
}

// maxErrorAnswer bounds an error answer: a message, a field path and a
// code, each quoting at most a prefix of what was sent.
const maxErrorAnswer = 2048

var fuzzedEndpoints = []struct{ method, path string }{
	{http.MethodPost, "/v1/decisions"},
	{http.MethodPost, "/v1/admission"},
	{http.MethodPost, DataDecisionPath},
	{http.MethodPost, DataAdmissionPath},
	{http.MethodGet, "/v1/ledger"},
	{http.MethodGet, "/v1/report"},
	{http.MethodGet, "/report"},
	{http.MethodGet, DataDecisionPath},
	{http.MethodGet, DataAdmissionPath},
}
