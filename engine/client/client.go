// Package client is the Go client that meeting servers embed to ask a
// geoscope decision point what to enforce.
//
// # Client contract: an error means no enforcement
//
// Every call either returns a decision the server recorded, or an error.
// (The server records one by one every decision that enforces, refuses or
// blocks anything; a decision with nothing to do is counted by day,
// meeting and orders, and a preview with nothing to do is neither.)
// An error — whatever its cause: the decision point is down, not ready,
// slow, misconfigured, or answered something this client cannot trust —
// means the meeting server enforces nothing: the joining participant is
// admitted and nobody is removed. A decision point outage must not silence
// speech, and enforcement without a recorded, scoped decision is exactly
// what geoscope exists to prevent. [Client.AdmitOrAllow],
// [Client.ActionsOrNone] and [Client.DecisionOrNone] (the actions with the
// decision they come from, to cite its id) encode that contract; prefer
// them to hand-written error handling on the enforcement path, and log or
// count the error they still return.
//
// For the same reason the client refuses a successful response that does not
// look like a recorded, scoped decision (no decision id, an action citing no
// order, an action for another meeting, an admission whose allow flag
// contradicts its actions, a preview answered to a request for
// enforcement). Answers are read strictly: a member named twice, or
// invalid UTF-8, is refused, so that no two readers of one answer read two
// decisions from it; names match only in their exact case (a member
// "ACTIONS" is not read as "actions", and is ignored as unknown, as a
// member a newer server adds is). Such a response yields an error
// matching [ErrBadResponse], and therefore no enforcement.
//
// # Errors
//
// An error status from the server is an [*APIError] carrying the server's
// {code, message, field, error_id} body. Errors are classified with
// errors.Is against the sentinels ([ErrInvalidInput], [ErrUnauthorized],
// [ErrNotReady], [ErrUnavailable], [ErrTimeout], ...); failures that got no
// answer at all wrap the underlying network or context error, so
// errors.Is(err, context.DeadlineExceeded) works too. A call that gives up
// early because its next attempt would be due after the deadline (a
// Retry-After longer than the time left) matches [ErrNoTimeToRetry] and the
// last attempt's failure, not the deadline, which has not passed.
//
// # Deadlines and retries
//
// The caller's context bounds the whole call, retries and backoff included;
// the client never sleeps past it. Calls whose context has no earlier
// deadline are bounded by [WithTimeout] (default [DefaultTimeout]).
// Retries (DefaultRetries, with jittered exponential backoff) happen only
// when the failed attempt certainly had no effect on the server, or the
// request is idempotent:
//
//   - a dial error (nothing was sent), for every call;
//   - 503 not_ready (the engine refused before deciding anything), for
//     every call but Ready;
//   - 503 overloaded (the server refused the request unread), for every
//     call, waiting the server's Retry-After and up to half as long again,
//     at random, so that the requests it refused together do not all
//     come back in the same instant;
//   - for GET only, any other network failure and 502, 503, 504.
//
// Never a 4xx, never eval_timeout or a 500, and never a POST once its
// request may have reached the server (a timeout or reset while waiting for
// the response, a proxy's 502 or 504): the server records every decision
// before answering it, so a repeated POST could record a second decision
// for one question. Each attempt re-sends the same body bytes under the
// same X-Request-Id.
package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	// DefaultRetries is how many times a failed attempt is retried, when
	// the failure allows it.
	DefaultRetries = 2
	// DefaultBackoff is the base of the exponential backoff between
	// attempts; each wait is jittered within [d/2, d].
	DefaultBackoff = 100 * time.Millisecond
	// MaxBackoff caps one wait (unless the configured base is larger, in
	// which case the base is the cap).
	MaxBackoff = 2 * time.Second
	// DefaultTimeout bounds a call (all attempts) whose context carries
	// no earlier deadline. The admission path is latency-critical: a
	// decision point that hangs must turn into "no enforcement" quickly,
	// not into joins that hang.
	DefaultTimeout = 5 * time.Second
	// DefaultUserAgent is sent unless WithUserAgent says otherwise.
	DefaultUserAgent = "geoscope-go-client/1"
)

// DefaultMaxResponse bounds the answers the client reads (WithMaxResponse):
// the server's default --max-response. A decision for a very large roster
// can be tens of megabytes; anything beyond the limit is refused as a bad
// response rather than buffered without bound.
const DefaultMaxResponse = 64 << 20

// maxErrorBytes bounds the error bodies the client reads.
const maxErrorBytes = 64 << 10

// Connection pool of the default transport. http.DefaultTransport keeps 2
// idle connections per host, so a meeting server with more admissions in
// flight than that opened and closed a connection for nearly every one
// (32 concurrent callers made 171 connections for 960 admissions, against
// 32 with a pool of their size), paying a handshake each and leaving
// sockets in TIME_WAIT.
const (
	// idleConnsPerHost is how many idle connections are kept to the
	// decision point: enough for the concurrency of a busy meeting server.
	idleConnsPerHost = 256
	// idleConnTimeout closes an idle connection before the server's idle
	// timeout (120 s) would, so that a request is not sent on a
	// connection the server is closing for that. (At its cap on
	// connections the server may close the connection idle longest
	// sooner, to make room for a new client; a request sent at that
	// moment fails, and is not sent again, as any failure after a
	// possible send.)
	idleConnTimeout = 90 * time.Second
)

