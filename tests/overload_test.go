package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOverloadShedsBigRequestsNotAdmissions: with the in-flight budget of
// big requests taken, every big roster is answered 503 overloaded with
// Retry-After, unread, while admissions and small rosters from other
// clients are all answered; once the budget frees up, big rosters are
// answered again. Nothing is ever answered with another 5xx.
func TestOverloadShedsBigRequestsNotAdmissions(t *testing.T) {
	const maxBody = 256 << 10
	// --min-body-rate 1: the trickler below keeps its reservation for the
	// whole test, which takes far less than the 30 s any body is cut off
	// at (TestTricklingBodyIsCutOff is the default's).
	srv := startServe(t, serveOpts{ready: true, args: []string{
		"--max-body", strconv.Itoa(maxBody), "--max-inflight", strconv.Itoa(maxBody), "--queue-timeout", "200ms", "--min-body-rate", "1"}})
	big := rosterBody(3000) // over 64 KiB: the large lane
	if len(big) <= 64<<10 || len(big) > maxBody {
		t.Fatalf("roster body of %d bytes does not fit the test", len(big))
	}
	small := rosterBody(50)
	// Both lanes' counts are there from the start, at 0.
	for _, lane := range []string{"small", "large"} {
		if v, ok := metricValue(scrapeMetrics(t, srv, ""), "geoscope_overloaded_total", map[string]string{"lane": lane}); !ok || v != 0 {
			t.Errorf("geoscope_overloaded_total{lane=%q} at start: %v (present %v), want 0", lane, v, ok)
		}
	}

	// A client that declares the largest body and sends only its start
	// holds the whole large lane while it trickles.
	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"meeting\": ", srv.addr, maxBody)
	poll(t, pollTimeout, "the trickling request to be admitted", func() bool { return inflightBytes(t, srv, "large") == maxBody })

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[string]map[int]int{}
	)
	record := func(kind string, r httpResult) {
		mu.Lock()
		defer mu.Unlock()
		if statuses[kind] == nil {
			statuses[kind] = map[int]int{}
		}
		statuses[kind][r.status]++
	}
	for range 8 {
		wg.Go(func() {
			r := srv.post("/v1/decisions", "", big)
			record("big", r)
			e := wantError(t, r, http.StatusServiceUnavailable, "overloaded", "-")
			if r.header.Get("Retry-After") == "" {
				t.Errorf("503 overloaded without Retry-After: %s", r)
			}
			if !strings.Contains(e.Message, "no enforcement") {
				t.Errorf("the overloaded message does not say what to do: %q", e.Message)
			}
		})
	}
	for i := range 4 {
		wg.Go(func() {
			for j, body := range admissionBodies("june4-d", "acct-us-d")[:25] {
				path := "/v1/admission"
				if j%5 == 0 {
					path, body = "/v1/decisions", small
				}
				r := srv.post(path, "", body)
				record("small", r)
				if r.status != http.StatusOK {
					t.Errorf("client %d, request %d (%s) while big ones were shed: %s", i, j, path, r)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("answers while the large lane was held: %v", statuses)
	if got := overloadedCount(t, srv, "large"); got != 8 {
		t.Errorf("geoscope_overloaded_total{lane=\"large\"} = %d, want 8", got)
	}

	// The trickler gives up; its reservation is released and big rosters
	// are answered again.
	conn.Close()
	poll(t, pollTimeout, "the large lane to be released", func() bool { return inflightBytes(t, srv, "large") == 0 })
	if r := srv.post("/v1/decisions", "", big); r.status != http.StatusOK {
		t.Errorf("big roster after the lane was released: %s", r)
	}

	// Unheld, concurrent big rosters get an answer or 503 overloaded, and
	// never anything else; admissions meanwhile are all answered.
	statuses = map[string]map[int]int{}
	for range 8 {
		wg.Go(func() {
			for range 3 {
				r := srv.post("/v1/decisions", "", big)
				record("big", r)
				if r.status != http.StatusOK {
					wantError(t, r, http.StatusServiceUnavailable, "overloaded", "-")
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for _, body := range admissionBodies("june4-d", "acct-us-d")[:40] {
				if r := srv.post("/v1/admission", "", body); r.status != http.StatusOK {
					t.Errorf("admission while big rosters competed: %s", r)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("answers of competing big rosters: %v", statuses)
	if inflightBytes(t, srv, "large") != 0 || inflightBytes(t, srv, "small") != 0 {
		t.Error("reservations outlived their requests")
	}
}

// inflightBytes reads geoscope_inflight_request_bytes for a lane.
func inflightBytes(t *testing.T, srv *serverProc, lane string) int64 {
	t.Helper()
	v, _ := metricValue(scrapeMetrics(t, srv, ""), "geoscope_inflight_request_bytes", map[string]string{"lane": lane})
	return int64(v)
}

func overloadedCount(t *testing.T, srv *serverProc, lane string) int {
	t.Helper()
	v, _ := metricValue(scrapeMetrics(t, srv, ""), "geoscope_overloaded_total", map[string]string{"lane": lane})
	return int(v)
}

// TestTricklingBodyIsCutOff: a client that declares the largest body and
// sends it a byte at a time is answered 408 body_timeout a little after
// the body's start of 2 s (not at the 30 s read timeout), and the large
// lane it held is released for the next big roster; a client that sends a
// big body slowly but above --min-body-rate (default 256 KiB/s), taking
// longer than the start, is answered.
func TestTricklingBodyIsCutOff(t *testing.T) {
	const maxBody = 2 << 20
	srv := startServe(t, serveOpts{ready: true, args: []string{
		"--max-body", strconv.Itoa(maxBody), "--max-inflight", strconv.Itoa(maxBody), "--queue-timeout", "200ms"}})

	conn, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"meeting\": ", srv.addr, maxBody)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 100 ms: 10 bytes/s
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	poll(t, pollTimeout, "the trickling request to be admitted", func() bool { return inflightBytes(t, srv, "large") == maxBody })
	big := rosterBody(3000)
	wantError(t, srv.post("/v1/decisions", "", big), http.StatusServiceUnavailable, "overloaded", "-")

	if err := conn.SetReadDeadline(time.Now().Add(pollTimeout)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the trickler got no answer: %v", err)
	}
	took := time.Since(start)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	e := wantError(t, httpResult{status: resp.StatusCode, header: resp.Header, body: raw}, http.StatusRequestTimeout, "body_timeout", "body")
	if !strings.Contains(e.Message, "256 KiB/s") || !strings.Contains(e.Message, "no enforcement") {
		t.Errorf("body_timeout message %q does not say the rate, or what to do", e.Message)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Errorf("the trickler was answered after %s, want a little after the 2 s start, well before the 30 s read timeout", took)
	}
	poll(t, pollTimeout, "the large lane to be released", func() bool { return inflightBytes(t, srv, "large") == 0 })
	if r := srv.post("/v1/decisions", "", big); r.status != http.StatusOK {
		t.Errorf("big roster after the trickler was cut off: %s", r)
	}

	// About 1.5 MiB at 600 KiB/s: about 2.5 s, past the start, and
	// answered.
	steady := rosterBody(40_000)
	if len(steady) < 1<<20 || len(steady) > maxBody {
		t.Fatalf("steady body of %d bytes does not fit the test", len(steady))
	}
	req, err := http.NewRequest(http.MethodPost, srv.base+"/v1/decisions", &slowReader{data: steady, chunk: 60 << 10, every: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(steady))
	req.Header.Set("Content-Type", "application/json")
	start = time.Now()
	r, err := srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("a body sent above --min-body-rate: %d %s", r.StatusCode, bytes.TrimSpace(raw))
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Logf("the steady body took only %s, within the start: the test did not show the rate", took)
	}
}

// slowReader hands out data a chunk at a time, waiting between chunks.
type slowReader struct {
	data  []byte
	chunk int
	every time.Duration
	began bool
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	if s.began {
		time.Sleep(s.every)
	}
	s.began = true
	n := copy(p[:min(len(p), s.chunk)], s.data)
	s.data = s.data[n:]
	return n, nil
}

// TestDeclaredBodiesDoNotBlockAdmissions: twenty clients that each
// declare a 64 KiB admission body, send its first byte and nothing more,
// and connect again whenever they are answered, hold nothing an admission
// needs: every admission another client sends meanwhile is answered 200
// within the queue timeout, and the idle clients are all cut off 408
// body_timeout. When a body's declared length was reserved before it was
// read, sixteen such connections took the whole small lane without
// sending a byte, and every admission was answered 503 overloaded after
// waiting --queue-timeout: every meeting server failed open.
func TestDeclaredBodiesDoNotBlockAdmissions(t *testing.T) {
	const (
		idle     = 20
		attack   = 5 * time.Second // past two 2 s starts: each idle client connects again
		queueFor = time.Second     // --queue-timeout's default
	)
	srv := startServe(t, serveOpts{ready: true})
	head := "POST /v1/admission HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{"

	stop := make(chan struct{})
	var (
		wg, sent    sync.WaitGroup
		mu          sync.Mutex
		idleAnswers = map[int]int{}
	)
	for range idle {
		sent.Add(1)
		wg.Go(func() {
			first := true
			for {
				conn, err := net.Dial("tcp", srv.addr)
				if err != nil {
					t.Errorf("an idle client could not connect: %v", err)
					return
				}
				if _, err := io.WriteString(conn, head); err != nil {
					t.Errorf("an idle client could not send its head: %v", err)
				}
				if first {
					sent.Done()
					first = false
				}
				answered := make(chan struct{})
				go func() {
					select {
					case <-stop:
					case <-answered:
					}
					conn.Close()
				}()
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				close(answered)
				select {
				case <-stop:
					return
				default:
				}
				if err != nil {
					t.Errorf("an idle client got no answer: %v", err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				idleAnswers[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	sent.Wait()
	time.Sleep(200 * time.Millisecond) // for the server to read the heads

	body := []byte(`{"meeting":{"id":"june4-a","host":{"account_id":"acct-us-a","account_country":"US"}},"participant":{"id":"p-1","ip":"202.96.128.86"}}`)
	answers := map[int]int{}
	var slowest time.Duration
	for end := time.Now().Add(attack); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		start := time.Now()
		r := srv.post("/v1/admission", "", body)
		took := time.Since(start)
		slowest = max(slowest, took)
		answers[r.status]++
		if r.status != http.StatusOK {
			t.Errorf("an admission while idle clients held bodies open: %s after %s", r, took)
		} else if took >= queueFor {
			t.Errorf("an admission was answered after %s, as long as the queue timeout", took)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("admissions: %v (slowest %s); idle clients' answers: %v", answers, slowest, idleAnswers)
	if idleAnswers[http.StatusRequestTimeout] < idle {
		t.Errorf("idle clients' answers %v: want each cut off 408 at least once", idleAnswers)
	}
	for status, n := range idleAnswers {
		if status != http.StatusRequestTimeout {
			t.Errorf("%d idle clients were answered %d, want 408 body_timeout", n, status)
		}
	}
}

// TestIdleConnectionsLeaveFilesToTheLedger: connections that send nothing
// (a flood of them, or slow heads) cannot take the file descriptors the
// ledger needs. Under a low open-file limit, with many more of them than
// it allows, a denied admission on a connection already open is still
// recorded and answered 200, and read back from the ledger; connections
// past the server's cap are closed at once, which its log says in one
// line, not once per connection; and once the idle connections are gone,
// new connections are served.
func TestIdleConnectionsLeaveFilesToTheLedger(t *testing.T) {
	const (
		nofile = 64
		idle   = 300
	)
	srv := startServe(t, serveOpts{ready: true, nofile: nofile})
	admit := func(what string) {
		t.Helper()
		r, err := srv.do(http.MethodPost, "/v1/admission", "", "application/json",
			lgAdmission("june4-b", "acct-us-b", "US", lgPerson{"fd-" + lgRandHex(6), lgCN4()}))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		a := lgDecode(t, r.body)
		if r.status != http.StatusOK || a.Allow == nil || *a.Allow || a.DecisionID == "" {
			t.Fatalf("%s: want a denial recorded and answered 200, got %s", what, r)
		}
		if got := srv.get("/v1/ledger/"+a.DecisionID, ""); got.status != http.StatusOK {
			t.Errorf("%s: the denial answered is not read back from the ledger: %s", what, got)
		}
	}
	admit("before the idle connections")

	closeIdle := openIdleConnections(t, srv.addr, idle)
	// For 2 s, through the ledger's checkpoints (once a second), which
	// may open a connection of SQLite's pool.
	for i, end := 0, time.Now().Add(2*time.Second); time.Now().Before(end); i++ {
		admit(fmt.Sprintf("admission %d among %d idle connections", i, idle))
		time.Sleep(50 * time.Millisecond)
	}

	closeIdle()
	// A client of its own, so that the admission comes on a new
	// connection: served once the server has closed its side of them.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	poll(t, pollTimeout, "a new connection served after the idle ones closed", func() bool {
		resp, err := fresh.Post(srv.base+"/v1/admission", "application/json",
			bytes.NewReader(lgAdmission("june4-b", "acct-us-b", "US", lgPerson{"fd-" + lgRandHex(6), lgCN4()})))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	var refusedLines, acceptErrors int
	for _, l := range srv.logLines() {
		msg, _ := l["msg"].(string)
		switch {
		case strings.Contains(msg, "too many open files"):
			acceptErrors++
		case strings.HasPrefix(msg, "connections refused"):
			refusedLines++
			if n, _ := l["refused"].(float64); n < 1 {
				t.Errorf("the refusal line counts no connection: %v", l)
			}
		}
	}
	if acceptErrors > 0 {
		t.Errorf("%d log lines of accept errors: the server ran out of files", acceptErrors)
	}
	if refusedLines < 1 || refusedLines > 2 {
		t.Errorf("%d log lines about refused connections, want 1 (at most one per 10 s)", refusedLines)
	}
	// Fewer than nofile connections can have been let in, so the rest of
	// the idle ones were refused, each counted once.
	if n, ok := sampleValue(scrapeFamilies(t, srv, ""), "geoscope_connections_refused_total", nil); !ok || n < idle-nofile || n > idle {
		t.Errorf("geoscope_connections_refused_total = %v (exposed: %v), want between %d and %d", n, ok, idle-nofile, idle)
	}
}

// TestIdleConnectionsLeaveFilesToPostgresAndPlugins: the reserve the
// connections leave covers the PostgreSQL ledger's pool and OPA's plugins
// busy together. Under an open-file limit high enough that the server
// keeps the reserve itself (not half of what is left), with idle
// connections filling the cap, the clients already connected go on being
// answered while the pool is in full use (recorded denials, ledger
// reads), decision logs are uploaded each second, spans exported, the
// registry polled each second and a new revision downloaded, and the
// GeoIP database replaced: nothing runs out of files.
func TestIdleConnectionsLeaveFilesToPostgresAndPlugins(t *testing.T) {
	const (
		nofile  = 256 // more than twice the reserve above what is open
		idle    = 300
		writers = 8
		readers = 24 // more than the pool's 16 connections
		load    = 3 * time.Second
	)
	key := bndDevKey(t, "dev-es256", "ES256")
	pg := lgPostgres(t)
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-1", &key))
	registry := func(rev string) []byte {
		return bndRegistryBundle(t, rev, bndRegistryData("ORD-"+rev, "june4-b", "acct-us-b"), &key)
	}
	bs.set("registry.tar.gz", registry("fd-1"))
	collector := newLogCollector(t)
	spans := &otlpReceiver{}
	otlp := httptest.NewServer(spans)
	t.Cleanup(otlp.Close)
	dbip, err := os.ReadFile("../engine/geo/dbip/dbip-country-lite.mmdb")
	if err != nil {
		t.Fatal(err)
	}
	geoip := filepath.Join(t.TempDir(), "geoip.mmdb")
	replaceGeoIP := func() {
		if err := os.WriteFile(geoip+".new", dbip, 0o644); err != nil {
			t.Error(err)
		} else if err := os.Rename(geoip+".new", geoip); err != nil {
			t.Error(err)
		}
	}
	replaceGeoIP()
	bundles := map[string]any{}
	for _, name := range []string{"policies", "registry"} {
		bundles[name] = map[string]any{"service": "bundles", "resource": "bundles/" + name + ".tar.gz",
			"polling": map[string]any{"min_delay_seconds": 1, "max_delay_seconds": 1}}
	}
	cfg, _ := json.Marshal(map[string]any{
		"services": map[string]any{
			"bundles": map[string]any{"url": bs.URL, "credentials": map[string]any{"bearer": map[string]any{"token": remoteToken}}},
			"logs":    map[string]any{"url": collector.URL},
		},
		"bundles":       bundles,
		"decision_logs": map[string]any{"service": "logs", "reporting": map[string]any{"min_delay_seconds": 1, "max_delay_seconds": 1}},
		"distributed_tracing": map[string]any{"type": "http", "address": strings.TrimPrefix(otlp.URL, "http://"),
			"batch_span_processor_options": map[string]any{"batch_timeout_ms": 100}},
	})
	srv := startServe(t, serveOpts{ready: true, nofile: nofile, args: []string{
		"--config", writeTemp(t, "opa.json", cfg), "--verification-key", key.pubPath, "--geoip-db", geoip,
		"--ledger", pg.URL(), "--ledger-key-file", lgKeyFile(t)}})

	var (
		mu       sync.Mutex
		ids      []string
		failures []string
		answered int
	)
	fail := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, what)
	}
	// Each client keeps one connection, opened before the idle ones fill
	// the cap: a new one would be refused.
	send := func(c *http.Client, method, path string, body []byte) []byte {
		req, _ := http.NewRequest(method, srv.base+path, bytes.NewReader(body))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			fail(method + " " + path + ": " + err.Error())
			return nil
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			fail(fmt.Sprintf("%s %s: HTTP %d %s", method, path, resp.StatusCode, raw))
			return nil
		}
		mu.Lock()
		answered++
		mu.Unlock()
		return raw
	}
	admit := func(c *http.Client) {
		raw := send(c, http.MethodPost, "/v1/admission",
			lgAdmission("june4-b", "acct-us-b", "US", lgPerson{"fd-" + lgRandHex(6), lgCN4()}))
		if raw == nil {
			return
		}
		var a lgAnswer
		if err := json.Unmarshal(raw, &a); err != nil || a.Allow == nil || *a.Allow || a.DecisionID == "" {
			fail(fmt.Sprintf("want a denial recorded, got %s", raw))
			return
		}
		mu.Lock()
		ids = append(ids, a.DecisionID)
		mu.Unlock()
	}
	read := func(c *http.Client, i int) {
		if i%2 == 0 {
			send(c, http.MethodGet, "/v1/ledger?limit=50", nil)
			return
		}
		mu.Lock()
		id := ids[int(lgRandInt(int64(len(ids))))]
		mu.Unlock()
		send(c, http.MethodGet, "/v1/ledger/"+id, nil)
	}
	clients := make([]*http.Client, writers+readers)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
		defer clients[i].CloseIdleConnections()
		admit(clients[i])
	}
	if len(failures) > 0 {
		t.Fatalf("before the idle connections: %s", strings.Join(failures, "\n"))
	}

	openIdleConnections(t, srv.addr, idle)
	downloaded, _ := bs.counts()
	collector.mu.Lock()
	eventsBefore := len(collector.events)
	collector.mu.Unlock()

	var wg sync.WaitGroup
	end := time.Now().Add(load)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if i < writers {
					admit(c)
				} else {
					read(c, i)
				}
			}
		}()
	}
	for i := 2; time.Now().Before(end); i++ {
		bs.set("registry.tar.gz", registry(fmt.Sprintf("fd-%d", i)))
		replaceGeoIP()
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	downloads, _ := bs.counts()
	collector.mu.Lock()
	events := len(collector.events)
	collector.mu.Unlock()
	t.Logf("answered %d requests among %d idle connections; %d bundle downloads, %d decision-log events uploaded", answered, idle, downloads-downloaded, events-eventsBefore)
	if len(failures) > 0 {
		t.Errorf("%d requests failed on connections open before the idle ones, first: %s", len(failures), strings.Join(failures[:min(len(failures), 5)], "\n"))
	}
	if downloads == downloaded {
		t.Errorf("no new registry was downloaded among the idle connections")
	}
	for _, l := range srv.logLines() {
		if strings.Contains(fmt.Sprint(l), "too many open files") {
			t.Errorf("the server ran out of files: %v", l)
		}
	}
	// The cap was reached: connections past it were refused.
	metrics := string(send(clients[0], http.MethodGet, "/metrics", nil))
	if refused := bndMetric(metrics, "geoscope_connections_refused_total"); len(refused) != 1 || strings.HasSuffix(refused[0], " 0") {
		t.Errorf("geoscope_connections_refused_total: %v: the idle connections did not fill the cap", refused)
	}
}

// openIdleConnections opens n connections to addr that send nothing, and
// returns what closes them; they are closed when the test ends if not
// before.
func openIdleConnections(t *testing.T, addr string, n int) (closeAll func()) {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	closeAll = func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	t.Cleanup(closeAll)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connecting: %v", err)
		}
		conns = append(conns, c)
	}
	return closeAll
}
