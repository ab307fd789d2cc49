package tests

// OPA's query parameters on the Data API, against the real binary: the
// values OPA gives a meaning mean it (metrics and provenance answered in
// OPA's shape), and what OPA would let pass without a word, or cannot be
// answered honestly (a trace or a profile of a query the answer is not),
// is refused naming the parameter, before anything is decided or
// recorded.

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

func TestDataAPIParameters(t *testing.T) {
	t.Parallel()
	decide, admin := randomToken(t), randomToken(t)
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t), "--tokens-file", writeTokensFile(t, decide, admin)}})
	post := func(path string) httpResult {
		t.Helper()
		return p.mustDo(http.MethodPost, path, decide, "application/json", []byte(`{"input": `+string(june4b)+`}`))
	}
	get := func(path string) httpResult {
		t.Helper()
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return p.mustDo(http.MethodGet, path+sep+"input="+url.QueryEscape(string(admissionCN)), decide, "", nil)
	}
	type answer struct {
		DecisionID string `json:"decision_id"`
		Provenance *struct {
			Version        string                               `json:"version"`
			BuildCommit    string                               `json:"build_commit"`
			BuildTimestamp string                               `json:"build_timestamp"`
			BuildHostname  string                               `json:"build_hostname"`
			Bundles        map[string]struct{ Revision string } `json:"bundles"`
		} `json:"provenance"`
		Metrics map[string]int64 `json:"metrics"`
		Result  struct {
			DecisionID string            `json:"decision_id"`
			Bundles    map[string]string `json:"bundles"`
		} `json:"result"`
	}
	read := func(what string, r httpResult) answer {
		t.Helper()
		var a answer
		if err := json.Unmarshal(r.body, &a); r.status != http.StatusOK || err != nil || a.DecisionID == "" || a.DecisionID != a.Result.DecisionID {
			t.Fatalf("%s: %s (%v)", what, r, err)
		}
		return a
	}

	// provenance: geoscope's build as GET /v1/status reports it, and the
	// revisions the decision was made with, in OPA's shape.
	var status struct {
		Version  string `json:"version"`
		Revision string `json:"revision"`
		Bundles  []struct {
			Name     string `json:"name"`
			Revision string `json:"revision"`
		} `json:"bundles"`
	}
	if r := p.get("/v1/status", admin); r.status != 200 || json.Unmarshal(r.body, &status) != nil || status.Version == "" || len(status.Bundles) == 0 {
		t.Fatalf("GET /v1/status: %s", r)
	}
	active := map[string]string{}
	for _, b := range status.Bundles {
		active[b.Name] = b.Revision
	}
	for what, r := range map[string]httpResult{
		"POST decision ?provenance=true":   post("/v1/data/geoscope/decision?provenance=true"),
		"GET admission ?provenance&pretty": get("/v1/data/geoscope/admission?provenance&pretty"),
	} {
		a := read(what, r)
		pv := a.Provenance
		if pv == nil {
			t.Fatalf("%s: no provenance: %s", what, r)
		}
		if pv.Version != status.Version || pv.BuildHostname != "" {
			t.Errorf("%s: version %q, build_hostname %q; want /v1/status's version %q and no host", what, pv.Version, pv.BuildHostname, status.Version)
		}
		if pv.BuildCommit != status.Revision && pv.BuildCommit != status.Revision+"-dirty" || status.Revision == "" && pv.BuildCommit != "" {
			t.Errorf("%s: build_commit %q; /v1/status's revision is %q", what, pv.BuildCommit, status.Revision)
		}
		if _, err := time.Parse(time.RFC3339, pv.BuildTimestamp); status.Revision != "" && err != nil {
			t.Errorf("%s: build_timestamp %q is not the commit's time: %v", what, pv.BuildTimestamp, err)
		}
		revisions := map[string]string{}
		for name, b := range pv.Bundles {
			revisions[name] = b.Revision
		}
		if !maps.Equal(revisions, active) || !maps.Equal(revisions, a.Result.Bundles) {
			t.Errorf("%s: bundles %v; active %v, the decision's %v", what, revisions, active, a.Result.Bundles)
		}
		if a.Metrics != nil {
			t.Errorf("%s: metrics answered unasked: %v", what, a.Metrics)
		}
	}

	// metrics: the request's timers, without a decision log.
	for what, r := range map[string]httpResult{
		"POST decision ?metrics=true": post("/v1/data/geoscope/decision?metrics=true"),
		"GET admission ?metrics":      get("/v1/data/geoscope/admission?metrics"),
	} {
		a := read(what, r)
		if a.Metrics["timer_server_handler_ns"] <= 0 || a.Metrics["timer_rego_input_parse_ns"] <= 0 || a.Metrics["timer_geoscope_record_ns"] <= 0 || a.Provenance != nil {
			t.Errorf("%s: metrics %v, provenance %v; want the request's timers alone", what, a.Metrics, a.Provenance)
		}
		for key := range a.Metrics {
			if !strings.HasPrefix(key, "timer_") || !strings.HasSuffix(key, "_ns") {
				t.Errorf("%s: %s is not a timer in ns", what, key)
			}
		}
	}

	// What OPA reads as "no" is no.
	for _, q := range []string{"metrics=false", "provenance=FALSE", "pretty=false", "explain=off", "instrument=false", "strict-builtin-errors=true", "unknown=1"} {
		if a := read(q, post("/v1/data/geoscope/decision?"+q)); a.Metrics != nil || a.Provenance != nil {
			t.Errorf("?%s: answered metrics %v, provenance %v", q, a.Metrics, a.Provenance)
		}
	}

	// Refused, naming the parameter, before anything is decided: nothing
	// is recorded.
	entries := func() int {
		r := p.get("/v1/ledger?limit=1000", admin)
		var page struct {
			Entries []json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal(r.body, &page); r.status != 200 || err != nil {
			t.Fatalf("GET /v1/ledger: %s (%v)", r, err)
		}
		return len(page.Entries)
	}
	before := entries()
	for _, c := range []struct{ query, field string }{
		{"metrics=maybe", "metrics"},
		{"metrics=1", "metrics"},
		{"metrics=true&metrics=false", "metrics"},
		{"metrics&metrics", "metrics"},
		{"provenance=1", "provenance"},
		{"provenance=yes", "provenance"},
		{"pretty=1", "pretty"},
		{"explain=full", "explain"},
		{"explain=notes", "explain"},
		{"explain=fails", "explain"},
		{"explain=debug", "explain"},
		{"explain=verbose", "explain"},
		{"explain", "explain"},
		{"explain=off&explain=full", "explain"},
		{"instrument=true", "instrument"},
		{"instrument", "instrument"},
		{"metrics=true&instrument=TRUE", "instrument"},
		{"metrics=true;pretty", "query"},
	} {
		for _, r := range []httpResult{post("/v1/data/geoscope/decision?" + c.query), get("/v1/data/geoscope/admission?" + c.query)} {
			wantDataError(t, "?"+c.query, r, 400, "invalid_parameter", "invalid_input", c.field)
		}
	}
	if n := entries(); n != before {
		t.Errorf("%d entries recorded for requests refused for their parameters", n-before)
	}
	// The explanation says why a trace is not given, and what to use.
	var e dataError
	if r := post("/v1/data/geoscope/decision?explain=full"); json.Unmarshal(r.body, &e) != nil || !strings.Contains(e.Message, "opa eval --explain") {
		t.Errorf("explain=full: %s; want the message to point to opa eval --explain", r)
	}
	if r := post("/v1/data/geoscope/decision"); r.status != http.StatusOK {
		t.Errorf("after the refusals: %s", r)
	}
}
