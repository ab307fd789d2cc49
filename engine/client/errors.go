package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/geoscope/geoscope/engine/apierror"
)

// Error codes of the server's error bodies, from the wire contract in
// package apierror (the client does not link the server).
const (
	CodeInvalidInput         = apierror.InvalidInput
	CodeTooLarge             = apierror.TooLarge
	CodeUnsupportedMediaType = apierror.UnsupportedMediaType
	CodeUnauthorized         = apierror.Unauthorized
	CodeForbidden            = apierror.Forbidden
	CodeNotFound             = apierror.NotFound
	CodeMethodNotAllowed     = apierror.MethodNotAllowed
	CodeNotReady             = apierror.NotReady
	CodeEvalTimeout          = apierror.EvalTimeout
	CodePolicyError          = apierror.PolicyError
	CodeLedgerUnavailable    = apierror.LedgerUnavailable
	CodeOverloaded           = apierror.Overloaded
	CodeBodyTimeout          = apierror.BodyTimeout
	CodeInternal             = apierror.Internal
)

// Sentinel errors classify failures; match them with errors.Is. An
// *APIError matches by its code, or by its HTTP status when the body
// carried no geoscope code (a proxy's error page). Whatever matches, the
// client contract is the same: an error means no enforcement.
var (
	// ErrInvalidInput: the server rejected the request (400
	// invalid_input); APIError.Field names the offending field. Also
	// matched by a nil request, refused before any call.
	ErrInvalidInput = errors.New("geoscope: invalid input")
	// ErrTooLarge: the body or roster exceeds the server's limits (413).
	ErrTooLarge = errors.New("geoscope: request too large")
	// ErrUnsupportedMediaType: the body was not sent as JSON (415).
	ErrUnsupportedMediaType = errors.New("geoscope: unsupported media type")
	// ErrUnauthorized: no bearer token, or one the server does not know (401).
	ErrUnauthorized = errors.New("geoscope: unauthorized")
	// ErrForbidden: the token lacks the scope the endpoint needs (403).
	ErrForbidden = errors.New("geoscope: forbidden")
	// ErrNotFound: no such endpoint (404), usually a wrong base URL prefix.
	ErrNotFound = errors.New("geoscope: not found")
	// ErrMethodNotAllowed: 405.
	ErrMethodNotAllowed = errors.New("geoscope: method not allowed")
	// ErrNotReady: the decision point has no policy, registry or GeoIP
	// database loaded yet (503 not_ready). No decision was made.
	ErrNotReady = errors.New("geoscope: decision point not ready")
	// ErrEvalTimeout: the policy did not decide within the server's
	// evaluation deadline (503 eval_timeout).
	ErrEvalTimeout = errors.New("geoscope: policy evaluation timed out")
	// ErrTimeout: the call took too long, on either side. Matched by
	// ErrEvalTimeout responses, by 408 body_timeout (the body reached the
	// server slower than its --min-body-rate; nothing was decided), by
	// 504 responses, and by failures caused
	// by the context's deadline or a network timeout.
	ErrTimeout = errors.New("geoscope: timeout")
	// ErrLedgerUnavailable: the decision was made but the ledger could not
	// commit it in time, so it is not answered (503 ledger_unavailable).
	// The entry may still commit: a decision may be on record that was
	// never answered.
	ErrLedgerUnavailable = errors.New("geoscope: decision ledger unavailable")
	// ErrOverloaded: the decision point had too much work in flight to
	// admit the request in time (503 overloaded). It refused the request
	// before reading it, so nothing was decided or recorded; the client
	// retries it after APIError.RetryAfter, within the call's deadline.
	ErrOverloaded = errors.New("geoscope: decision point overloaded")
	// ErrPolicy: the policy failed to evaluate (500 policy_error).
	ErrPolicy = errors.New("geoscope: policy error")
	// ErrInternal: the server failed (500 internal); APIError.ErrorID ties
	// the response to the server's log.
	ErrInternal = errors.New("geoscope: internal server error")
	// ErrServer: any 5xx response.
	ErrServer = errors.New("geoscope: server error")
	// ErrUnavailable: no decision could be had from the decision point:
	// it could not be reached or the connection failed (not after a
	// cancellation by the caller), or it answered 502, 503 or 504
	// (including not_ready, eval_timeout, ledger_unavailable and
	// overloaded).
	ErrUnavailable = errors.New("geoscope: decision point unavailable")
	// ErrNoTimeToRetry: the call gave up before its deadline because the
	// next attempt was due after it (the server's Retry-After, or the
	// backoff, was longer than the time left). It is not a timeout: the
	// error also matches the last attempt's failure, which says why there
	// was to be another attempt.
	ErrNoTimeToRetry = errors.New("geoscope: no time left to retry")
	// ErrBadResponse: a successful status whose body is not a decision
	// this client can trust (not JSON, too large, missing decision id,
	// actions that cite no order or name another meeting, an admission
	// whose allow flag contradicts its actions).
	ErrBadResponse = errors.New("geoscope: bad response")
)

