package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/geoscope/geoscope/internal/proctest"
)

// serveCapped serves ts on a loopback port with its connections capped
// at max, as an open-file limit of twice that, none of it in use, caps
// them (the reserve is the other half, and max/4 may wait past the cap).
func serveCapped(t *testing.T, ts *testServer, max int) string {
	t.Helper()
	ts.openFiles = func() (limit, inUse uint64, ok bool) { return uint64(2 * max), 0, true }
	addr := serveLoopback(t, ts.Server)
	said := fmt.Sprintf(`"max_connections":%d`, max)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(ts.logs.String(), said); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not say its cap of %d connections:\n%s", max, ts.logs.String())
		}
	}
	return addr
}

// serveCappedTLS serves, as serveCapped does, a test server with TLS
// (a certificate of its own, not verified by the tests' clients); url is
// its /health.
func serveCappedTLS(t *testing.T, max int) (ts *testServer, addr, url string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	proctest.WriteTLSPair(t, certFile, keyFile, 1)
	ts = newTestServer(t, serverSetup{cfg: Config{TLSCert: certFile, TLSKey: keyFile}})
	addr = serveCapped(t, ts, max)
	return ts, addr, "https://localhost:" + strings.Split(addr, ":")[1] + "/health"
}

// counted is c's count.
func counted(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// keptConn is a client's HTTP/1.1 connection, kept open between its
// requests.
type keptConn struct {
	net.Conn
	r *bufio.Reader
}

func dialKept(t *testing.T, addr string) *keptConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptConn{Conn: c, r: bufio.NewReader(c)}
}

// health asks for /health on c and returns the answer's status, or the
// error that took the connection.
func (c *keptConn) health() (int, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return 0, err
	}
	return c.answer()
}

func (c *keptConn) answer() (int, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// idleConnections opens n connections that are each answered a request
// and then kept idle, in that order (the first is idle longest).
func idleConnections(t *testing.T, ts *testServer, addr string, n int) []*keptConn {
	t.Helper()
	conns := make([]*keptConn, n)
	for i := range conns {
		conns[i] = dialKept(t, addr)
		if status, err := conns[i].health(); status != http.StatusOK {
			t.Fatalf("idle connection %d: its first request: %d %v", i, status, err)
		}
		awaitIdle(t, ts, i+1)
	}
	return conns
}

// http2Preface is what an HTTP/2 client sends first: the connection
// preface and an empty SETTINGS frame.
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"

// sendPreface opens a TLS connection to addr negotiating HTTP/2 and sends
// the preface alone on it; it is closed when the test ends.
func sendPreface(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2Preface); err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitIdle waits until the server has said that n connections are idle.
// It says so once an answer is sent and its reading of the connection
// during the request has stopped, which can come after the client has
// read the answer and sent a request on another connection: waiting for
// it keeps the order the connections became idle in the order the test
// used them in.
func awaitIdle(t *testing.T, ts *testServer, n int) {
	t.Helper()
	l := ts.conns.Load()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		l.mu.Lock()
		idle := l.idle.Len()
		l.mu.Unlock()
		if idle == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections idle after 5 s, want %d", idle, n)
		}
	}
}

// TestIdleConnectionsMakeRoomForNewOnes: with the cap full of connections
// idle between requests, a new client's request is answered, on a
// connection that took the place of the one idle longest: that one is
// closed, counted and logged, the others are answered on as before, and
// nothing is refused. Without this, the new client was refused as long
// as the idle connections kept their places, up to the idle timeout.
func TestIdleConnectionsMakeRoomForNewOnes(t *testing.T) {
	const max = 4
	ts := newTestServer(t, serverSetup{})
	addr := serveCapped(t, ts, max)
	idle := idleConnections(t, ts, addr, max)

	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer fresh.CloseIdleConnections()
	resp, err := fresh.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("a new client with the cap full of idle connections: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a new client with the cap full of idle connections: %d", resp.StatusCode)
	}

	if status, err := idle[0].health(); err == nil {
		t.Errorf("the connection idle longest was answered %d: it was not closed to make room", status)
	}
	for i, c := range idle[1:] {
		if status, err := c.health(); status != http.StatusOK {
			t.Errorf("idle connection %d, not the one idle longest: %d %v", i+1, status, err)
		}
	}
	if n := counted(ts.metrics.closedIdleConns); n != 1 {
		t.Errorf("geoscope_idle_connections_closed_total = %v, want 1", n)
	}
	if n := counted(ts.metrics.refusedConns); n != 0 {
		t.Errorf("geoscope_connections_refused_total = %v, want 0", n)
	}
	if n := strings.Count(ts.logs.String(), "idle connections closed to make room"); n != 1 {
		t.Errorf("%d log lines about idle connections closed, want 1:\n%s", n, ts.logs.String())
	}
}

