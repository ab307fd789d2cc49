// Package server answers decision requests over HTTP (gin). It adds
// transport concerns only (authentication, limits, deadlines, metrics,
// logs) around package engine; every decision is the engine's.
package server

import (
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/sources"
	"github.com/geoscope/geoscope/internal/watch"
)

//go:embed openapi.json
var openAPIDocument []byte

// Server is the HTTP decision server.
type Server struct {
	cfg     Config
	eng     *engine.Engine
	src     *sources.Sources
	log     *slog.Logger
	tokens  *tokens // nil: no authentication (loopback or --insecure-no-auth)
	ledger  *ledger.Ledger
	metrics *metrics
	router  *gin.Engine
	spans   trace.Tracer
	started time.Time

	// inflight bounds the work decided at once (inflight.go).
	inflight *inflight
	// reports lets one transparency report be built at a time
	// (reportgate.go).
	reports *reportGate
	// bodyGrace is the start a body gets before Config.MinBodyRate counts,
	// and bodyLimit the longest any request's body may take (paced.go):
	// the constants of those names, shorter in tests.
	bodyGrace, bodyLimit time.Duration
	// openFiles is the function of that name (connlimit_unix.go), which
	// the cap on connections follows: a low limit of its own in tests.
	openFiles func() (limit, inUse uint64, ok bool)
	// conns is the capped listener Serve serves on, nil without a cap.
	conns atomic.Pointer[limitedListener]
	// memoryReturn is set while a return of memory to the OS is pending.
	memoryReturn atomic.Bool
	// loopbackNamesOnly is set by Serve when it serves without tokens on
	// a loopback listener (see localNamesOnly).
	loopbackNamesOnly atomic.Bool
	// requests numbers the requests received, as OPA's server numbers
	// them (req_id in its log and its decision-log events).
	requests atomic.Uint64
	// active counts the requests being handled (accessLog), for the
	// in-flight gauge and for what a shutdown says it cut off.
	active atomic.Int64
}

// New validates cfg and builds the server. It does not listen.
func New(cfg Config, eng *engine.Engine, src *sources.Sources, log *slog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, eng: eng, src: src, log: log, started: time.Now(), bodyGrace: bodyGrace, bodyLimit: bodyLimit, openFiles: openFiles}
	eng.SetEvalTimeout(cfg.EvalTimeout)
	eng.SetAnswerCheck(s.answerCheck)
	s.inflight = newInflight(cfg.MaxInflight, cfg.QueueTimeout, s.returnMemory)
	s.reports = &reportGate{wait: (s.bodyLimit + cfg.EvalTimeout) / 2}
	s.metrics = newMetrics(src, s.inflight, &s.active)
	s.spans = s.tracer()
	if cfg.TokensFile != "" {
		t, err := loadTokens(cfg.TokensFile)
		if err != nil {
			return nil, err
		}
		s.tokens = t
	}
	s.router = s.routes()
	return s, nil
}

