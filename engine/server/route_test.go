package server

import "testing"

func TestTemplateMatches(t *testing.T) {
	for _, c := range []struct {
		template, path string
		want           bool
	}{
		{"/v1/admission", "/v1/admission", true},
		{"/v1/ledger/:decision_id", "/v1/ledger/abc", true},
		{"/v1/ledger/:decision_id", "/v1/ledger/", false},
		{"/v1/ledger/:decision_id", "/v1/ledger/abc/def", false},
		{"/v1/ledger/:decision_id", "/v1/ledger", false},
		{"/v1/ledger", "/v1/ledger/abc", false},
		{"/v1/admission", "/v1/admissions", false},
		{"/health", "/", false},
	} {
		if got := templateMatches(c.template, c.path); got != c.want {
			t.Errorf("templateMatches(%q, %q) = %v, want %v", c.template, c.path, got, c.want)
		}
	}
}