// APIError is an error status answered by the server (or by a proxy in
// front of it), with the server's error body when it had one.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the server's error code (Code* constants); empty when the
	// body was not a geoscope error body.
	Code string
	// Message explains the error; for a body that was not a geoscope
	// error body, it is the start of that body or the status text.
	Message string
	// Field names the offending request field for invalid_input and
	// too_large, e.g. "participant.ip" or "meeting.participants[3].ip".
	Field string
	// ErrorID ties an internal error to the server's log.
	ErrorID string
	// RetryAfter is the server's Retry-After (with not_ready and
	// overloaded); zero when it sent none.
	RetryAfter time.Duration
	// RequestID is the X-Request-Id of the call (the same on every
	// attempt), as the server logged it.
	RequestID string
	// Method and Path name the call.
	Method, Path string
	// Attempts is how many attempts the call made.
	Attempts int
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("geoscope: %s %s: %d", e.Method, e.Path, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Field != "" && e.Code != "" {
		s += " (field " + e.Field + ")"
	}
	if e.ErrorID != "" {
		s += " (error id " + e.ErrorID + ")"
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

// Is classifies the error for errors.Is against the package's sentinels.
func (e *APIError) Is(target error) bool {
	code, status := e.Code, e.StatusCode
	byStatus := code == "" // not a geoscope error body: classify by status
	switch target {
	case ErrInvalidInput:
		return code == CodeInvalidInput || byStatus && status == http.StatusBadRequest
	case ErrTooLarge:
		return code == CodeTooLarge || byStatus && status == http.StatusRequestEntityTooLarge
	case ErrUnsupportedMediaType:
		return code == CodeUnsupportedMediaType || byStatus && status == http.StatusUnsupportedMediaType
	case ErrUnauthorized:
		return code == CodeUnauthorized || byStatus && status == http.StatusUnauthorized
	case ErrForbidden:
		return code == CodeForbidden || byStatus && status == http.StatusForbidden
	case ErrNotFound:
		return code == CodeNotFound || byStatus && status == http.StatusNotFound
	case ErrMethodNotAllowed:
		return code == CodeMethodNotAllowed || byStatus && status == http.StatusMethodNotAllowed
	case ErrNotReady:
		return code == CodeNotReady
	case ErrEvalTimeout:
		return code == CodeEvalTimeout
	case ErrTimeout:
		return code == CodeEvalTimeout || code == CodeBodyTimeout || status == http.StatusGatewayTimeout
	case ErrLedgerUnavailable:
		return code == CodeLedgerUnavailable
	case ErrOverloaded:
		return code == CodeOverloaded
	case ErrPolicy:
		return code == CodePolicyError
	case ErrInternal:
		return code == CodeInternal
	case ErrServer:
		return status >= 500
	case ErrUnavailable:
		return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
	}
	return false
}

// transportError is a call that got no HTTP response, or whose response
// could not be read: the underlying error (a *url.Error wrapping a
// net.OpError, context.DeadlineExceeded, ...) is wrapped.
type transportError struct {
	method, path string
	attempts     int
	err          error
}

func (e *transportError) Error() string {
	s := fmt.Sprintf("geoscope: %s %s: %v", e.method, e.path, e.err)
	if e.attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.attempts)
	}
	return s
}

func (e *transportError) Unwrap() error { return e.err }

func (e *transportError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return !errors.Is(e.err, context.Canceled)
	case ErrTimeout:
		return isTimeout(e.err)
	}
	return false
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// abortedError is a call that the context ended after at least one failed
// attempt: it matches both the context's error (err wraps it) and the
// previous attempt's failure (an *APIError, a dial error, ...).
type abortedError struct {
	err, prev error
}

func (e *abortedError) Error() string {
	return fmt.Sprintf("%v; previous attempt: %v", e.err, e.prev)
}

func (e *abortedError) Unwrap() []error { return []error{e.err, e.prev} }

func (e *abortedError) Is(target error) bool {
	return target == ErrTimeout && errors.Is(e.err, context.DeadlineExceeded)
}

// badResponse is a successful status whose body cannot be trusted.
func badResponse(method, path, format string, args ...any) error {
	return fmt.Errorf("geoscope: %s %s: %w: %s", method, path, ErrBadResponse, fmt.Sprintf(format, args...))
}