// UseLedger serves the ledger's entries under /v1/ledger. Call it before
// serving.
func (s *Server) UseLedger(l *ledger.Ledger) {
	s.ledger = l
	s.metrics.useLedger(l)
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// Serve serves on ln until ctx is done. Then it stops accepting
// connections, lets in-flight requests finish within ShutdownTimeout, and
// returns nil if they did.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		// Bodies are bounded by MaxBody; a client trickling one in is cut
		// off rather than holding a connection open.
		// paced.go holds a decision's body to the same bound, counted
		// from the end of its head.
		ReadTimeout:  s.bodyLimit,
		WriteTimeout: s.bodyLimit + s.cfg.EvalTimeout,
		IdleTimeout:  120 * time.Second,
		ErrorLog:     log.New(redactingWriter{s.log}, "", 0),
	}
	var cert *certificate
	if s.cfg.TLSCert != "" {
		var err error
		if cert, err = newCertificate(s.cfg.TLSCert, s.cfg.TLSKey, s.log); err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.get}
	}
	if s.tokens == nil {
		// What is checked is the listener's own address, whatever
		// Config.Addr said: only a loopback listener may go without
		// tokens unless the operator said otherwise.
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		if !isLoopback(host) && !s.cfg.InsecureNoAuth {
			return fmt.Errorf("%w: refusing to serve on %s without authentication: give --tokens-file, "+
				"or listen on a loopback address, or pass --insecure-no-auth", ErrConfig, ln.Addr())
		}
		if isLoopback(host) && !s.cfg.InsecureNoAuth {
			s.loopbackNamesOnly.Store(true)
		}
		if !isLoopback(host) {
			s.log.Warn("serving WITHOUT authentication on a non-loopback address (--insecure-no-auth): anyone who can reach it can query decisions and read status", "addr", ln.Addr().String())
		} else {
			s.log.Info("no --tokens-file: every endpoint is open to local clients", "addr", ln.Addr().String())
		}
	}
	s.watchFiles(ctx, cert)
	ln = limitConnections(ln, s.log, s.openFiles, s.metrics.refusedConns, s.metrics.closedIdleConns)
	if l, ok := ln.(*limitedListener); ok {
		srv.ConnState, srv.ConnContext = l.connState, l.connContext
		srv.Handler = l.requests(srv.Handler)
		s.conns.Store(l)
	}
	errc := make(chan error, 1)
	go func() {
		s.log.Info("listening", "addr", ln.Addr().String(), "tls", s.cfg.TLSCert != "")
		if s.cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: no new connections; waiting for requests in flight", "timeout", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: %w", err)
		}
		// Shutdown looks for connections gone idle only every 500 ms
		// once it has waited a second, and counts a connection whose
		// client sent part of a request head: its deadline says nothing
		// of whether a request was cut off. The requests still being
		// handled do.
		if n := s.active.Load(); n > 0 {
			return fmt.Errorf("shutdown: --shutdown-timeout %s passed with requests in flight (%d); their connections are closed unanswered", s.cfg.ShutdownTimeout, n)
		}
		s.log.Info("stopped: every request was answered; connections still open at --shutdown-timeout are closed", "timeout", s.cfg.ShutdownTimeout.String())
		return nil
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	s.log.Info("stopped")
	return nil
}

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.Use(s.requestID, s.traceRequest, s.accessLog, s.recoverPanic, s.localNamesOnly)

	// guards holds, by route, the check of its token: a path's methods
	// (405) are told only to those who pass it, as its answers are.
	guards := map[string]gin.HandlerFunc{}
	guarded := func(method, path string, guard gin.HandlerFunc, handler gin.HandlerFunc) {
		guards[path] = guard
		if isDataPath(path) {
			r.Handle(method, path, opaErrors, guard, handler)
			return
		}
		r.Handle(method, path, guard, handler)
	}
	// A path that no route has is answered 404 only to a valid token
	// (under /v1/data, one that may use the Data API): otherwise a client
	// without one would learn which paths exist from which it is refused
	// on. Open endpoints are documented, and nothing else is open.
	r.NoRoute(func(c *gin.Context) {
		if isDataPath(c.Request.URL.Path) {
			c.Set(ctxOPAErrors, true)
			if s.authorize(c, ScopeDecide) {
				dataNotFound(c)
			}
			return
		}
		if s.authorize(c, "") {
			abort(c, http.StatusNotFound, apiError{Code: apierror.NotFound, Message: "no such endpoint: " + quotedPath(c)})
		}
	})
	r.NoMethod(func(c *gin.Context) {
		c.Set(ctxOPAErrors, isDataPath(c.Request.URL.Path))
		route := routeTemplate(r.Routes(), c.Request.URL.Path)
		if route != "" {
			c.Set(ctxRoute, route)
		}
		if guard := guards[route]; guard != nil {
			if guard(c); c.IsAborted() {
				return
			}
		}
		abort(c, http.StatusMethodNotAllowed, apiError{Code: apierror.MethodNotAllowed, Message: c.Request.Method + " is not allowed on " + quotedPath(c)})
	})

	r.GET("/health", s.health)
	r.GET("/ready", s.ready)
	r.GET("/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPIDocument) })

	observe := s.requireScope(ScopeMetrics, s.cfg.PublicMetrics)
	guarded(http.MethodGet, "/metrics", observe, gin.WrapH(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))
	guarded(http.MethodGet, "/v1/status", observe, s.status)

	admin := s.requireScope(ScopeAdmin, false)
	guarded(http.MethodPost, "/v1/admin/reload", admin, s.reload)
	guarded(http.MethodGet, "/v1/ledger", admin, s.ledgerList)
	guarded(http.MethodGet, "/v1/ledger/:decision_id", admin, s.ledgerGet)

	reportAuth := s.requireScope(ScopeAdmin, s.cfg.PublicReport)
	guarded(http.MethodGet, "/report", reportAuth, s.reportHTML)
	guarded(http.MethodGet, "/v1/report", reportAuth, s.reportJSON)

	decide := s.requireScope(ScopeDecide, false)
	guarded(http.MethodPost, "/v1/decisions", decide, s.decisions)
	guarded(http.MethodPost, "/v1/admission", decide, s.admission)
	guarded(http.MethodPost, DataDecisionPath, decide, s.dataDecision)
	guarded(http.MethodPost, DataAdmissionPath, decide, s.dataAdmission)
	guarded(http.MethodGet, DataDecisionPath, decide, s.dataDecision)
	guarded(http.MethodGet, DataAdmissionPath, decide, s.dataAdmission)
	return r
}

