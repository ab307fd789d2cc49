package tests

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/internal/proctest"
)

// Test bundles (relative to tests/).
const (
	// spinBundle's decision spins: forever with standing orders, n*n steps
	// with a preview order whose legal_basis is n.
	spinBundle = "testdata/server/spin"
	// overreachBundle removes everyone and refuses every demand, so the
	// guard blocks the removals outside the jurisdiction.
	overreachBundle = "testdata/server/overreach"
	registryDir     = "../bundles/registry"
)

// june4b is a decision request targeted by standing order CN-2020-0601: a
// US host, a participant in CN (1.0.16.5) and one in HK.
var june4b = []byte(`{"meeting": {"id": "june4-b",
	"host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
	"participants": [{"id": "p-cn", "ip": "1.0.16.5"}, {"id": "p-hk", "ip": "147.8.1.1"}]}}`)

// untargeted is a decision request no order targets: the policy is not
// consulted.
var untargeted = []byte(`{"meeting": {"id": "weekly-sync", "host": {"account_id": "acct-x", "account_country": "DE"},
	"participants": [{"id": "p1", "ip": "85.214.1.1"}]}}`)

// admissionCN asks whether a participant located in CN may join meeting
// june4-d of targeted account acct-us-d.
var admissionCN = []byte(`{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}},
	"participant": {"id": "joiner-cn", "ip": "36.110.44.4"}}`)

// TestServerScenarios posts every scenario to the real server, with the
// embedded bundles and with the bundle directories, and checks the
// decisions exactly as the in-process and CLI runs are checked; the
// join-time scenarios are also asked through /v1/admission.
func TestServerScenarios(t *testing.T) {
	t.Parallel()
	scenarios := loadScenarios(t)
	dbs := newScenarioDBs(t)
	// Servers are started on first use, one for each set of options the
	// scenarios ask for (phone location, registry, GeoIP database), with
	// the embedded bundles and with the bundle directories. A server
	// decides now: the scenarios decided at a fixed time are left to the
	// in-process and command-line runs.
	servers := map[string]*serverProc{}
	server := func(sc *scenario, embedded bool) *serverProc {
		args := []string{"--geoip-db", dbs[sc.Options.GeoIP]}
		for _, b := range sc.bundles(embedded) {
			args = append(args, "--bundle", b)
		}
		if sc.Options.LocatePhoneNumbers {
			args = append(args, "--locate-phone-numbers")
		}
		key := strings.Join(args, " ")
		if servers[key] == nil {
			servers[key] = startServe(t, serveOpts{args: args})
		}
		return servers[key]
	}
	admissions, decided := 0, 0
	for _, variant := range []struct {
		name     string
		embedded bool
	}{{"embedded", true}, {"bundle-dirs", false}} {
		t.Run(variant.name, func(t *testing.T) {
			for _, sc := range scenarios {
				if sc.Options.Time != "" {
					continue
				}
				decided++
				t.Run(sc.Name, func(t *testing.T) {
					proc := server(sc, variant.embedded)
					r := proc.post("/v1/decisions", "", sc.reqJSON)
					if r.status != http.StatusOK {
						t.Fatalf("POST /v1/decisions: %s", r)
					}
					d, raw := decodeCLIDecision(t, string(r.body))
					checkDecision(t, sc, d, raw)
					checkInvariants(t, sc, d)

					// The join-time question, when the scenario is one.
					body := admissionQuestion(t, sc)
					if body == nil {
						return
					}
					admissions++
					ar := proc.post("/v1/admission", "", body)
					if ar.status != http.StatusOK {
						t.Fatalf("POST /v1/admission: %s", ar)
					}
					var a struct {
						DecisionID string            `json:"decision_id"`
						Allow      bool              `json:"allow"`
						Actions    []decision.Action `json:"actions"`
						OrderIDs   []string          `json:"order_ids"`
						Bundles    map[string]string `json:"bundles"`
					}
					dec := json.NewDecoder(bytes.NewReader(ar.body))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&a); err != nil {
						t.Fatalf("admission answer %s: %v", ar.body, err)
					}
					if a.Allow != *sc.Expect.AllowJoin {
						t.Errorf("admission allow = %v, want %v", a.Allow, *sc.Expect.AllowJoin)
					}
					var want, got []expAction
					for _, x := range *sc.Expect.Actions {
						if x.Type == decision.DenyJoin {
							want = append(want, x)
						}
					}
					for _, x := range a.Actions {
						got = append(got, gotAction(x))
					}
					compareSets(t, "admission actions", want, got, compareString[expAction])
					compareSets(t, "admission order_ids", *sc.Expect.OrderIDs, a.OrderIDs, strings.Compare)
				})
			}
		})
	}
	if admissions == 0 || decided == 0 {
		t.Errorf("%d scenarios decided and %d asked through /v1/admission; want some of each", decided, admissions)
	}
}

