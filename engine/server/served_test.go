package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/geoscope/geoscope/engine"
)

// loggedRecord is what a decision log was handed, read when it was.
type loggedRecord struct {
	decisionID string
	reqID      uint64
	metrics    map[string]any
	failed     bool
}

// recordLog collects what the engine hands its decision log.
type recordLog struct {
	mu      sync.Mutex
	records []loggedRecord
}

func (l *recordLog) log(_ context.Context, r *engine.Record) {
	rec := loggedRecord{decisionID: r.Decision.DecisionID, reqID: r.ReqID, failed: r.Err != nil}
	if r.Metrics != nil {
		rec.metrics = r.Metrics.All()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, rec)
}

func (l *recordLog) all() []loggedRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loggedRecord(nil), l.records...)
}

// reqIDs maps each decision id in the access log to the req_id its line
// gives.
func (ts *testServer) reqIDs(t *testing.T) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(ts.logs.String()))
	for sc.Scan() {
		var line struct {
			Msg        string `json:"msg"`
			ReqID      uint64 `json:"req_id"`
			DecisionID string `json:"decision_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "request" && line.DecisionID != "" {
			out[line.DecisionID] = line.ReqID
		}
	}
	return out
}

// A decision's event carries, as OPA's events do, the request's number
// (req_id, the one its access-log line gives: every request received is
// numbered, in order) and its timers (metrics): the handler's, the
// input's decoding, each stage's, and the policy's evaluation when the
// policy was evaluated. Over a real connection, with the real policy.
func TestDecisionLogEventsAreNumberedAndTimed(t *testing.T) {
	logged := &recordLog{}
	ts := newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithDecisionLog(logged.log)}})
	base := "http://" + serveLoopback(t, ts.Server)
	send := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	untargeted := `{"meeting": {"id": "weekly", "host": {"account_id": "a", "account_country": "DE"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]}}`
	send(http.MethodGet, "/health", "")
	send(http.MethodPost, "/v1/decisions", decisionBody)
	send(http.MethodGet, "/nope", "")
	send(http.MethodGet, DataDecisionPath+"?input="+url.QueryEscape(decisionBody), "")
	send(http.MethodPost, DataAdmissionPath, `{"input": `+admissionBody+`}`)
	send(http.MethodPost, "/v1/decisions", untargeted)

	records := logged.all()
	if len(records) != 4 {
		t.Fatalf("%d decisions logged, want 4: %+v", len(records), records)
	}
	lines := ts.reqIDs(t)
	var prev uint64
	for i, r := range records {
		if r.reqID == 0 || r.reqID != lines[r.decisionID] || r.reqID <= prev {
			t.Errorf("decision %d: req_id %d, its access-log line %d, the one before %d: want the line's, in order", i, r.reqID, lines[r.decisionID], prev)
		}
		prev = r.reqID
		timer := func(name string) int64 { v, _ := r.metrics["timer_"+name+"_ns"].(int64); return v }
		total := timer("server_handler")
		var stages int64
		for _, name := range []string{"rego_input_parse", "geoscope_locate", "geoscope_guard"} {
			if timer(name) <= 0 {
				t.Errorf("decision %d: timer_%s_ns missing from %v", i, name, r.metrics)
			}
			stages += timer(name)
		}
		_, evaluated := r.metrics["timer_rego_query_eval_ns"]
		if want := i < 3; evaluated != want {
			t.Errorf("decision %d: timer_rego_query_eval_ns given %v, want %v (the policy is evaluated only for a targeted meeting): %v", i, evaluated, want, r.metrics)
		}
		stages += timer("rego_query_eval")
		if total < stages {
			t.Errorf("decision %d: the handler's %d ns are less than its stages' %d ns: %v", i, total, stages, r.metrics)
		}
		for name := range r.metrics {
			if !strings.HasPrefix(name, "timer_") {
				t.Errorf("decision %d: metric %s is not one of the request's timers", i, name)
			}
		}
	}
	// Requests without a decision are numbered too: /health came first,
	// and /nope between the second and the third decision.
	if records[0].reqID != 2 || records[1].reqID != 4 {
		t.Errorf("req_ids %d, %d; want 2 and 4 (after /health and /nope)", records[0].reqID, records[1].reqID)
	}
}

// A failed evaluation's event carries them too; and a decision log that
// takes no decisions now (an OPA configuration without decision_logs)
// has the server gather neither.
func TestDecisionLogEventsOfFailuresAndOfNoLog(t *testing.T) {
	logged := &recordLog{}
	broken := newTestServer(t, serverSetup{
		bundles:    []string{writeBundle(t, map[string]string{"p.rego": brokenRego, ".manifest": manifest}), registryBundle},
		engineOpts: []engine.Option{engine.WithDecisionLog(logged.log)},
	})
	if r := broken.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody}); r.status != 500 {
		t.Fatalf("a broken policy answered %s", r)
	}
	off := newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithDecisionLog(logged.log), engine.WithDecisionLogEnabled(func() bool { return false })}})
	if r := off.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody}); r.status != 200 {
		t.Fatalf("%s", r)
	}
	records := logged.all()
	if len(records) != 2 {
		t.Fatalf("%d records logged, want 2", len(records))
	}
	if f := records[0]; !f.failed || f.reqID != 1 || f.metrics["timer_rego_query_eval_ns"] == nil || f.metrics["timer_server_handler_ns"] == nil {
		t.Errorf("the failed evaluation's record: %+v; want req_id 1, the evaluation's and the handler's timers", f)
	}
	if r := records[1]; r.reqID != 0 || r.metrics != nil {
		t.Errorf("with the decision log taking nothing: %+v, want no req_id or metrics gathered", r)
	}
}

// ?metrics answers the request's timers, as OPA's server does: the ones
// its decision-log event carries, the same values, when decisions are
// logged; gathered for that request alone when they are not. Over a real
// connection, with the real policy.
func TestDataAPIMetricsAreTheRequestsTimers(t *testing.T) {
	logged := &recordLog{}
	withLog := "http://" + serveLoopback(t, newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithDecisionLog(logged.log)}}).Server)
	withoutLog := "http://" + serveLoopback(t, newTestServer(t, serverSetup{}).Server)
	ask := func(t *testing.T, base, method, path, query, body string) (id string, metrics map[string]any) {
		t.Helper()
		var rd io.Reader
		if method == http.MethodGet {
			query += "&input=" + url.QueryEscape(body)
		} else {
			rd = strings.NewReader(`{"input": ` + body + `}`)
		}
		req, _ := http.NewRequest(method, base+path+"?"+query, rd)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer struct {
			DecisionID string         `json:"decision_id"`
			Metrics    map[string]any `json:"metrics"`
		}
		dec := json.NewDecoder(resp.Body)
		dec.UseNumber()
		if err := dec.Decode(&answer); err != nil || resp.StatusCode != http.StatusOK || answer.DecisionID == "" {
			t.Fatalf("%s %s?%s: %d (%v)", method, path, query, resp.StatusCode, err)
		}
		return answer.DecisionID, answer.Metrics
	}
	documented := []string{"timer_server_handler_ns", "timer_rego_input_parse_ns", "timer_rego_query_eval_ns",
		"timer_geoscope_locate_ns", "timer_geoscope_guard_ns", "timer_geoscope_record_ns"}
	answered := func(t *testing.T, metrics map[string]any, evaluated bool) {
		t.Helper()
		for _, name := range []string{"server_handler", "rego_input_parse", "geoscope_locate", "geoscope_guard"} {
			v, _ := metrics["timer_"+name+"_ns"].(json.Number)
			if n, err := v.Int64(); err != nil || n <= 0 {
				t.Errorf("timer_%s_ns missing from %v", name, metrics)
			}
		}
		if _, ok := metrics["timer_rego_query_eval_ns"]; ok != evaluated {
			t.Errorf("timer_rego_query_eval_ns given %v, want %v: %v", ok, evaluated, metrics)
		}
		for key := range metrics {
			if !slices.Contains(documented, key) {
				t.Errorf("%s is not one of the request's timers (openapi.json's DataMetrics)", key)
			}
		}
	}

	t.Run("decisions logged", func(t *testing.T) {
		for _, c := range []struct{ method, path, query, body string }{
			{http.MethodPost, DataDecisionPath, "metrics=true", decisionBody},
			{http.MethodGet, DataAdmissionPath, "metrics", admissionBody},
		} {
			id, metrics := ask(t, withLog, c.method, c.path, c.query, c.body)
			answered(t, metrics, true)
			i := slices.IndexFunc(logged.all(), func(r loggedRecord) bool { return r.decisionID == id })
			if i < 0 {
				t.Fatalf("%s %s: decision %s not logged", c.method, c.path, id)
			}
			event := logged.all()[i].metrics
			if len(event) != len(metrics) {
				t.Errorf("%s %s: answered %v, the event has %v", c.method, c.path, metrics, event)
			}
			for key, v := range event {
				if got, _ := metrics[key].(json.Number); got.String() != strconv.FormatInt(v.(int64), 10) {
					t.Errorf("%s %s: %s answered %v, the event has %v", c.method, c.path, key, got, v)
				}
			}
		}
	})
	t.Run("no decision log", func(t *testing.T) {
		_, metrics := ask(t, withoutLog, http.MethodPost, DataDecisionPath, "metrics=TRUE", decisionBody)
		answered(t, metrics, true)
		untargeted := `{"meeting": {"id": "weekly", "host": {"account_id": "a", "account_country": "DE"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]}}`
		_, metrics = ask(t, withoutLog, http.MethodGet, DataDecisionPath, "metrics=true", untargeted)
		answered(t, metrics, false)
		for _, query := range []string{"", "metrics=false", "pretty"} {
			if _, metrics := ask(t, withoutLog, http.MethodPost, DataDecisionPath, query, decisionBody); metrics != nil {
				t.Errorf("?%s: metrics %v answered unasked", query, metrics)
			}
		}
	})
}