// watchFiles reads the tokens file and the TLS certificate pair again when
// one of them changes, as the sources read bundle files and the GeoIP
// database (internal/watch: a file replaced by a rename, a Secret's
// symlink swapped), until ctx ends. One watch serves both: a change reads
// both again, which costs a few file reads. Without a watch (the system's
// limit on watches reached) the server still serves, with the files as
// they were at start, and says so.
func (s *Server) watchFiles(ctx context.Context, cert *certificate) {
	var files []string
	if s.tokens != nil {
		files = append(files, s.tokens.path)
	}
	if cert != nil {
		files = append(files, cert.certFile, cert.keyFile)
	}
	if len(files) == 0 {
		return
	}
	err := watch.Watch(ctx, files, fileDebounce, func() {
		if s.tokens != nil {
			s.tokens.reload(s.log)
		}
		if cert != nil {
			cert.reload()
		}
	})
	if err != nil {
		s.log.Warn("--tokens-file and --tls-cert are not watched: changes to them take a restart", "error", err.Error())
	}
}

// fileDebounce is how long changes to the watched files must be quiet
// before they are read again (the sources' default).
const fileDebounce = 250 * time.Millisecond

// localNamesOnly refuses, on a server open to local clients (no tokens, a
// loopback listener), a request addressed to a name other than localhost
// or a loopback address. Such a server trusts whoever can connect, and a
// web page can connect: its script fetches from a name of the attacker's
// whose DNS answer is then switched to 127.0.0.1 (DNS rebinding), and the
// browser sends the attacker's name as Host. Checking Host is what closes
// that; a proxy in front of such a server passes a loopback Host, or the
// server uses tokens. --insecure-no-auth, which opens the server to
// anyone, lifts it. An empty Host (HTTP/1.0) comes from no browser.
//
// A page's own script cannot choose Host, but a form it submits can reach
// a loopback name (a cross-site POST of /v1/admin/reload): a request that
// states an Origin other than a loopback one is refused too.
func (s *Server) localNamesOnly(c *gin.Context) {
	if !s.loopbackNamesOnly.Load() {
		c.Next()
		return
	}
	header, value := "", ""
	switch origin := c.GetHeader("Origin"); {
	case !loopbackName(c.Request.Host):
		header, value = "Host", c.Request.Host
	case origin != "" && !loopbackOrigin(origin):
		header, value = "Origin", origin
	default:
		c.Next()
		return
	}
	c.Set(ctxOPAErrors, isDataPath(c.Request.URL.Path))
	abort(c, http.StatusForbidden, apiError{Code: apierror.Forbidden, Field: header,
		Message: "the request's " + header + " is " + input.Quote(value) + ": without --tokens-file this server answers only requests from and to localhost or a loopback address"})
}

// loopbackName reports whether a Host header names localhost or a
// loopback address (or is empty).
func loopbackName(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]"
	}
	return isLoopback(strings.ToLower(strings.TrimSuffix(host, ".")))
}

// loopbackOrigin reports whether an Origin header ("http://localhost:8181")
// names a loopback host. "null" (a sandboxed page, a file) does not.
func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && loopbackName(u.Host)
}

