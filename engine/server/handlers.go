package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	opametrics "github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/sources"
)

// health is liveness. With OPA's parameters it is readiness as OPA reports
// it, so that a probe carried over from an OPA deployment
// (/health?bundles, /health?plugins) keeps its meaning: bundles waits for
// what /ready waits for; plugins also for every plugin of an OPA
// configuration to report OK, except those named by exclude-plugin.
func (s *Server) health(c *gin.Context) {
	q := c.Request.URL.Query()
	// As OPA reads them: a parameter without a value is true, otherwise
	// it is true when one of its values is "true"; "bundle" is OPA's
	// older name of "bundles", which OPA still honours. With plugins,
	// geoscope's readiness stands for OPA's bundle plugin, and is not
	// asked when that plugin is excluded.
	bundles := healthParam(q, "bundles") || healthParam(q, "bundle")
	withPlugins := healthParam(q, "plugins")
	if bundles || withPlugins && !slices.Contains(q["exclude-plugin"], "bundle") {
		if ok, why := s.src.Ready(); !ok {
			c.Header("Retry-After", "1")
			abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.NotReady, Message: s.openReason(why)})
			return
		}
	}
	if m := s.src.Manager(); withPlugins && m != nil {
		statuses := m.PluginStatus()
		for _, name := range slices.Sorted(maps.Keys(statuses)) {
			if slices.Contains(q["exclude-plugin"], name) {
				continue
			}
			if st := statuses[name]; st == nil || st.State != plugins.StateOK {
				state := "unknown"
				if st != nil {
					state = string(st.State)
				}
				c.Header("Retry-After", "1")
				abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.NotReady, Message: "OPA plugin " + name + " is " + state})
				return
			}
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func healthParam(q url.Values, name string) bool {
	values, ok := q[name]
	if !ok {
		return false
	}
	if len(values) == 1 && values[0] == "" {
		return true
	}
	return slices.ContainsFunc(values, func(v string) bool { return strings.EqualFold(v, "true") })
}

func (s *Server) ready(c *gin.Context) {
	if ok, why := s.src.Ready(); !ok {
		c.Header("Retry-After", "1")
		abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.NotReady, Message: s.openReason(why)})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// openReason is why the server is not ready, as an endpoint open to
// anyone says it. On a server with tokens that is what comes before the
// first ": " (no bundles are active, no GeoIP database is loaded): the
// rest is an error from loading them, which names bundle services' URLs
// (their paths and queries, which may carry a token), hosts and files,
// and stays in GET /v1/status, behind the admin scope. A server without
// tokens is open to local clients only, and says all of it.
func (s *Server) openReason(why string) string {
	if s.tokens == nil {
		return why
	}
	return withoutDetail(why, "the error is in GET /v1/status")
}

// withoutDetail is what msg says before its first ": ", where the error
// it carries begins, and where it is to be found instead.
func withoutDetail(msg, where string) string {
	if short, _, cut := strings.Cut(msg, ": "); cut {
		return short + " (" + where + ")"
	}
	return msg
}

// statusResponse is GET /v1/status.
type statusResponse struct {
	Version       string         `json:"version"`
	Revision      string         `json:"revision,omitempty"`
	Ready         bool           `json:"ready"`
	NotReady      string         `json:"not_ready,omitempty"`
	UptimeSeconds float64        `json:"uptime_seconds"`
	Ledger        *ledger.Health `json:"ledger,omitempty"`
	sources.Status
}

