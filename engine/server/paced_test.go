package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/apierror"
)

// serveLoopback serves s on a loopback port until the test ends and
// returns its address: a real connection, for what httptest's recorder
// does not have (read deadlines, the network's own cost).
func serveLoopback(tb testing.TB, s *Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return serveOn(tb, s, ln)
}

// serveOn serves s on ln until the test ends and returns its address.
func serveOn(tb testing.TB, s *Server, ln net.Listener) string {
	tb.Helper()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()
	tb.Cleanup(func() { stop(); <-served })
	return ln.Addr().String()
}

// TestBodyNeverOutlastsTheReadTimeout: with a rate low enough that a body
// sent a byte at a time keeps up with it, the body is still cut off at the
// server's read timeout (bodyLimit, 1 s here), answered 408 before the
// write timeout could swallow the answer of a decision recorded meanwhile.
func TestBodyNeverOutlastsTheReadTimeout(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{MinBodyRate: 1}})
	ts.bodyGrace, ts.bodyLimit = 100*time.Millisecond, time.Second
	addr := serveLoopback(t, ts.Server)

	body := admissionBody // about 150 bytes: 7 s at 20 bytes/s
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /v1/admission HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, len(body))
	go func() {
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	took := time.Since(start)
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(raw, []byte(`"body_timeout"`)) || !bytes.Contains(raw, []byte("longer than 1s")) {
		t.Errorf("a body that outlasts the read timeout: %d %s", resp.StatusCode, raw)
	}
	if took > 4*time.Second {
		t.Errorf("answered after %s: the body was read past the 1 s read timeout", took)
	}
}

// TestWaitForTheLargeLaneIsNotCountedAgainstTheBody: a gzip body sent
// small that inflates past the small lane waits for the large one; that
// wait is not time the body took to arrive, so a body sent at once is
// answered after it, not refused as too slow.
func TestWaitForTheLargeLaneIsNotCountedAgainstTheBody(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: 5 * time.Second}})
	ts.bodyGrace = 200 * time.Millisecond
	addr := serveLoopback(t, ts.Server)

	gz := gzipRosterOutgrowingTheSmallLane(t)

	// The large lane is taken for longer than the body's start.
	f := ts.inflight
	if err := f.large.Acquire(context.Background(), f.largeCap); err != nil {
		t.Fatal(err)
	}
	held := time.AfterFunc(800*time.Millisecond, func() { f.large.Release(f.largeCap) })
	defer held.Stop()

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/decisions", bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a gzip body sent at once, after %s waiting for the large lane: %d %s", time.Since(start), resp.StatusCode, raw)
	}
	if time.Since(start) < 800*time.Millisecond {
		t.Errorf("answered in %s: it did not wait for the large lane, and the test shows nothing", time.Since(start))
	}
}

// TestShedBigRequestClosesItsConnection: a big request shed unread
// closes its connection (net/http would otherwise read the rest of its
// body before answering); a small one keeps it.
func TestShedBigRequestClosesItsConnection(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: time.Millisecond}})
	ts.fillLanes(t)
	big := strings.Repeat(" ", SmallBody) + admissionBody
	for _, c := range []struct {
		body    string
		chunked bool
		close   bool
	}{{big, false, true}, {admissionBody, true, true}, {admissionBody, false, false}} {
		r := ts.do(t, request{method: http.MethodPost, path: "/v1/admission", body: c.body, chunked: c.chunked})
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("with the lanes full: %s", r)
		}
		if got := r.header.Get("Connection") == "close"; got != c.close {
			t.Errorf("shed %d bytes (chunked %v): Connection %q, want close %v", len(c.body), c.chunked, r.header.Get("Connection"), c.close)
		}
	}
}

// TestBodyOverMaxBodyClosesItsConnection: a body found over --max-body
// while it is read (chunked: no length declared) is answered 413 and its
// connection closed, as for a declared length over it, even when the
// rest has already arrived.
func TestBodyOverMaxBodyClosesItsConnection(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{MaxBody: 200_000}})
	r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: strings.Repeat(" ", 300_000) + "{}", chunked: true})
	if r.status != http.StatusRequestEntityTooLarge || r.header.Get("Connection") != "close" {
		t.Errorf("a chunked body over --max-body: %s, Connection %q", r, r.header.Get("Connection"))
	}
}

