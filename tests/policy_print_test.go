package tests

// print() in a policy is an authoring aid: its output reaches the server's
// debug log (serve --log-level debug) and the stderr of
// `geoscope decide --show-print`, and never a decision, the ledger or the
// decision log. Without debug logging or the flag it is compiled out.

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

const (
	// printBundle prints "print-marker ..." on every decision and refuses
	// every demand, so that each decision is recorded.
	printBundle = "testdata/print"
	printMarker = "print-marker"
)

// printLine is what the policy prints for validRequest (line 9 of
// print.rego).
const printLine = `print.rego:9: print-marker meeting june4-b by_country {`

// wantNoMarker fails if any file under dir holds the print marker.
func wantNoMarker(t *testing.T, dir string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if bytes.Contains(raw, []byte(printMarker)) {
			t.Errorf("%s holds the policy's print output", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("nothing was recorded under %s", dir)
	}
}

// recordedDecision checks that a decision answer was recorded and does not
// carry the print output.
func recordedDecision(t *testing.T, body []byte) {
	t.Helper()
	if bytes.Contains(body, []byte(printMarker)) {
		t.Errorf("the decision carries the print output: %s", body)
	}
	var d struct {
		Refused []json.RawMessage `json:"refused"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(d.Refused) == 0 {
		t.Fatalf("the printing policy refused nothing, so nothing is recorded: %s", body)
	}
}

func TestPolicyPrintDecide(t *testing.T) {
	db := geotest.Standard(t)
	decide := func(t *testing.T, extra ...string) (cliResult, string) {
		t.Helper()
		data := t.TempDir()
		args := append([]string{"decide", "--geoip-db", db, "--data-dir", data, "--bundle", printBundle, "--bundle", "../bundles/registry"}, extra...)
		res := runCLI(t, []byte(validRequest), args...)
		if res.code != 0 {
			t.Fatalf("decide failed:\n%v", res)
		}
		recordedDecision(t, singleJSONObject(t, res.stdout))
		return res, data
	}

	t.Run("--show-print", func(t *testing.T) {
		res, data := decide(t, "--show-print")
		lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], printLine) || !strings.HasPrefix(lines[0], printBundle) {
			t.Errorf("stderr %q, want one line %q (prefixed with the bundle path)", res.stderr, printLine)
		}
		for _, id := range []string{`"p0"`, `"p1"`} {
			if !strings.Contains(res.stderr, id) {
				t.Errorf("stderr %q does not show what the policy printed (%s)", res.stderr, id)
			}
		}
		wantNoMarker(t, data)
	})

	t.Run("without the flag", func(t *testing.T) {
		res, data := decide(t)
		if res.stderr != "" {
			t.Errorf("stderr %q, want nothing", res.stderr)
		}
		wantNoMarker(t, data)
	})
}

func TestPolicyPrintServe(t *testing.T) {
	db := geotest.Standard(t)
	for _, level := range []string{"debug", "info"} {
		t.Run(level, func(t *testing.T) {
			p := startServe(t, serveOpts{ready: true, args: []string{"--log-level", level, "--geoip-db", db,
				"--bundle", printBundle, "--bundle", "../bundles/registry"}})
			r := p.request(t, http.MethodPost, "/v1/decisions", "", "application/json", []byte(validRequest))
			if r.status != http.StatusOK {
				t.Fatalf("POST /v1/decisions: %v", r)
			}
			recordedDecision(t, r.body)
			logs := p.logs.String()
			records := printRecords(t, logs)
			if level == "info" {
				if strings.Contains(logs, printMarker) || len(records) != 0 {
					t.Errorf("print output logged at --log-level info:\n%s", logs)
				}
			} else {
				wantPrintRecord(t, records, "print.rego:9", "print-marker meeting june4-b by_country {")
			}
			wantNoMarker(t, p.dataDir)
		})
	}
}

// With bundles from a bundle server (--config), print() works the same
// way, and OPA's decision log carries the decision, never the print
// output.
func TestPolicyPrintRemote(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	raw, err := os.ReadFile(filepath.Join(printBundle, "print.rego"))
	if err != nil {
		t.Fatal(err)
	}
	pol := &bundle.Bundle{Manifest: bundle.Manifest{Revision: "print-1", Roots: &[]string{"geoscope"}}, Data: map[string]any{},
		Modules: []bundle.ModuleFile{{URL: "/geoscope/print.rego", Path: "/geoscope/print.rego", RelativePath: "geoscope/print.rego", Raw: raw}}}
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndWrite(t, pol, &key))
	bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))
	cfgPath := opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, "release")
	var cfg map[string]any
	cfgRaw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["decision_logs"] = map[string]any{"console": true}
	cfgRaw, _ = json.Marshal(cfg)
	cfgPath = writeTemp(t, "opa-config-logs.json", cfgRaw)

	p := startServe(t, serveOpts{args: []string{"--log-level", "debug", "--geoip-db", geotest.Standard(t), "--config", cfgPath}})
	srv := &bndServer{serverProc: p}
	srv.waitStatus(t, "ready", 30*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("policies") == "print-1" })
	body := `{"meeting": {"id": "` + remoteMeeting + `", "host": {"account_id": "` + remoteAccount + `", "account_country": "US"},
		"participants": [{"id": "p0", "ip": "1.0.16.1"}]}}`
	r := p.request(t, http.MethodPost, "/v1/decisions", "", "application/json", []byte(body))
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/decisions: %v", r)
	}
	recordedDecision(t, r.body)

	var decisionLogs []string
	deadline := time.Now().Add(pollTimeout)
	for len(decisionLogs) == 0 && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
		for line := range strings.Lines(p.logs.String()) {
			if strings.Contains(line, `"msg":"Decision Log"`) {
				decisionLogs = append(decisionLogs, line)
			}
		}
	}
	if len(decisionLogs) == 0 {
		t.Fatalf("no decision log record:\n%s", p.logs)
	}
	for _, line := range decisionLogs {
		if strings.Contains(line, printMarker) {
			t.Errorf("the decision log carries the print output: %s", line)
		}
	}
	wantPrintRecord(t, printRecords(t, p.logs.String()), "/geoscope/print.rego:9", "print-marker meeting "+remoteMeeting+" by_country {")
	wantNoMarker(t, p.dataDir)
}

// printRecords are the "policy print" records of a JSON log.
func printRecords(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "policy print" {
			continue
		}
		out = append(out, rec)
	}
	return out
}

func wantPrintRecord(t *testing.T, records []map[string]any, location, output string) {
	t.Helper()
	for _, rec := range records {
		loc, _ := rec["location"].(string)
		out, _ := rec["output"].(string)
		if rec["level"] == "DEBUG" && strings.HasSuffix(loc, location) && strings.HasPrefix(out, output) {
			return
		}
	}
	t.Errorf("no DEBUG \"policy print\" record at %s with output %q; records: %v", location, output, records)
}
