package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// validRequest is a well-formed decision request against the example
// registry: meeting june4-b is targeted by standing order CN-2020-0601.
const validRequest = `{
  "meeting": {
    "id": "june4-b",
    "host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
    "participants": [
      {"id": "p0", "ip": "1.0.16.1"},
      {"id": "p1", "ip": "147.8.1.1"},
      {"id": "p2", "ip": "8.8.8.9"}
    ]
  }
}`

// requestWith returns a request whose participants are the given JSON
// objects, with optional extra top-level members.
func requestWith(participants string, extra string) string {
	s := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [` + participants + `]}`
	if extra != "" {
		s += ", " + extra
	}
	return s + "}"
}

// wantBadInput checks the CLI's failure contract: exit status 2, nothing on
// stdout, and one line on stderr that names the problem.
func wantBadInput(t *testing.T, res cliResult, field string, contains ...string) {
	t.Helper()
	if res.code != 2 {
		t.Errorf("exit status %d, want 2", res.code)
	}
	if res.stdout != "" {
		t.Errorf("stdout is not empty: %q", res.stdout)
	}
	line := strings.TrimSuffix(res.stderr, "\n")
	if line == "" || strings.Contains(line, "\n") {
		t.Errorf("stderr is not exactly one line: %q", res.stderr)
	}
	if !strings.HasPrefix(line, "geoscope: ") {
		t.Errorf("stderr %q does not start with %q", line, "geoscope: ")
	}
	if field != "" && !strings.HasPrefix(line, "geoscope: "+field+": ") {
		t.Errorf("stderr %q does not name the field %s", line, field)
	}
	for _, c := range contains {
		if !strings.Contains(line, c) {
			t.Errorf("stderr %q does not mention %q", line, c)
		}
	}
	if t.Failed() {
		t.Logf("result:\n%v", res)
	}
}

func TestDecideBadRequest(t *testing.T) {
	db := geotest.Standard(t)
	cases := []struct {
		name     string
		request  string
		field    string
		contains []string
	}{
		{"empty body", "", "", []string{"request body is empty"}},
		{"whitespace body", " \n\t", "", []string{"request body is empty"}},
		{"truncated JSON", `{"meeting": {"id": "m",`, "", []string{"malformed JSON"}},
		{"JSON syntax error", `{"meeting": {"id": 'm'}}`, "", []string{"malformed JSON at byte"}},
		{"trailing data", validRequest + ` {}`, "", []string{"unexpected data after the JSON object"}},
		{"not an object", `[1, 2]`, "", []string{"expected an object, got an array"}},
		{"unknown top-level field", requestWith(`{"id": "p0", "ip": "1.0.16.1"}`, `"extra": 1`), "extra", []string{"unknown field"}},
		{"unknown participant field", requestWith(`{"id": "p0", "ip": "1.0.16.1"}, {"id": "p1", "ip": "8.8.8.8"}, {"id": "p2", "ip": "8.8.8.9", "country": "US"}`, ""),
			"meeting.participants[2].country", []string{"unknown field"}},
		{"unknown host field", `{"meeting": {"id": "m", "host": {"account_id": "a", "country": "CN"}}}`, "meeting.host.country", []string{"unknown field"}},
		{"wrong type", requestWith(`{"id": "p0", "ip": 16}`, ""), "meeting.participants[0].ip", []string{"expected a string, got a number"}},
		{"participant with ip and phone", requestWith(`{"id": "p0", "ip": "1.0.16.1", "phone": "+8610123"}`, ""), "meeting.participants[0].phone", []string{"give ip or phone, not both"}},
		{"zoned IP", requestWith(`{"id": "p0", "ip": "fe80::1%eth0"}`, ""), "meeting.participants[0].ip", []string{"is not an IP address (an IPv4 address"}},
		{"bad host IP", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "256.1.1.1"}}}`, "meeting.host.ip", []string{"is not an IP address (an IPv4 address"}},
		{"bad joining IP", requestWith(`{"id": "p0", "ip": "1.0.16.1"}`, `"joining": {"id": "j", "ip": "1.0.16"}`), "joining.ip", []string{"is not an IP address (an IPv4 address"}},
		{"duplicate participant id", requestWith(`{"id": "p0", "ip": "1.0.16.1"}, {"id": "p0", "ip": "1.0.16.2"}`, ""),
			"meeting.participants[1].id", []string{`"p0" duplicates meeting.participants[0].id`}},
		{"joining participant already connected", requestWith(`{"id": "p0", "ip": "1.0.16.1"}`, `"joining": {"id": "p0", "ip": "1.0.16.2"}`),
			"joining.id", []string{"already connected"}},
		{"missing participant id", requestWith(`{"id": "p0", "ip": "1.0.16.1"}, {"ip": "1.0.16.2"}`, ""), "meeting.participants[1].id", []string{"is required"}},
		{"missing meeting id", `{"meeting": {"host": {"account_id": "a"}, "participants": []}}`, "meeting.id", []string{"is required"}},
		{"missing host account id", `{"meeting": {"id": "m", "host": {}}}`, "meeting.host.account_id", []string{"is required"}},
		{"bad account country", `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "usa"}}}`, "meeting.host.account_country", []string{`"usa"`}},
		{"order without demands", requestWith(`{"id": "p0", "ip": "1.0.16.1"}`, `"order": {"id": "o", "authority": "cn.cac", "demands": [], "targets": {}}`),
			"order.demands", []string{"at least one demand"}},
		{"order with unknown demand", requestWith(`{"id": "p0", "ip": "1.0.16.1"}`, `"order": {"id": "o", "authority": "cn.cac", "demands": ["end_meeting", "shutdown"], "targets": {}}`),
			"order.demands[1]", []string{`"shutdown" is not a known demand`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Through --input and through stdin: same contract.
			file := writeTemp(t, "request.json", []byte(tc.request))
			wantBadInput(t, runCLI(t, nil, "decide", "--geoip-db", db, "--input", file), tc.field, tc.contains...)
			wantBadInput(t, runCLI(t, []byte(tc.request), "decide", "--geoip-db", db), tc.field, tc.contains...)
		})
	}
}

