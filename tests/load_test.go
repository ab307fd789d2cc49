package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	loadFlag        = flag.Bool("load", false, "run the bounded loopback load runs (make load)")
	loadDuration    = flag.Duration("load.duration", 10*time.Second, "duration of each load run")
	loadConcurrency = flag.Int("load.concurrency", 8, "concurrent clients in each load run")
	loadMax         = flag.Int("load.max", 200_000, "most requests in each load run")
)

// loadResult summarises one load run.
type loadResult struct {
	Requests, Errors int
	Elapsed          time.Duration
	P50, P99, Max    time.Duration
	// Answers counts responses by a key the caller extracts from 200
	// bodies (e.g. a bundle revision).
	Answers map[string]int
	// FirstError describes the first failed request.
	FirstError string
}

func (r loadResult) rps() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

func (r loadResult) String() string {
	return fmt.Sprintf("%d requests in %.1fs: %.0f req/s, p50 %s, p99 %s, max %s, %d errors",
		r.Requests, r.Elapsed.Seconds(), r.rps(), r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond), r.Errors)
}

// loadSpec describes a bounded run: it stops at Max requests or after
// Duration, whichever comes first, or when Stop is closed.
type loadSpec struct {
	URL         string
	Token       string
	Bodies      [][]byte // cycled through
	Concurrency int
	Duration    time.Duration
	Max         int
	Stop        <-chan struct{}
	// Key extracts the answer key of a 200 body; nil counts nothing.
	Key func(body []byte) string
}

// runLoad drives spec against a server on loopback. A request fails when
// it errors or answers anything but 200.
func runLoad(t *testing.T, spec loadSpec) loadResult {
	t.Helper()
	transport := &http.Transport{MaxIdleConnsPerHost: spec.Concurrency, MaxConnsPerHost: spec.Concurrency}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}

	ctx, cancel := context.WithTimeout(context.Background(), spec.Duration)
	defer cancel()
	var (
		issued  atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		res     = loadResult{Answers: map[string]int{}}
		wg      sync.WaitGroup
		started = time.Now()
	)
	for w := range spec.Concurrency {
		wg.Go(func() {
			var mine []time.Duration
			for i := w; ; i += spec.Concurrency {
				if ctx.Err() != nil || int(issued.Add(1)) > spec.Max {
					break
				}
				select {
				case <-spec.Stop:
					cancel()
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, spec.URL, bytes.NewReader(spec.Bodies[i%len(spec.Bodies)]))
				req.Header.Set("Content-Type", "application/json")
				if spec.Token != "" {
					req.Header.Set("Authorization", "Bearer "+spec.Token)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				case resp.StatusCode != http.StatusOK:
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)
					}
				case spec.Key != nil:
					res.Answers[spec.Key(body)]++
				}
				mu.Unlock()
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(started)
	res.Requests = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[len(lat)/2]
		res.P99 = lat[len(lat)*99/100]
		res.Max = lat[len(lat)-1]
	}
	return res
}

// loadServe starts the server of a load run (server_helpers_test.go's
// serverProc) with args, logging warnings only, and returns its base URL
// once it is ready.
func loadServe(t *testing.T, args ...string) string {
	t.Helper()
	return startServe(t, serveOpts{args: append([]string{"--log-level", "warn"}, args...), ready: true}).base
}

// Addresses in the embedded DB-IP database (checked by the dbip tests).
var (
	embeddedCN = []string{"202.96.128.86", "202.96.128.87", "202.96.134.133"}
	embeddedUS = []string{"8.8.8.8", "8.8.4.4"}
	embeddedHK = []string{"147.8.2.58"}
)

func admissionBodies(meeting, account string) [][]byte {
	var out [][]byte
	ips := slices.Concat(embeddedCN, embeddedUS, embeddedHK)
	for i := range 64 {
		out = append(out, fmt.Appendf(nil, `{"meeting": {"id": %q, "host": {"account_id": %q, "account_country": "US"}}, "participant": {"id": "p-%d", "ip": %q}}`,
			meeting, account, i, ips[i%len(ips)]))
	}
	return out
}

func rosterBody(n int) []byte {
	ips := slices.Concat(embeddedCN, embeddedUS, embeddedHK)
	ps := make([]map[string]string, n)
	for i := range ps {
		ps[i] = map[string]string{"id": fmt.Sprintf("p-%d", i), "ip": ips[i%len(ips)]}
	}
	raw, _ := json.Marshal(map[string]any{"meeting": map[string]any{
		"id": "june4-b", "host": map[string]any{"account_id": "acct-us-b", "account_country": "US"}, "participants": ps,
	}})
	return raw
}

// TestLoad is the bounded loopback load run behind `make load`. It prints
// requests/s, p50/p99 and errors; docs/benchmarks.md records the numbers.
func TestLoad(t *testing.T) {
	if !*loadFlag {
		t.Skip("load run: go test ./tests -run TestLoad -load -v (or make load)")
	}
	base := loadServe(t)
	runs := []struct {
		name   string
		path   string
		bodies [][]byte
	}{
		{"admission, meeting targeted by a standing order", "/v1/admission", admissionBodies("june4-d", "acct-us-d")},
		{"admission, meeting targeted by nobody", "/v1/admission", admissionBodies("weekly-standup", "acct-other")},
		{"decisions, roster of 1,000 participants", "/v1/decisions", [][]byte{rosterBody(1000)}},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "concurrency %d, at most %s or %d requests per run\n", *loadConcurrency, *loadDuration, *loadMax)
	for _, r := range runs {
		res := runLoad(t, loadSpec{URL: base + r.path, Bodies: r.bodies, Concurrency: *loadConcurrency, Duration: *loadDuration, Max: *loadMax})
		fmt.Fprintf(&report, "%-50s %s\n", r.name, res)
		if res.Errors > 0 {
			t.Errorf("%s: %d errors, first: %s", r.name, res.Errors, res.FirstError)
		}
	}
	t.Log("\n" + report.String())
}