// TestServerErrors produces every client error over HTTP. A client mistake
// is never answered with a 5xx.
func TestServerErrors(t *testing.T) {
	t.Parallel()
	const maxBody = 64 << 10
	p := startServe(t, serveOpts{args: []string{"--geoip-db", geotest.Standard(t), "--max-body", fmt.Sprint(maxBody), "--max-participants", "5"}})

	participants := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id": "p%d", "ip": "8.8.8.%d"}`, i, i+1)
		}
		return b.String()
	}
	meeting := func(parts string) string {
		return `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [` + parts + `]}}`
	}
	cases := []struct {
		name, method, path, contentType, body string
		status                                int
		code, field                           string
	}{
		{"bad JSON", "POST", "/v1/decisions", "application/json", `{"meeting": {"id": "m",`, 400, "invalid_input", ""},
		{"trailing data", "POST", "/v1/decisions", "application/json", meeting("") + ` {}`, 400, "invalid_input", ""},
		{"empty body", "POST", "/v1/decisions", "application/json", ``, 400, "invalid_input", ""},
		{"unknown field", "POST", "/v1/decisions", "application/json", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "colour": "red"}}`, 400, "invalid_input", "meeting.colour"},
		{"wrong type", "POST", "/v1/decisions", "application/json", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": 1, "ip": "8.8.8.8"}]}}`, 400, "invalid_input", "meeting.participants[0].id"},
		{"bad IP", "POST", "/v1/decisions", "application/json", meeting(`{"id": "a", "ip": "8.8.8.8"}, {"id": "b", "ip": "8.8.8.256"}`), 400, "invalid_input", "meeting.participants[1].ip"},
		{"bad host IP", "POST", "/v1/decisions", "application/json", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "host.example"}}}`, 400, "invalid_input", "meeting.host.ip"},
		{"duplicate id", "POST", "/v1/decisions", "application/json", meeting(`{"id": "a", "ip": "8.8.8.8"}, {"id": "a", "ip": "8.8.8.9"}`), 400, "invalid_input", "meeting.participants[1].id"},
		{"missing meeting id", "POST", "/v1/decisions", "application/json", `{"meeting": {"host": {"account_id": "a"}}}`, 400, "invalid_input", "meeting.id"},
		{"missing participant id", "POST", "/v1/decisions", "application/json", meeting(`{"ip": "8.8.8.8"}`), 400, "invalid_input", "meeting.participants[0].id"},
		{"admission bad IP", "POST", "/v1/admission", "application/json", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "1.2.3"}}`, 400, "invalid_input", "participant.ip"},
		{"admission unknown field", "POST", "/v1/admission", "application/json", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}, "participant": {"id": "p", "ip": "8.8.8.8"}}`, 400, "invalid_input", "meeting.participants"},
		{"text/plain", "POST", "/v1/decisions", "text/plain", string(june4b), 415, "unsupported_media_type", "Content-Type"},
		{"no content type", "POST", "/v1/decisions", "", string(june4b), 415, "unsupported_media_type", "Content-Type"},
		{"form", "POST", "/v1/admission", "application/x-www-form-urlencoded", "a=b", 415, "unsupported_media_type", "Content-Type"},
		{"too many participants", "POST", "/v1/decisions", "application/json", meeting(participants(6)), 413, "too_large", "meeting.participants"},
		{"too many participants, of two bytes each", "POST", "/v1/decisions", "application/json", meeting("{}" + strings.Repeat(",{}", 9999)), 413, "too_large", "meeting.participants"},
		{"too many participants, null ones", "POST", "/v1/decisions", "application/json", meeting(strings.Repeat("null,", 9999) + "null"), 413, "too_large", "meeting.participants"},
		{"body over max-body", "POST", "/v1/decisions", "application/json", meeting(participants(5)) + strings.Repeat(" ", maxBody), 413, "too_large", "body"},
		{"admission body over max-body", "POST", "/v1/admission", "application/json", strings.Repeat(" ", maxBody+1), 413, "too_large", "body"},
		{"not found", "GET", "/v1/nothing", "", "", 404, "not_found", ""},
		{"not found, POST", "POST", "/v1/decision", "application/json", string(june4b), 404, "not_found", ""},
		{"trailing slash", "POST", "/v1/decisions/", "application/json", string(june4b), 404, "not_found", ""},
		{"method not allowed", "GET", "/v1/decisions", "", "", 405, "method_not_allowed", ""},
		{"method not allowed, PUT", "PUT", "/v1/admission", "application/json", string(admissionCN), 405, "method_not_allowed", ""},
		{"method not allowed, DELETE", "DELETE", "/health", "", "", 405, "method_not_allowed", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" || tc.method == "POST" {
				body = []byte(tc.body)
			}
			r := p.mustDo(tc.method, tc.path, "", tc.contentType, body)
			if r.status >= 500 {
				t.Errorf("a client error was answered %d: %s", r.status, r)
			}
			wantError(t, r, tc.status, tc.code, tc.field)
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}
	// The server is unharmed.
	if r := p.post("/v1/decisions", "", june4b); r.status != 200 {
		t.Errorf("a valid request after the errors: %s", r)
	}
}

// TestServerAnswerOverMaxResponse: an answer over --max-response is refused
// as the doing of whoever made it. A preview's answer is about the order
// the request submitted, so it is the client's (413 naming what to
// change), never a 5xx; and a refused answer is not recorded. The bound
// holds for what is sent: the Data API's envelope, and what its client
// asked for beside the decision (?pretty's indentation, ?provenance,
// ?metrics), which is the client's doing too (413 naming the parameter).
func TestServerAnswerOverMaxResponse(t *testing.T) {
	t.Parallel()
	p := startServe(t, serveOpts{args: []string{"--geoip-db", geotest.Standard(t), "--max-response", "1024"}})
	// An order of an authority the registry does not know: each of its
	// two demands is refused, citing the order's id.
	preview := func(id string) string {
		return `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
			"participants": [{"id": "p1", "ip": "1.0.16.1"}, {"id": "p2", "ip": "8.8.8.8"}]},
			"order": {"id": "` + id + `", "authority": "xx.unknown", "demands": ["end_meeting", "suspend_account"], "targets": {"meetings": ["june4-b"]}}}`
	}
	roster := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `,{"id": "cn-%d", "ip": "1.0.16.%d"}`, i, i+1)
		}
		return `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [` + b.String()[1:] + `]}}`
	}
	long := strings.Repeat("O", 256)
	const limit = 1024
	data := func(body string) string { return `{"input": ` + body + `}` }
	untargeted := `{"meeting": {"id": "weekly", "host": {"account_id": "a", "account_country": "DE"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]}}`
	// About 810 bytes in the envelope: room for the decision, not for the
	// timers as well.
	midsize := preview("PV-" + strings.Repeat("P", 30))
	// A preview whose answer alone fits, 20 to 30 bytes short of the
	// limit, and in OPA's envelope (70 bytes more) does not: its order id,
	// cited in order_ids and in both refusals, sized from a short one's.
	short := p.post("/v1/decisions", "", []byte(preview("PV-1")))
	if short.status != 200 {
		t.Fatalf("a short preview: %s", short)
	}
	edge := preview("PV-" + strings.Repeat("E", (limit-24-len(short.body))/3+1))
	entries := func() int {
		r := p.get("/v1/ledger?limit=1000", "")
		var page struct {
			Entries []json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal(r.body, &page); r.status != 200 || err != nil {
			t.Fatalf("GET /v1/ledger: %s (%v)", r, err)
		}
		return len(page.Entries)
	}
	cases := []struct {
		name, path, body string
		status           int
		code, field      string
	}{
		{"preview within the limit", "/v1/decisions", preview("PV-1"), 200, "", ""},
		{"preview with a long order id", "/v1/decisions", preview(long), 413, "too_large", "order.id"},
		{"preview with a long order id, Data API", "/v1/data/geoscope/decision", `{"input": ` + preview(long) + `}`, 413, "too_large", "input.order.id"},
		{"roster whose actions exceed the limit", "/v1/decisions", roster(8), 413, "too_large", "meeting.participants"},
		{"Data API preview within the limit", "/v1/data/geoscope/decision", data(preview("PV-1")), 200, "", ""},
		{"Data API preview indented past the limit", "/v1/data/geoscope/decision?pretty", data(preview("PV-1")), 413, "too_large", "pretty"},
		{"Data API preview indented past the limit, pretty=TRUE", "/v1/data/geoscope/decision?pretty=TRUE&metrics=false", data(preview("PV-1")), 413, "too_large", "pretty"},
		{"Data API preview with provenance", "/v1/data/geoscope/decision?provenance=true", data(preview("PV-1")), 200, "", ""},
		{"Data API preview with provenance and timers past the limit", "/v1/data/geoscope/decision?provenance=true&metrics=true", data(preview("PV-1")), 413, "too_large", "provenance"},
		{"preview just within the limit", "/v1/decisions", edge, 200, "", ""},
		{"the same preview in OPA's envelope", "/v1/data/geoscope/decision", data(edge), 413, "too_large", "input.order.id"},
		{"Data API answer within the limit", "/v1/data/geoscope/decision", data(midsize), 200, "", ""},
		{"Data API answer with timers past the limit", "/v1/data/geoscope/decision?metrics", data(midsize), 413, "too_large", "metrics"},
		{"Data API small answer indented", "/v1/data/geoscope/decision?pretty", data(untargeted), 200, "", ""},
		{"Data API small answer with provenance and timers", "/v1/data/geoscope/decision?provenance&metrics", data(untargeted), 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := entries()
			r := p.request(t, http.MethodPost, tc.path, "", "application/json", []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r)
			}
			recorded := entries() - before
			if tc.status == 200 {
				want := 1
				if tc.body == data(untargeted) {
					want = 0 // a meeting no order targets: counted, not recorded one by one
				}
				if recorded != want {
					t.Errorf("%d entries recorded for an answered decision, want %d", recorded, want)
				}
				if len(r.body) > limit {
					t.Errorf("answered %d bytes, over --max-response %d", len(r.body), limit)
				}
				return
			}
			if recorded != 0 {
				t.Errorf("%d entries recorded for a decision that was not answered", recorded)
			}
			var e struct {
				Code   string `json:"code"`
				Field  string `json:"field"`
				Errors []struct {
					Code  string `json:"code"`
					Field string `json:"field"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil {
				t.Fatalf("error body %s: %v", r, err)
			}
			if len(e.Errors) == 1 { // OPA's shape: geoscope's error inside
				e.Code, e.Field = e.Errors[0].Code, e.Errors[0].Field
			}
			if e.Code != tc.code || e.Field != tc.field {
				t.Errorf("%s %q, want %s %q: %s", e.Code, e.Field, tc.code, tc.field, r)
			}
		})
	}
}

