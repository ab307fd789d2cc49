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
//	  (with "provenance" and "metrics" before "result" when asked for)
//
// The input is exactly the body of POST /v1/decisions or /v1/admission and
// goes through the same pipeline (decode, locate, evaluate, guard, record),
// under the same scope: the result is the guarded, recorded decision, never
// the policy's raw output. A GET carries it, as in OPA, as the JSON value of
// its input parameter, held to the limits a body is held to. No other
// document under /v1/data is served.
//
// Errors take OPA's shape, {"code", "message", "errors"}, with OPA's codes
// (invalid_parameter, unauthorized, resource_not_found, internal_error,
// ...); errors[0] carries geoscope's own code and the field, which is
// named as a path in the envelope ("input.meeting.participants[3].ip").
//
// OPA's query parameters mean what they mean in OPA (dataParams): pretty
// indents the answer, metrics adds the request's timers ("metrics", OPA's
// names, in ns), provenance the build and the revisions of the bundles
// the decision was made with ("provenance", OPA's ProvenanceV1). What OPA
// lets pass without a word (a value other than true or false, which it
// reads as false; a parameter given twice) is refused naming the
// parameter, and so are explain and instrument unless they ask for
// nothing: they ask for a trace or a profile of the policy's query, and
// the answer is not that query's. --max-response bounds a decision's
// whole answer as it is sent, indentation, timers and provenance included
// (an admission's, as on /v1/admission, is not bounded: it is about one
// participant). An X-Request-Id given on two lines is refused (request),
// as on the native endpoints.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	opametrics "github.com/open-policy-agent/opa/v1/metrics"
	opatypes "github.com/open-policy-agent/opa/v1/server/types"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/decision"
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

func (s *Server) dataDecision(c *gin.Context) {
	ask, ok := dataParams(c)
	if !ok {
		return
	}
	req, hold, ok := s.request(c, s.dataReader(ask), s.decodeDecision, withinInput, ask.metrics)
	if !ok {
		return
	}
	defer hold.release()
	data := &dataAnswer{ask: ask}
	if id, answer, ok := s.decide(c, DataDecisionPath, req, data); ok {
		parts := dataEnvelope(id, data.provenance, answeredMetrics(c, ask), answer.body)
		size := dataSize(parts, ask.pretty)
		// Held while written: the answer, and its indented copy if asked.
		held := int64(len(answer.body))
		if ask.pretty {
			held += size
		}
		hold.answering(held)
		writeData(c, ask.pretty, parts, size)
	}
}

func (s *Server) dataAdmission(c *gin.Context) {
	ask, ok := dataParams(c)
	if !ok {
		return
	}
	req, hold, ok := s.request(c, s.dataReader(ask), input.DecodeAdmission, withinInput, ask.metrics)
	if !ok {
		return
	}
	defer hold.release()
	if d, ok := s.admit(c, DataAdmissionPath, req); ok {
		var provenance []byte
		if ask.provenance {
			provenance = s.provenance(d.Bundles)
		}
		withAdmissionJSON(d, func(answer []byte) {
			parts := dataEnvelope(d.DecisionID, provenance, answeredMetrics(c, ask), answer)
			writeData(c, ask.pretty, parts, dataSize(parts, ask.pretty))
		})
	}
}

// dataReader reads the input of a Data API request (dataInput) with the
// query its parameters were read from.
func (s *Server) dataReader(ask dataAsk) func(*gin.Context) ([]byte, *reservation, bool) {
	return func(c *gin.Context) ([]byte, *reservation, bool) { return s.dataInput(c, ask.query) }
}

// dataAsk is what a Data API request asks for besides its input, in OPA's
// query parameters (dataParams).
type dataAsk struct {
	query                       url.Values // nil without a query string
	pretty, metrics, provenance bool
}