// quotedPath is the request's path for an error message: quoted, and at
// most a short prefix of it, like any value an error repeats.
func quotedPath(c *gin.Context) string { return input.Quote(c.Request.URL.Path) }

// redactingWriter carries net/http's own error log (TLS handshake
// failures, bad requests) into the structured log with client addresses
// removed: they are personal data, and the log promises none.
type redactingWriter struct{ log *slog.Logger }

// clientAddr matches "IPv4:port" and "[IPv6]:port" in net/http's messages.
var clientAddr = regexp.MustCompile(`\[[0-9A-Fa-f:.%a-zA-Z]+\]:\d+|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b`)

func (w redactingWriter) Write(p []byte) (int, error) {
	msg := clientAddr.ReplaceAllString(strings.TrimSpace(string(p)), "<client>")
	w.log.Warn(msg, "source", "net/http")
	return len(p), nil
}

// Context keys. A request answered without an error sets none of them
// unless its line is logged or its span traced (see run): the first key
// set costs a map per request.
const (
	ctxDecisionID = "geoscope.decision_id"
	ctxErrorCode  = "geoscope.error_code"
	ctxRoute      = "geoscope.route" // set for a 405 only: see routeOf
	// ctxRequestKey: the request's engine.RequestKey, set only when the
	// client named its request (X-Request-Id).
	ctxRequestKey = "geoscope.request_key"
	// ctxReqID (the request's number) is set only while decisions are
	// logged, and ctxServed (its *engine.Served) only then or when its
	// client asked for its timers (the Data API's ?metrics).
	ctxReqID  = "geoscope.req_id"
	ctxServed = "geoscope.served"
)

// routeOf is the route a request is counted, logged and traced under: the
// template it matched; for a method the route does not allow (405), the
// template of the route it named, so that a DELETE of /v1/admission is
// counted against /v1/admission rather than lost among paths nobody
// serves; "unmatched" for a path no route has (a label per path would let
// any client grow the metrics without bound).
func routeOf(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	if route := c.GetString(ctxRoute); route != "" {
		return route
	}
	return "unmatched"
}

// routeTemplate is the template among routes that path matches, or "".
// Only a 405 asks, gin having already found that the path has routes
// under other methods but not saying which.
func routeTemplate(routes gin.RoutesInfo, path string) string {
	for _, route := range routes {
		if templateMatches(route.Path, path) {
			return route.Path
		}
	}
	return ""
}

// templateMatches reports whether path fits template, whose ":name"
// segments stand for any one non-empty segment (this server's routes have
// no catch-all segments).
func templateMatches(template, path string) bool {
	for {
		tseg, trest, tmore := strings.Cut(template, "/")
		pseg, prest, pmore := strings.Cut(path, "/")
		if tmore != pmore || !(tseg == pseg || strings.HasPrefix(tseg, ":") && pseg != "") {
			return false
		}
		if !tmore {
			return true
		}
		template, path = trest, prest
	}
}

// requestID takes a sane X-Request-Id from the client or makes one. It is
// kept in the answer's header only; requestIDOf reads it from there. An id
// given twice is neither line: a log or a proxy may read the other one (a
// decision's request is refused for it, see request).
func (s *Server) requestID(c *gin.Context) {
	id := ""
	if ids := c.Request.Header["X-Request-Id"]; len(ids) == 1 {
		id = ids[0]
	}
	if !printableID(id) {
		id = uuid.NewString()
	}
	c.Header("X-Request-Id", id)
	c.Next()
}

// requestIDOf is the request's id (see requestID).
func requestIDOf(c *gin.Context) string {
	if v := c.Writer.Header()["X-Request-Id"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func printableID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e {
			return false
		}
	}
	return true
}