func (s *Server) status(c *gin.Context) {
	ready, why := s.src.Ready()
	resp := statusResponse{
		Version:       s.cfg.Version,
		Revision:      s.cfg.Revision,
		Ready:         ready,
		NotReady:      why,
		UptimeSeconds: time.Since(s.started).Seconds(),
		Status:        s.src.Status(),
	}
	if s.ledger != nil {
		h := s.ledger.Health()
		resp.Ledger = &h
	}
	granted := s.presents(c)
	if s.tokens != nil && !granted.has(ScopeMetrics) && resp.Ledger != nil {
		// Asked without a token (--public-metrics): the time of the last
		// commit moves with every recorded decision, to the nanosecond,
		// and polling it tells when each was made, which the public
		// report is built to hide (whole days that have ended, no ledger
		// head). Whether the ledger is healthy is still shown.
		resp.Ledger.LastCommit, resp.Ledger.LastErrAt = time.Time{}, time.Time{}
	}
	if s.tokens != nil && !granted.has(ScopeAdmin) {
		// A metrics token, or anyone with --public-metrics: the errors of
		// loading the bundles and the database, which name services' URLs
		// (a token in a query), hosts and files, are for an admin token,
		// as on /ready. A monitoring system needs to know that something
		// failed, not the credentials it failed with.
		const where = "with an admin token, the error is shown"
		resp.NotReady = withoutDetail(resp.NotReady, where)
		for _, f := range []**sources.Failure{&resp.BundleError, &resp.LastBundleFailure, &resp.GeoIPError, &resp.LastGeoIPFailure} {
			if *f != nil {
				*f = &sources.Failure{At: (*f).At, Error: withoutDetail((*f).Error, where)}
			}
		}
		if resp.Ledger != nil && resp.Ledger.LastError != "" {
			resp.Ledger.LastError = withoutDetail(resp.Ledger.LastError, where)
		}
	}
	c.JSON(http.StatusOK, resp)
}

// reload re-reads every source now. A rejected version leaves the active
// one in place; the answer says what happened either way.
//
// The reload is carried through if the client leaves before it ends: a
// large bundle builds for seconds, longer than some clients wait, and a
// reload stopped half-way would leave nothing recorded of why. Only the
// server's own stop cuts it short.
func (s *Server) reload(c *gin.Context) {
	err := s.src.Reload(context.WithoutCancel(c.Request.Context()))
	ready, why := s.src.Ready()
	resp := reloadResponse{Reloaded: err == nil, Ready: ready, NotReady: why, Status: s.src.Status()}
	if err != nil {
		resp.Error = err.Error()
	}
	c.JSON(http.StatusOK, resp)
}

// reloadResponse is POST /v1/admin/reload.
type reloadResponse struct {
	Reloaded bool   `json:"reloaded"`
	Error    string `json:"error,omitempty"`
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	sources.Status
}

func (s *Server) decisions(c *gin.Context) {
	req, hold, ok := s.request(c, s.body, s.decodeDecision, nil, false)
	if !ok {
		return
	}
	defer hold.release()
	if _, answer, ok := s.decide(c, "/v1/decisions", req, nil); ok {
		hold.answering(int64(len(answer.body)))
		s.writeDecision(c, answer)
	}
}

func (s *Server) admission(c *gin.Context) {
	req, hold, ok := s.request(c, s.body, input.DecodeAdmission, nil, false)
	if !ok {
		return
	}
	defer hold.release()
	if d, ok := s.admit(c, "/v1/admission", req); ok {
		withAdmissionJSON(d, func(answer []byte) { c.Data(http.StatusOK, "application/json; charset=utf-8", answer) })
	}
}

