package server

// OPA's Data API for geoscope's two entry points, so that clients written
// for OPA (its SDKs, an Envoy or gateway plugin, a service that already
// queries OPA) can ask geoscope:
//
//	POST /v1/data/geoscope/decision   {"input": <decision request>}
//	POST /v1/data/geoscope/admission  {"input": <admission request>}
//	GET  /v1/data/geoscope/decision?input=<decision request>
//	GET  /v1/data/geoscope/admission?input=<admission request>
//	→ 200 {"decision_id": "...", "result": <the decision | the admission answer>}
//
// The input is exactly the body of POST /v1/decisions or /v1/admission and
// goes through the same pipeline (decode, locate, evaluate, guard, record),
// under the same scope: the result is the guarded, recorded decision, never
// the policy's raw output. A GET carries it, as in OPA, as the JSON value of
// its input parameter, held to the limits a body is held to. No other
// document under /v1/data is served.
// Errors take OPA's shape, {"code", "message", "errors"}, with OPA's codes
// (invalid_parameter, unauthorized, resource_not_found, internal_error,
// ...); errors[0] carries geoscope's own code and the field, which is
// named as a path in the envelope ("input.meeting.participants[3].ip").
// OPA's query parameters are accepted; pretty indents the answer, the
// others (metrics, provenance, explain, instrument) are ignored, as OPA
// ignores what it does not know.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
	opatypes "github.com/open-policy-agent/opa/v1/server/types"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/input"
)

// Data API paths.
const (
	DataDecisionPath  = "/v1/data/geoscope/decision"
	DataAdmissionPath = "/v1/data/geoscope/admission"
	dataPrefix        = "/v1/data"
)

// ctxOPAErrors marks a request answered in OPA's error shape.
const ctxOPAErrors = "geoscope.opa_errors"

// opaErrors makes the errors of the routes it guards OPA-shaped; it comes
// before authentication so that a refused token is OPA-shaped too.
func opaErrors(c *gin.Context) {
	c.Set(ctxOPAErrors, true)
	c.Next()
}

// isDataPath reports whether path is under OPA's Data API.
func isDataPath(path string) bool {
	return path == dataPrefix || strings.HasPrefix(path, dataPrefix+"/")
}

// opaError is OPA's error body (types.ErrorV1) with geoscope's detail.
type opaError struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Errors  []opaDetail `json:"errors,omitempty"`
}

// opaDetail carries geoscope's code, and the offending field, of an error
// answered in OPA's shape.
type opaDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	ErrorID string `json:"error_id,omitempty"`
}

// opaCodes maps geoscope's error codes to OPA's.
var opaCodes = map[string]string{
	apierror.InvalidInput:         opatypes.CodeInvalidParameter,
	apierror.TooLarge:             opatypes.CodeInvalidParameter,
	apierror.BodyTimeout:          opatypes.CodeInvalidParameter,
	apierror.UnsupportedMediaType: opatypes.CodeInvalidParameter,
	apierror.Unauthorized:         opatypes.CodeUnauthorized,
	apierror.Forbidden:            opatypes.CodeUnauthorized,
	apierror.NotFound:             opatypes.CodeResourceNotFound,
	apierror.MethodNotAllowed:     opatypes.CodeInvalidOperation,
	// The policy failed: OPA's Data API answers an evaluation error as
	// internal_error (its evaluation_error is the Compile API's), so
	// policy_error is told apart only in errors[0].
}

func opaErrorOf(e apiError) opaError {
	code, ok := opaCodes[e.Code]
	if !ok {
		code = opatypes.CodeInternal // policy_error, not_ready, eval_timeout, ledger_unavailable, internal, ...
	}
	return opaError{Code: code, Message: e.Message, Errors: []opaDetail{{Code: e.Code, Message: e.Message, Field: e.Field, ErrorID: e.ErrorID}}}
}

// dataResponse is OPA's Data API answer (types.DataResponseV1) for
// geoscope's entry points: always a result, always a decision id.
type dataResponse struct {
	DecisionID string `json:"decision_id"`
	Result     any    `json:"result"`
}

func (s *Server) dataDecision(c *gin.Context) {
	req, release, ok := s.request(c, s.dataInput, s.decodeDecision, withinInput)
	if !ok {
		return
	}
	defer release()
	if id, answer, ok := s.decide(c, DataDecisionPath, req); ok {
		s.dataAnswer(c, dataResponse{DecisionID: id, Result: json.RawMessage(answer.body)})
	}
}

func (s *Server) dataAdmission(c *gin.Context) {
	req, release, ok := s.request(c, s.dataInput, input.DecodeAdmission, withinInput)
	if !ok {
		return
	}
	defer release()
	if d, ok := s.admit(c, DataAdmissionPath, req); ok {
		s.dataAnswer(c, dataResponse{DecisionID: d.DecisionID, Result: admissionAnswer(d)})
	}
}

