package tests

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestOverloadShedsBigRequestsNotAdmissions: with the in-flight budget of
// big requests taken, every big roster is answered 503 overloaded with
// Retry-After, unread, while admissions and small rosters from other
// clients are all answered; once the budget frees up, big rosters are
// answered again. Nothing is ever answered with another 5xx.
func TestOverloadShedsBigRequestsNotAdmissions(t *testing.T) {
	const maxBody = 256 << 10
	srv := startServe(t, serveOpts{ready: true, args: []string{
		"--max-body", strconv.Itoa(maxBody), "--max-inflight", strconv.Itoa(maxBody), "--queue-timeout", "200ms"}})
	big := rosterBody(3000) // over 64 KiB: the large lane
	if len(big) <= 64<<10 || len(big) > maxBody {
		t.Fatalf("roster body of %d bytes does not fit the test", len(big))
	}
	small := rosterBody(50)

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
