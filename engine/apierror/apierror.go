// Package apierror is the wire contract of geoscope's HTTP errors: the
// error body and its codes. The server writes them and the client reads
// them; neither links the other.
package apierror

// Body is the JSON body of every error response.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	ErrorID string `json:"error_id,omitempty"`
}

// Codes. A meeting server treats any error as "no enforcement".
const (
	InvalidInput         = "invalid_input"
	TooLarge             = "too_large"
	UnsupportedMediaType = "unsupported_media_type"
	Unauthorized         = "unauthorized"
	Forbidden            = "forbidden"
	NotFound             = "not_found"
	MethodNotAllowed     = "method_not_allowed"
	NotReady             = "not_ready"
	EvalTimeout          = "eval_timeout"
	PolicyError          = "policy_error"
	LedgerUnavailable    = "ledger_unavailable"
	// Overloaded (503, with Retry-After): too much work was in flight to
	// admit the request in time, or too many bodies were arriving to take
	// its body in. It was refused before it was decided, so nothing was
	// recorded and it may be sent again.
	Overloaded = "overloaded"
	// BodyTimeout (408): the body did not arrive at the server's minimum
	// rate once the server began to read it; nothing was decided or
	// recorded.
	BodyTimeout  = "body_timeout"
	ClientClosed = "client_closed_request"
	Internal     = "internal"
)