// request reads a request's body (with read: the body itself, or the
// input of a Data API envelope) and decodes it, within the decode span.
// An error is answered, through within when given (the Data API names
// fields inside its envelope), and ok is false; otherwise the caller calls
// hold.release once it has answered (see requestHold). With timed, the
// request is timed whether or not decisions are logged: its client asked
// for its timers (the Data API's ?metrics).
func (s *Server) request(c *gin.Context, read func(*gin.Context) ([]byte, *reservation, bool),
	decode func([]byte) (*input.Request, error), within func(error) error, timed bool,
) (req *input.Request, hold *requestHold, ok bool) {
	// The client's id of its request tells a request sent again from a
	// new one (ledger, report): given twice, it is not read as either
	// line, which a proxy or a log may each read differently.
	if ids := c.Request.Header["X-Request-Id"]; len(ids) > 1 {
		abort(c, http.StatusBadRequest, apiError{Code: apierror.InvalidInput, Field: "X-Request-Id",
			Message: "X-Request-Id is given " + strconv.Itoa(len(ids)) + " times: send it once, one id for the request"})
		return nil, nil, false
	}
	decoded := s.decodeSpan(c)
	defer decoded()
	if timed || s.eng.LogsDecisions() {
		// The request's number and timers for its decision-log event and
		// its answer, as OPA's server keeps them: the handler's time from
		// here to the event (or the answer), and the input's reading and
		// decoding.
		served := &engine.Served{ReqID: c.GetUint64(ctxReqID), Metrics: opametrics.New()}
		served.Metrics.Timer(opametrics.ServerHandler).Start()
		parse := served.Metrics.Timer(opametrics.RegoInputParse)
		parse.Start()
		defer parse.Stop()
		c.Set(ctxServed, served)
	}
	raw, res, ok := read(c)
	if !ok {
		return nil, nil, false
	}
	if id := c.GetHeader("X-Request-Id"); printableID(id) {
		// The client named its request: sent again (a retry after a lost
		// answer), its decision is recognised as the same request.
		c.Set(ctxRequestKey, engine.RequestKey{ID: id, Body: sha256.Sum256(raw)})
	}
	req, err := decode(raw)
	if err != nil {
		res.release()
		if within != nil {
			err = within(err)
		}
		s.abortWith(c, err)
		return nil, nil, false
	}
	return req, &requestHold{req: req, res: res}, true
}

// requestHold is what a decoded request holds until it is answered: its
// reservation of the in-flight budget and its arrays.
type requestHold struct {
	req      *input.Request
	res      *reservation
	answered bool // the request's arrays are given back
}

// answering is called once the answer of n bytes is encoded, before it is
// written: the request's arrays go back, and its reservation shrinks to
// what the answer still holds when that is less. Writing an answer waits
// for its client to read it (up to the write timeout, 30 s plus
// --eval-timeout); a client that sent big rosters and read none of their
// answers held their bodies' share of --max-inflight all that time, and
// other clients' rosters were refused 503 overloaded
// (TestUnreadAnswerHoldsOnlyItsBytes).
func (h *requestHold) answering(n int64) {
	h.releaseArrays()
	h.res.shrink(n)
}

// release gives back all the request held, once it is answered or its
// answer failed.
func (h *requestHold) release() {
	h.releaseArrays()
	h.res.release()
}

// releaseArrays gives the request's arrays back, once.
func (h *requestHold) releaseArrays() {
	if !h.answered {
		h.answered = true
		h.req.Release()
	}
}

func (s *Server) decodeDecision(raw []byte) (*input.Request, error) {
	return input.Decode(raw, input.Limits{MaxParticipants: s.cfg.MaxParticipants})
}

// decide decides a roster question; the answer is the decision as encoded
// (and bounded) before it was recorded, for the Data API (data not nil)
// with what is sent around it bounded too.
//
// The decision's arrays are given back (Engine.Release) before it returns:
// what is answered is the answer encoded before the decision was recorded.
func (s *Server) decide(c *gin.Context, endpoint string, req *input.Request, data *dataAnswer) (decisionID string, answer *encodedAnswer, ok bool) {
	d, ok := s.run(c, endpoint, func(ctx context.Context) (*decision.Decision, error) {
		ctx, answer = withAnswer(ctx)
		answer.data = data
		return s.eng.Decide(ctx, req)
	})
	if !ok {
		return "", nil, false
	}
	s.eng.Release(d)
	return d.DecisionID, answer, true
}

// admit answers a join-time question.
func (s *Server) admit(c *gin.Context, endpoint string, req *input.Request) (*decision.Decision, bool) {
	return s.run(c, endpoint, func(ctx context.Context) (*decision.Decision, error) { return s.eng.Admit(ctx, req) })
}

// answers are buffers for join-time answers, reused once written.
var answers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// withAdmissionJSON hands write the admission answer of d as JSON, in a
// buffer of answers that is reused once write has returned: write must
// have written it, not kept it.
func withAdmissionJSON(d *decision.Decision, write func(answer []byte)) {
	a := admissionAnswer(d)
	buf := answers.Get().(*[]byte)
	*buf = a.AppendJSON((*buf)[:0])
	write(*buf)
	if cap(*buf) <= 64<<10 {
		answers.Put(buf)
	}
}