// TestBusyConnectionsKeepTheirPlaces: with the cap full of connections
// whose requests are in progress (bodies still arriving), a new
// connection is refused, as before, and every request in progress is
// answered once its body has come.
func TestBusyConnectionsKeepTheirPlaces(t *testing.T) {
	const max = 4
	ts := newTestServer(t, serverSetup{})
	ts.bodyGrace = time.Minute // the bodies' pace is the test's
	addr := serveCapped(t, ts, max)
	busy := make([]*keptConn, max)
	for i := range busy {
		busy[i] = dialKept(t, addr)
		fmt.Fprintf(busy[i], "POST /v1/admission HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			len(admissionBody), admissionBody[:10])
	}
	for deadline := time.Now().Add(5 * time.Second); ts.active.Load() < max; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests reached their handlers", ts.active.Load(), max)
		}
	}

	late := dialKept(t, addr)
	if status, err := late.health(); err == nil {
		t.Errorf("a new connection with the cap full of requests in progress was answered %d, want it refused", status)
	}
	for i, c := range busy {
		if _, err := io.WriteString(c, admissionBody[10:]); err != nil {
			t.Fatalf("request %d in progress: %v", i, err)
		}
		if status, err := c.answer(); status != http.StatusOK {
			t.Errorf("request %d in progress: %d %v, want it answered 200", i, status, err)
		}
	}
	if n := counted(ts.metrics.refusedConns); n != 1 {
		t.Errorf("geoscope_connections_refused_total = %v, want 1", n)
	}
	if n := counted(ts.metrics.closedIdleConns); n != 0 {
		t.Errorf("geoscope_idle_connections_closed_total = %v, want 0", n)
	}
}

// TestSilentConnectionsCloseNoIdleOnes: connections that send nothing (a
// flood of them) do not take idle connections' places; the clients of
// the idle ones are answered on them as before, and the flood is refused
// but for the one connection let wait past the cap (a quarter of the
// reserve, 1 here), which takes an idle connection's place once it sends
// a request.
func TestSilentConnectionsCloseNoIdleOnes(t *testing.T) {
	const (
		max    = 4
		silent = 10
	)
	ts := newTestServer(t, serverSetup{})
	addr := serveCapped(t, ts, max)
	idle := idleConnections(t, ts, addr, max)
	flood := make([]*keptConn, silent)
	for i := range flood {
		flood[i] = dialKept(t, addr)
	}
	for deadline := time.Now().Add(5 * time.Second); counted(ts.metrics.refusedConns) < silent-1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v of %d silent connections refused, want all but one", counted(ts.metrics.refusedConns), silent)
		}
	}
	for i, c := range idle {
		if status, err := c.health(); status != http.StatusOK {
			t.Errorf("idle connection %d among silent ones: %d %v", i, status, err)
		}
		awaitIdle(t, ts, max)
	}
	if n := counted(ts.metrics.closedIdleConns); n != 0 {
		t.Fatalf("geoscope_idle_connections_closed_total = %v with only silent connections new, want 0", n)
	}

	answered := 0
	for _, c := range flood {
		if status, err := c.health(); err == nil {
			if status != http.StatusOK {
				t.Errorf("the silent connection let in: %d", status)
			}
			answered++
		}
	}
	if answered != 1 {
		t.Errorf("%d of %d silent connections were answered once they sent a request, want the one let wait", answered, silent)
	}
	// The idle connections were all used since: the one idle longest is
	// now idle[0] again, used first.
	if status, err := idle[0].health(); err == nil {
		t.Errorf("idle connection 0 was answered %d: no idle connection was closed for the one let in", status)
	}
	if n := counted(ts.metrics.closedIdleConns); n != 1 {
		t.Errorf("geoscope_idle_connections_closed_total = %v, want 1", n)
	}
}

