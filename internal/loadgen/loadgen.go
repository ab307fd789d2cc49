// Package loadgen is the closed-loop HTTP load generator behind `make load`
// and `make bench-vs-opa`: a fixed number of clients, each sending its next
// request as soon as the previous one is answered, over kept-alive loopback
// connections, like `hey -n N -c C`. It records every request's latency and
// reports throughput and percentiles.
//
// Both servers of a side-by-side comparison are driven by this same code,
// so its own cost (it shares the machine with the server) weighs on both
// alike.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Spec describes one run. It stops after Requests requests, after
// Duration, when ctx is done, or when Stop is closed, whichever comes
// first.
type Spec struct {
	// URL receives a POST of each body.
	URL string
	// Bodies are sent in turn (request i sends Bodies[i%len(Bodies)]).
	Bodies [][]byte
	// Header is added to every request; Content-Type defaults to
	// application/json.
	Header http.Header
	// Concurrency is the number of clients (default 1).
	Concurrency int
	// Requests bounds the run (0: no bound).
	Requests int
	// Duration bounds the run (0: no bound).
	Duration time.Duration
	// Stop ends the run early when closed.
	Stop <-chan struct{}
	// Check judges an answer; nil accepts 200 only. A non-nil error counts
	// the request as failed.
	Check func(status int, header http.Header, body []byte) error
	// Key, when set, classifies accepted answers (Result.Answers).
	Key func(body []byte) string
	// Timeout bounds one request (default 30s).
	Timeout time.Duration
}

// Result summarises a run.
type Result struct {
	Requests, Errors int
	Elapsed          time.Duration
	P50, P90, P99    time.Duration
	Max              time.Duration
	// Statuses counts answers by HTTP status (0: no answer).
	Statuses map[int]int
	// Answers counts accepted answers by Spec.Key.
	Answers map[string]int
	// FirstError describes the first failed request.
	FirstError string
}

// RPS is requests per second over the run.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %.1fs: %.0f req/s, p50 %s, p99 %s, max %s, %d errors",
		r.Requests, r.Elapsed.Seconds(), r.RPS(), round(r.P50), round(r.P99), round(r.Max), r.Errors)
}

func round(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// Run drives spec until one of its bounds is reached.
func Run(ctx context.Context, spec Spec) Result {
	conc := max(spec.Concurrency, 1)
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	transport := &http.Transport{
		MaxIdleConnsPerHost: conc,
		MaxConnsPerHost:     conc,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: timeout}

	// run ends the run: requests already sent are answered, none is sent
	// after it is done. Only ctx cancels requests in flight.
	run, stopRun := context.WithCancel(ctx)
	defer stopRun()
	if spec.Duration > 0 {
		t := time.AfterFunc(spec.Duration, stopRun)
		defer t.Stop()
	}
	if spec.Stop != nil {
		go func() {
			select {
			case <-spec.Stop:
				stopRun()
			case <-run.Done():
			}
		}()
	}

	var (
		issued atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		res    = Result{Statuses: map[int]int{}, Answers: map[string]int{}}
		wg     sync.WaitGroup
	)
	started := time.Now()
	for range conc {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1024)
			buf := bytes.NewBuffer(make([]byte, 0, 4096))
			for run.Err() == nil {
				n := issued.Add(1)
				if spec.Requests > 0 && n > int64(spec.Requests) {
					break
				}
				body := spec.Bodies[int(n-1)%len(spec.Bodies)]
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.URL, bytes.NewReader(body))
				if err != nil {
					panic(err) // a bad URL is the caller's bug
				}
				for k, v := range spec.Header {
					req.Header[k] = v
				}
				if req.Header.Get("Content-Type") == "" {
					req.Header.Set("Content-Type", "application/json")
				}
				t0 := time.Now()
				status, header, err := send(client, req, buf)
				d := time.Since(t0)
				if ctx.Err() != nil && err != nil {
					break // canceled by the caller, not a failure
				}
				if err == nil {
					if spec.Check != nil {
						err = spec.Check(status, header, buf.Bytes())
					} else if status != http.StatusOK {
						err = fmt.Errorf("HTTP %d: %s", status, snippet(buf.Bytes()))
					}
				}
				mu.Lock()
				res.Statuses[status]++
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else if spec.Key != nil {
					res.Answers[spec.Key(buf.Bytes())]++
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
		res.P50 = percentile(lat, 50)
		res.P90 = percentile(lat, 90)
		res.P99 = percentile(lat, 99)
		res.Max = lat[len(lat)-1]
	}
	return res
}

// send makes one request and reads the whole answer into buf.
func send(client *http.Client, req *http.Request, buf *bytes.Buffer) (int, http.Header, error) {
	buf.Reset()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, resp.Header, err
	}
	return resp.StatusCode, resp.Header, nil
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based rank
	return sorted[max(i-1, 0)]
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