// newTransport is the client's own transport: http.DefaultTransport's
// settings (proxy from the environment, dial and TLS handshake timeouts,
// HTTP/2 over TLS) with a pool sized for a decision point, not shared with
// the rest of the process.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = idleConnsPerHost
	t.MaxIdleConnsPerHost = idleConnsPerHost
	t.IdleConnTimeout = idleConnTimeout
	return t
}

// Client calls one geoscope decision point. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	token     string
	hc        *http.Client
	retries   int
	backoff   time.Duration
	timeout   time.Duration
	userAgent string
	// maxResponse bounds a successful answer's body (WithMaxResponse).
	maxResponse int64

	err error // first option error, reported by New
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends token as a bearer token (Authorization: Bearer TOKEN) on
// every call. The server needs a token with the decide scope for decisions
// and admissions, and one with the admin scope for Status unless it serves
// status publicly. Over plain http the token crosses the network in clear:
// use https beyond loopback.
func WithToken(token string) Option {
	return func(c *Client) {
		if token == "" || !printableASCII(token) {
			c.fail(errors.New("WithToken: the token must be non-empty printable ASCII without spaces"))
			return
		}
		c.token = token
	}
}

// WithHTTPClient makes calls through hc instead of the default client
// (which does not follow redirects, and has a transport of its own: a pool
// of up to 256 idle connections to the decision point, closed after 90 s
// idle, with http.DefaultTransport's other settings, HTTP/2 over TLS
// among them). hc's own redirect policy and timeout then apply; a
// per-request timeout on hc is not needed, the context bounds every call.
//
// To trust a private CA, start hc's transport from
// http.DefaultTransport.(*http.Transport).Clone(), set its TLSClientConfig
// and raise MaxIdleConnsPerHost: a transport written as
// &http.Transport{TLSClientConfig: ...} speaks HTTP/1.1 only and keeps 2
// idle connections per host. Over HTTP/2 a replica that shuts down tells
// the client which requests it did not take, which are sent again; over
// HTTP/1.1 a request sent on a keep-alive connection as the replica closes
// it fails, and is not sent again (see the package documentation).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc == nil {
			c.fail(errors.New("WithHTTPClient: nil *http.Client"))
			return
		}
		c.hc = hc
	}
}

// WithRetries sets how many times a retryable failure is retried (n = 0
// disables retries) and the base of the jittered exponential backoff
// between attempts (0 retries immediately). Defaults: DefaultRetries,
// DefaultBackoff. Waits are capped at MaxBackoff, or at backoff if larger.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) {
		if n < 0 || backoff < 0 {
			c.fail(fmt.Errorf("WithRetries(%d, %v): retries and backoff must not be negative", n, backoff))
			return
		}
		c.retries, c.backoff = n, backoff
	}
}

// WithTimeout bounds each call, all attempts included, when the caller's
// context has no earlier deadline. Default DefaultTimeout; 0 leaves calls
// bounded by the context alone.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d < 0 {
			c.fail(fmt.Errorf("WithTimeout(%v): must not be negative", d))
			return
		}
		c.timeout = d
	}
}

// WithMaxResponse bounds the size of the answers the client reads
// (default DefaultMaxResponse, the server's default --max-response). A
// larger answer is refused as ErrBadResponse, and so not enforced: raise
// it with the server's --max-response.
func WithMaxResponse(n int64) Option {
	return func(c *Client) {
		if n <= 0 {
			c.fail(fmt.Errorf("WithMaxResponse(%d): must be positive", n))
			return
		}
		c.maxResponse = n
	}
}

// WithUserAgent replaces the User-Agent header, e.g. to name the meeting
// server and its version in the decision point's logs.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua == "" || strings.ContainsAny(ua, "\r\n\x00") {
			c.fail(errors.New("WithUserAgent: the user agent must be non-empty and on one line"))
			return
		}
		c.userAgent = ua
	}
}

// CloseIdleConnections closes the connections the client keeps open to
// the decision point between calls (through the *http.Client of
// WithHTTPClient, when given). A client that is no longer used keeps them,
// with two goroutines each, until they have been idle for 90 s: call it
// when a client is replaced, as when a token is rotated (WithToken is
// fixed when the client is made) or the decision point moves. Calls in
// flight are not affected, and a later call opens connections again.
func (c *Client) CloseIdleConnections() {
	if c != nil {
		c.hc.CloseIdleConnections()
	}
}

func (c *Client) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// New returns a client for the decision point at baseURL, e.g.
// "https://geoscope.internal:8181". baseURL must be an absolute http or
// https URL without query, fragment or user information; a path is kept
// as a prefix for every endpoint (for a decision point behind a reverse
// proxy at https://gw.example/geoscope).
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base: base,
		hc: &http.Client{
			Transport: newTransport(),
			// A redirect would turn a POST into a GET (301, 302, 303) or
			// send the decision request somewhere nobody configured; the
			// server never redirects, so a redirect is answered as an
			// error status instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		retries:   DefaultRetries,
		backoff:   DefaultBackoff,
		timeout:   DefaultTimeout,
		userAgent: DefaultUserAgent,

		maxResponse: DefaultMaxResponse,
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	if c.err != nil {
		return nil, fmt.Errorf("geoscope client: %w", c.err)
	}
	return c, nil
}

func parseBase(raw string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("geoscope client: base URL %q: %s", raw, why)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad(err.Error())
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return bad("a host is required (scheme://host[:port])")
	case u.User != nil:
		return bad("user information is not allowed; use WithToken")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("a query is not allowed")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("a fragment is not allowed")
	case u.Hostname() == "":
		return bad("a host is required (scheme://host[:port])")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("the port must be 1-65535")
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
