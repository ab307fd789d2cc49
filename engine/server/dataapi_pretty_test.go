package server

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// ?pretty is read as OPA reads it: present without a value, or "true" in
// any case, indents the answer; any other value does not.
func TestDataAPIPrettyAsOPA(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	body := `{"input": ` + admissionBody + `}`
	for query, indented := range map[string]bool{
		"":              false,
		"?pretty":       true,
		"?pretty=":      true,
		"?pretty=true":  true,
		"?pretty=TRUE":  true,
		"?pretty=false": false,
		"?pretty=1":     false,
		"?pretty=no":    false,
		"?metrics=true": false,
	} {
		r := ts.do(t, request{method: http.MethodPost, path: DataAdmissionPath + query, body: body})
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", query, r)
		}
		if got := bytes.Contains(r.body, []byte("\n    ")); got != indented {
			t.Errorf("%q: indented %v, want %v: %s", query, got, indented, r.body)
		}
	}
}

// An error names the offending key of the envelope by its start only: the
// answer stays small whatever the client sent.
func TestDataAPIEnvelopeErrorBounded(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	key := strings.Repeat("k", 100_000)
	r := ts.do(t, request{method: http.MethodPost, path: DataDecisionPath, body: `{"` + key + `": 1}`})
	if r.status != http.StatusBadRequest {
		t.Fatalf("unknown envelope key: %s", r)
	}
	if len(r.body) > 2048 {
		t.Errorf("the error answer is %d bytes; it repeats the client's key", len(r.body))
	}
	e := r.errorBody(t)
	if !strings.HasPrefix(e.Field, "kkkk") || !strings.HasSuffix(e.Field, "…") || len(e.Field) > 128 {
		t.Errorf("field %q: want the start of the key, marked as cut", e.Field)
	}
}