// TestDecideBadIPExactMessage pins the message an operator sees for a bad
// address in a large roster: the field path with the index, and the value.
func TestDecideBadIPExactMessage(t *testing.T) {
	req := requestWith(`{"id": "p0", "ip": "1.0.16.1"}, {"id": "p1", "ip": "8.8.8.8"}, {"id": "p2", "ip": "147.8.1.1"}, {"id": "p3", "ip": "1.2.3"}`, "")
	res := runCLI(t, []byte(req), "decide", "--geoip-db", geotest.Standard(t))
	wantBadInput(t, res, "meeting.participants[3].ip")
	const want = `geoscope: meeting.participants[3].ip: is not an IP address (an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone)` + "\n"
	if res.stderr != want {
		t.Errorf("stderr = %q, want %q", res.stderr, want)
	}
}

func TestDecideUnusableBundlesAndDatabases(t *testing.T) {
	db := geotest.Standard(t)
	tmp := t.TempDir()
	missing := filepath.Join(tmp, "no-such-bundle")
	corrupt := writeTemp(t, "corrupt.tar.gz", []byte("this is not a gzip file"))
	empty := t.TempDir()
	missingDB := filepath.Join(tmp, "no-such.mmdb")
	notMMDB := writeTemp(t, "GeoIP2-Country.mmdb", []byte("not a MaxMind DB, just text\n"))
	asn := geotest.WriteFile(t, "GeoLite2-ASN", geotest.StandardEntries)
	missingInput := filepath.Join(tmp, "no-such-request.json")

	cases := []struct {
		name     string
		args     []string
		contains []string
	}{
		{"unreadable bundle path", []string{"--geoip-db", db, "--bundle", missing}, []string{"bundle", missing}},
		{"corrupt bundle archive", []string{"--geoip-db", db, "--bundle", corrupt}, []string{"bundle", corrupt}},
		{"registry bundle without the policy", []string{"--geoip-db", db, "--bundle", "../bundles/registry"}, []string{"data.geoscope.decision"}},
		{"empty bundle directory", []string{"--geoip-db", db, "--bundle", empty}, []string{"data.geoscope.decision"}},
		{"two bundles with one name", []string{"--geoip-db", db, "--bundle", "../policies", "--bundle", "../policies"}, []string{`"policies"`}},
		{"missing GeoIP database", []string{"--geoip-db", missingDB}, []string{missingDB, "not a readable MaxMind DB"}},
		{"directory as GeoIP database", []string{"--geoip-db", tmp}, []string{tmp, "not a readable MaxMind DB"}},
		{"non-mmdb GeoIP database", []string{"--geoip-db", notMMDB}, []string{notMMDB, "not a readable MaxMind DB"}},
		{"ASN database", []string{"--geoip-db", asn}, []string{asn, "not a Country or City database", `"GeoLite2-ASN"`}},
		{"missing input file", []string{"--geoip-db", db, "--input", missingInput}, []string{"cannot read input", missingInput}},
		{"unknown flag", []string{"--geoip-db", db, "--bogus"}, []string{"unknown flag", "--bogus"}},
		{"stray argument", []string{"--geoip-db", db, "extra-arg"}, []string{`"extra-arg"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"decide"}, tc.args...)
			wantBadInput(t, runCLI(t, []byte(validRequest), args...), "", tc.contains...)
		})
	}
}

// TestDecideInputSources: --input FILE, --input - and stdin give the same
// decision, each printed as exactly one JSON object with nothing on stderr.
func TestDecideInputSources(t *testing.T) {
	db := geotest.Standard(t)
	file := writeTemp(t, "request.json", []byte(validRequest))
	runs := map[string]cliResult{
		"--input FILE": runCLI(t, nil, "decide", "--geoip-db", db, "--input", file),
		"--input -":    runCLI(t, []byte(validRequest), "decide", "--geoip-db", db, "--input", "-"),
		"stdin":        runCLI(t, []byte(validRequest), "decide", "--geoip-db", db),
		"bundle dirs":  runCLI(t, []byte(validRequest), "decide", "--geoip-db", db, "--bundle", "../policies", "--bundle", "../bundles/registry"),
	}
	ids := map[string]string{}
	var first []byte
	for name, res := range runs {
		if res.code != 0 || res.stderr != "" {
			t.Errorf("%s: want exit 0 and empty stderr, got %v", name, res)
			continue
		}
		d, _ := decodeCLIDecision(t, res.stdout)
		if prev, dup := ids[d.DecisionID]; dup {
			t.Errorf("%s and %s share decision_id %s", name, prev, d.DecisionID)
		}
		ids[d.DecisionID] = name
		if len(d.Actions) != 1 || d.Actions[0].Type != decision.RemoveParticipant || d.Actions[0].ParticipantID != "p0" {
			t.Errorf("%s: actions = %+v, want only remove_participant p0", name, d.Actions)
		}
		// Everything but the id, the time and the revisions must agree.
		d.DecisionID, d.Time, d.Bundles = "", time.Time{}, nil
		b, _ := json.Marshal(d)
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Errorf("%s: decision differs from the other input sources:\n%s\nvs\n%s", name, b, first)
		}
	}
}

// lookupLine is one line of `geoscope geoip lookup` output.
type lookupLine struct {
	IP           string   `json:"ip"`
	Country      string   `json:"country,omitempty"`
	Subdivisions []string `json:"subdivisions,omitempty"`
	Known        bool     `json:"known"`
	Reason       string   `json:"reason,omitempty"`
	Network      string   `json:"network,omitempty"`
	Registered   string   `json:"registered_country,omitempty"`
	Database     string   `json:"database"`
	Build        string   `json:"build"`
}

func TestGeoipLookup(t *testing.T) {
	db := geotest.Standard(t)

	t.Run("bad argument", func(t *testing.T) {
		res := runCLI(t, nil, "geoip", "lookup", "--geoip-db", db, "1.0.16.1", "147.8.1.1", "10.0.0.1", "not-an-ip")
		wantBadInput(t, res, "args[3]", `"not-an-ip" is not an IP address`)
	})

	t.Run("unusable database", func(t *testing.T) {
		asn := geotest.WriteFile(t, "GeoLite2-ASN", geotest.StandardEntries)
		wantBadInput(t, runCLI(t, nil, "geoip", "lookup", "--geoip-db", asn, "1.0.16.1"), "", "not a Country or City database")
		notMMDB := writeTemp(t, "x.mmdb", []byte("text"))
		wantBadInput(t, runCLI(t, nil, "geoip", "lookup", "--geoip-db", notMMDB, "1.0.16.1"), "", "not a readable MaxMind DB")
	})

	t.Run("addresses", func(t *testing.T) {
		const build = "2026-01-02T03:04:05Z"
		if got := geotest.BuildTime.Format("2006-01-02T15:04:05Z"); got != build {
			t.Fatalf("geotest.BuildTime changed: %s", got)
		}
		want := []lookupLine{
			{IP: "1.0.16.1", Country: "CN", Known: true, Network: "1.0.16.0/20"},
			{IP: "147.8.1.1", Country: "HK", Known: true, Network: "147.8.0.0/16"},
			{IP: "10.0.0.1", Reason: "private"},
			{IP: "192.168.1.1", Reason: "private"},
			{IP: "9.9.9.9", Reason: "not_listed"},
			{IP: "101.32.1.1", Country: "HK", Known: true, Network: "101.32.0.0/14", Registered: "CN"},
			{IP: "45.112.0.1", Reason: "no_country", Network: "45.112.0.0/16", Registered: "CN"},
			{IP: "104.16.0.1", Reason: "anycast", Network: "104.16.0.0/13"},
			{IP: "60.246.1.1", Country: "MO", Known: true, Network: "60.246.0.0/16"},
			{IP: "168.95.1.1", Country: "TW", Known: true, Network: "168.95.0.0/16"},
			{IP: "::ffff:1.0.16.1", Country: "CN", Known: true, Network: "1.0.16.0/20"},
			{IP: "2408:8000::1", Country: "CN", Known: true, Network: "2408:8000::/20"},
		}
		checkLookup(t, db, geotest.StandardType, want)
	})

	t.Run("subdivisions", func(t *testing.T) {
		checkLookup(t, geotest.StandardCity(t), geotest.StandardCityType, []lookupLine{
			{IP: "91.200.1.1", Country: "UA", Subdivisions: []string{"UA-43"}, Known: true, Network: "91.200.0.0/16"},
			{IP: "81.2.69.142", Country: "GB", Subdivisions: []string{"GB-ENG", "GB-LND"}, Known: true, Network: "81.2.69.0/24"},
			{IP: "91.203.1.1", Country: "UA", Known: true, Network: "91.203.0.0/16"},
			{IP: "147.8.1.1", Country: "HK", Known: true, Network: "147.8.0.0/16"},
		})
	})
}

// checkLookup runs geoip lookup on the addresses of want against db and
// compares the lines.
func checkLookup(t *testing.T, db, dbType string, want []lookupLine) {
	t.Helper()
	{
		const build = "2026-01-02T03:04:05Z"
		args := []string{"geoip", "lookup", "--geoip-db", db}
		for i := range want {
			args = append(args, want[i].IP)
			want[i].Database, want[i].Build = dbType, build
		}
		res := runCLI(t, nil, args...)
		if res.code != 0 || res.stderr != "" {
			t.Fatalf("want exit 0 and empty stderr, got %v", res)
		}
		sc := bufio.NewScanner(strings.NewReader(res.stdout))
		i := 0
		for ; sc.Scan(); i++ {
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			var got lookupLine
			if err := dec.Decode(&got); err != nil {
				t.Errorf("line %d is not a lookup result: %v: %s", i+1, err, sc.Text())
				continue
			}
			if i >= len(want) {
				t.Errorf("unexpected line %d: %s", i+1, sc.Text())
				continue
			}
			if !reflect.DeepEqual(got, want[i]) {
				t.Errorf("line %d:\n got %+v\nwant %+v", i+1, got, want[i])
			}
		}
		if i != len(want) {
			t.Errorf("%d lines, want one per address (%d):\n%s", i, len(want), res.stdout)
		}
	}
}

// TestUsageMistakesExitTwo: wrong subcommands and arguments are bad input.
func TestUsageMistakesExitTwo(t *testing.T) {
	for _, args := range [][]string{{"no-such-command"}, {"geoip", "lookup"}, {"geoip", "lookup", "--nope", "8.8.8.8"}} {
		wantBadInput(t, runCLI(t, nil, args...), "")
	}
	// A command that takes no arguments says so, naming the argument.
	for _, args := range [][]string{{"version", "extra"}, {"ledger", "export", "extra"}, {"report", "extra"}, {"serve", "extra"}, {"probe", "extra"}} {
		wantBadInput(t, runCLI(t, nil, args...), "", `unexpected argument "extra"`)
	}
}

// decide gives the policy the same deadline a server does: a policy that
// never finishes is an error (exit 1) naming the deadline, not a hang.
func TestDecideEvalTimeout(t *testing.T) {
	t.Parallel()
	req := writeTemp(t, "request.json", june4b)
	// Without a deadline the spinning policy would run until killed here.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, geoscopeBin, "decide", "--input", req, "--geoip-db", geotest.Standard(t),
		"--bundle", spinBundle, "--bundle", registryDir, "--eval-timeout", "300ms")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatal("decide did not stop at --eval-timeout")
	}
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "timed out") {
		t.Errorf("want exit 1 naming the timeout, got %v: %s", err, stderr.String())
	}
	// It names the deadline and the flag, and what a server does past it.
	if !strings.Contains(stderr.String(), "--eval-timeout 300ms") || !strings.Contains(stderr.String(), "503 eval_timeout") {
		t.Errorf("stderr %q: want the deadline (--eval-timeout 300ms) and the server's answer past it", stderr.String())
	}
}

// decide --at decides as of another time; a malformed time is bad input
// naming the flag, and a decision as of another time is never recorded.
func TestDecideAt(t *testing.T) {
	t.Parallel()
	db := geotest.Standard(t)
	req := []byte(`{"meeting": {"id": "town-hall-2026", "host": {"account_id": "acct-us-t", "account_country": "US"},
	  "participants": [{"id": "cn-01", "ip": "1.0.23.1"}]}}`)
	bundles := []string{"--bundle", "../policies", "--bundle", "scenarios/registries/orders-2026"}
	decideAt := func(at string, extra ...string) cliResult {
		args := append([]string{"decide", "--geoip-db", db, "--at", at}, bundles...)
		return runCLI(t, req, append(args, extra...)...)
	}
	for at, want := range map[string][]string{
		"2026-12-31T23:59:59Z":      {"CN-2026-0101", "CN-2026-0701", "UA-2022-0301"},
		"2027-01-01":                {"CN-2026-0701", "UA-2022-0301"},
		"2026-06-30T23:59:59+08:00": {"CN-2026-0101", "UA-2022-0301"},
	} {
		res := decideAt(at)
		if res.code != 0 {
			t.Fatalf("--at %s: %v", at, res)
		}
		var d decision.Decision
		if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.OrderIDs, want) {
			t.Errorf("--at %s: order_ids %v, want %v", at, d.OrderIDs, want)
		}
		// The registry lists a subdivision and the database is a Country
		// one: decide says so.
		if !strings.Contains(res.stderr, "locates nobody in a subdivision") || !strings.Contains(res.stderr, "ua.crimea") {
			t.Errorf("--at %s: stderr %q lacks the subdivision warning", at, res.stderr)
		}
	}
	wantBadInput(t, decideAt("yesterday"), "--at", `"yesterday" is neither a date YYYY-MM-DD nor an RFC 3339 date-time`)
	wantBadInput(t, decideAt("2400-01-01"), "--at", "outside the years 1900 to 2199")
	res := decideAt("2026-12-31", "--data-dir", t.TempDir())
	wantBadInput(t, res, "", "--at decides as of another time and cannot be recorded in a ledger")
}

// TestDecideLimits: decide takes what a server takes, by default serve's
// --max-body and --max-participants, so that a request piped in from
// elsewhere cannot take the machine's memory; over either, it exits 2
// naming the flag that would let it through.
func TestDecideLimits(t *testing.T) {
	db := geotest.Standard(t)
	five := requestWith(`{"id": "p0", "ip": "1.0.16.1"}, {"id": "p1", "ip": "1.0.16.2"}, {"id": "p2", "ip": "8.8.8.8"}, {"id": "p3", "ip": "8.8.8.9"}, {"id": "p4", "ip": "147.8.1.1"}`, "")
	refused := func(what string, res cliResult, contains ...string) {
		t.Helper()
		if res.code != 2 {
			t.Errorf("%s: want exit 2, got %s", what, res)
		}
		for _, c := range contains {
			if !strings.Contains(res.stderr, c) {
				t.Errorf("%s: stderr does not say %q: %s", what, c, res.stderr)
			}
		}
	}
	refused("five participants under --max-participants 3", runCLI(t, []byte(five), "decide", "--geoip-db", db, "--max-participants", "3"),
		"meeting.participants: 5 participants exceed the limit of 3", "raise --max-participants")
	if res := runCLI(t, []byte(five), "decide", "--geoip-db", db, "--max-participants", "5"); res.code != 0 {
		t.Errorf("five participants under --max-participants 5: %s", res)
	}
	file := writeTemp(t, "request.json", []byte(five))
	refused("a file over --max-body", runCLI(t, nil, "decide", "--geoip-db", db, "--input", file, "--max-body", "100"),
		file+": more than --max-body 100 bytes", "raise --max-body")
	refused("stdin over --max-body", runCLI(t, []byte(five), "decide", "--geoip-db", db, "--max-body", "100"),
		"stdin: more than --max-body 100 bytes")
	refused("--max-body 0", runCLI(t, []byte(five), "decide", "--geoip-db", db, "--max-body", "0"), "--max-body 0")
	refused("--max-participants -1", runCLI(t, []byte(five), "decide", "--geoip-db", db, "--max-participants", "-1"), "--max-participants -1")

	// The default is serve's: a request padded to exactly 4 MiB is
	// decided, one byte more is not.
	padded := func(size int) []byte {
		return append([]byte(five), bytes.Repeat([]byte(" "), size-len(five))...)
	}
	if res := runCLI(t, padded(4<<20), "decide", "--geoip-db", db); res.code != 0 {
		t.Errorf("a request of exactly the default --max-body: %s", res)
	}
	refused("a request a byte over the default --max-body", runCLI(t, padded(4<<20+1), "decide", "--geoip-db", db),
		"more than --max-body 4194304 bytes")
}
