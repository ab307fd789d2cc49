package server

import (
	"bytes"
	"net/http"
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