// TestServerDeclaredLengthIsNotAllocated: under a --max-body larger than
// the machine's memory, a Content-Length is not allocated before its
// bytes arrive. A client that declared a terabyte and sent two bytes
// killed the server (out of memory), and one that declared 2^62 was
// answered 500 (a panic in make).
func TestServerDeclaredLengthIsNotAllocated(t *testing.T) {
	t.Parallel()
	p := startServe(t, serveOpts{args: []string{"--geoip-db", geotest.Standard(t), "--ledger", "off", "--max-body", fmt.Sprint(int64(math.MaxInt64))}})
	for _, declared := range []int64{1 << 62, 1 << 40, 100 << 20} {
		t.Run(fmt.Sprint(declared), func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(conn, "POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{}", p.addr, declared)
			_ = conn.(*net.TCPConn).CloseWrite() // the body ends there
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			wantError(t, httpResult{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}, 400, "invalid_input", "body")
		})
	}
	if r := p.post("/v1/decisions", "", june4b); r.status != 200 {
		t.Errorf("a valid request after the errors: %s", r)
	}
}

// TestServerTooLargeBodyIsNotRead checks that an oversized body is refused
// without being read: declared by Content-Length, and sent chunked (no
// length) through a pipe of 64 MiB.
func TestServerTooLargeBodyIsNotRead(t *testing.T) {
	t.Parallel()
	const maxBody = 64 << 10
	p := startServe(t, serveOpts{args: []string{"--geoip-db", geotest.Standard(t), "--max-body", fmt.Sprint(maxBody)}})

	t.Run("content-length", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		// A declared gigabyte, of which nothing is sent: the answer must
		// come from the header alone.
		fmt.Fprintf(conn, "POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", p.addr, 1<<30)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer before the body was sent: %v", err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		wantError(t, httpResult{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}, 413, "too_large", "body")
		if !resp.Close {
			t.Error("the connection is not closed after refusing a declared oversized body")
		}
	})

	t.Run("chunked", func(t *testing.T) {
		const total = 64 << 20
		conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := fmt.Fprintf(conn, "POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", p.addr); err != nil {
			t.Fatal(err)
		}
		var sent atomic.Int64
		writeDone := make(chan error, 1)
		go func() {
			chunk := append([]byte(fmt.Sprintf("%x\r\n", 32<<10)), bytes.Repeat([]byte(" "), 32<<10)...)
			chunk = append(chunk, "\r\n"...)
			for sent.Load() < total {
				if _, err := conn.Write(chunk); err != nil {
					writeDone <- err
					return
				}
				sent.Add(32 << 10)
			}
			_, err := conn.Write([]byte("0\r\n\r\n"))
			writeDone <- fmt.Errorf("the whole body was accepted (%v)", err)
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer while the body was being sent (%d bytes sent): %v", sent.Load(), err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		wantError(t, httpResult{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}, 413, "too_large", "body")
		select {
		case err := <-writeDone:
			n := sent.Load()
			t.Logf("the server cut the upload off after %.1f MiB (%v)", float64(n)/(1<<20), err)
			if n >= total {
				t.Errorf("the server accepted the whole %d MiB body", total>>20)
			} else if n > 24<<20 {
				t.Errorf("the server accepted %.1f MiB of a body over a %d KiB limit before cutting it off", float64(n)/(1<<20), maxBody>>10)
			}
		case <-time.After(25 * time.Second):
			t.Fatalf("the upload was neither cut off nor finished after 25s (%d bytes sent)", sent.Load())
		}
	})

	// The server keeps serving.
	if r := p.post("/v1/decisions", "", june4b); r.status != 200 {
		t.Errorf("a valid request afterwards: %s", r)
	}
}

