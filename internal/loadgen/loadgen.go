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
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
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
//
// Each client owns one connection and writes its requests to it already
// serialized (built once per body with net/http's own Request.Write); the
// answers are parsed by net/http's ReadResponse. net/http's Client is not
// used on purpose: its Transport hands every request and answer between a
// reader and a writer goroutine per connection, which cost this loader
// 50–70 µs of CPU per request on the 2-CPU machine of docs/benchmarks.md,
// more than the server it drove, on the same CPUs. What is measured is
// then the loader as much as the server. A client that fails a request
// (or is told "Connection: close") dials again for its next one.
func Run(ctx context.Context, spec Spec) Result {
	conc := max(spec.Concurrency, 1)
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	res := Result{Statuses: map[int]int{}, Answers: map[string]int{}}
	target, requests, err := serialize(spec)
	if err != nil {
		res.Errors, res.FirstError = 1, err.Error()
		return res
	}

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
		wg     sync.WaitGroup
	)
	started := time.Now()
	for range conc {
		wg.Go(func() {
			c := &client{addr: target, timeout: timeout}
			defer c.close()
			// Canceling ctx interrupts the request in flight.
			defer context.AfterFunc(ctx, c.interrupt)()
			mine := make([]time.Duration, 0, 1024)
			buf := bytes.NewBuffer(make([]byte, 0, 4096))
			for run.Err() == nil {
				n := issued.Add(1)
				if spec.Requests > 0 && n > int64(spec.Requests) {
					break
				}
				t0 := time.Now()
				status, header, err := c.send(requests[int(n-1)%len(requests)], buf)
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

// serialize builds the bytes of one POST per body, with spec's header,
// and returns the host:port to send them to.
func serialize(spec Spec) (string, [][]byte, error) {
	if len(spec.Bodies) == 0 {
		return "", nil, errors.New("loadgen: no bodies to send")
	}
	u, err := url.Parse(spec.URL)
	if err != nil {
		return "", nil, fmt.Errorf("loadgen: URL: %w", err)
	}
	if u.Scheme != "http" {
		return "", nil, fmt.Errorf("loadgen: URL %q: only http:// is supported", spec.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	out := make([][]byte, len(spec.Bodies))
	for i, body := range spec.Bodies {
		req, err := http.NewRequest(http.MethodPost, spec.URL, bytes.NewReader(body))
		if err != nil {
			return "", nil, fmt.Errorf("loadgen: %w", err)
		}
		for k, v := range spec.Header {
			req.Header[k] = v
		}
		if req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", "application/json")
		}
		var b bytes.Buffer
		if err := req.Write(&b); err != nil {
			return "", nil, fmt.Errorf("loadgen: %w", err)
		}
		out[i] = b.Bytes()
	}
	return addr, out, nil
}

// client is one closed-loop client: one kept-alive connection at a time.
type client struct {
	addr    string
	timeout time.Duration

	mu   sync.Mutex // guards conn against interrupt
	conn net.Conn
	r    *bufio.Reader
	// stopped is set by interrupt: no connection is dialled after it.
	stopped bool
}

// send writes one serialized request and reads its whole answer into buf.
func (c *client) send(request []byte, buf *bytes.Buffer) (int, http.Header, error) {
	buf.Reset()
	conn, r, err := c.connection()
	if err != nil {
		return 0, nil, err
	}
	if err := conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		c.drop()
		return 0, nil, err
	}
	if _, err := conn.Write(request); err != nil {
		c.drop()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.drop()
		return 0, nil, err
	}
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.drop()
	}
	return resp.StatusCode, resp.Header, err
}

// connection returns the kept-alive connection, dialling one if needed.
func (c *client) connection() (net.Conn, *bufio.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil, nil, net.ErrClosed
	}
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return nil, nil, err
		}
		c.conn = conn
		if c.r == nil {
			c.r = bufio.NewReaderSize(conn, 16<<10)
		} else {
			c.r.Reset(conn)
		}
	}
	return c.conn, c.r, nil
}

// drop closes the connection after a failed or closing exchange; the next
// request dials a new one.
func (c *client) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// interrupt ends the request in flight, if any, and every later one.
func (c *client) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped = true
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

func (c *client) close() { c.drop() }

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
