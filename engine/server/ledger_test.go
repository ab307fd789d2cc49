package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/ledger"
)

func TestLedgerQueryValidation(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ts.UseLedger(l)
	for _, tc := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"until=2026-02-30", "until"},
		{"since=2026-07-01&until=2026-01-01", "until"},
		{"since=2026-07-01&until=2026-07-01", "until"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"cursor=not-a-cursor", "cursor"},
	} {
		r := ts.do(t, request{method: http.MethodGet, path: "/v1/ledger?" + tc.query})
		if r.status != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", tc.query, r)
			continue
		}
		if e := r.errorBody(t); e.Code != apierror.InvalidInput || e.Field != tc.field {
			t.Errorf("%s: %+v, want invalid_input naming %s", tc.query, e, tc.field)
		}
	}
	if r := ts.do(t, request{method: http.MethodGet, path: "/v1/ledger?since=2026-01-01&until=2026-07-01&limit=5"}); r.status != http.StatusOK {
		t.Errorf("a valid query: %s", r)
	}
}
