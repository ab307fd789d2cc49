package input

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every error this package returns for
// a request that is malformed or fails validation. Callers map it to exit
// code 2 or HTTP 400; it is never a server fault.
var ErrInvalid = errors.New("invalid input")

// ErrTooLarge is matched by errors for requests over a configured limit
// (HTTP 413).
var ErrTooLarge = errors.New("input too large")

// FieldError names the offending field with a JSON-style path such as
// meeting.participants[3].ip.
type FieldError struct {
	Field   string
	Message string
	kind    error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Is makes FieldError match ErrInvalid or ErrTooLarge.
func (e *FieldError) Is(target error) bool {
	if e.kind == nil {
		return target == ErrInvalid
	}
	return target == e.kind
}

func invalid(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

func tooLarge(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...), kind: ErrTooLarge}
}

// Within returns the error with its field placed under prefix
// ("meeting.id" within "input" is "input.meeting.id"), for requests that
// arrive wrapped in an envelope such as OPA's {"input": ...}.
func (e *FieldError) Within(prefix string) *FieldError {
	out := *e
	if out.Field == "" {
		out.Field = prefix
	} else {
		out.Field = prefix + "." + out.Field
	}
	return &out
}

// TooLarge is a FieldError matching ErrTooLarge, for limits checked past
// decoding (an answer too large to send for a roster, for one).
func TooLarge(field, format string, args ...any) *FieldError {
	return tooLarge(field, format, args...)
}