// TestIdleHTTP2ConnectionsMakeRoomForNewOnes: an HTTP/2 connection with
// no stream open is idle as an HTTP/1.1 one is between requests, and
// makes room for a new client the same way; its preface alone is no
// request, so a connection that has sent only that closes none.
func TestIdleHTTP2ConnectionsMakeRoomForNewOnes(t *testing.T) {
	const max = 8 // two may wait past it: the preface's and the new client's
	ts, addr, url := serveCappedTLS(t, max)
	client := func() *http.Client {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			ForceAttemptHTTP2: true,
			// Not verified: the test's certificate is its own.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		t.Cleanup(c.CloseIdleConnections)
		return c
	}
	// get asks c for /health, on the connection c has if reused.
	get := func(c *http.Client, reused bool) error {
		var got httptrace.GotConnInfo
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { got = i },
		}), http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %d, want HTTP/2 200", resp.Proto, resp.StatusCode)
		}
		if reused && !got.Reused {
			return fmt.Errorf("answered on a new connection: the one it had was closed")
		}
		return nil
	}
	idle := make([]*http.Client, max)
	for i := range idle {
		idle[i] = client()
		if err := get(idle[i], false); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		awaitIdle(t, ts, i+1)
	}

	// A connection that sends the preface and nothing more.
	preface := sendPreface(t, addr)
	time.Sleep(200 * time.Millisecond)
	if n := counted(ts.metrics.closedIdleConns); n != 0 {
		t.Errorf("geoscope_idle_connections_closed_total = %v after a preface alone, want 0", n)
	}

	if err := get(client(), false); err != nil {
		t.Fatalf("a new client with the cap full of idle HTTP/2 connections: %v", err)
	}
	if n := counted(ts.metrics.closedIdleConns); n != 1 {
		t.Errorf("geoscope_idle_connections_closed_total = %v, want 1", n)
	}
	for i, c := range idle[1:] {
		if err := get(c, true); err != nil {
			t.Errorf("idle connection %d, not the one idle longest: %v", i+1, err)
		}
	}
	// Idle since its preface, after the others: not closed either.
	preface.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := io.Copy(io.Discard, preface); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection idle since its preface was closed (%v), not the one idle longest", err)
	}
}

// awaitNoConnections waits until the capped listener ts serves on holds
// no place, no idle connection and none let in past the cap: every
// client has gone, so every place must have come back, or the server
// would in time refuse everyone.
func awaitNoConnections(t *testing.T, ts *testServer) {
	t.Helper()
	l := ts.conns.Load()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		open, idle, waiting := l.open, l.idle.Len(), l.waiting
		l.mu.Unlock()
		if open == 0 && idle == 0 && waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("every client gone, the listener still counts %d open, %d idle, %d waiting past the cap: places were lost", open, idle, waiting)
		}
	}
}

// churn has clients connect to addr and leave in every way a client may,
// from workers goroutines, rounds times each: closing without a word, on
// half a request head, on half a body, after one request or after two on
// the connection kept, and at the cap, when refused. What they are
// answered is not the point: they run past the cap.
func churn(t *testing.T, addr string, workers, rounds int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					continue
				}
				kc := &keptConn{Conn: c, r: bufio.NewReader(c)}
				switch (w + i) % 6 {
				case 0: // nothing sent
				case 1: // half a head
					io.WriteString(c, "GET /health HTTP/1.1\r\nHo")
				case 2: // half a body, its handler waiting for the rest
					fmt.Fprintf(c, "POST /v1/admission HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
						len(admissionBody), admissionBody[:10])
					time.Sleep(time.Millisecond)
				case 3: // one request
					kc.health()
				case 4: // two on the connection kept, idle between them
					if _, err := kc.health(); err == nil {
						time.Sleep(time.Millisecond)
						kc.health()
					}
				case 5: // a request, then idle a while
					kc.health()
					time.Sleep(5 * time.Millisecond)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
}