// admissionAnswer is the part of an admission decision a meeting server
// needs.
func admissionAnswer(d *decision.Decision) decision.Admission {
	return decision.Admission{DecisionID: d.DecisionID, Allow: *d.AllowJoin, Actions: d.Actions, OrderIDs: d.OrderIDs, Bundles: d.Bundles}
}

// run decides under the evaluation deadline and records metrics.
func (s *Server) run(c *gin.Context, endpoint string, decide func(context.Context) (*decision.Decision, error)) (*decision.Decision, bool) {
	start := time.Now()
	ctx := c.Request.Context()
	if k, ok := c.Get(ctxRequestKey); ok {
		ctx = engine.WithRequest(ctx, k.(engine.RequestKey))
	}
	if served, ok := c.Get(ctxServed); ok {
		ctx = engine.WithServed(ctx, served.(*engine.Served))
	}
	d, err := decide(ctx) // the engine bounds evaluation (SetEvalTimeout)
	s.metrics.decided(endpoint).Observe(time.Since(start).Seconds())
	if err != nil {
		if isDataPath(endpoint) {
			err = withinInput(err) // an answer too large names input.meeting.participants
		}
		s.abortWith(c, err)
		return nil, false
	}
	if s.cfg.TracerProvider != nil || s.log.Enabled(c.Request.Context(), slog.LevelInfo) {
		c.Set(ctxDecisionID, d.DecisionID) // for the access log line and the span
	}
	s.metrics.observe(d)
	return d, true
}