// TestServerNotReadyUntilGeoIPFixed starts with a corrupt GeoIP database:
// the server is up but not ready, refuses decisions with not_ready, and
// becomes ready without a restart once the file is replaced with a valid
// database.
func TestServerNotReadyUntilGeoIPFixed(t *testing.T) {
	t.Parallel()
	dbPath := filepath.Join(t.TempDir(), "country.mmdb")
	if err := os.WriteFile(dbPath, []byte("this is not a MaxMind database"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, serveOpts{args: []string{"--geoip-db", dbPath}})

	e := wantError(t, p.get("/ready", ""), 503, "not_ready", "")
	if !strings.Contains(e.Message, "GeoIP") {
		t.Errorf("/ready does not say the GeoIP database is missing: %q", e.Message)
	}
	wantError(t, p.post("/v1/decisions", "", june4b), 503, "not_ready", "")
	wantError(t, p.post("/v1/admission", "", admissionCN), 503, "not_ready", "")
	var st struct {
		Ready      bool            `json:"ready"`
		NotReady   string          `json:"not_ready"`
		GeoIP      json.RawMessage `json:"geoip"`
		GeoIPError *struct {
			At    time.Time `json:"at"`
			Error string    `json:"error"`
		} `json:"geoip_error"`
	}
	r := p.get("/v1/status", "")
	if r.status != 200 {
		t.Fatalf("/v1/status: %s", r)
	}
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.NotReady == "" || st.GeoIPError == nil || st.GeoIP != nil {
		t.Errorf("/v1/status while not ready: %s", r.body)
	}
	if r := p.get("/health", ""); r.status != 200 {
		t.Errorf("/health while not ready: %s", r)
	}

	replaceFile(t, dbPath, geotest.Build(t, geotest.StandardType, geotest.StandardEntries))
	poll(t, pollTimeout, "/ready after fixing the GeoIP database", func() bool { return p.get("/ready", "").status == 200 })
	if r := p.post("/v1/decisions", "", june4b); r.status != 200 {
		t.Errorf("decision once ready: %s", r)
	}
	r = p.get("/v1/status", "")
	st.GeoIPError, st.NotReady, st.GeoIP = nil, "", nil
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.GeoIPError != nil || st.GeoIP == nil {
		t.Errorf("/v1/status once ready: %s", r.body)
	}
}

// TestServerEvalTimeout runs a policy that never finishes: the request is
// answered 503 eval_timeout within the deadline, and the server stays
// healthy.
func TestServerEvalTimeout(t *testing.T) {
	p := startServe(t, serveOpts{args: []string{
		"--geoip-db", geotest.Standard(t), "--bundle", spinBundle, "--bundle", registryDir, "--eval-timeout", "200ms",
	}})
	for _, ep := range []struct {
		path string
		body []byte
	}{{"/v1/decisions", june4b}, {"/v1/admission", admissionCN}, {"/v1/decisions", june4b}} {
		start := time.Now()
		r := p.post(ep.path, "", ep.body)
		elapsed := time.Since(start)
		wantError(t, r, 503, "eval_timeout", "")
		if elapsed > 3*time.Second {
			t.Errorf("POST %s took %v with --eval-timeout 200ms", ep.path, elapsed)
		}
		if elapsed < 200*time.Millisecond {
			t.Errorf("POST %s timed out after %v, before the 200ms deadline", ep.path, elapsed)
		}
	}
	// Healthy afterwards: the evaluations were cancelled, not left running.
	if r := p.get("/health", ""); r.status != 200 {
		t.Errorf("/health: %s", r)
	}
	if r := p.get("/ready", ""); r.status != 200 {
		t.Errorf("/ready: %s", r)
	}
	start := time.Now()
	if r := p.post("/v1/decisions", "", untargeted); r.status != 200 {
		t.Errorf("an untargeted meeting (no evaluation): %s", r)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("an untargeted decision took %v after the timeouts", d)
	}
	samples := scrapeMetrics(t, p, "")
	if v, _ := metricValue(samples, "geoscope_http_requests_total", map[string]string{"endpoint": "/v1/decisions", "code": "503"}); v != 2 {
		t.Errorf("geoscope_http_requests_total{/v1/decisions,503} = %v, want 2", v)
	}
}

// TestServerAuth checks bearer tokens and scopes over HTTP.
func TestServerAuth(t *testing.T) {
	t.Parallel()
	decide, admin := randomToken(t), randomToken(t)
	tokens := writeTokensFile(t, decide, admin)
	db := geotest.Standard(t)
	p := startServe(t, serveOpts{args: []string{"--geoip-db", db, "--tokens-file", tokens}})

	for _, path := range []string{"/v1/status", "/metrics", "/v1/decisions", "/v1/admission"} {
		method, body := http.MethodGet, []byte(nil)
		if path == "/v1/decisions" {
			method, body = http.MethodPost, june4b
		}
		if path == "/v1/admission" {
			method, body = http.MethodPost, admissionCN
		}
		send := func(token string) httpResult {
			ct := ""
			if body != nil {
				ct = "application/json"
			}
			return p.mustDo(method, path, token, ct, body)
		}
		t.Run(path, func(t *testing.T) {
			r := send("")
			wantError(t, r, 401, "unauthorized", "")
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="geoscope"` {
				t.Errorf("missing token: WWW-Authenticate %q", got)
			}
			r = send(randomToken(t))
			wantError(t, r, 401, "unauthorized", "")
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
				t.Errorf("wrong token: WWW-Authenticate %q", got)
			}
			// Not a bearer token at all.
			r = p.mustDo(method, path, "", "", nil)
			if r.status != 401 {
				t.Errorf("no Authorization: %s", r)
			}
			req, _ := http.NewRequest(method, p.base+path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Basic "+decide)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := p.client.Do(req); err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
				if resp.StatusCode != 401 {
					t.Errorf("Basic scheme: %d, want 401", resp.StatusCode)
				}
			}
			admin200 := send(admin)
			if admin200.status != 200 {
				t.Errorf("admin token: %s", admin200)
			}
			r = send(decide)
			if strings.HasPrefix(path, "/v1/decisions") || strings.HasPrefix(path, "/v1/admission") {
				if r.status != 200 {
					t.Errorf("decide token: %s", r)
				}
			} else {
				wantError(t, r, 403, "forbidden", "")
			}
		})
	}
	for _, path := range []string{"/health", "/ready", "/openapi.json"} {
		if r := p.get(path, ""); r.status != 200 {
			t.Errorf("%s without a token: %s", path, r)
		}
		if r := p.get(path, "garbage"); r.status != 200 {
			t.Errorf("%s with a wrong token: %s", path, r)
		}
	}

	// Authentication comes first: without a valid token, a path that is
	// not there and a method a path does not answer are 401 like any
	// other request, so a client without a token cannot tell which paths
	// exist. Only a token the path's endpoint accepts (under /v1/data, a
	// decide token; elsewhere any valid one) learns 404 or 405. Under
	// /v1/data the answers keep OPA's shape.
	t.Run("unknown paths and methods", func(t *testing.T) {
		metrics := randomToken(t)
		scoped := writeScopedTokensFile(t, "decide", decide, "admin", admin, "metrics", metrics)
		p := startServe(t, serveOpts{args: []string{"--geoip-db", db, "--tokens-file", scoped}})
		cases := []struct {
			method, path string
			// answers by token: none, a wrong one, decide, metrics, admin
			none, wrong, decide, metrics, admin int
		}{
			{http.MethodGet, "/v1/data", 401, 401, 404, 403, 404},
			{http.MethodPost, "/v1/data/geoscope/registry/violations", 401, 401, 404, 403, 404},
			{http.MethodGet, "/v1/data/geoscope/nope", 401, 401, 404, 403, 404},
			{http.MethodPut, "/v1/data/geoscope/decision", 401, 401, 405, 403, 405},
			{http.MethodDelete, "/v1/data/geoscope/admission", 401, 401, 405, 403, 405},
			{http.MethodGet, "/v2/decisions", 401, 401, 404, 404, 404},
			{http.MethodGet, "/v1/ledger/x/y", 401, 401, 404, 404, 404},
			{http.MethodGet, "/v1/decisions", 401, 401, 405, 403, 405},
			{http.MethodDelete, "/v1/ledger", 401, 401, 403, 403, 405},
			{http.MethodPost, "/v1/ledger/some-id", 401, 401, 403, 403, 405},
			{http.MethodGet, "/v1/admin/reload", 401, 401, 403, 403, 405},
			{http.MethodPost, "/v1/status", 401, 401, 403, 405, 405},
			{http.MethodPost, "/metrics", 401, 401, 403, 405, 405},
			{http.MethodPost, "/v1/report", 401, 401, 403, 403, 405},
			// Open endpoints stay open: their methods are no secret.
			{http.MethodPost, "/health", 405, 405, 405, 405, 405},
			{http.MethodDelete, "/ready", 405, 405, 405, 405, 405},
		}
		codes := map[int]string{401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
		opaCodes := map[int]string{401: "unauthorized", 403: "unauthorized", 404: "resource_not_found", 405: "invalid_operation"}
		for _, c := range cases {
			for _, tk := range []struct {
				name, token string
				want        int
			}{{"no", "", c.none}, {"a wrong", "not-a-token", c.wrong}, {"a decide", decide, c.decide}, {"a metrics", metrics, c.metrics}, {"an admin", admin, c.admin}} {
				want := tk.want
				r := p.mustDo(c.method, c.path, tk.token, "", nil)
				if r.status != want {
					t.Errorf("%s %s with %s token: %s, want %d", c.method, c.path, tk.name, r, want)
					continue
				}
				var e struct {
					Code   string `json:"code"`
					Errors []struct {
						Code string `json:"code"`
					} `json:"errors"`
				}
				if err := json.Unmarshal(r.body, &e); err != nil {
					t.Errorf("%s %s: %s is not JSON", c.method, c.path, r)
					continue
				}
				if strings.HasPrefix(c.path, "/v1/data") {
					if e.Code != opaCodes[want] || len(e.Errors) != 1 || e.Errors[0].Code != codes[want] {
						t.Errorf("%s %s: %s, want OPA's %s with geoscope's %s inside", c.method, c.path, r, opaCodes[want], codes[want])
					}
				} else if e.Code != codes[want] {
					t.Errorf("%s %s: %s, want %s", c.method, c.path, r, codes[want])
				}
				if want == 401 && r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: 401 without WWW-Authenticate", c.method, c.path)
				}
			}
		}
	})

	// RFC 7235 section 2.1: the auth-scheme is case-insensitive, and one
	// or more spaces follow it.
	t.Run("scheme case and spaces", func(t *testing.T) {
		for _, header := range []string{"bearer " + admin, "Bearer  " + admin, "BEARER   " + admin} {
			req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/status", nil)
			req.Header.Set("Authorization", header)
			resp, err := p.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("Authorization %q with a valid admin token: %d, want 200", strings.Replace(header, admin, "ADMIN-TOKEN", 1), resp.StatusCode)
			}
		}
	})

	// Two Authorization headers: refused, whichever comes first; a
	// decide token first and an admin token second used to be answered
	// 403, and the other order 200.
	t.Run("two tokens", func(t *testing.T) {
		for _, order := range [][2]string{{decide, admin}, {admin, decide}, {admin, admin}} {
			req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/status", nil)
			req.Header.Add("Authorization", "Bearer "+order[0])
			req.Header.Add("Authorization", "Bearer "+order[1])
			resp, err := p.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("two Authorization headers: %d, want 401", resp.StatusCode)
			}
		}
	})

	t.Run("public-metrics", func(t *testing.T) {
		pub := startServe(t, serveOpts{args: []string{"--geoip-db", db, "--tokens-file", tokens, "--public-metrics"}})
		for _, path := range []string{"/metrics", "/v1/status"} {
			if r := pub.get(path, ""); r.status != 200 {
				t.Errorf("--public-metrics: %s without a token: %s", path, r)
			}
		}
		wantError(t, pub.post("/v1/decisions", "", june4b), 401, "unauthorized", "")
		if r := pub.post("/v1/decisions", decide, june4b); r.status != 200 {
			t.Errorf("--public-metrics: decide token on /v1/decisions: %s", r)
		}
	})

	t.Run("bad tokens file", func(t *testing.T) {
		for name, content := range map[string]string{
			"empty":         "# nothing\n",
			"unknown scope": "root " + strings.Repeat("ab", 32) + "\n",
			"not a digest":  "decide " + decide + "\n",
		} {
			res := runBounded(t, 20*time.Second, "serve", "--addr", "127.0.0.1:"+proctest.FreePort(t), "--tokens-file", writeTemp(t, "tokens", []byte(content)))
			if res.code != 2 || !strings.Contains(res.stderr, "--tokens-file") {
				t.Errorf("%s tokens file: want exit 2 naming --tokens-file, got %v", name, res)
			}
			if strings.Contains(res.stderr, decide) {
				t.Errorf("%s tokens file: the error repeats the file's content", name)
			}
		}
	})
}

// TestServerMetricsToken: a token with the metrics scope reads /metrics
// and /v1/status, and nothing else; the admin token still reads them.
func TestServerMetricsToken(t *testing.T) {
	t.Parallel()
	decide, admin, metrics := randomToken(t), randomToken(t), randomToken(t)
	tokens := writeScopedTokensFile(t, "decide", decide, "admin", admin, "metrics", metrics)
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t), "--tokens-file", tokens}})

	for _, token := range []string{metrics, admin} {
		if r := p.get("/metrics", token); r.status != 200 || !strings.Contains(string(r.body), "geoscope_http_requests_total") {
			t.Errorf("/metrics: %s", r)
		}
		var st struct {
			Ready  bool            `json:"ready"`
			Ledger json.RawMessage `json:"ledger"`
		}
		if r := p.get("/v1/status", token); r.status != 200 || json.Unmarshal(r.body, &st) != nil || !st.Ready || st.Ledger == nil {
			t.Errorf("/v1/status: %s", r)
		}
	}
	// The decide token has neither.
	wantError(t, p.get("/metrics", decide), 403, "forbidden", "")
	wantError(t, p.get("/v1/status", decide), 403, "forbidden", "")

	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{http.MethodPost, "/v1/decisions", june4b},
		{http.MethodPost, "/v1/admission", admissionCN},
		{http.MethodGet, "/v1/ledger", nil},
		{http.MethodGet, "/v1/ledger/some-decision", nil},
		{http.MethodGet, "/v1/report", nil},
		{http.MethodGet, "/report", nil},
		{http.MethodPost, "/v1/admin/reload", nil},
	} {
		ct := ""
		if c.body != nil {
			ct = "application/json"
		}
		e := wantError(t, p.mustDo(c.method, c.path, metrics, ct, c.body), 403, "forbidden", "")
		if !strings.Contains(e.Message, "scope") {
			t.Errorf("%s %s with a metrics token: the 403 does not name the scope it needs: %q", c.method, c.path, e.Message)
		}
	}
	// The Data API answers OPA's shape, 403 all the same.
	if r := p.post("/v1/data/geoscope/decision", metrics, []byte(`{"input": `+string(june4b)+`}`)); r.status != 403 {
		t.Errorf("/v1/data/geoscope/decision with a metrics token: %s", r)
	}
	// Nothing was decided with it.
	samples := scrapeMetrics(t, p, metrics)
	for _, endpoint := range []string{"/v1/decisions", "/v1/admission"} {
		if v, _ := metricValue(samples, "geoscope_http_requests_total", map[string]string{"endpoint": endpoint, "code": "200"}); v != 0 {
			t.Errorf("geoscope_http_requests_total{%s,200} = %v, want 0", endpoint, v)
		}
	}
}

// TestServerPublicStatus: with --public-metrics, /v1/status asked without
// a token says whether the ledger is healthy but not when it last
// committed or failed, which would tell when each recorded decision was
// made; a metrics or admin token sees the times.
func TestServerPublicStatus(t *testing.T) {
	t.Parallel()
	admin, metrics := randomToken(t), randomToken(t)
	tokens := writeScopedTokensFile(t, "admin", admin, "metrics", metrics)
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t), "--tokens-file", tokens, "--public-metrics"}})
	if r := p.post("/v1/decisions", admin, june4b); r.status != 200 || !strings.Contains(string(r.body), "remove_participant") {
		t.Fatalf("a decision with actions (recorded): %s", r)
	}
	ledger := func(token string) map[string]any {
		t.Helper()
		var st struct {
			Ledger map[string]any `json:"ledger"`
		}
		r := p.get("/v1/status", token)
		if r.status != 200 || json.Unmarshal(r.body, &st) != nil || st.Ledger == nil {
			t.Fatalf("/v1/status: %s", r)
		}
		return st.Ledger
	}
	poll(t, 10*time.Second, "the decision committed", func() bool { return ledger(metrics)["last_commit"] != nil })
	if got := ledger(admin); got["last_commit"] == nil {
		t.Errorf("/v1/status with an admin token: ledger %v, want last_commit", got)
	}
	public := ledger("")
	if public["ok"] != true || public["backend"] != "sqlite" {
		t.Errorf("/v1/status without a token: ledger %v, want ok and its backend", public)
	}
	for _, key := range []string{"last_commit", "last_error_at"} {
		if v, shown := public[key]; shown {
			t.Errorf("/v1/status without a token shows ledger.%s (%v)", key, v)
		}
	}
}

// TestServerNonLoopbackBind: without tokens the server refuses to listen
// beyond loopback, unless --insecure-no-auth, which logs a warning.
func TestServerNonLoopbackBind(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:" + proctest.FreePort(t), ":" + proctest.FreePort(t)} {
		dataDir := filepath.Join(t.TempDir(), "data")
		res := runBoundedEnv(t, 20*time.Second, []string{"GEOSCOPE_DATA_DIR=" + dataDir}, "serve", "--addr", addr)
		if res.code != 2 {
			t.Errorf("serve --addr %s without tokens: exit %d, want 2\n%v", addr, res.code, res)
		}
		line := cliErrorLine(t, res.stderr)
		if !strings.Contains(line, "refusing to listen on "+addr+" without authentication") || !strings.Contains(line, "--tokens-file") ||
			!strings.Contains(line, "--insecure-no-auth") {
			t.Errorf("serve --addr %s: the error does not say what is refused and the remedies: %q", addr, line)
		}
		// A refused configuration leaves nothing behind.
		t.Run("no side effects "+addr, func(t *testing.T) {
			if _, err := os.Stat(dataDir); err == nil {
				t.Fatalf("serve --addr %s (refused, exit 2) first opened the ledger: it created the data directory %s "+
					"with a SQLite database and a generated pseudonymization key, and logged about the key, before "+
					"validating the server configuration; want the configuration refused before any side effect", addr, dataDir)
			}
		})
	}

	p := startServe(t, serveOpts{host: "0.0.0.0", args: []string{"--geoip-db", geotest.Standard(t), "--insecure-no-auth"}})
	// The log is read from the process's stderr as it arrives: /health may
	// answer before the line that precedes it has been read here.
	warned := func() bool {
		for _, rec := range p.logLines() {
			if rec["level"] == "WARN" && strings.Contains(fmt.Sprint(rec["msg"]), "WITHOUT authentication") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(5 * time.Second)
	for !warned() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !warned() {
		t.Errorf("--insecure-no-auth on 0.0.0.0 logged no WARN record about authentication:\n%s", p.logs)
	}
	if r := p.post("/v1/decisions", "", june4b); r.status != 200 {
		t.Errorf("--insecure-no-auth: decisions are open: %s", r)
	}
}

// TestServerGracefulShutdown sends SIGTERM while a request is in flight:
// the listener closes at once, the request still gets its answer, and the
// process exits 0.
func TestServerGracefulShutdown(t *testing.T) {
	p := startServe(t, serveOpts{args: []string{
		"--geoip-db", geotest.Standard(t), "--bundle", spinBundle, "--bundle", registryDir,
		"--eval-timeout", "30s", "--shutdown-timeout", "10s",
	}})
	n, took := calibrateSpin(t, p)
	t.Logf("spin n=%d takes %v", n, took)

	type result struct {
		r   httpResult
		err error
	}
	wrote := make(chan struct{})
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/decisions", bytes.NewReader(spinRequest(n)))
		req.Header.Set("Content-Type", "application/json")
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, err := p.client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(resp.Body)
		done <- result{r: httpResult{status: resp.StatusCode, header: resp.Header, body: buf.Bytes()}, err: err}
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not sent")
	}
	// The request is on the wire; nothing observable marks the moment the
	// server has read it, so give it a moment (the request takes ~1s).
	time.Sleep(50 * time.Millisecond)
	signalled := time.Now()
	p.signal(syscall.SIGTERM)

	// New connections are refused while the request is still in flight.
	poll(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", p.addr, 200*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	refusedAfter := time.Since(signalled)
	select {
	case res := <-done:
		t.Errorf("the request finished (%v) before new connections were refused (%v after SIGTERM); calibration too short?", res.err, refusedAfter)
		done <- res
	default:
	}

	res := <-done
	if res.err != nil {
		t.Fatalf("the request in flight failed: %v", res.err)
	}
	if res.r.status != 200 {
		t.Fatalf("the request in flight: %s", res.r)
	}
	if code := p.waitExit(12 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	logs := p.logs.String()
	for _, msg := range []string{"shutting down", `"msg":"stopped"`} {
		if !strings.Contains(logs, msg) {
			t.Errorf("the log has no %q", msg)
		}
	}

	t.Run("request longer than --shutdown-timeout", func(t *testing.T) {
		p := startServe(t, serveOpts{args: []string{
			"--geoip-db", geotest.Standard(t), "--bundle", spinBundle, "--bundle", registryDir,
			"--eval-timeout", "60s", "--shutdown-timeout", "300ms",
		}})
		wrote := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, p.base+"/v1/decisions", bytes.NewReader(june4b)) // spins forever
			req.Header.Set("Content-Type", "application/json")
			trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
			resp, err := p.client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("answered %d", resp.StatusCode)
			}
			done <- err
		}()
		<-wrote
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		p.signal(syscall.SIGTERM)
		code := p.waitExit(10 * time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("exited %v after SIGTERM with --shutdown-timeout 300ms", d)
		}
		if code == 0 {
			t.Error("exit 0 although a request was cut off by --shutdown-timeout")
		}
		if !strings.Contains(p.logs.String(), "--shutdown-timeout 300ms passed with requests in flight (1)") {
			t.Errorf("the exit does not say --shutdown-timeout cut requests off:\n%s", p.logs.String())
		}
		select {
		case err := <-done:
			t.Logf("the cut-off request: %v", err)
		case <-time.After(10 * time.Second):
			t.Error("the cut-off request did not end with the process")
		}
	})
}

// spinRequest previews an order whose legal_basis is the spin policy's n.
func spinRequest(n int) []byte {
	return []byte(fmt.Sprintf(`{"meeting": {"id": "slow-meeting", "host": {"account_id": "acct-slow"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]},
		"order": {"id": "SLOW-1", "authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["slow-meeting"]}, "legal_basis": "%d"}}`, n))
}

// calibrateSpin finds n for which the spin policy takes about a second on
// this machine (the work is n*n steps).
func calibrateSpin(t *testing.T, p *serverProc) (int, time.Duration) {
	t.Helper()
	measure := func(n int) time.Duration {
		start := time.Now()
		r := p.post("/v1/decisions", "", spinRequest(n))
		if r.status != 200 {
			t.Fatalf("spin n=%d: %s", n, r)
		}
		return time.Since(start)
	}
	n := 200
	d := measure(n)
	for range 6 {
		if d >= 700*time.Millisecond && d <= 1500*time.Millisecond {
			break
		}
		scale := math.Sqrt(float64(time.Second) / float64(max(d, time.Millisecond)))
		n = min(max(int(float64(n)*min(scale, 10)), 10), 999_999)
		d = measure(n)
	}
	if d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("could not calibrate the spin policy to ~1s (n=%d takes %v)", n, d)
	}
	return n, d
}

// TestServerGeoIPHotSwap replaces the GeoIP database file under a running
// server: a valid replacement is swapped in, a corrupt one is rejected and
// the last good database keeps answering.
func TestServerGeoIPHotSwap(t *testing.T) {
	t.Parallel()
	cn := geotest.Build(t, "GeoIP2-Country", []geotest.Entry{
		{Network: "1.0.16.0/20", Country: "CN"}, {Network: "147.8.0.0/16", Country: "HK"}, {Network: "8.8.8.0/24", Country: "US"},
	})
	hk := geotest.Build(t, "GeoLite2-Country", []geotest.Entry{
		{Network: "1.0.16.0/20", Country: "HK"}, {Network: "147.8.0.0/16", Country: "HK"}, {Network: "8.8.8.0/24", Country: "US"},
	})
	dbPath := filepath.Join(t.TempDir(), "country.mmdb")
	if err := os.WriteFile(dbPath, cn, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, serveOpts{args: []string{"--geoip-db", dbPath}})

	decide := func() *decision.Decision {
		t.Helper()
		r := p.post("/v1/decisions", "", june4b)
		if r.status != 200 {
			t.Fatalf("decision: %s", r)
		}
		var d decision.Decision
		if err := json.Unmarshal(r.body, &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	removed := func(d *decision.Decision) []string {
		var ids []string
		for _, a := range d.Actions {
			if a.Type == decision.RemoveParticipant {
				ids = append(ids, a.ParticipantID+"@"+a.Country)
			}
		}
		return ids
	}

	d := decide()
	if d.Geo.Database != "GeoIP2-Country" || !slices.Equal(removed(d), []string{"p-cn@CN"}) {
		t.Fatalf("with the first database: geo %v, removed %v; want GeoIP2-Country and p-cn@CN", d.Geo, removed(d))
	}

	replaceFile(t, dbPath, hk)
	poll(t, pollTimeout, "the replacement database to be used", func() bool { return decide().Geo.Database == "GeoLite2-Country" })
	if d := decide(); len(removed(d)) != 0 {
		t.Errorf("1.0.16.5 is in HK now; removed %v", removed(d))
	}

	replaceFile(t, dbPath, []byte("garbage, not a database"))
	type status struct {
		Ready bool `json:"ready"`
		GeoIP *struct {
			Source   string `json:"source"`
			Database string `json:"database"`
		} `json:"geoip"`
		GeoIPError *struct {
			At    time.Time `json:"at"`
			Error string    `json:"error"`
		} `json:"geoip_error"`
	}
	var st status
	poll(t, pollTimeout, "the corrupt database to be rejected", func() bool {
		r := p.get("/v1/status", "")
		st = status{}
		return r.status == 200 && json.Unmarshal(r.body, &st) == nil && st.GeoIPError != nil
	})
	if !st.Ready || st.GeoIP == nil || st.GeoIP.Database != "GeoLite2-Country" || st.GeoIP.Source != dbPath {
		t.Errorf("after a rejected database the status is %+v; want ready with the GeoLite2-Country database", st)
	}
	if st.GeoIPError.Error == "" || time.Since(st.GeoIPError.At) > time.Minute {
		t.Errorf("geoip_error = %+v", st.GeoIPError)
	}
	if d := decide(); d.Geo.Database != "GeoLite2-Country" || len(removed(d)) != 0 {
		t.Errorf("after a rejected database: geo %v, removed %v; want the last good database", d.Geo, removed(d))
	}
	if r := p.get("/ready", ""); r.status != 200 {
		t.Errorf("/ready after a rejected database: %s", r)
	}
	samples := scrapeMetrics(t, p, "")
	if v, ok := metricValue(samples, "geoscope_geoip_last_failure_timestamp_seconds", nil); !ok || math.Abs(v-float64(time.Now().Unix())) > 120 {
		t.Errorf("geoscope_geoip_last_failure_timestamp_seconds = %v (present %v), want about now", v, ok)
	}
	if v, ok := metricValue(samples, "geoscope_geoip_build_timestamp_seconds", map[string]string{"database": "GeoLite2-Country"}); !ok || v != float64(geotest.BuildTime.Unix()) {
		t.Errorf("geoscope_geoip_build_timestamp_seconds{GeoLite2-Country} = %v (present %v)", v, ok)
	}

	// A good database again clears the failure.
	replaceFile(t, dbPath, cn)
	poll(t, pollTimeout, "the first database to come back", func() bool { return decide().Geo.Database == "GeoIP2-Country" })
	r := p.get("/v1/status", "")
	st = status{}
	if err := json.Unmarshal(r.body, &st); err != nil || st.GeoIPError != nil {
		t.Errorf("after a good database, geoip_error is still set: %s", r.body)
	}
}

// TestServerLogsHoldNoAddressOrToken runs many requests with many
// addresses and tokens and checks that the server's log never holds a
// request's address or a token.
func TestServerLogsHoldNoAddressOrToken(t *testing.T) {
	t.Parallel()
	decide, admin := randomToken(t), randomToken(t)
	p := startServe(t, serveOpts{args: []string{
		"--geoip-db", geotest.Standard(t), "--tokens-file", writeTokensFile(t, decide, admin), "--log-level", "debug",
	}})
	rng := mrand.New(mrand.NewPCG(1, 2))
	prefixes := []string{"1.0.16.0/20", "36.110.0.0/16", "8.8.8.0/24", "147.8.0.0/16", "2408:8000::/20", "2600:1f00::/24", "101.32.0.0/14"}
	randomAddr := func() string {
		pfx := netip.MustParsePrefix(prefixes[rng.IntN(len(prefixes))])
		b := pfx.Addr().AsSlice()
		for i := (pfx.Bits() + 7) / 8; i < len(b); i++ {
			b[i] = byte(rng.IntN(254) + 1)
		}
		a, _ := netip.AddrFromSlice(b)
		return a.String()
	}
	var secrets []string // what must never be logged
	secrets = append(secrets, decide, admin)
	requests := 0
	for i := range 40 {
		host, a, b := randomAddr(), randomAddr(), randomAddr()
		secrets = append(secrets, host, a, b)
		body := fmt.Sprintf(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US", "ip": %q},
			"participants": [{"id": "a", "ip": %q}, {"id": "b", "ip": %q}]}, "joining": {"id": "j%d", "ip": %q}}`, host, a, b, i, a)
		token := decide
		if i%2 == 1 {
			token = admin
		}
		if r := p.post("/v1/decisions", token, []byte(body)); r.status != 200 {
			t.Fatalf("decision %d: %s", i, r)
		}
		joiner := randomAddr()
		secrets = append(secrets, joiner)
		adm := fmt.Sprintf(`{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d"}}, "participant": {"id": "j", "ip": %q}}`, joiner)
		if r := p.post("/v1/admission", decide, []byte(adm)); r.status != 200 {
			t.Fatalf("admission %d: %s", i, r)
		}
		// Rejected: a bad address (echoed in the answer, never logged), a
		// wrong token, a forbidden one.
		bad := fmt.Sprintf("%s.%d", a, i)
		secrets = append(secrets, bad)
		r := p.post("/v1/decisions", decide, []byte(fmt.Sprintf(`{"meeting": {"id": "m", "host": {"account_id": "x"}, "participants": [{"id": "p", "ip": %q}]}}`, bad)))
		if r.status != 400 {
			t.Fatalf("bad address: %s", r)
		}
		wrong := randomToken(t)
		secrets = append(secrets, wrong)
		if r := p.post("/v1/decisions", wrong, june4b); r.status != 401 {
			t.Fatalf("wrong token: %s", r)
		}
		if r := p.get("/metrics", decide); r.status != 403 {
			t.Fatalf("decide token on /metrics: %s", r)
		}
		p.get("/v1/status", admin)
		requests += 6
	}
	secrets = append(secrets, "1.0.16.5", "147.8.1.1", "8.8.8.8") // june4b
	logs := p.logs.String()
	if n := strings.Count(logs, `"msg":"request"`); n < requests {
		t.Fatalf("only %d request log lines for %d requests: the check would be vacuous", n, requests)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds %q", s)
		}
	}
	// Nor does the ledger hold them, through its API or in its files:
	// addresses are recorded as coarse networks only.
	r := p.get("/v1/ledger?limit=1000", admin)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"network"`)) {
		t.Fatalf("GET /v1/ledger: %s", r)
	}
	files, _ := filepath.Glob(filepath.Join(p.dataDir, "*"))
	stored := [][]byte{r.body}
	for _, f := range files {
		if data, err := os.ReadFile(f); err == nil {
			stored = append(stored, data)
		}
	}
	for _, s := range secrets {
		for i, data := range stored {
			if bytes.Contains(data, []byte(s)) {
				what := "the /v1/ledger answer"
				if i > 0 {
					what = files[i-1]
				}
				t.Errorf("%s holds %q", what, s)
			}
		}
	}
	// The client's own address is not logged either.
	if strings.Contains(logs, `"remote`) || strings.Contains(logs, "client_ip") {
		t.Error("the log has a client address field")
	}
}

// TestServerMetrics checks the Prometheus metrics after known traffic,
// with a policy whose removals the guard partly blocks.
func TestServerMetrics(t *testing.T) {
	t.Parallel()
	start := time.Now()
	p := startServe(t, serveOpts{args: []string{"--geoip-db", geotest.Standard(t), "--bundle", overreachBundle, "--bundle", registryDir}})
	// Two participants in CN (removed), one in HK and one in the US
	// (blocked); both demands of CN-2020-0601 refused by the policy.
	body := []byte(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
		"participants": [{"id": "cn-1", "ip": "1.0.16.1"}, {"id": "cn-2", "ip": "36.110.1.1"}, {"id": "hk-1", "ip": "147.8.1.1"}, {"id": "us-1", "ip": "8.8.8.9"}]}}`)
	const n = 5
	for range n {
		r := p.post("/v1/decisions", "", body)
		if r.status != 200 {
			t.Fatalf("decision: %s", r)
		}
		var d decision.Decision
		if err := json.Unmarshal(r.body, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Actions) != 2 || len(d.GuardBlocked) != 2 || len(d.Refused) != 2 {
			t.Fatalf("the overreach policy gave %d actions, %d blocked, %d refused; want 2, 2, 2: %s", len(d.Actions), len(d.GuardBlocked), len(d.Refused), r.body)
		}
	}
	if r := p.post("/v1/decisions", "", []byte(`{}`)); r.status != 400 {
		t.Fatalf("empty request: %s", r)
	}
	if r := p.post("/v1/admission", "", admissionCN); r.status != 200 {
		t.Fatalf("admission: %s", r)
	}
	p.get("/nowhere", "")
	// A method a route does not allow is counted under the route, a
	// template for one with a parameter; not among paths nobody serves.
	if r := p.get("/v1/admission", ""); r.status != 405 {
		t.Fatalf("GET /v1/admission: %s", r)
	}
	if r := p.post("/v1/ledger/some-decision", "", []byte(`{}`)); r.status != 405 {
		t.Fatalf("POST /v1/ledger/some-decision: %s", r)
	}

	s := scrapeMetrics(t, p, "")
	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"geoscope_http_requests_total", map[string]string{"endpoint": "/v1/decisions", "code": "200"}, n},
		{"geoscope_http_requests_total", map[string]string{"endpoint": "/v1/decisions", "code": "400"}, 1},
		{"geoscope_http_requests_total", map[string]string{"endpoint": "/v1/admission", "code": "200"}, 1},
		{"geoscope_http_requests_total", map[string]string{"endpoint": "unmatched", "code": "404"}, 1},
		{"geoscope_http_requests_total", map[string]string{"endpoint": "/v1/admission", "code": "405"}, 1},
		{"geoscope_http_requests_total", map[string]string{"endpoint": "/v1/ledger/:decision_id", "code": "405"}, 1},
		{"geoscope_decision_duration_seconds_count", map[string]string{"endpoint": "/v1/decisions"}, n},
		{"geoscope_decision_duration_seconds_bucket", map[string]string{"endpoint": "/v1/decisions", "le": "+Inf"}, n},
		{"geoscope_decision_duration_seconds_count", map[string]string{"endpoint": "/v1/admission"}, 1},
		{"geoscope_actions_total", map[string]string{"type": "remove_participant"}, 2 * n},
		{"geoscope_guard_blocks_total", map[string]string{"code": "outside_jurisdiction"}, 2 * n},
		{"geoscope_refusals_total", map[string]string{"demand": "end_meeting"}, n},
		{"geoscope_refusals_total", map[string]string{"demand": "suspend_account"}, n},
		{"geoscope_bundle_info", map[string]string{"name": "overreach", "revision": "overreach-test"}, 1},
		{"geoscope_geoip_build_timestamp_seconds", map[string]string{"database": geotest.StandardType}, float64(geotest.BuildTime.Unix())},
		{"geoscope_bundle_activations_total", nil, 1},
	}
	for _, w := range want {
		v, ok := metricValue(s, w.name, w.labels)
		if !ok || v != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, v, ok, w.value)
		}
	}
	if v, ok := metricValue(s, "geoscope_bundle_info", map[string]string{"name": "registry"}); !ok || v != 1 {
		t.Errorf("geoscope_bundle_info{name=registry} = %v (present %v)", v, ok)
	}
	if sum, _ := metricValue(s, "geoscope_decision_duration_seconds_sum", map[string]string{"endpoint": "/v1/decisions"}); sum <= 0 || sum > n*1.0 {
		t.Errorf("geoscope_decision_duration_seconds_sum = %v, want between 0 and %d s", sum, n)
	}
	if v, ok := metricValue(s, "geoscope_bundle_activation_timestamp_seconds", map[string]string{"name": "overreach"}); !ok ||
		v < float64(start.Unix()-1) || v > float64(time.Now().Unix()+1) {
		t.Errorf("geoscope_bundle_activation_timestamp_seconds = %v (present %v), want between the start and now", v, ok)
	}
	for _, absent := range []string{"geoscope_geoip_last_failure_timestamp_seconds", "geoscope_bundle_last_failure_timestamp_seconds"} {
		if _, ok := metricValue(s, absent, nil); ok {
			t.Errorf("%s is present although nothing failed", absent)
		}
	}
	if _, ok := metricValue(s, "go_goroutines", nil); !ok {
		t.Error("the Go collector is missing")
	}
	// Buckets are cumulative.
	var prev float64
	for _, smp := range s {
		if smp.name == "geoscope_decision_duration_seconds_bucket" && smp.labels["endpoint"] == "/v1/decisions" {
			if smp.value < prev {
				t.Errorf("bucket le=%s holds %v < %v", smp.labels["le"], smp.value, prev)
			}
			prev = smp.value
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key,
// and returns their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	return certPath, keyPath, proctest.WriteTLSPair(t, certPath, keyPath, time.Now().UnixNano())
}

// TestServerTLS serves over TLS with a self-signed certificate.
func TestServerTLS(t *testing.T) {
	t.Parallel()
	certPath, keyPath, pool := selfSigned(t)

	for _, args := range [][]string{{"--tls-cert", certPath}, {"--tls-key", keyPath}} {
		res := runBounded(t, 20*time.Second, append([]string{"serve", "--addr", "127.0.0.1:" + proctest.FreePort(t)}, args...)...)
		if res.code != 2 || !strings.Contains(cliErrorLine(t, res.stderr), "--tls-cert and --tls-key go together") {
			t.Errorf("serve %s: want exit 2 saying both flags are needed, got %v", strings.Join(args, " "), res)
		}
	}

	p := startServe(t, serveOpts{rootCAs: pool, args: []string{"--geoip-db", geotest.Standard(t), "--tls-cert", certPath, "--tls-key", keyPath}})
	if !strings.HasPrefix(p.base, "https://") {
		t.Fatalf("base URL %s", p.base)
	}
	resp, err := p.client.Get(p.base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || !resp.TLS.HandshakeComplete {
		t.Errorf("GET /health over TLS: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if r := p.post("/v1/decisions", "", june4b); r.status != 200 {
		t.Errorf("decision over TLS: %s", r)
	}
	// A client that does not trust the certificate is refused.
	untrusting := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	if resp, err := untrusting.Get(p.base + "/health"); err == nil {
		resp.Body.Close()
		t.Error("a client without the CA completed a TLS handshake")
	}

	// Plain HTTP on the TLS port is refused, and the failed handshake is
	// logged without the client's address.
	conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", p.addr)
	plain, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == 200 {
			t.Error("plain HTTP was answered 200 on the TLS port")
		}
	}
	client := conn.LocalAddr().String()
	conn.Close()
	// The failed handshake is logged asynchronously, if at all: wait for
	// its line for a while, and accept its absence.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(pollInterval) {
		if strings.Contains(p.logs.String(), "client sent an HTTP request to an HTTPS server") {
			break
		}
	}
	if strings.Contains(p.logs.String(), client) {
		t.Fatalf("a failed TLS handshake is logged with the client's address %s (net/http's ErrorLog line "+
			"\"http: TLS handshake error from ADDR: ...\" is routed to the JSON log unfiltered), although the server "+
			"never logs client addresses:\n%s", client, handshakeLines(p.logs.String()))
	}
}

func handshakeLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "handshake") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
