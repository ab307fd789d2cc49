package tests

// Decision logs under --config: OPA's decision-log plugin uploads events to
// a collector (here an httptest server speaking OPA's upload protocol:
// POST {service}/logs, a gzip-compressed JSON array of events). The events
// honour system.log.mask and system.log.drop as OPA does, carry the
// ledger's pseudonyms and never a raw id or address, and name every
// bundle's revision (a content digest for a bundle built without one).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/policy"
)

// logCollector receives decision-log uploads.
type logCollector struct {
	*httptest.Server
	mu     sync.Mutex
	events []map[string]any
	raw    bytes.Buffer // every upload, inflated
	bad    []string     // protocol violations
}

func newLogCollector(t *testing.T) *logCollector {
	c := &logCollector{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/logs" || r.Header.Get("Content-Encoding") != "gzip" ||
			r.Header.Get("Content-Type") != "application/json" {
			c.bad = append(c.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Encoding")+" "+r.Header.Get("Content-Type"))
			http.Error(w, "not an OPA decision-log upload", http.StatusBadRequest)
			return
		}
		zr, err := gzip.NewReader(r.Body)
		var raw []byte
		if err == nil {
			raw, err = io.ReadAll(zr)
		}
		var batch []map[string]any
		if err == nil {
			err = json.Unmarshal(raw, &batch)
		}
		if err != nil {
			c.bad = append(c.bad, "undecodable upload: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.raw.Write(raw)
		c.events = append(c.events, batch...)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(c.Close)
	return c
}

// event returns the uploaded event of a decision, or nil.
func (c *logCollector) event(id string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e["decision_id"] == id {
			return e
		}
	}
	return nil
}

// logPolicy is a bundle (root system/log) with OPA's example mask, and a
// drop rule for allowed admissions.
const logPolicy = `package system.log

mask contains "/result/actions" if input.path == "geoscope/decision"

drop if {
	input.path == "geoscope/admission"
	input.result.allow
}
`

func TestDecisionLogs(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	// The policy bundle is built without a revision.
	policies := bndPolicyBundle(t, "", &key)
	bs.set("policies.tar.gz", policies)
	bs.set("registry.tar.gz", bndRegistryBundle(t, "reg-1", bndRegistryData("ORD-LOG-1", "june4-b", "acct-us-d"), &key))
	logBundle := &bundle.Bundle{
		Manifest: bundle.Manifest{Revision: "log-1", Roots: &[]string{"system/log"}},
		Modules:  []bundle.ModuleFile{{URL: "/system/log/log.rego", Path: "/system/log/log.rego", Raw: []byte(logPolicy)}},
		Data:     map[string]any{},
	}
	bs.set("logpolicy.tar.gz", bndWrite(t, logBundle, &key))
	collector := newLogCollector(t)

	cfg := logsConfig(bs.URL, collector.URL, []string{"policies", "registry", "logpolicy"}, map[string]any{
		"service":   "logs",
		"console":   true,
		"reporting": map[string]any{"min_delay_seconds": 1, "max_delay_seconds": 1},
	})
	keyFile := lgKeyFile(t)
	srv := bndStart(t, "--config", writeTemp(t, "opa.json", cfg), "--verification-key", key.pubPath,
		"--geoip-db", geotest.Standard(t), "--ledger-key-file", keyFile, "--replica-id", "replica-7")
	st := srv.waitStatus(t, "ready", 30*time.Second, func(st bndStatus) bool { return st.Ready })
	// OPA's readiness probes: the bundles are active and OPA's plugins
	// (bundle, decision logs) report OK. The bundle plugin reports its
	// bundle OK once the activation geoscope builds its snapshot in has
	// returned, a moment after geoscope is ready: they are asked again
	// for a few seconds.
	for _, path := range []string{"/health?bundles", "/health?plugins"} {
		r := srv.request(t, http.MethodGet, path, "", "", nil)
		for deadline := time.Now().Add(5 * time.Second); r.status != http.StatusOK && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			r = srv.request(t, http.MethodGet, path, "", "", nil)
		}
		if r.status != http.StatusOK {
			t.Errorf("GET %s once ready: %s", path, r)
		}
	}

	// The policy bundle's revision is its content digest, the one the same
	// bundle gets when loaded from a file.
	b, err := bundle.NewReader(bytes.NewReader(policies)).WithSkipBundleVerification(true).Read()
	if err != nil {
		t.Fatal(err)
	}
	wantRev := policy.Revision(&b)
	if got := st.revision("policies"); got != wantRev || !strings.HasPrefix(got, "sha256:") {
		t.Errorf("/v1/status revision of the policies bundle built without one: %q, want the content digest %q", got, wantRev)
	}
	if m := srv.metrics(t); !strings.Contains(m, `geoscope_bundle_info{name="policies",revision="`+wantRev+`"} 1`) {
		t.Errorf("geoscope_bundle_info does not carry the digest:\n%s", strings.Join(bndMetric(m, "geoscope_bundle_info"), "\n"))
	}

	decide := func(path string, body []byte) map[string]any {
		t.Helper()
		r := srv.request(t, http.MethodPost, path, "", "application/json", body)
		var out map[string]any
		if err := json.Unmarshal(r.body, &out); r.status != 200 || err != nil {
			t.Fatalf("POST %s: %s", path, r)
		}
		return out
	}
	d := decide("/v1/decisions", june4b)
	if bs, _ := d["bundles"].(map[string]any); bs["policies"] != wantRev {
		t.Errorf("the decision names policies revision %v, want %s", bs["policies"], wantRev)
	}
	if acts, _ := d["actions"].([]any); len(acts) == 0 {
		t.Fatalf("the decision has no action to mask: %v", d)
	}
	denied := decide("/v1/admission", admissionCN)
	allowedBody := bytes.Replace(admissionCN, []byte("36.110.44.4"), []byte("8.8.8.8"), 1)
	allowed := decide("/v1/admission", allowedBody)
	if allowed["allow"] != true || denied["allow"] != false {
		t.Fatalf("admissions: denied %v, allowed %v", denied, allowed)
	}
	viaData := decide("/v1/data/geoscope/decision", []byte(`{"input": `+string(june4b)+`}`))
	// The Data API's GET is logged as its POST is.
	r := srv.request(t, http.MethodGet, "/v1/data/geoscope/admission?input="+url.QueryEscape(string(admissionCN)), "", "", nil)
	var viaGet map[string]any
	if err := json.Unmarshal(r.body, &viaGet); r.status != 200 || err != nil {
		t.Fatalf("GET /v1/data/geoscope/admission: %s", r)
	}

	ids := map[string]string{"decision": d["decision_id"].(string), "denied": denied["decision_id"].(string), "data api": viaData["decision_id"].(string),
		"data api GET": viaGet["decision_id"].(string)}
	poll(t, 20*time.Second, "the decision log uploads", func() bool {
		for _, id := range ids {
			if collector.event(id) == nil {
				return false
			}
		}
		return true
	})

	rawKey, _ := hex.DecodeString(strings.Repeat("0123456789abcdef", 4))
	ps := ledger.NewPseudonymizer(rawKey)

	ev := collector.event(ids["decision"])
	t.Logf("decision event: %v", ev)
	if ev["path"] != "geoscope/decision" {
		t.Errorf("path %v", ev["path"])
	}
	// A log service tells replicas apart by the "id" label, as for OPA.
	if labels, _ := ev["labels"].(map[string]any); labels["id"] != "replica-7" {
		t.Errorf("labels %v: want id replica-7, the --replica-id", ev["labels"])
	}
	if erased, _ := ev["erased"].([]any); len(erased) != 1 || erased[0] != "/result/actions" {
		t.Errorf("erased = %v, want [/result/actions] as OPA reports system.log.mask", ev["erased"])
	}
	result, _ := ev["result"].(map[string]any)
	if _, has := result["actions"]; has || result["refused"] == nil || result["decision_id"] != ids["decision"] {
		t.Errorf("result after the mask: %v; want no actions, the refusals kept", result)
	}
	input, _ := ev["input"].(map[string]any)
	meeting, _ := input["meeting"].(map[string]any)
	host, _ := meeting["host"].(map[string]any)
	if meeting["id"] != "june4-b" || host["account_id"] != ps.Account("acct-us-b") || host["country"] != "US" {
		t.Errorf("input.meeting %v: want the meeting id, the host account's ledger pseudonym and its country", meeting)
	}
	if byCountry, _ := meeting["participants_by_country"].(map[string]any); len(byCountry) != 2 || byCountry["CN"] != 1.0 || byCountry["HK"] != 1.0 {
		t.Errorf("participants_by_country %v, want CN 1 and HK 1", meeting["participants_by_country"])
	}
	revs, _ := ev["bundles"].(map[string]any)
	for name, want := range map[string]string{"policies": wantRev, "registry": "reg-1", "logpolicy": "log-1"} {
		if got, _ := revs[name].(map[string]any); got["revision"] != want {
			t.Errorf("bundles.%s = %v, want revision %s", name, revs[name], want)
		}
	}
	if ev["timestamp"] == nil {
		t.Error("no timestamp")
	}

	// The denied admission is logged unmasked (the mask is for decisions),
	// naming the joining participant by the ledger's pseudonym.
	adm := collector.event(ids["denied"])
	res, _ := adm["result"].(map[string]any)
	acts, _ := res["actions"].([]any)
	if adm["path"] != "geoscope/admission" || res["allow"] != false || len(acts) != 1 ||
		acts[0].(map[string]any)["participant_id"] != ps.Participant("joiner-cn") {
		t.Errorf("admission event %v: want allow false and the deny_join naming %s", adm, ps.Participant("joiner-cn"))
	}
	if j, _ := adm["input"].(map[string]any)["joining"].(map[string]any); j["id"] != ps.Participant("joiner-cn") || j["country"] != "CN" {
		t.Errorf("admission input.joining %v", j)
	}
	if ev := collector.event(ids["data api"]); ev["path"] != "geoscope/decision" {
		t.Errorf("the Data API decision's event: %v", ev)
	}
	// As in OPA's events: req_id, the request's number in the process
	// (the one its access-log line gives), and metrics, its timers, in
	// every event.
	reqIDs := map[any]any{}
	for _, line := range srv.logLines() {
		if line["msg"] == "request" && line["decision_id"] != nil {
			reqIDs[line["decision_id"]] = line["req_id"]
		}
	}
	for name, id := range ids {
		ev := collector.event(id)
		if n, _ := ev["req_id"].(float64); n < 1 || reqIDs[id] != n {
			t.Errorf("%s event: req_id %v, its access-log line %v", name, ev["req_id"], reqIDs[id])
		}
		m, _ := ev["metrics"].(map[string]any)
		for _, timer := range []string{"timer_server_handler_ns", "timer_rego_input_parse_ns", "timer_geoscope_locate_ns", "timer_geoscope_guard_ns", "timer_geoscope_record_ns"} {
			if v, _ := m[timer].(float64); v <= 0 {
				t.Errorf("%s event: metrics %v, want %s", name, m, timer)
			}
		}
		// The GET asks the denied admission's question again: its answer
		// is remembered, and the policy not evaluated.
		if _, evaluated := m["timer_rego_query_eval_ns"]; evaluated != (name != "data api GET") {
			t.Errorf("%s event: metrics %v; timer_rego_query_eval_ns only where the policy was evaluated", name, m)
		}
	}
	getEvent := collector.event(ids["data api GET"])
	if res, _ := getEvent["result"].(map[string]any); getEvent["path"] != "geoscope/admission" || res["allow"] != false {
		t.Errorf("the Data API GET's event: %v", getEvent)
	}
	if j, _ := getEvent["input"].(map[string]any)["joining"].(map[string]any); j["id"] != ps.Participant("joiner-cn") || j["country"] != "CN" {
		t.Errorf("the Data API GET's event names the joining participant %v, want the pseudonym %s", j, ps.Participant("joiner-cn"))
	}

	// system.log.drop: the allowed admission never leaves. Another upload
	// round passes first.
	marker := decide("/v1/decisions", june4b)["decision_id"].(string)
	poll(t, 20*time.Second, "one more upload", func() bool { return collector.event(marker) != nil })
	if collector.event(allowed["decision_id"].(string)) != nil {
		t.Error("the allowed admission was uploaded although system.log.drop drops it")
	}

	collector.mu.Lock()
	defer collector.mu.Unlock()
	if len(collector.bad) > 0 {
		t.Errorf("uploads that do not follow OPA's protocol: %v", collector.bad)
	}
	// console: true prints the same events into geoscope's log, with OPA's
	// field names, as OPA prints them: the revisions filled, nothing
	// identifying.
	var console map[string]any
	var consoleLines []byte
	for _, line := range srv.logLines() {
		if line["msg"] != "Decision Log" {
			continue
		}
		b, _ := json.Marshal(line)
		consoleLines = append(consoleLines, b...)
		if line["decision_id"] == ids["decision"] && line["type"] == "openpolicyagent.org/decision_logs" {
			console = line
		}
	}
	if console == nil {
		t.Errorf("no console decision log line for %s", ids["decision"])
	} else if b, _ := json.Marshal(console["bundles"]); !strings.Contains(string(b), wantRev) || !strings.Contains(string(b), "reg-1") {
		t.Errorf("console bundles = %s, want the revisions filled", b)
	} else if console["level"] != "info" {
		t.Errorf("console line at level %v, want info as OPA writes it", console["level"])
	} else if m, _ := console["metrics"].(map[string]any); console["req_id"] == nil || m["timer_server_handler_ns"] == nil {
		t.Errorf("console line without req_id or metrics: %v", console)
	}
	all := collector.raw.String() + string(consoleLines)
	for _, secret := range []string{"p-cn", "p-hk", "acct-us-b", "acct-us-d", "joiner-cn", "1.0.16.5", "147.8.1.1", "8.8.8.8", "36.110.44.4", "127.0.0.1"} {
		if strings.Contains(all, secret) {
			t.Errorf("the uploaded decision logs contain %q", secret)
		}
	}
}

// TestDecisionLogsShutdown stops the server (SIGTERM) while a decision is
// in flight, its body arriving slowly, with the decision-log plugin
// holding its events for an hour: the decision is answered during the
// drain, and OPA's plugins stop only after it, their final upload carrying
// its event (and that of a decision answered before the signal) to the
// collector before the process exits.
func TestDecisionLogsShutdown(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-1", &key))
	bs.set("registry.tar.gz", bndRegistryBundle(t, "reg-1", bndRegistryData("ORD-SHUTDOWN-1", "june4-b", "acct-us-d"), &key))
	collector := newLogCollector(t)
	// Nothing is uploaded before the stop but the plugin's first, empty,
	// round at its start.
	cfg := logsConfig(bs.URL, collector.URL, []string{"policies", "registry"},
		map[string]any{"service": "logs", "reporting": map[string]any{"min_delay_seconds": 3600, "max_delay_seconds": 3600}})
	srv := bndStart(t, "--config", writeTemp(t, "opa.json", cfg), "--verification-key", key.pubPath,
		"--geoip-db", geotest.Standard(t), "--shutdown-timeout", "10s")
	srv.waitStatus(t, "ready", 30*time.Second, func(st bndStatus) bool { return st.Ready })

	decisionID := func(body []byte) string {
		t.Helper()
		var d struct {
			DecisionID string `json:"decision_id"`
		}
		if err := json.Unmarshal(body, &d); err != nil || d.DecisionID == "" {
			t.Fatalf("no decision_id in %s", body)
		}
		return d.DecisionID
	}
	r := srv.request(t, http.MethodPost, "/v1/decisions", "", "application/json", june4b)
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/decisions: %s", r)
	}
	before := decisionID(r.body)

	// The request's head and half its body; the rest comes once the
	// server is draining. A first request on the connection makes sure
	// the server has accepted it (one still in the listen queue would be
	// reset by the shutdown).
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	in := bufio.NewReader(conn)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", srv.addr); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(in, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %v %v", resp, err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	half := len(june4b) / 2
	head := fmt.Sprintf("POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", srv.addr, len(june4b))
	if _, err := conn.Write(append([]byte(head), june4b[:half]...)); err != nil {
		t.Fatal(err)
	}
	// Nothing observable marks the moment the server has read the head
	// (until then the connection is idle, and the shutdown closes it).
	time.Sleep(200 * time.Millisecond)
	srv.signal(syscall.SIGTERM)
	poll(t, 5*time.Second, "the server to start draining", func() bool { return strings.Contains(srv.logs.String(), "shutting down") })
	// Well inside the 2 s the body may take to start arriving at
	// --min-body-rate, long enough for a plugin stopped at the signal to
	// have finished stopping.
	time.Sleep(500 * time.Millisecond)
	if _, err := conn.Write(june4b[half:]); err != nil {
		t.Fatalf("sending the rest of the body during the drain: %v", err)
	}
	resp, err := http.ReadResponse(in, nil)
	if err != nil {
		t.Fatalf("the request in flight at SIGTERM got no answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the request in flight at SIGTERM: %d %s (%v)", resp.StatusCode, body, err)
	}
	during := decisionID(body)

	if code := srv.waitExit(30 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	// The collector is this process: what the server uploaded before it
	// exited is here now.
	for what, id := range map[string]string{"answered before SIGTERM": before, "answered during the drain": during} {
		if collector.event(id) == nil {
			t.Errorf("the decision %s (%s) was not uploaded before the process exited", what, id)
		}
	}
	collector.mu.Lock()
	defer collector.mu.Unlock()
	if len(collector.bad) > 0 {
		t.Errorf("uploads that do not follow OPA's protocol: %v", collector.bad)
	}
}

// TestDecisionLogsConsole: decision_logs.console prints each decision
// whatever --log-level is, as OPA's console decision logger does (it is
// not OPA's log), in OPA's shape: msg "Decision Log" at level "info", the
// event's fields at the top of the line. The rest of the log still
// follows --log-level. The console logger and the bundle service's token
// given with --set and --set-file, as OPA takes them, work as in the file.
func TestDecisionLogsConsole(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-1", &key))
	bs.set("registry.tar.gz", bndRegistryBundle(t, "reg-1", bndRegistryData("ORD-CONSOLE-1", "june4-b", "acct-us-d"), &key))
	bundles := map[string]any{}
	for _, name := range []string{"policies", "registry"} {
		bundles[name] = map[string]any{"service": "bundles", "resource": "bundles/" + name + ".tar.gz",
			"polling": map[string]any{"min_delay_seconds": 60, "max_delay_seconds": 120}}
	}
	service := map[string]any{"url": bs.URL, "credentials": map[string]any{"bearer": map[string]any{"token": remoteToken}}}
	full, _ := json.Marshal(map[string]any{
		"services":      map[string]any{"bundles": service},
		"bundles":       bundles,
		"decision_logs": map[string]any{"console": true},
	})
	// The same, given as OPA operators often give it: a file without the
	// console logger or the token, and both set on the command line.
	delete(service, "credentials")
	partial, _ := json.Marshal(map[string]any{"services": map[string]any{"bundles": service}, "bundles": bundles})
	tokenFile := writeTemp(t, "token", []byte(remoteToken+"\n"))
	for _, tc := range []struct {
		level  string
		config []string
	}{
		{"warn", []string{"--config", writeTemp(t, "opa.json", full)}},
		{"error", []string{"--config", writeTemp(t, "partial.json", partial), "--set", "decision_logs.console=true",
			"--set-file", "services.bundles.credentials.bearer.token=" + tokenFile}},
	} {
		level := tc.level
		t.Run(level, func(t *testing.T) {
			srv := bndStart(t, append(tc.config, "--verification-key", key.pubPath,
				"--geoip-db", geotest.Standard(t), "--log-level", level)...)
			srv.waitStatus(t, "ready", 30*time.Second, func(st bndStatus) bool { return st.Ready })
			r := srv.request(t, http.MethodPost, "/v1/decisions", "", "application/json", june4b)
			var d struct {
				DecisionID string `json:"decision_id"`
			}
			if err := json.Unmarshal(r.body, &d); r.status != http.StatusOK || err != nil {
				t.Fatalf("POST /v1/decisions: %s", r)
			}
			var console map[string]any
			poll(t, 5*time.Second, "the console decision log line", func() bool {
				for _, line := range srv.logLines() {
					if line["msg"] == "Decision Log" && line["decision_id"] == d.DecisionID {
						console = line
						return true
					}
				}
				return false
			})
			if console["level"] != "info" || console["type"] != "openpolicyagent.org/decision_logs" || console["path"] != "geoscope/decision" {
				t.Errorf("console line %v: want level info, type openpolicyagent.org/decision_logs and path geoscope/decision at the top, as OPA prints them", console)
			}
			for _, line := range srv.logLines() {
				if line["msg"] != "Decision Log" && (line["level"] == "INFO" || line["level"] == "DEBUG") {
					t.Errorf("--log-level %s logged at %v: %v", level, line["level"], line)
				}
			}
		})
	}
}

// logsConfig is an OPA configuration with the named bundles from the
// bundle service at bundlesURL (polled every minute or two) and the
// decision_logs block given, uploading to the collector at logsURL.
func logsConfig(bundlesURL, logsURL string, names []string, decisionLogs map[string]any) []byte {
	bundles := map[string]any{}
	for _, name := range names {
		bundles[name] = map[string]any{"service": "bundles", "resource": "bundles/" + name + ".tar.gz",
			"polling": map[string]any{"min_delay_seconds": 60, "max_delay_seconds": 120}}
	}
	cfg, _ := json.Marshal(map[string]any{
		"services": map[string]any{
			"bundles": map[string]any{"url": bundlesURL, "credentials": map[string]any{"bearer": map[string]any{"token": remoteToken}}},
			"logs":    map[string]any{"url": logsURL},
		},
		"bundles":       bundles,
		"decision_logs": decisionLogs,
	})
	return cfg
}

// TestDecisionLogsShutdownIsBounded: a collector that takes an upload and
// never answers does not hold the stop past --shutdown-timeout. OPA's
// plugin waits for an upload under way, which its service's timeouts
// alone bound (30 s for the answer's head here): the process exits after
// the drain and --shutdown-timeout, exit status 0, and says that events
// were lost.
func TestDecisionLogsShutdownIsBounded(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-1", &key))
	bs.set("registry.tar.gz", bndRegistryBundle(t, "reg-1", bndRegistryData("ORD-SHUTDOWN-2", "june4-b", "acct-us-d"), &key))
	uploading := make(chan struct{}, 16)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		uploading <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	cfg := logsConfig(bs.URL, slow.URL, []string{"policies", "registry"},
		map[string]any{"service": "logs", "reporting": map[string]any{"min_delay_seconds": 1, "max_delay_seconds": 1}})
	var doc map[string]any
	_ = json.Unmarshal(cfg, &doc)
	doc["services"].(map[string]any)["logs"].(map[string]any)["response_header_timeout_seconds"] = 30
	cfg, _ = json.Marshal(doc)
	srv := bndStart(t, "--config", writeTemp(t, "opa.json", cfg), "--verification-key", key.pubPath,
		"--geoip-db", geotest.Standard(t), "--shutdown-timeout", "2s")
	srv.waitStatus(t, "ready", 30*time.Second, func(st bndStatus) bool { return st.Ready })
	if r := srv.request(t, http.MethodPost, "/v1/decisions", "", "application/json", june4b); r.status != http.StatusOK {
		t.Fatalf("POST /v1/decisions: %s", r)
	}
	select {
	case <-uploading:
	case <-time.After(20 * time.Second):
		t.Fatal("no upload reached the collector")
	}
	start := time.Now()
	srv.signal(syscall.SIGTERM)
	code := srv.waitExit(25 * time.Second)
	took := time.Since(start)
	if code != 0 || took > 12*time.Second {
		t.Errorf("exit %d after %v; want 0 within the drain and --shutdown-timeout (2 s), not the upload's 30 s", code, took.Round(time.Millisecond))
	}
	if !strings.Contains(srv.logs.String(), "did not stop within --shutdown-timeout") {
		t.Errorf("the log does not say that the plugins were not waited for:\n%s", srv.logs.String())
	}
}