// TestConnectionPlacesComeBack: clients that come and go in every way,
// many more than the cap at once, leave no place taken once they are
// all gone: the listener's count of open connections, its idle ones and
// those let in past the cap all come back to 0.
func TestConnectionPlacesComeBack(t *testing.T) {
	const max = 4
	ts := newTestServer(t, serverSetup{})
	addr := serveCapped(t, ts, max)
	churn(t, addr, 16, 60)
	awaitNoConnections(t, ts)
	t.Logf("idle connections closed %v, connections refused %v", counted(ts.metrics.closedIdleConns), counted(ts.metrics.refusedConns))
}

// TestConnectionPlacesComeBackOverTLS: the same over TLS, with HTTP/2
// and HTTP/1.1 clients, and connections that fail their handshake
// (plain HTTP, half a handshake), which net/http closes as its own
// *tls.Conn.
func TestConnectionPlacesComeBackOverTLS(t *testing.T) {
	const max = 4
	ts, addr, url := serveCappedTLS(t, max)
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				switch (w + i) % 5 {
				case 0, 1: // HTTP/2 or HTTP/1.1, a request or two on one connection
					client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
						ForceAttemptHTTP2: (w+i)%5 == 0,
						TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
					}}
					for range 1 + i%2 {
						if resp, err := client.Get(url); err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
						time.Sleep(time.Millisecond)
					}
					client.CloseIdleConnections()
				case 2: // plain HTTP to the TLS port
					if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
						io.WriteString(c, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
						c.SetReadDeadline(time.Now().Add(time.Second))
						io.Copy(io.Discard, c)
						c.Close()
					}
				case 3: // half a handshake
					if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
						c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
						c.Close()
					}
				case 4: // the HTTP/2 preface alone
					if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}); err == nil {
						io.WriteString(c, http2Preface)
						time.Sleep(2 * time.Millisecond)
						c.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	awaitNoConnections(t, ts)
}

// TestConnectionPlacesComeBackAfterShutdown: connections open at a
// shutdown (idle, let in past the cap, mid-request) all give their
// places back as the server closes them.
func TestConnectionPlacesComeBackAfterShutdown(t *testing.T) {
	const max = 4
	ts := newTestServer(t, serverSetup{cfg: Config{ShutdownTimeout: time.Second}})
	ts.openFiles = func() (limit, inUse uint64, ok bool) { return 2 * max, 0, true }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- ts.Serve(ctx, ln) }()
	addr := ln.Addr().String()
	for deadline := time.Now().Add(5 * time.Second); ts.conns.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server did not cap its connections")
		}
	}
	idleConnections(t, ts, addr, max-1)
	busy := dialKept(t, addr)
	fmt.Fprintf(busy, "POST /v1/admission HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(admissionBody), admissionBody[:10])
	silent := dialKept(t, addr) // let in past the cap
	time.Sleep(50 * time.Millisecond)
	stop()
	<-served
	// What the shutdown left open (the request in progress, the silent
	// connection, until their timeouts) goes with its client.
	busy.Close()
	silent.Close()
	awaitNoConnections(t, ts)
}

// placesTaken is what the capped listener ts serves on counts open, and
// of those, let in past the cap without a request yet.
func placesTaken(ts *testServer) (open, waiting int64) {
	l := ts.conns.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.waiting
}

