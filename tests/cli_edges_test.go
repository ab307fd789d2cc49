package tests

// The command line's contract for the mistakes a new user makes: each is
// refused with exit status 2 and one line naming the flag or value, before
// anything is created on disk; what succeeds says so when it cannot do
// what the user likely expects.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/internal/proctest"
)

// runIn runs the binary in dir with exactly env (plus PATH and HOME), so
// that no GEOSCOPE_DATA_DIR of the test process leaks in. A command still
// running after a minute (a serve that should have been refused) is killed.
func runIn(t *testing.T, dir string, env []string, stdin []byte, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, geoscopeBin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = bytes.NewReader(stdin)
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("geoscope %s still running after a minute (killed)\nstderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running geoscope %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// dirEntries lists what dir holds.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCLIBadFlagValuesNamed(t *testing.T) {
	db := geotest.Standard(t)
	missing := filepath.Join(t.TempDir(), "nonexistent")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(text string) string {
		path := filepath.Join(t.TempDir(), "opa.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const opaBase = "services: {s: {url: 'http://127.0.0.1:1'}}\nbundles: {policies: {service: s}}\n"
	misspelt := writeConfig(opaBase + "decison_logs: {console: true}\n")
	legacy := writeConfig("services: {s: {url: 'http://127.0.0.1:1'}}\nbundle: {name: policies, service: s}\n")
	malformed := writeConfig("services: [\n")
	ledgerDir := t.TempDir()
	cases := []struct {
		name  string
		args  []string
		names []string
		hides []string // never in the error: a password
	}{
		{"serve --tokens-file missing", []string{"serve", "--tokens-file", missing}, []string{"--tokens-file", "no such file"}, nil},
		{"serve --addr port out of range", []string{"serve", "--addr", "127.0.0.1:99999"}, []string{`--addr "127.0.0.1:99999"`, "not a port number"}, nil},
		{"serve --addr empty (not every interface, unauthenticated)", []string{"serve", "--addr", ""}, []string{"--addr is empty"}, nil},
		{"serve --config empty (not the embedded example registry)", []string{"serve", "--config", ""}, []string{"--config is empty"}, nil},
		{"serve --tokens-file empty", []string{"serve", "--tokens-file", ""}, []string{"--tokens-file is empty"}, nil},
		{"serve --bundle empty among others", []string{"serve", "--bundle", "policies", "--bundle", ""}, []string{"--bundle is empty"}, nil},
		{"report --data-dir empty", []string{"report", "--data-dir", ""}, []string{"--data-dir is empty"}, nil},
		{"serve --addr port not a number", []string{"serve", "--addr", "127.0.0.1:abc"}, []string{`--addr "127.0.0.1:abc"`}, nil},
		{"serve --config misspelt option", []string{"serve", "--config", misspelt}, []string{"--config " + misspelt, `unknown configuration option "decison_logs"`}, nil},
		{"serve --config deprecated bundle block", []string{"serve", "--config", legacy}, []string{"--config " + legacy, `deprecated "bundle" block`}, nil},
		{"serve --config malformed", []string{"serve", "--config", malformed}, []string{"--config " + malformed, "not YAML or JSON"}, nil},
		{"serve --eval-timeout 0", []string{"serve", "--eval-timeout", "0"}, []string{"--eval-timeout 0", "must be positive"}, nil},
		{"serve --max-body 0", []string{"serve", "--max-body", "0"}, []string{"--max-body 0", "must be positive"}, nil},
		{"decide --eval-timeout 0", []string{"decide", "--geoip-db", db, "--eval-timeout", "0"}, []string{"--eval-timeout", "must be positive"}, nil},
		{"decide --bundle empty", []string{"decide", "--geoip-db", db, "--bundle", ""}, []string{"--bundle is empty"}, nil},
		{"decide --signing-alg without a key", []string{"decide", "--geoip-db", db, "--signing-alg", "ES256"}, []string{"--signing-alg ES256 needs --verification-key"}, nil},
		{"ledger exprot", []string{"ledger", "exprot"}, []string{`unknown command "exprot"`, "geoscope ledger"}, nil},
		{"geoip lokup", []string{"geoip", "lokup", "8.8.8.8"}, []string{`unknown command "lokup"`, "geoscope geoip"}, nil},
		{"ledger export --ledger key=value with a password", []string{"ledger", "export", "--ledger", "host=db password=SECRETPW"}, []string{"--ledger", "value not shown"}, []string{"SECRETPW"}},
		{"ledger export --ledger user:password@ without //", []string{"ledger", "export", "--ledger", "postgres:u:SECRETPW@db"}, []string{"--ledger"}, []string{"SECRETPW"}},
		{"ledger export --ledger URL of another database", []string{"ledger", "export", "--ledger", "mysql://u:SECRETPW@db/x"}, []string{`--ledger "mysql://u:xxxxx@db/x"`}, []string{"SECRETPW"}},
		{"report --out inside --data-dir", []string{"report", "--data-dir", ledgerDir, "--out", filepath.Join(ledgerDir, "ledger.db")}, []string{"--out", "inside --data-dir"}, nil},
		{"serve --ledger foo", []string{"serve", "--ledger", "foo"}, []string{`--ledger "foo"`, "sqlite", "postgres://"}, nil},
		{"serve --ledger postgres URL with a password parameter", []string{"serve", "--ledger", "postgres://u@127.0.0.1:1/db?password=SECRETPW&sslmode=bogus", "--ledger-key-file", missing}, []string{`--ledger "postgres://u@127.0.0.1:1/db?password=xxxxx&sslmode=bogus"`, "sslmode"}, []string{"SECRETPW"}},
		{"ledger export --ledger postgres URL with an sslpassword parameter", []string{"ledger", "export", "--ledger", "postgres://u@127.0.0.1:1/db?sslpassword=SECRETPW&connect_timeout=x"}, []string{"--ledger", "sslpassword=xxxxx"}, []string{"SECRETPW"}},
		{"serve --ledger malformed postgres URL", []string{"serve", "--ledger", "postgres://u:SECRETPW@127.0.0.1:1/db?sslmode=verify_full", "--ledger-key-file", missing}, []string{`--ledger "postgres://u:xxxxx@127.0.0.1:1/db?sslmode=verify_full"`, "sslmode"}, []string{"SECRETPW"}},
		{"report --ledger malformed postgres URL", []string{"report", "--ledger", "postgres://u:SECRETPW@127.0.0.1:1/db?connect_timeout=soon"}, []string{"--ledger", "connect_timeout"}, []string{"SECRETPW"}},
		{"serve --ledger mysql", []string{"serve", "--ledger", "mysql://x"}, []string{`--ledger "mysql://x"`}, nil},
		{"serve --ledger with a key file", []string{"serve", "--ledger", "foo", "--ledger-key-file", missing}, []string{`--ledger "foo"`}, nil},
		{"decide --ledger foo", []string{"decide", "--geoip-db", db, "--ledger", "foo"}, []string{`--ledger "foo"`}, nil},
		{"ledger export --ledger foo", []string{"ledger", "export", "--ledger", "foo"}, []string{`--ledger "foo"`}, nil},
		{"serve --geoip-db missing", []string{"serve", "--geoip-db", missing}, []string{"--geoip-db " + missing, "no such file"}, nil},
		{"serve --bundle missing", []string{"serve", "--bundle", missing}, []string{"--bundle " + missing, "no such file"}, nil},
		{"serve --config missing", []string{"serve", "--config", missing}, []string{"--config " + missing, "no such file"}, nil},
		{"serve --tls-cert missing", []string{"serve", "--tls-cert", missing, "--tls-key", notPEM}, []string{"--tls-cert " + missing, "no such file"}, nil},
		{"serve --tls-key missing", []string{"serve", "--tls-cert", notPEM, "--tls-key", missing}, []string{"--tls-key " + missing, "no such file"}, nil},
		{"serve --tls-cert not a certificate", []string{"serve", "--tls-cert", notPEM, "--tls-key", notPEM}, []string{"--tls-cert " + notPEM, "--tls-key " + notPEM}, nil},
		{"serve --log-level verbose", []string{"serve", "--log-level", "verbose"}, []string{`--log-level "verbose"`, "debug, info, warn or error"}, nil},
		{"decide request.json", []string{"decide", "request.json"}, []string{`"request.json"`, "--input request.json"}, nil},
		{"ledger export empty period", []string{"ledger", "export", "--since", "2026-03-01", "--until", "2026-02-01"}, []string{"--until", "the period is empty"}, nil},
		{"ledger export equal bounds", []string{"ledger", "export", "--since", "2026-03-01", "--until", "2026-03-01"}, []string{"--until", "the period is empty"}, nil},
		{"report --out a directory", []string{"report", "--out", os.TempDir()}, []string{"--out " + os.TempDir(), "is a directory"}, nil},
		{"report --out dir/", []string{"report", "--out", t.TempDir() + "/"}, []string{"--out", "names a directory"}, nil},
		{"report --out in a missing directory", []string{"report", "--out", filepath.Join(missing, "r.md")}, []string{"--out", "does not exist"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			args := tc.args
			if args[0] == "serve" && !slices.Contains(args, "--addr") {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			res := runIn(t, dir, []string{"GEOSCOPE_DATA_DIR=" + data}, []byte(validRequest), args...)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2\n%v", res.code, res)
			}
			line := cliErrorLine(t, res.stderr)
			for _, n := range tc.names {
				if !strings.Contains(line, n) {
					t.Errorf("error %q does not name %q", line, n)
				}
			}
			for _, h := range tc.hides {
				if strings.Contains(res.stderr+res.stdout, h) {
					t.Errorf("the output shows %q:\n%v", h, res)
				}
			}
			if !strings.Contains(strings.Join(args, " "), "--config") && strings.Contains(line, "OPA configuration") {
				t.Errorf("error %q blames an OPA configuration the command was not given", line)
			}
			if got := dirEntries(t, dir); len(got) != 0 {
				t.Errorf("a refused command created %v in its working directory", got)
			}
		})
	}
}

// GEOSCOPE_LEDGER set but empty, or with white space around it (a Secret
// made from a file ending in a newline), is refused, naming it: read as
// unset, each replica recorded into a SQLite ledger of its own on its
// scratch volume.
func TestLedgerEnvironmentBlankRefused(t *testing.T) {
	for _, value := range []string{"", "  ", "postgres://geoscope@127.0.0.1:1/geoscope\n"} {
		for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"ledger", "export"}, {"report"}, {"ledger", "verify"}} {
			dir := t.TempDir()
			res := runIn(t, dir, []string{"GEOSCOPE_DATA_DIR=" + filepath.Join(dir, "data"), "GEOSCOPE_LEDGER=" + value}, nil, args...)
			if res.code != 2 || !strings.Contains(cliErrorLine(t, res.stderr), "GEOSCOPE_LEDGER") {
				t.Errorf("%v with GEOSCOPE_LEDGER=%q: %v; want exit 2 naming it", args, value, res)
			}
			if got := dirEntries(t, dir); len(got) != 0 {
				t.Errorf("%v with GEOSCOPE_LEDGER=%q created %v", args, value, got)
			}
		}
	}
}

// GEOSCOPE_DATA_DIR set but empty, or with white space around it, is
// refused as GEOSCOPE_LEDGER is, naming it: read as unset, the server
// opened a new SQLite ledger, with a new key, in ./geoscope-data of its
// working directory, and its decisions were recorded apart from the
// ledger the variable was meant to name. --data-dir on the command line
// takes its place.
func TestDataDirEnvironmentBlankRefused(t *testing.T) {
	for _, value := range []string{"", "  ", "/data\n"} {
		for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"ledger", "export"}, {"report"}, {"ledger", "verify"}} {
			dir := t.TempDir()
			res := runIn(t, dir, []string{"GEOSCOPE_DATA_DIR=" + value}, nil, args...)
			if res.code != 2 || !strings.Contains(cliErrorLine(t, res.stderr), "GEOSCOPE_DATA_DIR") {
				t.Errorf("%v with GEOSCOPE_DATA_DIR=%q: %v; want exit 2 naming it", args, value, res)
			}
			if got := dirEntries(t, dir); len(got) != 0 {
				t.Errorf("%v with GEOSCOPE_DATA_DIR=%q created %v", args, value, got)
			}
		}
	}
	// The flag given, the variable is not read.
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if res := runIn(t, dir, []string{"GEOSCOPE_DATA_DIR="}, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--data-dir", data); res.code != 0 {
		t.Errorf("decide --data-dir with GEOSCOPE_DATA_DIR empty: %v", res)
	}
	if _, err := os.Stat(filepath.Join(data, "ledger.key")); err != nil {
		t.Errorf("decide --data-dir recorded nowhere: %v", err)
	}
}

