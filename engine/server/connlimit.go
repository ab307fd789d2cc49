package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fdReserve is how many file descriptors the connections leave to the
// rest of the process: the ledger (SQLite's database, log and index for
// each of its four connections, the journal's segments, the directory it
// syncs; or the 16 connections of the PostgreSQL pool), bundle, GeoIP and
// tokens files read again, OPA's plugins' connections to the bundle and
// decision-log services, and the OpenTelemetry exporter's to its
// collector. With all of these busy at once (the pool at its 16, two
// bundles polled each second and new revisions downloaded, decision logs
// uploaded each second, every request traced, the GeoIP database
// replaced), the process held at most 17 descriptors more than when it
// began to serve, 15 of them the pool's: 64 leaves room for more bundles
// and services than that, and a reserve of 16 was found too small
// (TestIdleConnectionsLeaveFilesToPostgresAndPlugins). Without a reserve,
// clients that merely connect (a flood of them, or slow request heads)
// take every descriptor the process may open, and then every decision
// that must be recorded is refused 503 ledger_unavailable, on every
// connection, until they go.
const fdReserve = 64

// refusedLogEvery bounds the log of refused connections to a line per
// period while they are refused, as the ledger's failures are logged.
const refusedLogEvery = 10 * time.Second

// maxConnections is how many connections may be open at once under an
// open-file limit of limit descriptors, inUse of them open already:
// fdReserve fewer than remain, and never more than half of them kept
// from the rest of the process under a limit too low for the reserve. 0
// means no cap (no limit known, or none left to share).
func maxConnections(limit, inUse uint64) int64 {
	if limit <= inUse {
		return 0
	}
	free := limit - inUse
	n := free / 2
	if free > 2*fdReserve {
		n = free - fdReserve
	}
	if n > 1<<40 { // an unlimited limit: no cap worth keeping
		return 0
	}
	return int64(n)
}

// maxAhead bounds how many connections may be let in past the cap, each
// to take the place of an idle one once it sends a request (see
// limitedListener.Accept): they hold descriptors of the reserve until
// then (until the request head's 10 s, for one that sends nothing), so
// never more than a quarter of the reserve either, of which the ledger,
// reloads and OPA's plugins took 17 at most.
const maxAhead = 16

// limitConnections caps the connections ln hands out to what the
// process's open-file limit leaves once the reserve is kept (see
// maxConnections). At the cap, a new connection takes the place of the
// connection idle longest between requests, if there is one (see
// Accept); otherwise it is closed as soon as it is accepted: its client
// sees the connection closed without an answer, at once (which the
// client contract reads as no enforcement), rather than waiting in the
// listen queue until its deadline, as behind a full table of
// descriptors, while the ledger can still commit for the connections
// open. Where the limit is not known ln is returned as is. The server
// must report its connections' states to the listener's connState
// (http.Server.ConnState), which is how it knows the idle ones, give
// them connContext (http.Server.ConnContext) and serve its requests
// through requests, which is how it knows a request has come.
func limitConnections(ln net.Listener, log *slog.Logger, files func() (limit, inUse uint64, ok bool), refused, closedIdle prometheus.Counter) net.Listener {
	limit, inUse, ok := files()
	if !ok {
		return ln
	}
	capped := maxConnections(limit, inUse)
	if capped == 0 {
		return ln
	}
	reserve := int64(limit-inUse) - capped
	log.Info("connections capped by the open-file limit", "max_connections", capped, "open_file_limit", limit)
	return &limitedListener{Listener: ln, max: capped, ahead: min(maxAhead, max(1, reserve/4)),
		log: log, refusedTotal: refused, closedIdleTotal: closedIdle}
}

type limitedListener struct {
	net.Listener
	max int64
	// ahead is how many connections may be let in past max to take idle
	// ones' places (maxAhead).
	ahead int64
	log   *slog.Logger
	// refusedTotal is geoscope_connections_refused_total,
	// closedIdleTotal geoscope_idle_connections_closed_total.
	refusedTotal, closedIdleTotal prometheus.Counter

	mu   sync.Mutex
	open int64 // connections holding a place, those let in ahead among them
	// idle holds the connections idle between requests (the server's
	// StateIdle), longest idle first.
	idle idleConns
	// waiting counts the connections let in ahead that have not sent a
	// request yet.
	waiting int64
	// What was logged of connections refused and of idle ones closed.
	refused, closed loggedCount
}

// loggedCount is a count logged at most once per refusedLogEvery: how
// many since the last line, and when that line was.
type loggedCount struct {
	n      int64
	logged time.Time
}

// add counts one more; when a line is due it returns how many to log
// since the last, and true.
func (c *loggedCount) add() (int64, bool) {
	c.n++
	now := time.Now()
	if now.Sub(c.logged) < refusedLogEvery {
		return 0, false
	}
	n := c.n
	c.n, c.logged = 0, now
	return n, true
}