// dataParams reads OPA's query parameters of a Data API request. The
// values OPA gives a meaning mean what they mean in OPA: a boolean is
// true given alone (?metrics) or as "true" in any case, false as "false";
// explain=off asks for no trace. What OPA lets pass without a word is
// refused, naming the parameter: a boolean's other values, which OPA
// reads as false (?metrics=1 would answer no metrics, and the client
// would not know why), a parameter given twice (OPA takes any "true"),
// and a query string Go cannot read (a bad %-escape, a ";"), whose pairs
// OPA drops. Parameters OPA does not know are ignored, as OPA ignores
// them; so are strict-builtin-errors and rule_labels, which shape a raw
// query's evaluation and result: the policy is evaluated as it was
// prepared when its bundle was loaded, whatever a request asks.
//
// explain (notes, fails, full, debug) and instrument=true are refused:
// OPA answers them with a trace or a profile of the query it evaluated,
// and geoscope's answer is not that query's result but the decision made
// from it by the guard, under the orders in force, and recorded. A trace
// of the policy would not say why an action was blocked or an order not
// evaluated, and an answer that left it out silently would let a client
// believe it had one. The policy is traced with opa eval --explain
// against its bundle.
func dataParams(c *gin.Context) (dataAsk, bool) {
	raw := c.Request.URL.RawQuery
	if raw == "" {
		return dataAsk{}, true
	}
	q, e := parseQuery(raw)
	if e != nil {
		abort(c, http.StatusBadRequest, *e)
		return dataAsk{}, false
	}
	refuse := func(field, msg string) (dataAsk, bool) {
		abort(c, http.StatusBadRequest, apiError{Code: apierror.InvalidInput, Message: field + ": " + msg, Field: field})
		return dataAsk{}, false
	}
	ask := dataAsk{query: q}
	var instrument bool
	for _, p := range []struct {
		name string
		to   *bool
	}{{"pretty", &ask.pretty}, {"metrics", &ask.metrics}, {"provenance", &ask.provenance}, {"instrument", &instrument}} {
		values, given := q[p.name]
		switch {
		case !given:
			continue
		case len(values) > 1:
			return refuse(p.name, "is given more than once: give it once, true or false")
		}
		switch v := values[0]; {
		case v == "" || strings.EqualFold(v, "true"):
			*p.to = true
		case strings.EqualFold(v, "false"):
		default:
			return refuse(p.name, input.Quote(v)+" is not a boolean: give true or false, or the parameter alone for true (OPA would read this value as false)")
		}
	}
	if instrument {
		return refuse("instrument", "is not supported: it asks for a profile of the policy's query, and the answer is the guarded, recorded decision made from it, not that query's result; ?metrics=true gives the request's timers")
	}
	if values, given := q["explain"]; given {
		switch v := values[0]; {
		case len(values) > 1:
			return refuse("explain", "is given more than once")
		case v == "off":
		case v == "notes" || v == "fails" || v == "full" || v == "debug":
			return refuse("explain", "is not supported: the answer is the guarded, recorded decision, not the result of the policy's query, and a trace of the query would not explain it; trace the policy with opa eval --explain against its bundle (explain=off is accepted)")
		default:
			return refuse("explain", input.Quote(v)+" is not one of OPA's modes (off, notes, fails, full, debug); only off is accepted here")
		}
	}
	return ask, true
}

// dataAnswer is a Data API decision's answer as it is made: what its
// request asked for and, set by answerCheck before the decision is
// recorded, its provenance.
type dataAnswer struct {
	ask        dataAsk
	provenance []byte
}

// dataEnvelope is a Data API answer (OPA's types.DataResponseV1) in parts,
// each compact JSON, in the order OPA writes them: decision_id,
// provenance and metrics when given, result.
func dataEnvelope(id string, provenance, metrics, result []byte) [][]byte {
	quoted, _ := json.Marshal(id)
	parts := make([][]byte, 0, 8)
	parts = append(parts, []byte(`{"decision_id":`), quoted)
	if provenance != nil {
		parts = append(parts, []byte(`,"provenance":`), provenance)
	}
	if metrics != nil {
		parts = append(parts, []byte(`,"metrics":`), metrics)
	}
	return append(parts, []byte(`,"result":`), result, []byte(`}`))
}

// dataSize is the size of the answer made of parts as writeData sends it.
func dataSize(parts [][]byte, pretty bool) int64 {
	if pretty {
		var in indenter
		for _, p := range parts {
			in.write(p)
		}
		return in.n
	}
	n := int64(0)
	for _, p := range parts {
		n += int64(len(p))
	}
	return n
}