// decide is offline: it records nothing (no ./geoscope-data, nothing in
// GEOSCOPE_DATA_DIR) unless a ledger flag asks it to.
func TestDecideRecordsOnlyWhenAsked(t *testing.T) {
	db := geotest.Standard(t)
	dir := t.TempDir()
	serverData := filepath.Join(t.TempDir(), "server-data")
	env := []string{"GEOSCOPE_DATA_DIR=" + serverData}

	res := runIn(t, dir, env, []byte(validRequest), "decide", "--geoip-db", db)
	if res.code != 0 || res.stderr != "" {
		t.Fatalf("decide: %v", res)
	}
	d, _ := decodeCLIDecision(t, res.stdout)
	if len(d.Actions) == 0 {
		t.Fatalf("the request should have produced an action: %s", res.stdout)
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Errorf("decide created %v in its working directory", got)
	}
	if _, err := os.Stat(serverData); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("decide touched GEOSCOPE_DATA_DIR %s (%v)", serverData, err)
	}
	// --ledger off says the same, silently.
	if res := runIn(t, dir, env, []byte(validRequest), "decide", "--geoip-db", db, "--ledger", "off"); res.code != 0 || res.stderr != "" {
		t.Errorf("decide --ledger off: %v", res)
	}
	// Run beside a server whose environment names its ledger, it says
	// that this answer is not in that ledger.
	res = runIn(t, dir, append(slices.Clone(env), "GEOSCOPE_LEDGER=postgres://geoscope@127.0.0.1:1/geoscope"), []byte(validRequest), "decide", "--geoip-db", db)
	if res.code != 0 || !strings.Contains(res.stderr, "not recorded") || !strings.Contains(res.stderr, "GEOSCOPE_LEDGER alone") {
		t.Errorf("decide with GEOSCOPE_LEDGER set and no ledger flag: %v; want it to say the answer is not recorded", res)
	}

	// Asked to record, it does, and the entry is exported.
	ledgerDir := filepath.Join(t.TempDir(), "ledger")
	res = runIn(t, dir, env, []byte(validRequest), "decide", "--geoip-db", db, "--data-dir", ledgerDir)
	if res.code != 0 {
		t.Fatalf("decide --data-dir: %v", res)
	}
	recorded, _ := decodeCLIDecision(t, res.stdout)
	export := runIn(t, dir, env, nil, "ledger", "export", "--data-dir", ledgerDir)
	if export.code != 0 || !strings.Contains(export.stdout, `"decision_id":"`+recorded.DecisionID+`"`) {
		t.Errorf("the decision recorded with --data-dir is not exported:\n%v", export)
	}
	if strings.Contains(export.stdout, d.DecisionID) {
		t.Errorf("the unrecorded decision %s appears in a ledger", d.DecisionID)
	}
	// Far bounds mean "every entry" (they used to wrap around and select
	// nothing), in the export and in the report alike.
	wide := runIn(t, dir, env, nil, "ledger", "export", "--data-dir", ledgerDir, "--since", "0001-01-01", "--until", "9999-12-31")
	if wide.code != 0 || !strings.Contains(wide.stdout, `"decision_id":"`+recorded.DecisionID+`"`) {
		t.Errorf("ledger export --since 0001-01-01 --until 9999-12-31 leaves out the recorded decision:\n%v", wide)
	}
	rep := runIn(t, dir, env, nil, "report", "--data-dir", ledgerDir, "--since", "1600-01-01", "--until", "2999-01-01", "--format", "json", "--min-count", "1")
	var summary struct {
		Summary struct {
			Decisions int `json:"decisions_recorded"`
		} `json:"summary"`
	}
	if rep.code != 0 || json.Unmarshal([]byte(rep.stdout), &summary) != nil || summary.Summary.Decisions != 1 {
		t.Errorf("report --since 1600-01-01 --until 2999-01-01 does not count the recorded decision:\n%v", rep)
	}
}