func (s *Server) dataAnswer(c *gin.Context, resp dataResponse) {
	if prettyAsOPA(c.Request.URL.Query()["pretty"]) {
		c.IndentedJSON(http.StatusOK, resp)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// prettyAsOPA reads ?pretty as OPA's server does: given without a value,
// or "true" in any case.
func prettyAsOPA(values []string) bool {
	if len(values) == 1 && values[0] == "" {
		return true
	}
	for _, v := range values {
		if strings.EqualFold(v, "true") {
			return true
		}
	}
	return false
}

// dataInput returns the input of a Data API request: of a POST, the value
// of its body's "input" member; of a GET, its input parameter. The
// envelope is decoded as strictly as the request inside it: one object,
// one "input" member, nothing else; and a POST does not also take an
// input parameter, which OPA would ignore: the client meant one of them.
func (s *Server) dataInput(c *gin.Context) ([]byte, *reservation, bool) {
	if c.Request.Method == http.MethodGet {
		return s.queryInput(c)
	}
	if strings.Contains(c.Request.URL.RawQuery, "input") {
		if q, _ := url.ParseQuery(c.Request.URL.RawQuery); q.Has("input") {
			s.abortWith(c, &input.FieldError{Field: "input", Message: `is a parameter of a GET: a POST sends its input in the body, as {"input": <request>}`})
			return nil, nil, false
		}
	}
	raw, res, ok := s.body(c)
	if !ok {
		return nil, nil, false
	}
	in, err := envelopeInput(raw)
	if err != nil {
		res.release()
		s.abortWith(c, err)
		return nil, nil, false
	}
	return in, res, true
}

// queryInput returns the input parameter of a GET, as OPA reads it (the
// URL-decoded JSON value of "input"), held as a body is: within MaxBody,
// and admitted into the in-flight budget by its size (a GET's input has
// arrived with its head, so it never waits to arrive). What OPA lets pass
// is refused, naming the parameter: a query string it cannot read (Go's
// URL.Query drops such a pair, and the input with it), an input given
// twice (OPA takes the last), none at all, and a body beside it.
func (s *Server) queryInput(c *gin.Context) ([]byte, *reservation, bool) {
	refuse := func(err error) ([]byte, *reservation, bool) {
		s.abortWith(c, err)
		return nil, nil, false
	}
	invalid := func(field, msg string) ([]byte, *reservation, bool) {
		return refuse(&input.FieldError{Field: field, Message: msg})
	}
	const shape = "a GET sends the request as JSON in its input parameter (?input=<URL-encoded JSON>)"
	if c.Request.ContentLength > 0 {
		closeHTTP1(c) // the body is not read
		return invalid("body", `a GET takes no body: it sends the request as JSON in its input parameter; a body goes with POST, as {"input": <request>}`)
	}
	q, e := parseQuery(c.Request.URL.RawQuery)
	if e != nil {
		abort(c, http.StatusBadRequest, *e)
		return nil, nil, false
	}
	values := q["input"]
	switch {
	case len(values) == 0:
		return invalid("input", "is required: "+shape)
	case len(values) > 1:
		return invalid("input", "is given more than once: "+shape)
	}
	in := values[0]
	size := int64(len(in))
	if size > s.cfg.MaxBody {
		return refuse(input.TooLarge("input", "exceeds the limit of %s (--max-body); a large request goes by POST", bytesText(s.cfg.MaxBody)))
	}
	switch strings.TrimSpace(in) {
	case "":
		return invalid("input", "is empty: "+shape)
	case "null":
		return invalid("input", "is required: "+shape)
	}
	res, err := s.inflight.acquire(c.Request.Context(), size, s.cfg.MaxBody)
	if err != nil {
		lane := "small"
		if size > SmallBody {
			lane = "large"
		}
		s.overloaded(c, err, lane)
		return nil, nil, false
	}
	return []byte(in), res, true
}

func envelopeInput(raw []byte) (json.RawMessage, error) {
	bad := func(field, msg string) error {
		return &input.FieldError{Field: field, Message: msg}
	}
	const shape = `the Data API takes {"input": <request>}`
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, bad("input", "is required: "+shape)
		}
		return nil, bad("", "malformed JSON or not an object: "+shape)
	}
	var in json.RawMessage
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("", "malformed JSON: "+err.Error())
		}
		key, _ := tok.(string)
		switch {
		case key != "input":
			// The key is the client's: named, but only its start.
			key = shorten(key, 64)
			return nil, bad(key, "unknown field: "+shape)
		case seen:
			return nil, bad("input", "is repeated")
		}
		seen = true
		if err := dec.Decode(&in); err != nil {
			return nil, bad("input", "malformed JSON: "+strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("", "malformed JSON: "+err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad("", "unexpected data after the JSON object")
	}
	if !seen || bytes.Equal(bytes.TrimSpace(in), []byte("null")) {
		return nil, bad("input", "is required: "+shape)
	}
	return in, nil
}

// withinInput names the fields of a request decoded from the envelope as
// paths in it.
func withinInput(err error) error {
	var fe *input.FieldError
	if errors.As(err, &fe) {
		return fe.Within("input")
	}
	return err
}

// dataNotFound answers a path under /v1/data that is not one of the two
// entry points: geoscope serves decisions, not arbitrary documents.
func dataNotFound(c *gin.Context) {
	c.Set(ctxOPAErrors, true)
	abort(c, http.StatusNotFound, apiError{Code: apierror.NotFound,
		Message: "geoscope serves only " + DataDecisionPath + " and " + DataAdmissionPath + " under " + dataPrefix + ", not " + quotedPath(c)})
}