// accessLog numbers each request, as OPA's server does (req_id), and logs
// one line per request. It never logs the client address (an IP is
// personal data, and the decision is what matters) nor any header that
// could carry a token.
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	n := s.requests.Add(1)
	if s.eng.LogsDecisions() {
		c.Set(ctxReqID, n) // for the request's decision-log event
	}
	s.active.Add(1)
	defer s.active.Add(-1) // also when a handler aborts the connection (a panic)
	c.Next()
	endpoint := routeOf(c)
	status := c.Writer.Status()
	s.metrics.answered(endpoint, status, c.GetString(ctxErrorCode), time.Since(start))
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if endpoint == "/health" || endpoint == "/ready" || endpoint == "/metrics" {
		level = slog.LevelDebug
	}
	ctx := c.Request.Context()
	if !s.log.Enabled(ctx, level) {
		return // the line would be dropped: do not build it
	}
	attrs := []any{
		"req_id", n,
		"request_id", requestIDOf(c),
		"method", c.Request.Method,
		"endpoint", endpoint,
		"status", status,
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
	}
	if id := c.GetString(ctxDecisionID); id != "" {
		attrs = append(attrs, "decision_id", id)
	}
	if code := c.GetString(ctxErrorCode); code != "" {
		attrs = append(attrs, "error_code", code)
	}
	s.log.Log(ctx, level, "request", attrs...)
}

// recoverPanic answers 500 with an error id instead of taking the process
// down; the id ties the response to the logged stack.
func (s *Server) recoverPanic(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			id := s.internalError(c, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			abort(c, http.StatusInternalServerError, apiError{Code: apierror.Internal, Message: "internal error", ErrorID: id})
		}
	}()
	c.Next()
}

// internalError logs err under a fresh error id and returns the id.
func (s *Server) internalError(c *gin.Context, err error) string {
	id := uuid.NewString()
	s.log.Error("internal error", "error_id", id, "request_id", requestIDOf(c), "error", err.Error())
	return id
}

// bearerToken is the request's bearer token, "" when it has none. The
// scheme is case-insensitive (RFC 7235); the token is not. Two
// Authorization headers (twice) are no token: which one a proxy or a
// client library passes on first is not something a scope should depend
// on.
func bearerToken(r *http.Request) (token string, twice bool) {
	if len(r.Header.Values("Authorization")) > 1 {
		return "", true
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	// One or more spaces after the scheme (RFC 9110 section 11.4:
	// credentials = auth-scheme [ 1*SP ... ]).
	return strings.TrimLeft(token, " "), false
}

// scopeNeeded is the 403 of an endpoint that needs the scope, naming every
// scope that grants it.
var scopeNeeded = map[string]string{
	ScopeDecide:  "this endpoint needs a token with the decide or admin scope",
	ScopeAdmin:   "this endpoint needs a token with the admin scope",
	ScopeMetrics: "this endpoint needs a token with the metrics or admin scope",
}

// requireScope admits requests with a token holding scope, or every
// request when open. Without a tokens file every request is admitted: the
// server then only listens on loopback unless the operator explicitly
// chose otherwise.
func (s *Server) requireScope(scope string, open bool) gin.HandlerFunc {
	if open {
		return func(*gin.Context) {}
	}
	return func(c *gin.Context) { s.authorize(c, scope) }
}

// authorize reports whether the request's token holds scope (any valid
// token when scope is ""); otherwise it answers 401 or 403. Without a
// tokens file every request is authorized.
func (s *Server) authorize(c *gin.Context, scope string) bool {
	if s.tokens == nil {
		return true
	}
	token, twice := bearerToken(c.Request)
	if twice {
		c.Header("WWW-Authenticate", `Bearer realm="geoscope", error="invalid_request"`)
		abort(c, http.StatusUnauthorized, apiError{Code: apierror.Unauthorized, Message: "Authorization is given more than once: send one bearer token"})
		return false
	}
	if token == "" {
		c.Header("WWW-Authenticate", `Bearer realm="geoscope"`)
		abort(c, http.StatusUnauthorized, apiError{Code: apierror.Unauthorized, Message: "a bearer token is required"})
		return false
	}
	switch g := s.tokens.scopes(token); {
	case g == 0:
		c.Header("WWW-Authenticate", `Bearer realm="geoscope", error="invalid_token"`)
		abort(c, http.StatusUnauthorized, apiError{Code: apierror.Unauthorized, Message: "the bearer token is not valid"})
		return false
	case scope != "" && !g.has(scope):
		abort(c, http.StatusForbidden, apiError{Code: apierror.Forbidden, Message: scopeNeeded[scope]})
		return false
	}
	return true
}