// TestWaitForTheLargeLaneOverHTTP2: over HTTP/2 too, the wait for the
// large lane is not counted against the body, whose rest arrives after
// it. A deadline left set through the wait closed the stream's body for
// good when it passed (HTTP/1.1 only fails a read made after it).
func TestWaitForTheLargeLaneOverHTTP2(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: 5 * time.Second}})
	ts.bodyGrace = 200 * time.Millisecond
	hs := startHTTP2(t, ts)

	all := gzipRosterOutgrowingTheSmallLane(t)

	f := ts.inflight
	if err := f.large.Acquire(context.Background(), f.largeCap); err != nil {
		t.Fatal(err)
	}
	held := time.AfterFunc(800*time.Millisecond, func() { f.large.Release(f.largeCap) })
	defer held.Stop()
	// Three quarters at once (enough to inflate past the small lane),
	// the rest once the lane is free.
	resp, raw := postGzipInTwoParts(t, hs.Server, all, len(all)*3/4, 850*time.Millisecond)
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, not HTTP/2", resp.Proto)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a gzip body whose rest came after the wait for the large lane, over HTTP/2: %d %s", resp.StatusCode, raw)
	}
}

// TestShedOverHTTP2KeepsTheConnection: a big request shed over HTTP/2 is a
// stream; closing it must not end the connection the client's other
// requests share ("Connection: close" made Go's server send GOAWAY).
func TestShedOverHTTP2KeepsTheConnection(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: time.Millisecond}})
	h2 := startHTTP2(t, ts)
	if got, _ := h2.post(t, admissionBody); got != http.StatusOK {
		t.Fatalf("admission: %d", got)
	}
	ts.fillLanes(t)
	big := strings.Repeat(" ", SmallBody) + admissionBody
	for range 5 {
		if got, _ := h2.post(t, big); got != http.StatusServiceUnavailable {
			t.Fatalf("a big request with the lanes full: %d", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := h2.conns.Load(); n != 1 {
		t.Errorf("%d connections for one client's requests over HTTP/2, want 1", n)
	}
}

// TestTooLargeOverHTTP2KeepsTheConnection: a body whose Content-Length is
// over --max-body is refused unread; over HTTP/2 that must neither end the
// connection nor cut the 413's own body short.
func TestTooLargeOverHTTP2KeepsTheConnection(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{MaxBody: 4 << 10}})
	h2 := startHTTP2(t, ts)
	big := strings.Repeat(" ", 8<<10) + admissionBody
	for range 5 {
		got, raw := h2.post(t, big)
		if got != http.StatusRequestEntityTooLarge {
			t.Fatalf("a body over --max-body: %d %s", got, raw)
		}
		var e struct{ Code string }
		if err := json.Unmarshal(raw, &e); err != nil || e.Code != apierror.TooLarge {
			t.Fatalf("the 413's body, over HTTP/2: %q (%v)", raw, err)
		}
	}
	if got, _ := h2.post(t, admissionBody); got != http.StatusOK {
		t.Fatalf("admission after the refusals: %d", got)
	}
	if n := h2.conns.Load(); n != 1 {
		t.Errorf("%d connections for one client's requests over HTTP/2, want 1", n)
	}
}

// http2Loopback is a test server's handler served over TLS with HTTP/2,
// counting the connections its clients open.
type http2Loopback struct {
	*httptest.Server
	conns atomic.Int32
}

func startHTTP2(t *testing.T, ts *testServer) *http2Loopback {
	t.Helper()
	h := &http2Loopback{Server: httptest.NewUnstartedServer(ts.Handler())}
	h.EnableHTTP2 = true
	h.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.conns.Add(1)
		}
	}
	h.StartTLS()
	t.Cleanup(h.Close)
	return h
}

