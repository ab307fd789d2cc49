package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
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

// TestReportOutlastingTheWriteTimeoutIsDelivered: a report reads every
// entry of its period, so its build grows with the ledger and came to
// outlast the server's write timeout, which runs from the request's head;
// the report was built to the end and its answer lost. Served here with a
// write timeout a fifth of the time the same report takes to build, it
// is still answered whole.
func TestReportOutlastingTheWriteTimeoutIsDelivered(t *testing.T) {
	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ts := newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithRecorder(l)}})
	ts.UseLedger(l)

	// Rosters of 1,000 removals until the report takes 200 ms to build
	// (in-process, without the server's timeouts).
	var built time.Duration
	var want []byte
	for n := 0; built < 200*time.Millisecond; n++ {
		if n == 400 {
			t.Skipf("the report of %d rosters builds in %s: too fast here to outlast a write timeout the request can be read within", n, built)
		}
		for range 10 {
			if r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: string(rosterBody(1000))}); r.status != http.StatusOK {
				t.Fatalf("recording a roster: %s", r)
			}
		}
		start := time.Now()
		r := ts.do(t, request{method: http.MethodGet, path: "/v1/report"})
		built = time.Since(start)
		if r.status != http.StatusOK {
			t.Fatalf("the report in-process: %s", r)
		}
		want = r.body
	}

	t.Logf("the report builds in %s", built)
	// The write timeout is bodyLimit plus the evaluation timeout (Serve).
	ts.bodyLimit, ts.cfg.EvalTimeout = built/5, 0
	addr := serveLoopback(t, ts.Server)
	client := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := client.Get("http://" + addr + "/v1/report")
	if err != nil {
		t.Fatalf("a report built in about %s with a write timeout of %s: %v (after %s), want it answered", built, ts.bodyLimit, err, time.Since(start).Round(time.Millisecond))
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a report built in about %s with a write timeout of %s: status %d, %d bytes, %v", built, ts.bodyLimit, resp.StatusCode, len(got), err)
	}
	// The same figures as in-process (the ledger head is the same: nothing
	// was recorded in between).
	if !bytes.Equal(got, want) {
		t.Errorf("the report over HTTP differs from the one built in-process (%d and %d bytes)", len(got), len(want))
	}
}