// TestConnectionsPastTheCapStayBounded: a connection let in past the cap
// whose request comes when no connection is idle any more (they all
// became busy meanwhile) keeps its place past the cap; but the next
// connection to go idle gives one back, so that, round after round,
// no more than the cap and the few let in past it are ever open: each
// of those holds a descriptor of the reserve kept for the ledger, and
// they added up, a round at a time, until the reserve was gone.
func TestConnectionsPastTheCapStayBounded(t *testing.T) {
	const max, ahead = 4, 1 // serveCapped's reserve is max, of which a quarter waits
	ts := newTestServer(t, serverSetup{})
	ts.bodyGrace = time.Minute // the bodies' pace is the test's
	addr := serveCapped(t, ts, max)
	conns := idleConnections(t, ts, addr, max)
	busy := func(c *keptConn) {
		fmt.Fprintf(c, "POST /v1/admission HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			len(admissionBody), admissionBody[:10])
	}
	var inProgress []*keptConn
	for round := range 4 {
		// A new connection, let in past the cap while some are idle.
		fresh := dialKept(t, addr)
		waited := false
		for deadline := time.Now().Add(time.Second); !waited && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			_, waiting := placesTaken(ts)
			waited = waiting == 1
		}
		if !waited {
			t.Logf("round %d: the new connection was not let in past the cap", round)
			break
		}
		// Every connection held becomes busy before its request comes.
		for _, c := range conns {
			busy(c)
			inProgress = append(inProgress, c)
		}
		conns = nil
		for deadline := time.Now().Add(5 * time.Second); ts.active.Load() < int64(len(inProgress)); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d requests reached their handlers", round, ts.active.Load(), len(inProgress))
			}
		}
		if status, err := fresh.health(); status != http.StatusOK {
			t.Fatalf("round %d: the connection let in past the cap: %d %v, want it answered", round, status, err)
		}
		// Once it is idle (or, idle past the cap, closed):
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			l := ts.conns.Load()
			l.mu.Lock()
			settled := l.idle.Len() == 1 || l.open == int64(len(inProgress))
			l.mu.Unlock()
			if settled {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the connection answered neither idle nor closed", round)
			}
		}
		conns = append(conns, fresh)
		if open, _ := placesTaken(ts); open > max+ahead {
			t.Fatalf("round %d: %d connections open, more than the cap of %d and the %d let in past it", round, open, max, ahead)
		}
	}
	for _, c := range inProgress {
		io.WriteString(c, admissionBody[10:])
		c.answer()
	}
}

// TestNoIdleConnectionClosedWhenRoomWasMade: a connection let in past
// the cap whose request comes after another connection has closed by
// itself takes the place that one left; no idle connection is closed
// for it, where one was, needlessly, its client's next request then
// made on a new connection.
func TestNoIdleConnectionClosedWhenRoomWasMade(t *testing.T) {
	const max = 4
	ts := newTestServer(t, serverSetup{})
	addr := serveCapped(t, ts, max)
	idle := idleConnections(t, ts, addr, max)
	fresh := dialKept(t, addr)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, waiting := placesTaken(ts); waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new connection was not let in past the cap")
		}
	}
	idle[0].Close() // its client leaves: room under the cap
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if open, _ := placesTaken(ts); open == max {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not see the client leave")
		}
	}
	if status, err := fresh.health(); status != http.StatusOK {
		t.Fatalf("the connection let in past the cap: %d %v", status, err)
	}
	for i, c := range idle[1:] {
		if status, err := c.health(); status != http.StatusOK {
			t.Errorf("idle connection %d: %d %v, want it answered on the connection it had", i+1, status, err)
		}
	}
	if n := counted(ts.metrics.closedIdleConns); n != 0 {
		t.Errorf("geoscope_idle_connections_closed_total = %v, want 0", n)
	}
}