// body reads the request's JSON body within MaxBody and admits the
// request into the in-flight budget (inflight.go): a body sent with a
// Content-Length up to SmallBody once it has arrived (smallBody), any
// other before it is read. An oversized body is refused from its
// Content-Length when declared, and otherwise as soon as the limit is
// crossed, without reading the rest. A gzip body (Content-Encoding: gzip,
// as OPA accepts) is inflated, and MaxBody bounds both what is sent and
// what it inflates to. The caller releases the reservation once the answer
// is written.
func (s *Server) body(c *gin.Context) ([]byte, *reservation, bool) {
	// A header given twice is not read as its first line: a proxy or a
	// log may read the other, and a body labelled with two codings was
	// compressed twice (RFC 9110: several lines are one list).
	if cts := c.Request.Header["Content-Type"]; len(cts) > 1 {
		abort(c, http.StatusUnsupportedMediaType, apiError{Code: apierror.UnsupportedMediaType,
			Message: "Content-Type is given " + strconv.Itoa(len(cts)) + " times: send it once, application/json", Field: "Content-Type"})
		return nil, nil, false
	}
	ct := c.GetHeader("Content-Type")
	charset := ""
	if ct != "application/json" { // what clients send; anything else is parsed
		mt, params, err := mime.ParseMediaType(ct)
		ct, charset = mt, params["charset"]
		if err != nil {
			ct = ""
		}
	}
	if ct != "application/json" {
		abort(c, http.StatusUnsupportedMediaType, apiError{Code: apierror.UnsupportedMediaType, Message: "the body must be JSON (Content-Type: application/json)", Field: "Content-Type"})
		return nil, nil, false
	}
	// JSON is UTF-8 (RFC 8259): a body declared in another charset would
	// be read as something other than what its sender meant.
	if charset != "" && !strings.EqualFold(charset, "utf-8") {
		abort(c, http.StatusUnsupportedMediaType, apiError{Code: apierror.UnsupportedMediaType,
			Message: "the body must be UTF-8 JSON; charset " + strconv.Quote(input.Shorten(charset, 32)) + " is not supported", Field: "Content-Type"})
		return nil, nil, false
	}
	gzipped := false
	enc := c.GetHeader("Content-Encoding")
	if encs := c.Request.Header["Content-Encoding"]; len(encs) > 1 {
		enc = strings.Join(encs, ", ")
	}
	switch enc = strings.ToLower(strings.TrimSpace(enc)); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gzipped = true
	default:
		why := "is not supported: send the body plain or gzip-compressed"
		if strings.Contains(enc, ",") {
			why = "names several codings: send the body plain or gzip-compressed once"
		}
		abort(c, http.StatusUnsupportedMediaType, apiError{Code: apierror.UnsupportedMediaType,
			Message: fmt.Sprintf("Content-Encoding %s %s", input.Quote(enc), why), Field: "Content-Encoding"})
		return nil, nil, false
	}
	size := c.Request.ContentLength
	if size > s.cfg.MaxBody {
		closeHTTP1(c)
		abort(c, http.StatusRequestEntityTooLarge, s.bodyTooLarge("the body exceeds"))
		return nil, nil, false
	}
	if size >= 0 && size <= SmallBody {
		return s.smallBody(c, size, gzipped)
	}
	// Any other body is budgeted before it is read, first come first
	// served; a gzip one, or one without a Content-Length, as the largest
	// allowed.
	reserve := size
	if gzipped {
		reserve = -1
	}
	asked := time.Now()
	res, err := s.inflight.acquire(c.Request.Context(), reserve, s.cfg.MaxBody)
	if err != nil {
		s.overloaded(c, err, "large")
		return nil, nil, false
	}
	paced := newPacedBody(c.Writer, c.Request.Body, s.bodyGrace, s.cfg.MinBodyRate, asked.Add(s.bodyLimit))
	var rd io.Reader = http.MaxBytesReader(c.Writer, paced, s.cfg.MaxBody)
	var raw []byte
	switch {
	case gzipped:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(rd); err == nil {
			// One byte more than the limit tells an inflated body that is
			// over it from one that is exactly at it.
			raw, err = io.ReadAll(io.LimitReader(zr, s.cfg.MaxBody+1))
		}
		if err == nil && int64(len(raw)) > s.cfg.MaxBody {
			res.release()
			abort(c, http.StatusRequestEntityTooLarge, s.bodyTooLarge("the gzip body inflates beyond"))
			return nil, nil, false
		}
		if err == nil {
			res.shrink(int64(len(raw)))
		}
	case size >= 0 && size <= eagerBody:
		// Read into a buffer of the declared size: io.ReadAll would grow
		// one by doubling and copying, twice the memory for a big roster.
		raw = make([]byte, size)
		_, err = io.ReadFull(rd, raw)
	case size >= 0:
		// A length past any roster's is not allocated before its bytes
		// arrive: under a --max-body of terabytes, a declared length made
		// the server allocate it at once (out of memory: the process
		// died) or fail to (a panic), whatever was sent.
		body := bytes.NewBuffer(make([]byte, 0, eagerBody))
		if _, err = body.ReadFrom(io.LimitReader(rd, size)); err == nil && int64(body.Len()) < size {
			err = io.ErrUnexpectedEOF
		}
		raw = body.Bytes()
	default:
		raw, err = io.ReadAll(rd)
		res.shrink(int64(len(raw)))
	}
	if err != nil {
		res.release()
		s.bodyError(c, err, gzipped)
		return nil, nil, false
	}
	paced.lift()
	return raw, res, true
}

// eagerBody is the largest declared length read into a buffer of that
// size before its bytes arrive (body): past the bodies of the largest
// rosters (4 MiB for 100,000 participants), a larger one grows as it
// arrives.
const eagerBody = 64 << 20

// smallBody reads a body sent with a Content-Length up to SmallBody, then
// admits its request into the small lane. While it arrives it holds
// memory as its bytes arrive, from the arriving budget (arrival), not the
// small lane: a client that declares a body and sends nothing holds
// nothing an admission needs. A body that finds the arriving budget taken
// is refused at once (503 overloaded).
func (s *Server) smallBody(c *gin.Context, size int64, gzipped bool) ([]byte, *reservation, bool) {
	// No http.MaxBytesReader: the declared length, within MaxBody, bounds
	// what net/http lets be read.
	paced := newPacedBody(c.Writer, c.Request.Body, s.bodyGrace, s.cfg.MinBodyRate, time.Now().Add(s.bodyLimit))
	arr := arrival{f: s.inflight}
	defer arr.release()
	n := size
	if gzipped {
		n = min(size, gzipStart)
	}
	raw, err := arr.read(paced, n)
	if err == nil && !gzipped && int64(len(raw)) < size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		s.arrivalError(c, err, gzipped)
		return nil, nil, false
	}
	if gzipped {
		return s.inflateSmall(c, raw, int64(len(raw)) < size, paced, &arr)
	}
	paced.lift()
	// Held, and counted as arriving, until admitted: the body is what the
	// request waits with.
	res, err := s.inflight.acquire(c.Request.Context(), size, s.cfg.MaxBody)
	if err != nil {
		s.overloaded(c, err, "small")
		return nil, nil, false
	}
	return raw, res, true
}

