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