// decide with a policy bundle and no registry answers (nothing applies) and
// warns, as serve does.
func TestDecideWarnsWithoutRegistry(t *testing.T) {
	res := runCLI(t, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--bundle", "../policies")
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	d, _ := decodeCLIDecision(t, res.stdout)
	if len(d.Actions)+len(d.Refused)+len(d.OrderIDs) != 0 {
		t.Errorf("without a registry nothing applies; got %s", res.stdout)
	}
	var rec struct{ Level, Msg string }
	if err := json.Unmarshal([]byte(res.stderr), &rec); err != nil || rec.Level != "WARN" || !strings.Contains(rec.Msg, "no authorities") {
		t.Errorf("stderr %q: want one JSON warning that the bundles hold no registry", res.stderr)
	}
	// With the registry there is no warning.
	if res := runCLI(t, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--bundle", "../policies", "--bundle", "../bundles/registry"); res.code != 0 || res.stderr != "" {
		t.Errorf("with the registry: %v", res)
	}
}

// policyWithExtension is a copy of the default policy bundle with one
// extension file added as geoscope/extensions/name.
func policyWithExtension(t *testing.T, name, src string) string {
	t.Helper()
	policy := filepath.Join(t.TempDir(), "policies")
	bndCopyDir(t, "../policies", policy)
	ext := filepath.Join(policy, "geoscope", "extensions", name)
	if err := os.MkdirAll(filepath.Dir(ext), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ext, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return policy
}

// decideWarnings decides validRequest with policy and the example
// registry, and returns the decision and the messages of the JSON
// warnings on stderr.
func decideWarnings(t *testing.T, policy string) (*decision.Decision, []string) {
	t.Helper()
	res := runCLI(t, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--bundle", policy, "--bundle", "../bundles/registry")
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	d, _ := decodeCLIDecision(t, res.stdout)
	var msgs []string
	for line := range strings.Lines(res.stderr) {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level != "WARN" {
			t.Fatalf("stderr line %q: want a JSON warning", line)
		}
		msgs = append(msgs, rec.Msg)
	}
	return d, msgs
}

// An extension file in a package the default policy does not read
// (geoscope.extensions.<name>, the name of its file) compiles, passes opa
// check and changes nothing: decide still answers, and warns on stderr
// naming the file and the package to declare, as serve logs it.
func TestDecideWarnsOfAnExtensionInAnotherPackage(t *testing.T) {
	src := "package geoscope.extensions.counsel\n\nexempt contains input.joining.id if input.joining.role == \"co_host\"\n"
	_, msgs := decideWarnings(t, policyWithExtension(t, "counsel.rego", src))
	if len(msgs) != 1 || !strings.Contains(msgs[0], "counsel.rego:3: exempt in package geoscope.extensions.counsel is never read") ||
		!strings.Contains(msgs[0], "declare package geoscope.extensions") {
		t.Errorf("warnings %q: want one naming counsel.rego:3, its package and the one to declare", msgs)
	}
}

// A withheld entry with a misspelt key names no order, so the order is
// enforced as if the entry were not there: decide says so, quoting the
// entry and the keys allowed. Spelt right, the same entry withholds the
// order and nothing is said.
func TestDecideWarnsOfMalformedExtensionEntries(t *testing.T) {
	const entry = `package geoscope.extensions

withheld contains {"order": "CN-2020-0601", "reason": "under appeal"}
`
	d, msgs := decideWarnings(t, policyWithExtension(t, "appeal.rego", entry))
	if len(d.Actions) == 0 {
		t.Errorf("the misspelt entry withheld the order: %+v", d)
	}
	want := `data.geoscope.extension_problems: withheld {"order":"CN-2020-0601","reason":"under appeal"}: unknown key "order"; allowed: demand, order_id, reason`
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, want) }) {
		t.Errorf("warnings %q: want one starting %q", msgs, want)
	}

	d, msgs = decideWarnings(t, policyWithExtension(t, "appeal.rego", strings.Replace(entry, `"order"`, `"order_id"`, 1)))
	if len(d.Actions) != 0 || len(msgs) != 0 {
		t.Errorf("spelt right: actions %+v, warnings %q; want the order withheld and no warning", d.Actions, msgs)
	}
}