// inflateSmall inflates a gzip body sent with a Content-Length up to
// SmallBody, of which sent holds what has arrived: all of it, or gzipStart
// bytes when more is to come (arriving).
//
// A body that has arrived is inflated in the small lane, reserving all of
// it that a body may use there: a meeting server that compresses its
// join-time questions is not queued behind rosters. One still arriving is
// inflated as it arrives, holding its decompressor and what it inflated
// from the arriving budget as any body does its bytes, and is admitted
// into the small lane once it has all arrived. Either moves to the large
// lane, as a body of unknown size, if it inflates past SmallBody: the
// small lane's room and the arriving budget are given back before it
// waits there, so that a stream of such bodies cannot hold them while they
// wait; what they hold meanwhile is bounded by how many may wait
// (maxMoving). The wait is not counted against the body's rate (paced.go).
func (s *Server) inflateSmall(c *gin.Context, sent []byte, arriving bool, paced *pacedBody, arr *arrival) ([]byte, *reservation, bool) {
	ctx := c.Request.Context()
	limit := min(SmallBody, s.cfg.MaxBody)
	var (
		src io.Reader = bytes.NewReader(sent)
		res *reservation
		err error
	)
	if arriving {
		if !arr.hold(inflaterSize) {
			s.overloaded(c, errArriving, "arriving")
			return nil, nil, false
		}
		src = io.MultiReader(src, paced)
	} else {
		paced.lift()
		if res, err = s.inflight.acquire(ctx, limit, s.cfg.MaxBody); err != nil {
			s.overloaded(c, err, "small")
			return nil, nil, false
		}
		arr.release()
	}
	var zr *gzip.Reader
	var raw []byte
	if zr, err = gzip.NewReader(src); err == nil {
		// One byte more than a limit tells an inflated body that is over
		// it from one that is exactly at it.
		if arriving {
			raw, err = arr.read(zr, limit+1)
		} else {
			raw, err = io.ReadAll(io.LimitReader(zr, limit+1))
		}
	}
	if err == nil && int64(len(raw)) > limit && limit < s.cfg.MaxBody {
		// Too big for the small lane after all.
		res.release()
		arr.release()
		// No deadline while it waits: over HTTP/2 a deadline that passes
		// closes the stream's body for good, even with nobody reading.
		paced.lift()
		waited := time.Now()
		if res, err = s.inflight.move(ctx, s.cfg.MaxBody); err != nil {
			s.overloaded(c, err, "large")
			return nil, nil, false
		}
		if arriving {
			paced.shift(time.Since(waited))
		}
		body := bytes.NewBuffer(raw)
		_, err = body.ReadFrom(io.LimitReader(zr, s.cfg.MaxBody+1-int64(len(raw))))
		raw = body.Bytes()
	}
	if err == nil && int64(len(raw)) > s.cfg.MaxBody {
		res.release()
		abort(c, http.StatusRequestEntityTooLarge, s.bodyTooLarge("the gzip body inflates beyond"))
		return nil, nil, false
	}
	if err != nil {
		res.release()
		s.arrivalError(c, err, true)
		return nil, nil, false
	}
	paced.lift()
	if res == nil {
		// It has all arrived, within the small lane: admitted now.
		if res, err = s.inflight.acquire(ctx, int64(len(raw)), s.cfg.MaxBody); err != nil {
			s.overloaded(c, err, "small")
			return nil, nil, false
		}
		return raw, res, true
	}
	res.shrink(int64(len(raw)))
	return raw, res, true
}

