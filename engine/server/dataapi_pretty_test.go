package server

import (
	"bytes"
	"encoding/json"
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

// A policy that fails to evaluate is answered as OPA's Data API answers an
// evaluation error: 500 internal_error, geoscope's policy_error inside.
func TestDataAPIPolicyErrorIsOPAsInternalError(t *testing.T) {
	broken := newTestServer(t, serverSetup{
		bundles: []string{writeBundle(t, map[string]string{"p.rego": brokenRego, ".manifest": manifest}), registryBundle},
	})
	r := broken.do(t, request{method: http.MethodPost, path: DataDecisionPath, body: `{"input": ` + decisionBody + `}`})
	var e struct {
		Code   string `json:"code"`
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusInternalServerError || e.Code != "internal_error" || len(e.Errors) != 1 || e.Errors[0].Code != "policy_error" {
		t.Errorf("%s: want 500 internal_error with policy_error in errors[0]", r)
	}
}
