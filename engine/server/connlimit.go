package server

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
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

// limitConnections caps the connections ln hands out to what the
// process's open-file limit leaves once the reserve is kept (see
// maxConnections). A connection past the cap is closed as soon as it is
// accepted: its client sees the connection closed without an answer,
// at once (which the client contract reads as no enforcement), rather
// than waiting in the listen queue until its deadline, as behind a full
// table of descriptors, while the ledger can still commit for the
// connections open. Where the limit is not known ln is returned as is.
func limitConnections(ln net.Listener, log *slog.Logger, refused prometheus.Counter) net.Listener {
	limit, inUse, ok := openFiles()
	if !ok {
		return ln
	}
	max := maxConnections(limit, inUse)
	if max == 0 {
		return ln
	}
	log.Info("connections capped by the open-file limit", "max_connections", max, "open_file_limit", limit)
	return &limitedListener{Listener: ln, max: max, log: log, refusedTotal: refused}
}

type limitedListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	log  *slog.Logger
	// refusedTotal is geoscope_connections_refused_total.
	refusedTotal prometheus.Counter

	mu      sync.Mutex
	refused int64     // since the last line logged
	logged  time.Time // when that line was
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		c.Close()
		l.refusedOne()
	}
}

// refusedOne counts a refused connection, logged with the others refused
// since the last line, at most once per refusedLogEvery.
func (l *limitedListener) refusedOne() {
	l.refusedTotal.Inc()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= refusedLogEvery {
		l.log.Warn("connections refused: as many are open as the open-file limit allows beside the ledger's reserve; raise the limit (ulimit -n, LimitNOFILE) or limit connections per client at the load balancer",
			"refused", l.refused, "max_connections", l.max, "per", refusedLogEvery.String())
		l.refused, l.logged = 0, now
	}
}

// limitedConn gives its place back once, when it is closed.
type limitedConn struct {
	net.Conn
	l      *limitedListener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
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
