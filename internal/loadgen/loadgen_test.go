package loadgen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer answers every POST with its body, counting the connections
// it accepted and the bodies it received.
type echoServer struct {
	*httptest.Server
	conns atomic.Int64
	mu    sync.Mutex
	seen  map[string]int
	auth  map[string]int
	ctype map[string]int
}

func newEchoServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, body []byte) bool) *echoServer {
	t.Helper()
	s := &echoServer{seen: map[string]int{}, auth: map[string]int{}, ctype: map[string]int{}}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: reading body: %v", err)
			return
		}
		s.mu.Lock()
		s.seen[string(body)]++
		s.auth[r.Header.Get("Authorization")]++
		s.ctype[r.Header.Get("Content-Type")]++
		s.mu.Unlock()
		if handle != nil && handle(w, r, body) {
			return
		}
		w.Write(body)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestRunSendsEveryBodyInTurnOverKeptAliveConnections(t *testing.T) {
	s := newEchoServer(t, nil)
	bodies := [][]byte{[]byte(`{"n":0}`), []byte(`{"n":1}`), []byte(`{"n":2}`), []byte(`{"n":3}`)}
	res := Run(context.Background(), Spec{
		URL: s.URL + "/v1/admission", Bodies: bodies, Concurrency: 3, Requests: 400,
		Header: http.Header{"Authorization": {"Bearer t"}},
		Key:    func(body []byte) string { return string(body) },
	})
	if res.Errors != 0 || res.Requests != 400 || res.Statuses[200] != 400 {
		t.Fatalf("got %d requests, %d errors (%s), statuses %v; want 400 answered", res.Requests, res.Errors, res.FirstError, res.Statuses)
	}
	for _, b := range bodies {
		if s.seen[string(b)] != 100 || res.Answers[string(b)] != 100 {
			t.Errorf("body %s: sent %d times, answered %d; want 100 each", b, s.seen[string(b)], res.Answers[string(b)])
		}
	}
	if s.auth["Bearer t"] != 400 || s.ctype["application/json"] != 400 {
		t.Errorf("headers: Authorization %v, Content-Type %v; want the given header and application/json on all 400", s.auth, s.ctype)
	}
	if n := s.conns.Load(); n != 3 {
		t.Errorf("the server accepted %d connections; want 3, one per client, kept alive", n)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 || res.RPS() <= 0 {
		t.Errorf("latencies p50 %s p99 %s max %s, %.0f req/s: not a plausible summary", res.P50, res.P99, res.Max, res.RPS())
	}
}

func TestRunReadsChunkedAnswersAndRedialsAfterConnectionClose(t *testing.T) {
	var n atomic.Int64
	s := newEchoServer(t, func(w http.ResponseWriter, _ *http.Request, body []byte) bool {
		i := n.Add(1)
		if i%5 == 0 {
			w.Header().Set("Connection", "close")
		}
		// Written in two flushed parts: the answer is chunked.
		w.Write(body[:1])
		w.(http.Flusher).Flush()
		w.Write(body[1:])
		return true
	})
	res := Run(context.Background(), Spec{
		URL: s.URL, Bodies: [][]byte{[]byte(`{"whole":"answer"}`)}, Requests: 50,
		Check: func(status int, _ http.Header, body []byte) error {
			if status != 200 || string(body) != `{"whole":"answer"}` {
				return fmt.Errorf("HTTP %d: %q", status, body)
			}
			return nil
		},
	})
	if res.Errors != 0 || res.Requests != 50 {
		t.Fatalf("%d requests, %d errors, first: %s", res.Requests, res.Errors, res.FirstError)
	}
	if got := s.conns.Load(); got != 10 {
		t.Errorf("the server accepted %d connections; want 10 (one more after each of the 10 answers with Connection: close)", got)
	}
}

func TestRunCountsStatusesAndHandsHeadersToCheck(t *testing.T) {
	s := newEchoServer(t, func(w http.ResponseWriter, _ *http.Request, body []byte) bool {
		if strings.Contains(string(body), "busy") {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	var retryAfter atomic.Int64
	res := Run(context.Background(), Spec{
		URL: s.URL, Bodies: [][]byte{[]byte(`"ok"`), []byte(`"busy"`)}, Requests: 20, Concurrency: 2,
		Check: func(status int, h http.Header, _ []byte) error {
			if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "1" {
				retryAfter.Add(1)
			}
			return nil
		},
	})
	if res.Statuses[200] != 10 || res.Statuses[503] != 10 || retryAfter.Load() != 10 || res.Errors != 0 {
		t.Errorf("statuses %v, Retry-After seen %d times, %d errors; want 10 × 200 and 10 × 503 with Retry-After", res.Statuses, retryAfter.Load(), res.Errors)
	}
	// Without Check, anything but 200 is an error quoting the answer.
	res = Run(context.Background(), Spec{URL: s.URL, Bodies: [][]byte{[]byte(`"busy"`)}, Requests: 3})
	if res.Errors != 3 || !strings.Contains(res.FirstError, "HTTP 503") {
		t.Errorf("%d errors, first %q; want 3, naming HTTP 503", res.Errors, res.FirstError)
	}
}

func TestRunTimesOutAndStopsOnCancel(t *testing.T) {
	release := make(chan struct{})
	s := newEchoServer(t, func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	})
	defer close(release)

	res := Run(context.Background(), Spec{URL: s.URL, Bodies: [][]byte{[]byte(`{}`)}, Requests: 2, Timeout: 50 * time.Millisecond})
	if res.Errors != 2 || res.Statuses[0] != 2 || !strings.Contains(res.FirstError, "timeout") {
		t.Errorf("%d errors, statuses %v, first %q; want 2 timeouts without an answer", res.Errors, res.Statuses, res.FirstError)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	t0 := time.Now()
	res = Run(ctx, Spec{URL: s.URL, Bodies: [][]byte{[]byte(`{}`)}, Concurrency: 4})
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("Run returned %s after its context was canceled", d)
	}
	if res.Errors != 0 {
		t.Errorf("a canceled run counted %d errors (%s); requests interrupted by the caller are not failures", res.Errors, res.FirstError)
	}
}

func TestRunRefusesWhatItCannotSend(t *testing.T) {
	for _, spec := range []Spec{
		{URL: "https://127.0.0.1:1/", Bodies: [][]byte{[]byte(`{}`)}},
		{URL: "http://127.0.0.1:1/"},
		{URL: "http://%zz/", Bodies: [][]byte{[]byte(`{}`)}},
	} {
		res := Run(context.Background(), spec)
		if res.Errors != 1 || res.Requests != 0 || !strings.Contains(res.FirstError, "loadgen:") {
			t.Errorf("%+v: %d errors, %d requests, first %q; want one error naming the problem", spec, res.Errors, res.Requests, res.FirstError)
		}
	}
	// A server that is not there: every request fails, none hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res := Run(context.Background(), Spec{URL: "http://" + addr + "/", Bodies: [][]byte{[]byte(`{}`)}, Requests: 3})
	if res.Errors != 3 || res.Statuses[0] != 3 {
		t.Errorf("%d errors, statuses %v; want 3 failed requests without an answer", res.Errors, res.Statuses)
	}
}
