package tests

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// scrapeFamilies fetches /metrics and parses it with Prometheus's own
// text parser, which refuses what a Prometheus server would refuse.
func scrapeFamilies(t *testing.T, p *serverProc, token string) map[string]*dto.MetricFamily {
	t.Helper()
	r := p.get("/metrics", token)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("/metrics does not parse as Prometheus text: %v", err)
	}
	return families
}

// sampleValue is the value of the family's sample whose labels include
// want (a counter's, gauge's or untyped value; a histogram's count), and
// whether there is one.
func sampleValue(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// loadMix sends what a replica sees: decisions and admissions that are
// recorded, plain admissions, and client mistakes, among them requests
// for many distinct paths nobody serves.
func loadMix(t *testing.T, p *serverProc, distinctPaths int) {
	t.Helper()
	for i := range 5 {
		if r := p.post("/v1/decisions", "", june4b); r.status != http.StatusOK {
			t.Fatalf("decision: %s", r)
		}
		if r := p.post("/v1/admission", "", admissionCN); r.status != http.StatusOK {
			t.Fatalf("admission: %s", r)
		}
		if r := p.post("/v1/decisions", "", untargeted); r.status != http.StatusOK {
			t.Fatalf("untargeted decision: %s", r)
		}
		if r := p.post("/v1/decisions", "", []byte(`{"meeting": {}}`)); r.status != http.StatusBadRequest {
			t.Fatalf("bad decision: %s", r)
		}
		if r := p.mustDo(http.MethodDelete, "/v1/admission", "", "", nil); r.status != http.StatusMethodNotAllowed {
			t.Fatalf("DELETE: %s", r)
		}
		if r := p.get(fmt.Sprintf("/v1/ledger/no-such-%d", i), ""); r.status != http.StatusNotFound {
			t.Fatalf("an unknown ledger entry: %s", r)
		}
	}
	for i := range distinctPaths {
		if r := p.get(fmt.Sprintf("/v1/nothing-%d/%d", i, i*7), ""); r.status != http.StatusNotFound {
			t.Fatalf("an unknown path: %s", r)
		}
	}
}

// metricName is what Prometheus's conventions ask of a name: snake case,
// the application's prefix, and a base unit where there is a unit.
var metricName = regexp.MustCompile(`^geoscope_[a-z0-9_]+$`)

// TestMetricsUnderLoad scrapes a server with a SQLite ledger after a mix
// of good and bad requests, and holds what it exposes to Prometheus's
// conventions and to what an on-call needs: parseable, counters named
// _total, times in _seconds, label values drawn from a bounded set (a
// client asking for a thousand paths nobody serves adds no series), and
// the request, ledger and readiness signals there and counting.
func TestMetricsUnderLoad(t *testing.T) {
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t)}})
	loadMix(t, p, 10)
	scrapeFamilies(t, p, "") // so that /metrics has its series before the count
	before := scrapeFamilies(t, p, "")
	loadMix(t, p, 1000)
	after := scrapeFamilies(t, p, "")

	for name, f := range after {
		if !strings.HasPrefix(name, "geoscope_") {
			continue
		}
		if !metricName.MatchString(name) {
			t.Errorf("%s: not a conventional name", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no HELP", name)
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("%s: a counter whose name does not end in _total", name)
			}
		case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
			if !strings.HasSuffix(name, "_seconds") && !strings.HasSuffix(name, "_bytes") {
				t.Errorf("%s: a distribution without its unit (_seconds, _bytes) in its name", name)
			}
		default:
			if strings.HasSuffix(name, "_total") {
				t.Errorf("%s: a %s named like a counter", name, f.GetType())
			}
		}
		if strings.Contains(name, "timestamp") && !strings.HasSuffix(name, "_timestamp_seconds") {
			t.Errorf("%s: a time that is not in seconds (_timestamp_seconds)", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "nothing-") || strings.Contains(l.GetValue(), "no-such-") {
					t.Errorf("%s: label %s=%q repeats a request's path", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
	// Every family is in docs/operations.md's table of what the metrics
	// say (TestDocsNameRealMetrics holds the documents to real names).
	ops, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for name := range after {
		if strings.HasPrefix(name, "geoscope_") && !strings.Contains(string(ops), "`"+name) {
			t.Errorf("%s: not in %s, What the metrics say", name, opsDoc)
		}
	}
	// Series by family: a thousand more unknown paths make none.
	for name, f := range after {
		if !strings.HasPrefix(name, "geoscope_") {
			continue
		}
		if b := before[name]; b == nil || len(f.GetMetric()) != len(b.GetMetric()) {
			n := 0
			if b != nil {
				n = len(b.GetMetric())
			}
			t.Errorf("%s: %d series after 1,000 requests for unknown paths, %d before", name, len(f.GetMetric()), n)
		}
	}

	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		says   string
	}{
		{"geoscope_http_requests_total", map[string]string{"endpoint": "/v1/decisions", "code": "200"}, func(v float64) bool { return v == 20 }, "20 decisions answered 200"},
		{"geoscope_http_requests_total", map[string]string{"endpoint": "unmatched", "code": "404"}, func(v float64) bool { return v == 1010 }, "1,010 unknown paths under one series"},
		{"geoscope_http_request_duration_seconds", map[string]string{"endpoint": "/v1/admission", "code": "200"}, func(v float64) bool { return v == 10 }, "the 10 admissions timed"},
		{"geoscope_http_request_duration_seconds", map[string]string{"endpoint": "/v1/decisions", "code": "400"}, func(v float64) bool { return v == 10 }, "the 10 refused decisions timed"},
		{"geoscope_http_errors_total", map[string]string{"endpoint": "/v1/decisions", "error_code": "invalid_input"}, func(v float64) bool { return v == 10 }, "10 invalid_input"},
		{"geoscope_http_errors_total", map[string]string{"endpoint": "/v1/decisions", "error_code": "eval_timeout"}, func(v float64) bool { return v == 0 }, "there from 0"},
		{"geoscope_http_requests_in_flight", nil, func(v float64) bool { return v == 1 }, "the scrape itself"},
		{"geoscope_ready", nil, func(v float64) bool { return v == 1 }, "ready"},
		{"geoscope_ledger_up", nil, func(v float64) bool { return v == 1 }, "the ledger commits"},
		{"geoscope_ledger_commits_total", map[string]string{"kind": "entries"}, func(v float64) bool { return v >= 1 }, "entries committed"},
		{"geoscope_ledger_commit_failures_total", map[string]string{"kind": "entries"}, func(v float64) bool { return v == 0 }, "no failure, from 0"},
		{"geoscope_ledger_commit_duration_seconds", nil, func(v float64) bool { return v >= 1 }, "commits timed"},
		{"geoscope_ledger_backlog_entries", nil, func(v float64) bool { return v >= 0 }, "present"},
		{"geoscope_geoip_build_timestamp_seconds", nil, func(v float64) bool { return v > 0 }, "the database's age"},
		{"geoscope_bundle_activation_timestamp_seconds", map[string]string{"name": "registry"}, func(v float64) bool { return v > 0 }, "the registry's activation"},
	}
	for _, c := range checks {
		v, ok := sampleValue(after, c.name, c.labels)
		if !ok || !c.want(v) {
			t.Errorf("%s%v = %v (present %v); want %s", c.name, c.labels, v, ok, c.says)
		}
	}
}

// TestMetricsCountEvaluationTimeouts has the policy run past
// --eval-timeout: the answer's code, which a 503 alone does not tell
// from an unavailable ledger or an overload, is counted.
func TestMetricsCountEvaluationTimeouts(t *testing.T) {
	p := startServe(t, serveOpts{ready: true, args: []string{
		"--geoip-db", geotest.Standard(t), "--bundle", spinBundle, "--bundle", registryDir, "--eval-timeout", "50ms", "--ledger", "off",
	}})
	for range 3 {
		wantError(t, p.post("/v1/decisions", "", june4b), http.StatusServiceUnavailable, "eval_timeout", "")
	}
	families := scrapeFamilies(t, p, "")
	if v, _ := sampleValue(families, "geoscope_http_errors_total", map[string]string{"endpoint": "/v1/decisions", "error_code": "eval_timeout"}); v != 3 {
		t.Errorf("geoscope_http_errors_total{eval_timeout} = %v, want 3", v)
	}
	if v, _ := sampleValue(families, "geoscope_http_errors_total", map[string]string{"endpoint": "/v1/decisions", "error_code": "ledger_unavailable"}); v != 0 {
		t.Errorf("geoscope_http_errors_total{ledger_unavailable} = %v, want 0", v)
	}
	if _, ok := sampleValue(families, "geoscope_ledger_up", nil); ok {
		t.Error("geoscope_ledger_up is exposed with --ledger off")
	}
}

// TestMetricsShowTheQueue holds the large lane with a body that trickles
// in, and sends a big roster behind it: while it waits for room it shows
// in geoscope_inflight_waiting_requests, the queue that ends in 503
// overloaded, and once the lane is given back it is answered and the
// queue is empty again.
func TestMetricsShowTheQueue(t *testing.T) {
	const maxBody = 256 << 10
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t), "--ledger", "off",
		"--max-body", strconv.Itoa(maxBody), "--max-inflight", strconv.Itoa(maxBody), "--queue-timeout", "20s", "--min-body-rate", "1"}})
	waiting := func() float64 {
		v, ok := sampleValue(scrapeFamilies(t, p, ""), "geoscope_inflight_waiting_requests", map[string]string{"lane": "large"})
		if !ok {
			t.Fatal("no geoscope_inflight_waiting_requests{lane=\"large\"}")
		}
		return v
	}
	if w := waiting(); w != 0 {
		t.Fatalf("waiting at start: %v", w)
	}
	conn, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"meeting\": ", p.addr, maxBody)
	poll(t, pollTimeout, "the trickling request to hold the large lane", func() bool { return inflightBytes(t, p, "large") == maxBody })

	answered := make(chan httpResult, 1)
	go func() { answered <- p.post("/v1/decisions", "", rosterBody(3000)) }()
	poll(t, pollTimeout, "the big roster to wait for room", func() bool { return waiting() == 1 })
	conn.Close()
	select {
	case r := <-answered:
		if r.status != http.StatusOK {
			t.Errorf("the roster that waited: %s", r)
		}
	case <-time.After(pollTimeout):
		t.Fatal("the roster that waited was not answered once the lane was given back")
	}
	if w := waiting(); w != 0 {
		t.Errorf("waiting after the queue emptied: %v", w)
	}
}
