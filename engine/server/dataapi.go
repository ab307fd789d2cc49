package server

// OPA's Data API for geoscope's two entry points, so that clients written
// for OPA (its SDKs, an Envoy or gateway plugin, a service that already
// queries OPA) can ask geoscope:
//
//	POST /v1/data/geoscope/decision   {"input": <decision request>}
//	POST /v1/data/geoscope/admission  {"input": <admission request>}
//	→ 200 {"decision_id": "...", "result": <the decision | the admission answer>}
//
// The input is exactly the body of POST /v1/decisions or /v1/admission and
// goes through the same pipeline (decode, locate, evaluate, guard, record),
// under the same scope: the result is the guarded, recorded decision, never
// the policy's raw output. No other document under /v1/data is served.
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

// dataInput reads the body and returns the value of its "input" member.
// The envelope is decoded as strictly as the request inside it: one
// object, one "input" member, nothing else.
func (s *Server) dataInput(c *gin.Context) ([]byte, *reservation, bool) {
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
