package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// call is one logical request, made in one or more attempts.
type call struct {
	method, path string
	body         []byte // JSON; nil for GET. Re-sent from this slice on every attempt.
	// retryNotReady retries 503 not_ready. False for GET /ready, whose
	// not_ready answer is the answer rather than a failure.
	retryNotReady bool
}

// do makes the call and, on a 2xx status, returns the body. It retries
// what retryable allows, within the caller's context and c.timeout.
func (c *Client) do(ctx context.Context, cl call) ([]byte, error) {
	if c == nil {
		return nil, errors.New("geoscope: nil *client.Client")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout) // keeps an earlier caller deadline
		defer cancel()
	}
	requestID := newRequestID()
	var prev error // the previous attempt's failure
	for attempt := 1; ; attempt++ {
		body, err := c.attempt(ctx, cl, requestID, attempt)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			// The context ended this attempt; an earlier attempt's
			// failure says why there was one.
			if prev != nil {
				return nil, &abortedError{err: err, prev: prev}
			}
			return nil, err
		}
		if attempt > c.retries || !retryable(cl, err) {
			return nil, err
		}
		// Never sleep past the deadline: if the next attempt could not
		// start before it, give up now rather than when it passes.
		left, bounded := time.Duration(0), false
		if dl, ok := ctx.Deadline(); ok {
			left, bounded = time.Until(dl), true
		}
		wait, earliest, ok := c.nextWait(attempt, err, left, bounded)
		if !ok {
			// The sentinel's text starts with "geoscope: " already.
			stop := fmt.Errorf("%w: %s %s: the next attempt was due in %v, after the call's deadline", ErrNoTimeToRetry, cl.method, cl.path, earliest.Round(time.Millisecond))
			return nil, &abortedError{err: stop, prev: err}
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				stop := fmt.Errorf("geoscope: %s %s: %w while waiting to retry", cl.method, cl.path, ctx.Err())
				return nil, &abortedError{err: stop, prev: err}
			case <-t.C:
			}
		}
		prev = err
	}
}

// retryable decides whether a failed attempt may be repeated. The rule is
// that a retry must never be able to produce a second decision the server
// records (every answered POST is recorded in the audit trail before it is
// answered, and an admission or roster decision the meeting server never
// saw must not be followed by a different one), and must never turn a
// client's mistake into load. So:
//
//   - Dial errors (connection refused, DNS failure, dial timeout, no route,
//     failure to reach a configured proxy) are retried for every method: no
//     byte of the request left this process, so the server cannot have
//     acted on it. (Once a connection exists, net/http itself re-sends a
//     request that failed on a reused idle connection before anything was
//     written; the body is replayed from the same byte slice.)
//   - 503 not_ready is retried for every call but Ready, whose not_ready
//     is the answer (call.retryNotReady): the engine refuses before it
//     locates, evaluates or records anything (engine.ErrNotReady), so no
//     decision exists; the decision point is usually just starting.
//   - 503 overloaded is retried for every method, after the server's
//     Retry-After and up to half as long again, at random: the server
//     refused the request before reading its body, so no decision exists.
//     The wait never runs past the call's deadline (the call then fails,
//     which means no enforcement).
//   - For GET (ready, health, status), which decides and records nothing,
//     any other transport failure and 502, 503 and 504 (typically from a
//     proxy or load balancer in front) are retried: repeating it is
//     harmless.
//   - Nothing else is retried. Never a 4xx: the same request gets the same
//     answer, and 401/403 need an operator. Never a POST after its request
//     was (possibly) sent: a timeout or reset while waiting for or reading
//     the response, or a 502/504 from a proxy that may have forwarded it,
//     may hide a decision the server already recorded. Never
//     ledger_unavailable: the server says the entry may still commit, so a
//     decision may be on record already. Never eval_timeout or a 500: the
//     server is overloaded or the policy is broken, and repeating the
//     evaluation adds load on the admission hot path while the caller
//     waits; an error here already means no enforcement.
//   - Never once the caller's context is done (checked by do).
func retryable(cl call, err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		if ae.StatusCode == http.StatusServiceUnavailable && ae.Code == CodeNotReady {
			return cl.retryNotReady
		}
		if ae.StatusCode == http.StatusServiceUnavailable && ae.Code == CodeOverloaded {
			return true
		}
		if cl.method == http.MethodGet {
			switch ae.StatusCode {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				return true
			}
		}
		return false
	}
	var te *transportError
	if errors.As(err, &te) {
		return cl.method == http.MethodGet || isDialError(te.err)
	}
	return false // a bad response: the server answered, and would again
}