// An extension rule that goes wrong for every participant of a roster,
// with entries that hold the roster itself, is told of by its first
// problems, each quoting its entry by its start, and a count of the rest:
// not a warning per participant, each repeating the roster.
func TestDecideExtensionProblemsBounded(t *testing.T) {
	const ext = `package geoscope.extensions

withheld contains {"order": "CN-2020-0601", "meeting": input.meeting}

withheld contains {"order": p.id, "reason": "under appeal"} if some p in input.meeting.participants
`
	policy := policyWithExtension(t, "roster.rego", ext)
	var people []string
	for i := range 500 {
		people = append(people, fmt.Sprintf(`{"id": "participant-%03d", "ip": "1.0.16.%d"}`, i, i%250+1))
	}
	req := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [` + strings.Join(people, ", ") + `]}}`
	res := runCLI(t, []byte(req), "decide", "--geoip-db", geotest.Standard(t), "--bundle", policy, "--bundle", "../bundles/registry")
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	if len(res.stderr) > 16<<10 {
		t.Errorf("stderr is %d bytes: want the first problems and a count of the others", len(res.stderr))
	}
	var msgs []string
	for line := range strings.Lines(res.stderr) {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level != "WARN" {
			t.Fatalf("stderr line %.200q: want a JSON warning", line)
		}
		msgs = append(msgs, rec.Msg)
	}
	if len(msgs) != 21 || !strings.HasPrefix(msgs[20], "data.geoscope.extension_problems: ") || !strings.Contains(msgs[20], " more") {
		t.Fatalf("%d warnings, the last %.200q: want 20 problems and a count of the others", len(msgs), msgs[len(msgs)-1])
	}
	for _, m := range msgs[:20] {
		if len(m) > 300 || strings.Count(m, "participant-") > 3 {
			t.Errorf("a warning of %d bytes quotes more than its entry's start: %.300q", len(m), m)
		}
	}
	if want := `data.geoscope.extension_problems: withheld {"meeting":{`; !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, want) }) {
		t.Errorf("warnings %q: want one starting %q", msgs, want)
	}
}

// A registry version that lost its orders/ directory is refused rather
// than activated with no standing orders.
func TestRegistryWithoutOrdersRefused(t *testing.T) {
	reg := filepath.Join(t.TempDir(), "registry")
	bndCopyDir(t, "../bundles/registry", reg)
	if err := os.RemoveAll(filepath.Join(reg, "orders")); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--bundle", "../policies", "--bundle", reg)
	wantBadInput(t, res, "", "data.orders is missing", "data.authorities")
}

// report --out FILE still writes the file (the refusals above are only for
// directories).
func TestReportOutFile(t *testing.T) {
	db := geotest.Standard(t)
	data := filepath.Join(t.TempDir(), "data")
	if res := runCLI(t, []byte(validRequest), "decide", "--geoip-db", db, "--data-dir", data); res.code != 0 {
		t.Fatalf("%v", res)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	year := time.Now().UTC().Format("2006")
	res := runCLI(t, nil, "report", "--data-dir", data, "--since", year+"-01-01", "--format", "json", "--out", out)
	if res.code != 0 {
		t.Fatalf("%v", res)
	}
	raw, err := os.ReadFile(out)
	if err != nil || !json.Valid(raw) {
		t.Errorf("report file: %v %.200s", err, raw)
	}
}

// A --ledger value that came from GEOSCOPE_LEDGER is named as such: the
// command line the operator reads has no --ledger on it.
func TestCLILedgerFromTheEnvironmentNamed(t *testing.T) {
	for _, args := range [][]string{{"report"}, {"ledger", "export"}} {
		res := runIn(t, t.TempDir(), []string{"GEOSCOPE_LEDGER=bogus"}, nil, args...)
		if res.code != 2 || !strings.Contains(res.stderr, "GEOSCOPE_LEDGER (in place of --ledger)") {
			t.Errorf("%v with GEOSCOPE_LEDGER=bogus: %v", args, res)
		}
	}
}

// TestServeRefusesItsLedgerBeforeTheAddress: a ledger setting that no
// start can use is refused as such (exit 2, naming it) with --addr on a
// port another process holds, rather than hidden behind the address in
// use, which an operator frees only to be refused again for the ledger;
// and nothing is created on disk, as with settings that work, where the
// address in use is refused.
func TestServeRefusesItsLedgerBeforeTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+proctest.FreePort(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	openDir := t.TempDir()
	chmod(t, openDir, 0o777)
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		names string
	}{
		{"GEOSCOPE_DATA_DIR blank", []string{"GEOSCOPE_DATA_DIR="}, nil, "GEOSCOPE_DATA_DIR"},
		{"GEOSCOPE_LEDGER blank", []string{"GEOSCOPE_LEDGER= "}, nil, "GEOSCOPE_LEDGER"},
		{"--ledger naming no backend", nil, []string{"--ledger", "mysql://x"}, "--ledger"},
		{"--replica-id holding a space", nil, []string{"--replica-id", "two words"}, "--replica-id"},
		{"PostgreSQL without a key file", nil, []string{"--ledger", "postgres://u@127.0.0.1:1/db"}, "--ledger-key-file"},
		{"a data directory others may write", nil, []string{"--data-dir", openDir}, "--data-dir " + openDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"serve", "--addr", taken}, tc.args...)
			if !slices.Contains(args, "--data-dir") && !slices.Contains(tc.env, "GEOSCOPE_DATA_DIR=") {
				args = append(args, "--data-dir", filepath.Join(dir, "data"))
			}
			res := runIn(t, dir, tc.env, nil, args...)
			line := cliErrorLine(t, res.stderr)
			if res.code != 2 || !strings.Contains(line, tc.names) || strings.Contains(line, "--addr") {
				t.Errorf("%v with %s taken: %v; want exit 2 naming %s, not the address", args, taken, res, tc.names)
			}
			if got := slices.Concat(dirEntries(t, dir), dirEntries(t, openDir)); len(got) != 0 {
				t.Errorf("%v created %v", args, got)
			}
		})
	}
	// Settings that work: the address in use is refused, still before
	// the ledger creates anything.
	dir := t.TempDir()
	res := runIn(t, dir, nil, nil, "serve", "--addr", taken, "--data-dir", filepath.Join(dir, "data"))
	if line := cliErrorLine(t, res.stderr); res.code != 1 || !strings.Contains(line, "--addr "+taken) {
		t.Errorf("serve --addr %s taken: %v; want exit 1 naming --addr", taken, res)
	}
	if got := dirEntries(t, dir); len(got) != 0 {
		t.Errorf("serve refused its address in use but created %v", got)
	}
}
