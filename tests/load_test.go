package tests

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/loadgen"
)

var (
	loadFlag        = flag.Bool("load", false, "run the bounded loopback load runs (make load)")
	loadDuration    = flag.Duration("load.duration", 10*time.Second, "duration of each load run")
	loadConcurrency = flag.Int("load.concurrency", 8, "concurrent clients in each load run")
	loadMax         = flag.Int("load.max", 200_000, "most requests in each load run")
)

// loadResult summarises one load run (package loadgen, shared with make
// bench-vs-opa).
type loadResult = loadgen.Result

// loadSpec describes a bounded run: it stops at Max requests or after
// Duration, whichever comes first, or when Stop is closed.
type loadSpec struct {
	URL         string
	Token       string
	Bodies      [][]byte // cycled through
	Concurrency int
	Duration    time.Duration
	Max         int
	Stop        <-chan struct{}
	// Key extracts the answer key of a 200 body; nil counts nothing.
	Key func(body []byte) string
	// Check judges an answer; nil accepts 200 only.
	Check func(status int, header http.Header, body []byte) error
}

// runLoad drives spec against a server on loopback.
func runLoad(t *testing.T, spec loadSpec) loadResult {
	t.Helper()
	var header http.Header
	if spec.Token != "" {
		header = http.Header{"Authorization": {"Bearer " + spec.Token}}
	}
	return loadgen.Run(context.Background(), loadgen.Spec{
		URL: spec.URL, Bodies: spec.Bodies, Header: header, Concurrency: spec.Concurrency,
		Requests: spec.Max, Duration: spec.Duration, Stop: spec.Stop, Key: spec.Key, Check: spec.Check,
	})
}

// loadServe starts the server of a load run (server_helpers_test.go's
// serverProc) with args, logging warnings only, and returns its base URL
// once it is ready.
func loadServe(t *testing.T, args ...string) string {
	t.Helper()
	return startServe(t, serveOpts{args: append([]string{"--log-level", "warn"}, args...), ready: true}).base
}

// Addresses in the embedded DB-IP database (checked by the dbip tests).
var (
	embeddedCN = []string{"202.96.128.86", "202.96.128.87", "202.96.134.133"}
	embeddedUS = []string{"8.8.8.8", "8.8.4.4"}
	embeddedHK = []string{"147.8.2.58"}
)

func admissionBodies(meeting, account string) [][]byte {
	var out [][]byte
	ips := slices.Concat(embeddedCN, embeddedUS, embeddedHK)
	for i := range 64 {
		out = append(out, fmt.Appendf(nil, `{"meeting": {"id": %q, "host": {"account_id": %q, "account_country": "US"}}, "participant": {"id": "p-%d", "ip": %q}}`,
			meeting, account, i, ips[i%len(ips)]))
	}
	return out
}

func rosterBody(n int) []byte {
	ips := slices.Concat(embeddedCN, embeddedUS, embeddedHK)
	ps := make([]map[string]string, n)
	for i := range ps {
		ps[i] = map[string]string{"id": fmt.Sprintf("p-%d", i), "ip": ips[i%len(ips)]}
	}
	raw, _ := json.Marshal(map[string]any{"meeting": map[string]any{
		"id": "june4-b", "host": map[string]any{"account_id": "acct-us-b", "account_country": "US"}, "participants": ps,
	}})
	return raw
}

// TestLoad is the bounded loopback load run behind `make load`. It prints
// requests/s, p50/p99 and errors; docs/benchmarks.md records the numbers.
func TestLoad(t *testing.T) {
	if !*loadFlag {
		t.Skip("load run: go test ./tests -run TestLoad -load -v (or make load)")
	}
	base := loadServe(t)
	runs := []struct {
		name   string
		path   string
		bodies [][]byte
	}{
		{"admission, meeting targeted by a standing order", "/v1/admission", admissionBodies("june4-d", "acct-us-d")},
		{"admission, meeting targeted by nobody", "/v1/admission", admissionBodies("weekly-standup", "acct-other")},
		{"decisions, roster of 1,000 participants", "/v1/decisions", [][]byte{rosterBody(1000)}},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "concurrency %d, at most %s or %d requests per run\n", *loadConcurrency, *loadDuration, *loadMax)
	for _, r := range runs {
		res := runLoad(t, loadSpec{URL: base + r.path, Bodies: r.bodies, Concurrency: *loadConcurrency, Duration: *loadDuration, Max: *loadMax})
		fmt.Fprintf(&report, "%-50s %s\n", r.name, res)
		if res.Errors > 0 {
			t.Errorf("%s: %d errors, first: %s", r.name, res.Errors, res.FirstError)
		}
	}
	t.Log("\n" + report.String())
}
