package tests

// The command-line surface of a replicated deployment: serve --replica-id
// (recorded in every entry, the host name by default), the ledger URL from
// GEOSCOPE_LEDGER, and `geoscope probe`, the container image's health
// check.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/ledger"
)

// exportReplicas runs `geoscope ledger export` on the SQLite ledger in
// dataDir and returns each entry's replica by decision id.
func exportReplicas(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	res := runBounded(t, time.Minute, "ledger", "export", "--format", "jsonl", "--data-dir", dataDir)
	if res.code != 0 {
		t.Fatalf("ledger export: %s", res)
	}
	out := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(res.stdout))
	for dec.More() {
		var e struct {
			DecisionID string `json:"decision_id"`
			Replica    string `json:"replica"`
		}
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		out[e.DecisionID] = e.Replica
	}
	return out
}

// recordOne sends a decision that is recorded and returns its id.
func recordOne(t *testing.T, s *serverProc) string {
	t.Helper()
	r := s.post("/v1/decisions", "", lgRoster("june4-b", "acct-us-b", "US", "", lgPerson{"replica-test-cn", lgCN4()}))
	a := lgDecode(t, r.body)
	if r.status != http.StatusOK || !a.durable() {
		t.Fatalf("decision: %s", r)
	}
	return a.DecisionID
}

func TestServeReplicaID(t *testing.T) {
	t.Run("named", func(t *testing.T) {
		dir := t.TempDir()
		s := startServe(t, serveOpts{ready: true, args: []string{"--data-dir", dir, "--replica-id", "geoscope-7d9f8c-x2x7q"}})
		id := recordOne(t, s)
		s.stop(syscall.SIGTERM)
		if got := exportReplicas(t, dir)[id]; got != "geoscope-7d9f8c-x2x7q" {
			t.Errorf("entry names replica %q, want the --replica-id", got)
		}
	})

	t.Run("the host name by default", func(t *testing.T) {
		dir := t.TempDir()
		s := startServe(t, serveOpts{ready: true, args: []string{"--data-dir", dir}})
		id := recordOne(t, s)
		s.stop(syscall.SIGTERM)
		host, _ := os.Hostname()
		got := exportReplicas(t, dir)[id]
		if got != ledger.DefaultReplica() || got == "" {
			t.Errorf("entry names replica %q, want the host name %q", got, host)
		}
	})

	t.Run("bad names are refused before anything is created", func(t *testing.T) {
		for _, bad := range []string{"two words", "pod/1", strings.Repeat("r", ledger.MaxReplicaLen+1)} {
			dir := filepath.Join(t.TempDir(), "data")
			r := runBounded(t, time.Minute, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir, "--replica-id", bad)
			if r.code != 2 || !strings.Contains(cliErrorLine(t, r.stderr), "--replica-id") {
				t.Errorf("--replica-id %q: want exit 2 naming the flag; got %s", bad, r)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("--replica-id %q: the refused command created %s", bad, dir)
			}
		}
	})
}

func TestLedgerURLFromEnvironment(t *testing.T) {
	// GEOSCOPE_LEDGER chooses the ledger when --ledger is not given.
	s := startServe(t, serveOpts{ready: true, env: []string{"GEOSCOPE_LEDGER=off"}})
	if r := s.get("/v1/ledger", ""); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "ledger is off") {
		t.Errorf("GEOSCOPE_LEDGER=off: GET /v1/ledger = %s, want the ledger off", r)
	}
	// --ledger wins over it.
	dir := t.TempDir()
	s = startServe(t, serveOpts{ready: true, env: []string{"GEOSCOPE_LEDGER=off"}, args: []string{"--ledger", "sqlite", "--data-dir", dir}})
	id := recordOne(t, s)
	s.stop(syscall.SIGTERM)
	if _, ok := exportReplicas(t, dir)[id]; !ok {
		t.Errorf("--ledger sqlite with GEOSCOPE_LEDGER=off: decision %s not recorded", id)
	}
	// A URL in the environment (it may hold a password) is never shown as
	// the flag's default.
	r := runBoundedEnv(t, time.Minute, []string{"GEOSCOPE_LEDGER=postgres://geoscope:s3cret-pw@db.internal/geoscope"}, "serve", "--help")
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, "s3cret-pw") || !strings.Contains(r.stdout, "GEOSCOPE_LEDGER") {
		t.Errorf("serve --help with a ledger URL in the environment: %s", r)
	}
}

func TestProbe(t *testing.T) {
	s := startServe(t, serveOpts{ready: true, args: []string{"--ledger", "off"}})
	if r := runBounded(t, time.Minute, "probe", "--url", s.base+"/ready"); r.code != 0 {
		t.Errorf("probe of a ready server: %s", r)
	}
	if r := runBounded(t, time.Minute, "probe", "--url", s.base+"/health"); r.code != 0 {
		t.Errorf("probe of /health: %s", r)
	}
	// The URL from the environment, as the container image names it.
	if r := runBoundedEnv(t, time.Minute, []string{"GEOSCOPE_PROBE_URL=" + s.base + "/ready"}, "probe"); r.code != 0 {
		t.Errorf("probe of GEOSCOPE_PROBE_URL: %s", r)
	}
	// Over TLS, a certificate the probe has no reason to trust (as the
	// kubelet's HTTPS probes, it asks its own server on loopback).
	certPath, keyPath, pool := selfSigned(t)
	tlsSrv := startServe(t, serveOpts{ready: true, rootCAs: pool, args: []string{"--ledger", "off", "--tls-cert", certPath, "--tls-key", keyPath}})
	if r := runBounded(t, time.Minute, "probe", "--url", tlsSrv.base+"/ready"); r.code != 0 {
		t.Errorf("probe of a TLS server: %s", r)
	}
	// A server that never gets its bundles is alive but not ready.
	cfg := opaConfig(t, "http://127.0.0.1:1", remoteToken, nil, "")
	nr := startServe(t, serveOpts{args: []string{"--ledger", "off", "--config", cfg}})
	r := runBounded(t, time.Minute, "probe", "--url", nr.base+"/ready")
	if r.code != 1 || !strings.Contains(cliErrorLine(t, r.stderr), "503") {
		t.Errorf("probe of a server that is not ready: want exit 1 naming the 503; got %s", r)
	}
	if r := runBounded(t, time.Minute, "probe", "--url", "http://127.0.0.1:1/ready", "--timeout", "2s"); r.code != 1 {
		t.Errorf("probe of a closed port: %s", r)
	}
	for _, args := range [][]string{{"--url", "ftp://x/ready"}, {"--url", "not a url"}, {"--timeout", "0s"}, {"extra"}} {
		if r := runBounded(t, time.Minute, append([]string{"probe"}, args...)...); r.code != 2 {
			t.Errorf("probe %q: want exit 2 (usage); got %s", args, r)
		}
	}
}