// post sends body to /v1/admission and returns the status and the body of
// the answer, which must have come over HTTP/2.
func (h *http2Loopback) post(t *testing.T, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.URL+"/v1/admission", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer (status %d): %v", resp.StatusCode, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("answered over %s, not HTTP/2", resp.Proto)
	}
	return resp.StatusCode, raw
}

// gzipRosterOutgrowingTheSmallLane is a roster, gzip-compressed, that is
// sent small enough for the small lane and inflates to more than twice
// what the small lane takes, so that it moves to the large one while it
// is read. Its ids do not compress: the body sent is most of what it
// inflates to, so much of it is read from the connection after the move.
func gzipRosterOutgrowingTheSmallLane(t *testing.T) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [`)
	id := make([]byte, 24)
	for i := 0; b.Len() < 2*SmallBody+SmallBody/3; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		rand.Read(id)
		fmt.Fprintf(&b, `{"id": "%s", "ip": "8.8.8.8"}`, hex.EncodeToString(id))
	}
	b.WriteString("]}}")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(b.String()))
	zw.Close()
	t.Logf("compressed %d, inflated %d", gz.Len(), b.Len())
	if gz.Len() > SmallBody {
		t.Fatalf("the compressed body is %d bytes, over the small lane", gz.Len())
	}
	return gz.Bytes()
}

// postGzipInTwoParts posts the gzip body to /v1/decisions with its
// Content-Length, its first bytes at once and the rest after pause, and
// returns the answer and its body.
func postGzipInTwoParts(t *testing.T, hs *httptest.Server, body []byte, first int, pause time.Duration) (*http.Response, []byte) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:first])
		time.Sleep(pause)
		pw.Write(body[first:])
		pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, hs.URL+"/v1/decisions", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, raw
}

// deadlineWriter records the read deadlines a handler sets on its
// connection.
type deadlineWriter struct {
	http.ResponseWriter
	deadlines []time.Time
}

func (w *deadlineWriter) SetReadDeadline(d time.Time) error {
	w.deadlines = append(w.deadlines, d)
	return nil
}

// A body's read deadline is its start, the grace, and a second per
// MinBodyRate bytes received: it follows the bytes, falling behind what
// they earned by less than deadlineStep, and never passes the body's
// limit, however many bytes came. Once the body is read it is lifted.
func TestPacedDeadlineFollowsTheBytes(t *testing.T) {
	const grace, rate = 2 * time.Second, 1000
	for _, limitAfter := range []time.Duration{time.Hour, 2500 * time.Millisecond} {
		w := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
		body := io.NopCloser(strings.NewReader(strings.Repeat(" ", 3*rate)))
		p := newPacedBody(w, body, grace, rate, time.Now().Add(limitAfter))
		limit := p.limit
		last := func() time.Time { return w.deadlines[len(w.deadlines)-1] }
		if got, want := last(), p.start.Add(grace); !got.Equal(want) {
			t.Fatalf("limit in %s: the first deadline is %s after the start, want the grace, %s", limitAfter, got.Sub(p.start), grace)
		}
		buf := make([]byte, rate/4)
		for received := int64(0); ; {
			n, err := p.Read(buf)
			received += int64(n)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			earned := p.start.Add(grace + time.Duration(received)*time.Second/rate)
			if earned.After(limit) {
				earned = limit
			}
			// (A microsecond over: the deadline is reckoned in float seconds.)
			if got := last(); got.Sub(earned) > time.Microsecond || earned.Sub(got) >= deadlineStep {
				t.Fatalf("limit in %s: after %d bytes the deadline is %s after the start; the bytes earned %s", limitAfter, received, got.Sub(p.start), earned.Sub(p.start))
			}
		}
		if limitAfter < time.Hour && !w.deadlines[len(w.deadlines)-1].Equal(limit) {
			t.Errorf("limit in %s: the last deadline is %s after the start, want the limit", limitAfter, last().Sub(p.start))
		}
		p.lift()
		if !last().IsZero() {
			t.Errorf("limit in %s: the deadline after lift is %s, want none", limitAfter, last())
		}
	}
}