// arrivalError answers a small body that could not be read: refused for
// want of room in the arriving budget, or as bodyError says.
func (s *Server) arrivalError(c *gin.Context, err error, gzipped bool) {
	if errors.Is(err, errArriving) {
		s.overloaded(c, err, "arriving")
		return
	}
	s.bodyError(c, err, gzipped)
}

// bodyTooLarge is the answer to a body over MaxBody, what is said of the
// body first. Built only when it is given: built for every request, its
// message was a quarter of what reading an admission's body allocated.
func (s *Server) bodyTooLarge(what string) apiError {
	return apiError{Code: apierror.TooLarge, Message: what + " the limit of " + bytesText(s.cfg.MaxBody), Field: "body"}
}

// bodyError answers a body that could not be read: too large, not gzip
// data although labelled so, or cut short.
func (s *Server) bodyError(c *gin.Context, err error, gzipped bool) {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errBodyTooSlow):
		closeHTTP1(c)
		abort(c, http.StatusRequestTimeout, apiError{Code: apierror.BodyTimeout, Field: "body",
			Message: "the body arrived slower than " + bytesText(s.cfg.MinBodyRate) + "/s (--min-body-rate, after a start of " + s.bodyGrace.String() +
				") or took longer than " + s.bodyLimit.String() + "; it was not decided or recorded: send it again, and apply no enforcement meanwhile"})
	case errors.As(err, &mbe):
		// As for a declared length over the limit: the rest is not read,
		// so the connection cannot carry another request (net/http would
		// read past up to 256 KiB of it to keep the connection; gin's
		// writer hides MaxBytesReader's own request to close).
		closeHTTP1(c)
		abort(c, http.StatusRequestEntityTooLarge, s.bodyTooLarge("the body exceeds"))
	case gzipped && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		abort(c, http.StatusBadRequest, apiError{Code: apierror.InvalidInput, Message: "the body is labelled Content-Encoding: gzip but is not valid gzip data: " + err.Error(), Field: "body"})
	default:
		abort(c, http.StatusBadRequest, apiError{Code: apierror.InvalidInput, Message: "the body could not be read: " + err.Error(), Field: "body"})
	}
}

// overloaded answers a request that was not admitted into the in-flight
// budget (lane: small, large, or arriving when its body found no room
// there): 503 overloaded with Retry-After, or 499 when the client left
// while it waited.
func (s *Server) overloaded(c *gin.Context, err error, lane string) {
	if !errors.Is(err, errOverloaded) && !errors.Is(err, errArriving) {
		abort(c, statusClientClosedRequest, apiError{Code: apierror.ClientClosed, Message: "the client closed the request before it was answered"})
		return
	}
	if lane != "small" {
		// The body was not read, or not all of it. net/http would read
		// what is left of it (up to 256 KiB) before answering, to keep
		// the connection: behind a slow or chunked body that held the 503
		// for as long as the body took. A small request refused by its
		// lane has been read, and its connection is kept for the
		// admissions that follow.
		closeHTTP1(c)
	}
	s.metrics.shed.WithLabelValues(lane).Inc()
	c.Header("Retry-After", strconv.Itoa(int(max(1, math.Ceil(s.cfg.QueueTimeout.Seconds())))))
	why := "too much work is in flight to admit this request within " + s.cfg.QueueTimeout.String()
	if lane == "arriving" {
		why = "too many request bodies are arriving at once to take in this one"
	}
	abort(c, http.StatusServiceUnavailable, apiError{Code: apierror.Overloaded,
		Message: why + "; it was not decided or recorded: send it again after Retry-After seconds, and apply no enforcement meanwhile"})
}

// closeHTTP1 closes an HTTP/1.x connection after this answer. Over HTTP/2
// the request is a stream whose unread body costs nothing to leave, and
// "Connection: close" would end every other stream of the connection
// (Go's server sends GOAWAY).
func closeHTTP1(c *gin.Context) {
	if c.Request.ProtoMajor == 1 {
		c.Header("Connection", "close")
	}
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