// writeData answers 200 with the answer made of parts: indented with
// pretty, as json.MarshalIndent would with an indent of four spaces;
// otherwise as it is, without copying the result into another buffer.
// size is the answer's, dataSize(parts, pretty).
func writeData(c *gin.Context, pretty bool, parts [][]byte, size int64) {
	const contentType = "application/json; charset=utf-8"
	if pretty {
		in := indenter{build: true, out: make([]byte, 0, size)}
		for _, p := range parts {
			in.write(p)
		}
		c.Data(http.StatusOK, contentType, in.out)
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	c.Status(http.StatusOK)
	for _, p := range parts {
		if _, err := c.Writer.Write(p); err != nil {
			return // the client left; nothing more can reach it
		}
	}
}

// checkDataAnswer refuses, before the decision is recorded, a Data API
// answer that would exceed MaxResponse for what the client asked for
// besides the decision: its indentation, provenance and timers. The
// decision in OPA's envelope alone was held within the limit (answerCheck),
// so what is over it is the client's asking: 413 naming the parameter,
// never a 5xx. The timers are counted at their largest (answeredTimers,
// metricsRoom): they are read once the decision has been recorded.
func (s *Server) checkDataAnswer(data *dataAnswer, d *decision.Decision, body []byte) error {
	ask := data.ask
	if ask.provenance {
		data.provenance = s.provenance(d.Bundles)
	}
	if !ask.pretty && !ask.metrics && !ask.provenance {
		return nil
	}
	var metrics []byte
	if ask.metrics {
		metrics = metricsRoom
	}
	size := dataSize(dataEnvelope(d.DecisionID, data.provenance, metrics, body), ask.pretty)
	if size <= s.cfg.MaxResponse {
		return nil
	}
	var asked []string
	for _, p := range []struct {
		name string
		on   bool
	}{{"pretty", ask.pretty}, {"provenance", ask.provenance}, {"metrics", ask.metrics}} {
		if p.on {
			asked = append(asked, p.name)
		}
	}
	with, without := asked[0], asked[0]
	if n := len(asked); n > 1 {
		with, without = strings.Join(asked[:n-1], ", ")+" and "+asked[n-1], "them"
	}
	upTo := ""
	if ask.metrics {
		upTo = "up to "
	}
	return queryError{input.TooLarge(asked[0], "with %s the answer would be %s%d bytes, over the response limit of %s; it was neither answered nor recorded: ask without %s",
		with, upTo, size, bytesText(s.cfg.MaxResponse), without)}
}

// queryError is an error about a query parameter, named as the client
// sent it: it is not within the input (withinInput).
type queryError struct{ *input.FieldError }

func (e queryError) Unwrap() error { return e.FieldError }

// dataOverhead is what OPA's envelope adds to a decision's answer
// encoded alone: {"decision_id":"<id>","result":<answer>}.
func dataOverhead(id string) int64 {
	return dataSize(dataEnvelope(id, nil, nil, nil), false)
}

// provenance is the Data API's ?provenance for a decision made with the
// bundles at the revisions given: OPA's ProvenanceV1 with geoscope's build
// (its version; its commit, "-dirty" when built with uncommitted changes,
// and the commit's time, as OPA reports its own when not told them at
// link time; no build host, which OPA too leaves empty unless told) and
// the revisions, by bundle, that the decision records.
func (s *Server) provenance(bundles map[string]string) []byte {
	p := opatypes.ProvenanceV1{Version: s.cfg.Version, Vcs: s.cfg.Revision, Bundles: make(map[string]opatypes.ProvenanceBundleV1, len(bundles))}
	if p.Vcs != "" && s.cfg.Modified {
		p.Vcs += "-dirty"
	}
	if !s.cfg.RevisionTime.IsZero() {
		p.Timestamp = s.cfg.RevisionTime.UTC().Format(time.RFC3339)
	}
	for name, rev := range bundles {
		p.Bundles[name] = opatypes.ProvenanceBundleV1{Revision: rev}
	}
	b, _ := json.Marshal(p)
	return b
}

// answeredTimers are the timers a ?metrics answer gives, by OPA's names
// where OPA has one: those a request is timed with (engine.Served). Only
// these are answered, so that the room kept for them (metricsRoom) holds
// whatever they read.
var answeredTimers = []string{opametrics.ServerHandler, opametrics.RegoInputParse, opametrics.RegoQueryEval,
	engine.TimerLocate, engine.TimerGuard, engine.TimerRecord}

func timerKey(name string) string { return "timer_" + name + "_ns" }

// metricsRoom is the largest "metrics" an answer can give: every
// answered timer, at int64's widest.
var metricsRoom = func() []byte {
	m := map[string]int64{}
	for _, name := range answeredTimers {
		m[timerKey(name)] = math.MaxInt64
	}
	b, _ := json.Marshal(m)
	return b
}()

// answeredMetrics is the "metrics" of a Data API answer, nil unless asked
// for: the request's timers in ns, the handler's stopped now, once the
// decision has been recorded (OPA stops it once the query has been
// evaluated). A timer of a stage that did not run is not given
// (rego_query_eval when the policy was not evaluated, geoscope_record
// with --ledger off).
func answeredMetrics(c *gin.Context, ask dataAsk) []byte {
	v, ok := c.Get(ctxServed)
	if !ask.metrics || !ok {
		return nil
	}
	m := v.(*engine.Served).Metrics
	m.Timer(opametrics.ServerHandler).Stop() // a second Stop (the decision log's) changes nothing
	all := m.All()
	out := make(map[string]any, len(answeredTimers))
	for _, name := range answeredTimers {
		if t, ok := all[timerKey(name)]; ok {
			out[timerKey(name)] = t
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// indenter indents compact JSON, given in parts, as json.Indent does with
// no prefix and an indent of four spaces (what json.MarshalIndent and
// gin's IndentedJSON send); without build it only counts what it would
// write. The same pass sizes an indented answer against MaxResponse
// before the decision is recorded and writes it after: the two cannot
// disagree, and neither needs the parts joined.
type indenter struct {
	build                   bool
	out                     []byte
	n                       int64
	depth                   int
	open, inString, escaped bool // open: after a '{' or '[' not yet followed by anything
}

const indentUnit = "    "

func (in *indenter) put(c byte) {
	in.n++
	if in.build {
		in.out = append(in.out, c)
	}
}

func (in *indenter) newline() {
	in.n += 1 + int64(len(indentUnit)*in.depth)
	if in.build {
		in.out = append(in.out, '\n')
		for range in.depth {
			in.out = append(in.out, indentUnit...)
		}
	}
}

func (in *indenter) write(p []byte) {
	for _, c := range p {
		if in.inString {
			in.put(c)
			switch {
			case in.escaped:
				in.escaped = false
			case c == '\\':
				in.escaped = true
			case c == '"':
				in.inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue // json.Indent drops the space between tokens too
		}
		if in.open && c != '}' && c != ']' {
			in.open = false
			in.depth++
			in.newline()
		}
		switch c {
		case '"':
			in.inString = true
			in.put(c)
		case '{', '[':
			in.open = true
			in.put(c)
		case ',':
			in.put(c)
			in.newline()
		case ':':
			in.put(c)
			in.put(' ')
		case '}', ']':
			if in.open {
				in.open = false // {} and [] stay on one line
			} else {
				in.depth--
				in.newline()
			}
			in.put(c)
		default:
			in.put(c)
		}
	}
}

// dataInput returns the input of a Data API request: of a POST, the value
// of its body's "input" member; of a GET, its input parameter. The
// envelope is decoded as strictly as the request inside it: one object,
// one "input" member, nothing else; and a POST does not also take an
// input parameter, which OPA would ignore: the client meant one of them.
func (s *Server) dataInput(c *gin.Context, q url.Values) ([]byte, *reservation, bool) {
	if c.Request.Method == http.MethodGet {
		return s.queryInput(c, q)
	}
	if q.Has("input") {
		s.abortWith(c, &input.FieldError{Field: "input", Message: `is a parameter of a GET: a POST sends its input in the body, as {"input": <request>}`})
		return nil, nil, false
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
// is refused, naming the parameter: an input given twice (OPA takes the
// last), none at all, and a body beside it; and, by dataParams, a query
// string Go cannot read (URL.Query drops such a pair, and the input with
// it).
func (s *Server) queryInput(c *gin.Context, q url.Values) ([]byte, *reservation, bool) {
	refuse := func(err error) ([]byte, *reservation, bool) {
		s.abortWith(c, err)
		return nil, nil, false
	}
	invalid := func(field, msg string) ([]byte, *reservation, bool) {
		return refuse(&input.FieldError{Field: field, Message: msg})
	}
	const shape = "a GET sends the request as JSON in its input parameter (?input=<URL-encoded JSON>)"
	if hasBody(c.Request) {
		closeHTTP1(c) // the body is not read
		return invalid("body", `a GET takes no body: it sends the request as JSON in its input parameter; a body goes with POST, as {"input": <request>}`)
	}
	values := q["input"] // q was read strictly (dataParams)
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

// hasBody reports whether a request carries a body: one of a declared
// length above zero, or of a length not declared (chunked, or an HTTP/2
// stream left open after its head) whose first byte arrives. A body of
// undeclared length that turns out empty (an HTTP/2 client that ends the
// stream with an empty DATA frame, a chunked body of the last chunk
// alone) is none: the read ends at once, or when the connection's read
// deadline (ReadTimeout) does, as a POST's body would.
func hasBody(r *http.Request) bool {
	switch {
	case r.ContentLength > 0:
		return true
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		return false
	}
	var one [1]byte
	n, err := io.ReadFull(r.Body, one[:])
	return n > 0 || !errors.Is(err, io.EOF)
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
			key = input.Shorten(key, 64)
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
	if qe := (queryError{}); errors.As(err, &qe) {
		return err // a parameter's, not the input's
	}
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
