package client

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestBackoffIsJitteredExponentialAndCapped(t *testing.T) {
	c := &Client{backoff: 100 * time.Millisecond}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 10: MaxBackoff, 1000: MaxBackoff} {
		for range 50 {
			if got := c.backoffFor(n); got < want/2 || got > want {
				t.Fatalf("backoffFor(%d) = %v, want within [%v, %v]", n, got, want/2, want)
			}
		}
	}
	c.backoff = 5 * time.Second // a base above the cap is the cap
	if got := c.backoffFor(50); got < 2500*time.Millisecond || got > 5*time.Second {
		t.Errorf("large base: %v", got)
	}
	c.backoff = 0
	if got := c.backoffFor(3); got != 0 {
		t.Errorf("zero base: %v", got)
	}
}

func TestRetryable(t *testing.T) {
	post := call{method: http.MethodPost, path: PathAdmission, retryNotReady: true}
	get := call{method: http.MethodGet, path: PathStatus, retryNotReady: true}
	ready := call{method: http.MethodGet, path: PathReady}
	dial := &transportError{err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}
	read := &transportError{err: &net.OpError{Op: "read", Err: errors.New("connection reset")}}
	api := func(status int, code string) error { return &APIError{StatusCode: status, Code: code} }
	for _, tc := range []struct {
		cl   call
		err  error
		want bool
	}{
		{post, dial, true},
		{post, read, false},
		{get, read, true},
		{post, api(503, CodeNotReady), true},
		{ready, api(503, CodeNotReady), false},
		{post, api(503, CodeEvalTimeout), false},
		{post, api(503, CodeLedgerUnavailable), false},
		{post, api(503, CodeOverloaded), true},
		{ready, api(503, CodeOverloaded), true},
		{post, api(502, ""), false},
		{post, api(504, ""), false},
		{get, api(502, ""), true},
		{get, api(504, ""), true},
		{get, api(500, CodeInternal), false},
		{post, api(400, CodeInvalidInput), false},
		{get, api(401, CodeUnauthorized), false},
		{post, badResponse("POST", PathAdmission, "x"), false},
	} {
		if got := retryable(tc.cl, tc.err); got != tc.want {
			t.Errorf("retryable(%s %s, %v) = %v, want %v", tc.cl.method, tc.cl.path, tc.err, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"1":                             time.Second,
		"0":                             0,
		"-3":                            0,
		"3600":                          maxRetryAfter,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:07 GMT": 2 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

// The server names one Retry-After for all the requests it refuses
// together; waiting exactly that long brought them all back in the same
// instant. The wait is the Retry-After and up to half as long again.
func TestRetryAfterIsJittered(t *testing.T) {
	c := &Client{backoff: DefaultBackoff}
	overloaded := &APIError{StatusCode: http.StatusServiceUnavailable, Code: CodeOverloaded, RetryAfter: time.Second}
	lo, hi := time.Hour, time.Duration(0)
	for range 500 {
		wait, earliest, ok := c.nextWait(1, overloaded, 0, false)
		if !ok || earliest != time.Second || wait < time.Second || wait > 1500*time.Millisecond {
			t.Fatalf("nextWait after Retry-After: 1 = %v, %v, %v; want a wait within [1s, 1.5s]", wait, earliest, ok)
		}
		lo, hi = min(lo, wait), max(hi, wait)
	}
	// 500 draws over 500 ms all within 250 ms of one another: never, but
	// for a wait that is not drawn at all.
	if hi-lo < 250*time.Millisecond {
		t.Errorf("500 waits after one Retry-After within [%v, %v]: not spread", lo, hi)
	}
	// Without a Retry-After, the backoff's own jitter.
	if wait, _, ok := c.nextWait(1, &APIError{StatusCode: http.StatusServiceUnavailable, Code: CodeNotReady}, 0, false); !ok || wait < 50*time.Millisecond || wait > 100*time.Millisecond {
		t.Errorf("not_ready without Retry-After: %v, %v", wait, ok)
	}
}

// A Retry-After that fits before the deadline is honoured when its jitter
// would not: the attempt is spread over the first half of what is left
// after it. One that does not fit gives up.
func TestRetryAfterJitterFitsTheDeadline(t *testing.T) {
	c := &Client{backoff: DefaultBackoff}
	overloaded := &APIError{StatusCode: http.StatusServiceUnavailable, Code: CodeOverloaded, RetryAfter: time.Second}
	for range 500 {
		wait, _, ok := c.nextWait(1, overloaded, 1100*time.Millisecond, true)
		if !ok || wait < time.Second || wait > 1050*time.Millisecond {
			t.Fatalf("Retry-After 1s with 1.1s left: wait %v, %v; want within [1s, 1.05s]", wait, ok)
		}
	}
	for _, left := range []time.Duration{time.Second, 900 * time.Millisecond} {
		if wait, earliest, ok := c.nextWait(1, overloaded, left, true); ok || earliest != time.Second {
			t.Errorf("Retry-After 1s with %v left: wait %v, earliest %v, %v; want no attempt", left, wait, earliest, ok)
		}
	}
	// A backoff longer than what is left gives up too.
	c.backoff = 10 * time.Second
	if _, _, ok := c.nextWait(1, overloaded, 2*time.Second, true); ok {
		t.Error("a backoff of 5-10s with 2s left: want no attempt")
	}
}

func TestJitterAbove(t *testing.T) {
	for range 200 {
		if got := jitterAbove(time.Second, 500*time.Millisecond); got < time.Second || got > 1500*time.Millisecond {
			t.Fatalf("jitterAbove(1s, 500ms) = %v", got)
		}
	}
	if got := jitterAbove(time.Second, 0); got != time.Second {
		t.Errorf("no spread: %v", got)
	}
	if got := jitterAbove(time.Second, -time.Second); got != time.Second {
		t.Errorf("a negative spread: %v", got)
	}
}