// isDialError reports whether err happened while establishing the
// connection, before any part of the request was written.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && (oe.Op == "dial" || oe.Op == "proxyconnect")
}

// backoffFor is the wait before attempt n+1: exponential in n from
// c.backoff, capped, with "equal jitter" in [d/2, d] so that meeting
// servers restarted together do not retry in lockstep.
func (c *Client) backoffFor(n int) time.Duration {
	if c.backoff <= 0 {
		return 0
	}
	limit := max(MaxBackoff, c.backoff)
	d := c.backoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	return half + rand.N(d-half+1)
}

// nextWait is how long to wait, after attempt n failed with err, before
// the next attempt, and the soonest that attempt may start; left is the
// time to the call's deadline, if bounded. ok is false when the next
// attempt could not start before the deadline.
func (c *Client) nextWait(n int, err error, left time.Duration, bounded bool) (wait, earliest time.Duration, ok bool) {
	wait = c.backoffFor(n)
	earliest = wait
	var ae *APIError
	retryAfter := errors.As(err, &ae) && ae.RetryAfter > wait
	if retryAfter {
		earliest = ae.RetryAfter
	}
	if bounded && left <= earliest {
		return 0, earliest, false
	}
	if retryAfter {
		// The server said when it expects to have room. It refuses
		// together the requests it has no room for (those that waited
		// out --queue-timeout side by side, a burst of joins as a
		// webinar starts) and names them all one Retry-After: waiting
		// exactly that long brought them back in the same instant, to be
		// refused together again. So the wait is the Retry-After and up
		// to half as long again, at random; before a deadline, up to
		// half of what is left after the Retry-After, so that the
		// attempt keeps the other half.
		spread := earliest / 2
		if bounded {
			spread = min(spread, (left-earliest)/2)
		}
		wait = jitterAbove(earliest, spread)
	}
	return wait, earliest, true
}

// jitterAbove is d plus a random duration in [0, spread].
func jitterAbove(d, spread time.Duration) time.Duration {
	return d + rand.N(max(spread, 0)+1)
}

// attempt makes one HTTP request.
func (c *Client) attempt(ctx context.Context, cl call, requestID string, n int) ([]byte, error) {
	var body io.Reader
	if cl.body != nil {
		// bytes.Reader also gives the request a GetBody, which net/http
		// uses to replay the body on its own internal retries.
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.base+cl.path, body)
	if err != nil {
		return nil, &transportError{method: cl.method, path: cl.path, attempts: n, err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Request-Id", requestID)
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &transportError{method: cl.method, path: cl.path, attempts: n, err: err}
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
	}()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		raw, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResponse+1))
		if err != nil {
			return nil, &transportError{method: cl.method, path: cl.path, attempts: n, err: err}
		}
		if int64(len(raw)) > c.maxResponse {
			return nil, badResponse(cl.method, cl.path, "the body exceeds %d bytes (WithMaxResponse)", c.maxResponse)
		}
		return raw, nil
	}

	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	if err != nil && ctx.Err() != nil {
		// The context ended while the error body was read.
		return nil, &transportError{method: cl.method, path: cl.path, attempts: n, err: err}
	}
	ae := &APIError{
		StatusCode: resp.StatusCode,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
		RequestID:  resp.Header.Get("X-Request-Id"),
		Method:     cl.method,
		Path:       cl.path,
		Attempts:   n,
	}
	if ae.RequestID == "" {
		ae.RequestID = requestID
	}
	var wire struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
		ErrorID string `json:"error_id"`
	}
	if json.Unmarshal(raw, &wire) == nil && wire.Code != "" {
		ae.Code, ae.Message, ae.Field, ae.ErrorID = wire.Code, wire.Message, wire.Field, wire.ErrorID
	} else {
		ae.Message = snippet(raw, resp.StatusCode)
	}
	return nil, ae
}

// maxRetryAfter caps a server's Retry-After: a longer wait is better spent
// failing open.
const maxRetryAfter = time.Minute

// retryAfter parses a Retry-After value: delay-seconds or an HTTP-date
// (RFC 9110, 10.2.3). Anything else is no value.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return min(time.Duration(max(n, 0))*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}

// snippet describes a body that is not a geoscope error body.
func snippet(raw []byte, status int) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(raw), "?"))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "..."
	}
	if s == "" {
		return http.StatusText(status)
	}
	return s
}

// newRequestID names one logical call; every attempt carries it, so the
// server's logs show retries of one call as such.
func newRequestID() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return "gsc-" + hex.EncodeToString(b[:])
}
