package tests

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	memRosters     = flag.Int("load.rosters", 8, "concurrent maximum-size rosters in TestLoadMemory")
	memRosterSize  = flag.Int("load.roster-size", 100_000, "participants in each roster of TestLoadMemory")
	memRosterTurns = flag.Int("load.roster-turns", 3, "rosters each client of TestLoadMemory sends, one after the other")
	memServeArgs   = flag.String("load.serve-args", "", "extra arguments of geoscope serve in TestLoadMemory (e.g. \"--max-inflight 8388608\")")
	memSettle      = flag.Duration("load.settle", 10*time.Second, "how long TestLoadMemory watches the memory return after the rosters")
)

// TestLoadMemory is the memory and fairness load run behind `make load`:
// the real server (SQLite ledger) is sent maximum-size rosters by several
// clients at once while other clients send small admissions, and the
// server's resident memory is sampled throughout. It prints the peak and
// the memory after the rosters against the baseline, the rosters' outcomes
// (answered or 503 overloaded) and the admissions' latency.
//
// What it asserts is behaviour, not timing: every admission is answered
// 200, and every roster is answered 200 or 503 overloaded with
// Retry-After; the numbers are written down in docs/benchmarks.md.
func TestLoadMemory(t *testing.T) {
	if !*loadFlag {
		t.Skip("load run: go test ./tests -run TestLoadMemory -load -v (or make load)")
	}
	srv := startServe(t, serveOpts{args: append([]string{"--log-level", "warn"}, strings.Fields(*memServeArgs)...), ready: true})
	pid := srv.current().cmd.Process.Pid
	roster := rosterBody(*memRosterSize)
	admissions := admissionBodies("june4-d", "acct-us-d")

	// Baseline: the server warmed up by a little of everything.
	warm := runLoad(t, loadSpec{URL: srv.base + "/v1/admission", Bodies: admissions, Concurrency: 4, Max: 2000, Duration: time.Minute})
	if warm.Errors > 0 {
		t.Fatalf("warm-up: %s; first error: %s", warm, warm.FirstError)
	}
	if r := srv.post("/v1/decisions", "", rosterBody(1000)); r.status != http.StatusOK {
		t.Fatalf("warm-up roster: %s", r)
	}
	time.Sleep(2 * time.Second)
	baseline := rssOf(t, pid)

	// Sample the resident memory until the end.
	var (
		mu      sync.Mutex
		peak    int64
		samples []rssSample
	)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	started := time.Now()
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			if rss, err := readRSS(pid); err == nil {
				mu.Lock()
				peak = max(peak, rss)
				samples = append(samples, rssSample{time.Since(started), rss})
				mu.Unlock()
			}
		}
	}()

	// Admissions from other clients while the rosters are decided.
	stopAdmissions := make(chan struct{})
	small := make(chan loadResult, 1)
	go func() {
		small <- runLoad(t, loadSpec{URL: srv.base + "/v1/admission", Bodies: admissions, Concurrency: 4,
			Max: 10_000_000, Duration: 10 * time.Minute, Stop: stopAdmissions})
	}()
	time.Sleep(200 * time.Millisecond)

	var overloaded, answered int
	var rosterMu sync.Mutex
	big := runLoad(t, loadSpec{
		URL: srv.base + "/v1/decisions", Bodies: [][]byte{roster},
		Concurrency: *memRosters, Max: *memRosters * *memRosterTurns, Duration: 10 * time.Minute,
		Check: func(status int, h http.Header, body []byte) error {
			rosterMu.Lock()
			defer rosterMu.Unlock()
			switch {
			case status == http.StatusOK:
				answered++
				return nil
			case status == http.StatusServiceUnavailable && bytes.Contains(body, []byte(`"code":"overloaded"`)):
				overloaded++
				if h.Get("Retry-After") == "" {
					return fmt.Errorf("503 overloaded without Retry-After")
				}
				return nil
			}
			return fmt.Errorf("HTTP %d: %.300s", status, body)
		},
	})
	rostersDone := time.Since(started)
	time.Sleep(500 * time.Millisecond)
	close(stopAdmissions)
	adm := <-small

	// Watch the memory go back.
	time.Sleep(*memSettle)
	close(stopSampling)
	<-sampled
	after := rssOf(t, pid)
	hwm := readStatusKB(t, pid, "VmHWM")

	var report strings.Builder
	fmt.Fprintf(&report, "%d clients x %d rosters of %d participants (%s body), 4 clients of admissions meanwhile\n",
		*memRosters, *memRosterTurns, *memRosterSize, mib(int64(len(roster))))
	fmt.Fprintf(&report, "rosters:     %s; %d answered, %d overloaded (503)\n", big, answered, overloaded)
	fmt.Fprintf(&report, "admissions:  %s\n", adm)
	fmt.Fprintf(&report, "resident memory: baseline %s, peak %s (VmHWM %s), %s after the rosters\n",
		mib(baseline), mib(peak), mib(hwm), mib(after))
	mu.Lock()
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second} {
		fmt.Fprintf(&report, "  +%s after the rosters: %s\n", d, mib(rssAt(samples, rostersDone+d)))
	}
	mu.Unlock()
	t.Log("\n" + report.String())

	if adm.Errors > 0 {
		t.Errorf("admissions failed while rosters were decided: %d of %d, first: %s", adm.Errors, adm.Requests, adm.FirstError)
	}
	if big.Errors > 0 {
		t.Errorf("rosters: %d answered neither 200 nor 503 overloaded, first: %s", big.Errors, big.FirstError)
	}
	if answered == 0 {
		t.Error("no roster was answered")
	}
}

type rssSample struct {
	at  time.Duration
	rss int64
}

// rssAt is the last sample taken at or before at.
func rssAt(samples []rssSample, at time.Duration) int64 {
	var v int64
	for _, s := range samples {
		if s.at > at {
			break
		}
		v = s.rss
	}
	return v
}

func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	rss, err := readRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}

// readRSS is the process's resident memory in bytes.
func readRSS(pid int) (int64, error) { return statusKB(pid, "VmRSS") }

func readStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	v, err := statusKB(pid, field)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// statusKB reads a "kB" line of /proc/PID/status, in bytes.
func statusKB(pid int, field string) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