// Accept hands out connections while fewer than max are open. At max, a
// connection is let in ahead, past max, while some are idle between
// requests, and takes the place of the one idle longest when it sends
// its first request (requests), which closes that one; a connection
// that sends none (a flood of connections, slow request heads, heads
// net/http refuses before any handler) never closes one. Idle
// connections do nothing for their clients until their next request,
// but hold their places until the server's idle timeout, 120 s, so that
// without this, once they filled the cap, every new client was refused.
// The one idle longest is taken: its client is the least likely to have
// a request about to be sent on it, and it has had its turn longest.
//
// The new connection is not given the idle one's place as it is
// accepted, because it may never send anything: a flood of connections
// would then close the idle connections of the clients between two of
// their requests, and keep their places for the request head's 10 s
// (ReadHeaderTimeout), reconnecting, so that those clients, served
// through such a flood before, were refused when they connected again
// (of the requests of TestIdleConnectionsLeaveFilesToPostgresAndPlugins,
// 8,049 failed so).
//
// A connection whose first request head has not arrived (the server's
// StateNew) is never closed for another, however long it has waited:
// every connection is in that state from its accept until its head has
// been read, so that a flood of connections could close working
// clients' connections before their requests were read; and
// ReadHeaderTimeout closes it after 10 s, not the idle timeout's 120 s.
// (net/http's Shutdown counts it idle after 5 s, but then every
// connection goes.) An HTTP/2 connection past its preface with no
// stream open is idle, though, like any HTTP/2 connection with none, and
// kept until the idle timeout: it may be closed for another, the one
// idle longest first, and its preface is not the request that closes
// one. Nor is a head that reaches no handler: net/http reports a
// connection active once it has read any byte of a head, and then again
// after a head that timed out, was cut off or was refused 400.
//
// At most ahead connections wait past max, and no more than are idle,
// each with a descriptor of the reserve: past that a connection is
// refused though some are idle, until those waiting send a request or
// are closed, or one of them idle without a request makes room (see
// idleAhead). One let in ahead whose request comes when none is idle
// any more (they became active meanwhile) keeps its place, past max: it
// has a request in progress. The next connection to go idle then gives
// a place back, closed (see overCap).
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.open < l.max {
			l.open++
			l.mu.Unlock()
			return &limitedConn{Conn: c, l: l}, nil
		}
		var stale *limitedConn
		if l.waiting >= l.ahead {
			stale = l.idleAhead()
		}
		if l.waiting < min(l.ahead, int64(l.idle.Len())) {
			l.open++
			l.waiting++
			l.mu.Unlock()
			if stale != nil {
				stale.Conn.Close()
				l.closedOne()
			}
			return &limitedConn{Conn: c, l: l, ahead: true, waiting: true}, nil
		}
		l.mu.Unlock()
		c.Close()
		l.refusedOne()
	}
}

// idleAhead gives back the place of the connection let in ahead that is
// idle without a request longest, and returns it to be closed, when
// that leaves a place ahead for a new connection; otherwise it returns
// nil. Such a connection sent an HTTP/2 preface and no stream (as a
// browser's preconnect does), or a request no handler had (OPTIONS *):
// idle, it is kept until the idle timeout, 120 s, not the head's 10 s,
// and with all the places ahead so held, every new connection was
// refused while they lasted, however many were idle. l.mu is held.
func (l *limitedListener) idleAhead() *limitedConn {
	if l.waiting-1 >= min(l.ahead, int64(l.idle.Len()-1)) {
		return nil
	}
	for c := l.idle.front; c != nil; c = c.next {
		if c.waiting {
			l.release(c)
			return c
		}
	}
	return nil
}

// connState is the server's http.Server.ConnState: it keeps the idle
// connections.
//
// An idle connection is closed only while it is idle here, under l.mu,
// as net/http's own Shutdown (closeIdleConns) closes only connections
// still StateIdle: once the server has said a connection is active, its
// request is not cut off. The server says so when a request's head has
// been read, though, so a request whose head is arriving at the moment
// its connection is closed is lost: its client sees the connection
// closed without an answer, and sends the request again on another only
// if it may (Go's and most HTTP/1.1 clients resend idempotent requests,
// a GET, not a POST of a decision). That is the price any server's
// closing of idle connections has (the idle timeout's, a shutdown's),
// paid here only at the cap, and by the connection idle longest, whose
// client is the least likely to be sending.
//
// HTTP/2 connections are reported active while a stream is open and idle
// while none is, so they are idle here as HTTP/1.1 connections are
// between requests; closing one has the same race with a stream being
// opened.
func (l *limitedListener) connState(c net.Conn, state http.ConnState) {
	lc := asLimited(c)
	if lc == nil {
		return
	}
	var victim *limitedConn
	l.mu.Lock()
	switch state {
	case http.StateIdle:
		if !lc.closed && !lc.isIdle {
			l.idle.pushBack(lc)
			// Past the cap, not counting those let in ahead still
			// without a request: one let in ahead found none idle
			// when its request came (see Accept). The first to go
			// idle gives a place back, or the connections past the
			// cap would add up, a few at a time, until the reserve
			// was gone.
			victim = l.overCap()
		}
	case http.StateActive:
		l.notIdle(lc)
	case http.StateHijacked:
		// The handler has the connection now: it keeps its place until
		// it is closed, never idle here.
		l.notIdle(lc)
	case http.StateClosed:
		l.release(lc)
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
		l.closedOne()
	}
}