// TestConnStateAllocatesNothing: the server reports each request's
// connection active and then idle again, on every kept-alive
// connection, plain or TLS; keeping the idle ones allocates nothing for
// that (a list element was allocated each time).
func TestConnStateAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	l := &limitedListener{Listener: ln, max: 4, ahead: 1}
	accept := func() net.Conn {
		t.Helper()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	plain := accept()
	if n := testing.AllocsPerRun(100, func() {
		l.connState(plain, http.StateActive)
		l.connState(plain, http.StateIdle)
	}); n != 0 {
		t.Errorf("a request on a plain connection: %v allocations keeping it idle, want 0", n)
	}

	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	proctest.WriteTLSPair(t, certFile, keyFile, 1)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	served := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"h2", "http/1.1"}})
	defer served.Close()
	shook := make(chan error, 1)
	go func() { shook <- served.Handshake() }()
	if err := tls.Client(client, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}).Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-shook; err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		l.connState(served, http.StateActive)
		l.connState(served, http.StateIdle)
	}); n != 0 {
		t.Errorf("a request on a TLS connection: %v allocations, want 0", n)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open != 2 || l.idle.Len() != 2 {
		t.Errorf("%d open, %d idle, want 2 of each", l.open, l.idle.Len())
	}
}

// TestBadHeadsCloseNoIdleOnes: a connection let in past the cap that
// sends a head and no request (half of one, then gone; or one net/http
// refuses before any handler, 400) closes no idle connection: net/http
// reports such a connection active as soon as it has read any byte of
// it, and each closed an idle client's connection for nothing, as a
// slow head did once its 10 s passed.
func TestBadHeadsCloseNoIdleOnes(t *testing.T) {
	const max = 4
	ts := newTestServer(t, serverSetup{})
	addr := serveCapped(t, ts, max)
	idle := idleConnections(t, ts, addr, max)
	awaitWaiting := func(want int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, waiting := placesTaken(ts); waiting == want {
				return
			}
			if time.Now().After(deadline) {
				_, waiting := placesTaken(ts)
				t.Fatalf("%d connections let in past the cap waiting, want %d", waiting, want)
			}
		}
	}
	for _, head := range []string{
		"GET /health HTTP/1.1\r\nHo",   // half a head, then gone
		"GET /health HTTP/1.1\r\n\r\n", // no Host: 400, from net/http
		"BAD HEAD\r\n\r\n",             // 400 too
	} {
		c := dialKept(t, addr)
		awaitWaiting(1)
		io.WriteString(c, head)
		if strings.HasSuffix(head, "\r\n\r\n") {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c)
		}
		c.Close()
		awaitWaiting(0)
		if n := counted(ts.metrics.closedIdleConns); n != 0 {
			t.Fatalf("geoscope_idle_connections_closed_total = %v after the head %q, which made no request; want 0", n, head)
		}
	}
	for i, c := range idle {
		if status, err := c.health(); status != http.StatusOK {
			t.Errorf("idle connection %d: %d %v, want it answered on the connection it had", i, status, err)
		}
	}
}

// TestPrefacesHoldNoPlaceAhead: HTTP/2 connections that sent their
// preface and no request (as a browser's preconnect does) are idle but
// hold the places of those let in past the cap until the idle timeout's
// 120 s; once all those places are so held, a new client takes the place
// of the one idle longest of them, where it was refused as long as they
// lasted, every idle connection's place out of its reach.
func TestPrefacesHoldNoPlaceAhead(t *testing.T) {
	const max, ahead = 8, 2
	ts, addr, url := serveCappedTLS(t, max)
	get := func() error {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			ForceAttemptHTTP2: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		}}
		t.Cleanup(c.CloseIdleConnections)
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%d", resp.StatusCode)
		}
		return nil
	}
	for i := range max {
		if err := get(); err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		awaitIdle(t, ts, i+1)
	}
	prefaces := make([]*tls.Conn, ahead)
	for i := range prefaces {
		c := sendPreface(t, addr)
		awaitIdle(t, ts, max+i+1)
		prefaces[i] = c
	}
	if err := get(); err != nil {
		t.Fatalf("a new client with every place past the cap held by a preface alone: %v", err)
	}
	prefaces[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, prefaces[0]); err != nil {
		t.Errorf("the preface idle longest: %v, want its connection closed", err)
	}
	prefaces[1].SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := io.Copy(io.Discard, prefaces[1]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the later preface's connection was closed (%v), not only the one idle longest", err)
	}
}