// asLimited is the limitedConn c is, or is a TLS connection over; nil
// for another.
func asLimited(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

// limitedConnKey is the context key of a connection let in ahead.
type limitedConnKey struct{}

// connContext is the server's http.Server.ConnContext: a connection let
// in ahead is found by its requests (see requests). The others are not
// looked for.
func (l *limitedListener) connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := asLimited(c); lc != nil && lc.ahead {
		return context.WithValue(ctx, limitedConnKey{}, lc)
	}
	return ctx
}

// requests serves next, a connection let in ahead taking the place of
// the one idle longest with its first request (see Accept). That is when
// a handler has the request: net/http reports a connection active
// (connState) on a head that never makes one (see Accept), and an
// HTTP/2 connection on its preface.
func (l *limitedListener) requests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc, ok := r.Context().Value(limitedConnKey{}).(*limitedConn); ok {
			l.requested(lc)
		}
		next.ServeHTTP(w, r)
	})
}

// requested: a request on lc, let in ahead, reached a handler.
func (l *limitedListener) requested(lc *limitedConn) {
	l.mu.Lock()
	if !lc.waiting || lc.closed {
		l.mu.Unlock()
		return
	}
	lc.waiting = false
	l.waiting--
	victim := l.overCap()
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
		l.closedOne()
	}
}

// overCap gives back the place of the connection idle longest, and
// returns it to be closed, while more are open than max besides those
// let in ahead that have not sent a request yet (whose places are lent
// from the reserve until then); otherwise it returns nil. No place is
// taken when others' closing has made room meanwhile. A connection let
// in ahead that is idle (an HTTP/2 one past its preface) is not taken:
// it would give back a place it has not been counted in. l.mu is held.
func (l *limitedListener) overCap() *limitedConn {
	if l.open-l.waiting <= l.max {
		return nil
	}
	for c := l.idle.front; c != nil; c = c.next {
		if !c.waiting {
			l.release(c)
			return c
		}
	}
	return nil
}

// notIdle takes c out of the idle connections. l.mu is held.
func (l *limitedListener) notIdle(c *limitedConn) {
	if c.isIdle {
		l.idle.remove(c)
	}
}

// release gives c's place back, once. l.mu is held.
func (l *limitedListener) release(c *limitedConn) {
	l.notIdle(c)
	if c.waiting {
		c.waiting = false
		l.waiting--
	}
	if !c.closed {
		c.closed = true
		l.open--
	}
}

// refusedOne counts a refused connection, logged with the others refused
// since the last line, at most once per refusedLogEvery.
func (l *limitedListener) refusedOne() {
	l.countLogged(&l.refused, l.refusedTotal, "refused",
		"connections refused: as many are open as the open-file limit allows beside the ledger's reserve; raise the limit (ulimit -n, LimitNOFILE) or limit connections per client at the load balancer")
}

// closedOne counts an idle connection closed to make room for a new one,
// logged as refusedOne logs refusals.
func (l *limitedListener) closedOne() {
	l.countLogged(&l.closed, l.closedIdleTotal, "closed",
		"idle connections closed to make room for new ones: as many are open as the open-file limit allows beside the ledger's reserve; raise the limit (ulimit -n, LimitNOFILE) or limit connections per client at the load balancer")
}

// countLogged counts one more in total and in c, and logs msg with how
// many (as key) when c's line is due: outside the lock every
// connection's state change takes.
func (l *limitedListener) countLogged(c *loggedCount, total prometheus.Counter, key, msg string) {
	total.Inc()
	l.mu.Lock()
	n, due := c.add()
	l.mu.Unlock()
	if due {
		l.log.Warn(msg, key, n, "max_connections", l.max, "per", refusedLogEvery.String())
	}
}

// limitedConn gives its place back once, when it is closed. Its fields
// are l.mu's.
type limitedConn struct {
	net.Conn
	l *limitedListener
	// isIdle: the connection is in l.idle, between prev and next.
	isIdle     bool
	prev, next *limitedConn
	// ahead: let in past the cap (set once, before it is served);
	// waiting: so, and no request yet.
	ahead, waiting bool
	closed         bool
}

// idleConns is a list of connections linked through their own fields: a
// connection goes idle and active again with every request on it, and
// container/list allocated an element each time. Its fields are l.mu's.
type idleConns struct {
	front, back *limitedConn
	n           int
}

// Len is how many connections are idle.
func (q *idleConns) Len() int { return q.n }

func (q *idleConns) pushBack(c *limitedConn) {
	c.prev, c.next, c.isIdle = q.back, nil, true
	if q.back != nil {
		q.back.next = c
	} else {
		q.front = c
	}
	q.back = c
	q.n++
}

func (q *idleConns) remove(c *limitedConn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		q.front = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		q.back = c.prev
	}
	c.prev, c.next, c.isIdle = nil, nil, false
	q.n--
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.release(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// CloseWrite is the TCP connection's: net/http half-closes a connection
// it is done with after an error answer, so that its client reads the
// answer rather than a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
