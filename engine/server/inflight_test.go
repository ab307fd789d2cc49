package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/input"
)

// fillLanes takes every byte of both lanes of ts's budget until the test
// ends, so nothing more is admitted.
func (ts *testServer) fillLanes(t *testing.T) {
	t.Helper()
	f := ts.inflight
	ctx := context.Background()
	if err := f.small.Acquire(ctx, f.smallCap); err != nil {
		t.Fatal(err)
	}
	if err := f.large.Acquire(ctx, f.largeCap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.small.Release(f.smallCap)
		f.large.Release(f.largeCap)
	})
}

func TestInflightLanes(t *testing.T) {
	var drained atomic.Int32
	f := newInflight(2<<20, 20*time.Millisecond, func() { drained.Add(1) })
	ctx := context.Background()

	// A big request that takes the whole large lane leaves small ones
	// unaffected, and makes the next big one wait, then fail.
	big, err := f.acquire(ctx, 2<<20, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	small, err := f.acquire(ctx, 300, 4<<20)
	if err != nil {
		t.Fatalf("a small request waited for a big one: %v", err)
	}
	if small.large || small.weight != minWeight {
		t.Errorf("small reservation = large %v weight %d, want the small lane and %d", small.large, small.weight, minWeight)
	}
	if _, err := f.acquire(ctx, SmallBody+1, 4<<20); !errors.Is(err, errOverloaded) {
		t.Errorf("second big request: %v, want errOverloaded", err)
	}
	if got := f.largeUsed.Load(); got != 2<<20 {
		t.Errorf("large lane in use = %d, want %d", got, 2<<20)
	}
	big.release()
	big.release() // idempotent
	if got := f.largeUsed.Load(); got != 0 {
		t.Errorf("large lane in use after release = %d, want 0", got)
	}
	if drained.Load() != 1 {
		t.Errorf("drained called %d times, want 1", drained.Load())
	}
	small.release()
	if got := f.smallUsed.Load(); got != 0 {
		t.Errorf("small lane in use after release = %d, want 0", got)
	}

	// A body of unknown length reserves the limit (capped at the lane) and
	// gives back what it did not use.
	unknown, err := f.acquire(ctx, -1, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !unknown.large || unknown.weight != 2<<20 {
		t.Errorf("unknown length: large %v weight %d, want the large lane and %d", unknown.large, unknown.weight, 2<<20)
	}
	unknown.shrink(1000)
	if got := f.largeUsed.Load(); got != 1000 {
		t.Errorf("after shrink, large lane in use = %d, want 1000", got)
	}
	next, err := f.acquire(ctx, 1<<20, 4<<20)
	if err != nil {
		t.Fatalf("the room given back is not usable: %v", err)
	}
	next.release()
	unknown.release()

	// A client that leaves while waiting is told so, not "overloaded".
	hold, _ := f.acquire(ctx, 2<<20, 4<<20)
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := f.acquire(gone, 2<<20, 4<<20); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v, want context.Canceled", err)
	}
	hold.release()
}

func TestConfigRefusesABudgetSmallerThanABody(t *testing.T) {
	err := Config{MaxBody: 4 << 20, MaxInflight: 1 << 20}.Validate()
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--max-inflight") {
		t.Errorf("Validate = %v, want ErrConfig naming --max-inflight", err)
	}
	if err := (Config{MaxBody: 16 << 20}).Validate(); err != nil {
		t.Errorf("the default budget follows --max-body: %v", err)
	}
	// Near the largest int64, --max-body times the default bodies in
	// flight (here 4, from 8 CPUs) saturates instead of wrapping around
	// below --max-body.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	if err := (Config{MaxBody: math.MaxInt64 - 1}).Validate(); err != nil {
		t.Errorf("the default budget for the largest --max-body: %v", err)
	}
}

func TestWriteDecisionMatchesEncodingJSON(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	allow := false
	action := func(i int) decision.Action {
		return decision.Action{Type: decision.RemoveParticipant, MeetingID: "m<1>", ParticipantID: "p-" + strings.Repeat("é", i%3),
			OrderID: "O&1", Jurisdiction: []string{"CN"}, Country: "CN", Reason: "inside \"the\" jurisdiction\u2028"}
	}
	many := make([]decision.Action, 1000)
	for i := range many {
		many[i] = action(i)
	}
	for name, d := range map[string]*decision.Decision{
		"no actions":  {DecisionID: "d", MeetingID: "m", Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{}, OrderIDs: []string{}},
		"nil actions": {DecisionID: "d", MeetingID: "m"},
		"one action":  {DecisionID: "d", MeetingID: "m", AllowJoin: &allow, Actions: []decision.Action{action(1)}, Bundles: map[string]string{"p": "r"}},
		"many actions, a reason quoting actions": {DecisionID: "d", MeetingID: `"actions":[]`, Actions: many,
			Refused: []decision.Refusal{{OrderID: "O", Demand: "end_meeting", Code: "affects_outside", Reason: `"actions":[]`}}},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			s := &Server{cfg: Config{MaxResponse: DefaultMaxResponse}}
			body, err := s.encodeDecision(d, s.cfg.MaxResponse)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body differs from json.Marshal:\n got %.400s\nwant %.400s", body, want)
			}
		})
	}
}

// TestArrivalHoldsWhatArrives: a small body's buffer grows only as its
// bytes arrive, and only what grows past its first minWeight bytes is
// taken from the arriving budget; a body that finds the budget taken is
// refused at once, holding nothing.
func TestArrivalHoldsWhatArrives(t *testing.T) {
	f := newInflight(4<<20, time.Second, nil)
	if f.arrivingCap != 1<<20 {
		t.Fatalf("arriving budget %d, want the small lane's 1 MiB", f.arrivingCap)
	}
	used := func() int64 { return f.arrivingUsed.Load() }
	// waitFor waits for the reading goroutine to take what it grows to.
	waitFor := func(want int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); used() != want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("arriving budget in use %d, want %d", used(), want)
			}
		}
	}

	pr, pw := io.Pipe()
	arr := arrival{f: f}
	type result struct {
		raw []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		raw, err := arr.read(pr, SmallBody)
		done <- result{raw, err}
	}()
	chunk := bytes.Repeat([]byte(" "), minWeight)
	// Declared, nothing sent: nothing taken. Each buffer filled doubles,
	// and the budget holds the buffer but its first minWeight bytes.
	waitFor(0)
	sent := int64(0)
	for _, grown := range []int64{8 << 10, 16 << 10, 32 << 10, 64 << 10} {
		for ; sent < grown/2; sent += minWeight {
			pw.Write(chunk)
		}
		waitFor(grown - minWeight)
	}
	for ; sent < SmallBody; sent += minWeight {
		pw.Write(chunk)
	}
	r := <-done
	if r.err != nil || len(r.raw) != SmallBody {
		t.Fatalf("read %d bytes, %v; want %d", len(r.raw), r.err, SmallBody)
	}
	if used() != SmallBody-minWeight {
		t.Errorf("arriving budget in use %d once the body arrived, want %d", used(), SmallBody-minWeight)
	}

	// The rest of the budget taken: a body that needs more is refused as
	// soon as it does, and gives back what it held; one within minWeight
	// needs none.
	rest := arrival{f: f}
	if !rest.hold(f.arrivingCap - used() + minWeight) {
		t.Fatal("the rest of the budget could not be taken")
	}
	late := arrival{f: f}
	if _, err := late.read(bytes.NewReader(make([]byte, 3*minWeight)), 3*minWeight); !errors.Is(err, errArriving) {
		t.Errorf("a body with the budget taken: %v, want errArriving", err)
	}
	late.release()
	admission := arrival{f: f}
	if raw, err := admission.read(strings.NewReader(admissionBody), int64(len(admissionBody))); err != nil || string(raw) != admissionBody {
		t.Errorf("an admission with the budget taken: %q, %v", raw, err)
	}
	admission.release()
	rest.release()
	arr.release()
	arr.release() // idempotent
	if used() != 0 {
		t.Errorf("arriving budget in use %d after every release, want 0", used())
	}
}

// TestArrivingBodiesAreBounded: over real connections, many clients that
// each send most of a small body and then stall cannot make the server
// hold more than the arriving budget for them. Those beyond it are
// answered 503 overloaded at once, with Retry-After, and their
// connections closed; an admission is answered meanwhile; everything is
// given back when they leave. Plain bodies hold their buffer; gzip ones
// sent past gzipStart their decompressor and what they inflated too.
func TestArrivingBodiesAreBounded(t *testing.T) {
	ts := newTestServer(t, serverSetup{cfg: Config{MaxInflight: 4 << 20}})
	ts.bodyGrace = 20 * time.Second // the stalled bodies are not cut off while the test runs
	addr := serveLoopback(t, ts.Server)
	f := ts.inflight

	var highest atomic.Int64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			highest.Store(max(highest.Load(), f.arrivingUsed.Load()))
			select {
			case <-stopSampling:
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
	}()

	noise := make([]byte, 2*SmallBody)
	rand.Read(noise)
	compressed := gzipped(t, noise)[:SmallBody]
	for _, c := range []struct {
		name, encoding string
		part           []byte // sent of a body declared SmallBody long
		holds          int64  // what each body held holds of the budget
	}{
		{"plain", "", bytes.Repeat([]byte(" "), SmallBody-1), SmallBody - minWeight},
		{"gzip", "gzip", compressed[:gzipStart+gzipStart/4], gzipStart + inflaterSize + SmallBody - minWeight},
	} {
		t.Run(c.name, func(t *testing.T) {
			const conns = 40
			if conns*int64(len(c.part)) <= f.arrivingCap || conns*c.holds < 2*f.arrivingCap {
				t.Fatalf("%d bodies of %d bytes do not test a budget of %d", conns, len(c.part), f.arrivingCap)
			}
			head := fmt.Sprintf("POST /v1/decisions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", addr, SmallBody)
			if c.encoding != "" {
				head += "Content-Encoding: " + c.encoding + "\r\n"
			}
			var answered atomic.Int64
			answers := make(chan *http.Response, conns)
			var readers sync.WaitGroup
			var open []net.Conn
			for range conns {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				open = append(open, conn)
				if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Write(c.part); err != nil {
					t.Fatal(err)
				}
				readers.Go(func() {
					resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
					if err != nil {
						return // closed by the test
					}
					io.ReadAll(resp.Body)
					answered.Add(1)
					answers <- resp
				})
			}
			// Settled: every body either answered or holding what it
			// holds once its bytes have been read.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				used := f.arrivingUsed.Load()
				if used%c.holds == 0 && answered.Load()+used/c.holds == conns {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not settled: %d answered, %d bytes held, %d each", answered.Load(), used, c.holds)
				}
			}
			held := f.arrivingUsed.Load()
			if gauge := gaugeValue(t, ts, "geoscope_inflight_request_bytes", "arriving"); int64(gauge) != held {
				t.Errorf("geoscope_inflight_request_bytes{lane=\"arriving\"} = %v, want %d", gauge, held)
			}
			if held > f.arrivingCap || held+c.holds <= f.arrivingCap {
				t.Errorf("bodies hold %d bytes: want the budget, %d, filled and not exceeded (%d each)", held, f.arrivingCap, c.holds)
			}
			refused := answered.Load()
			if refused == 0 {
				t.Fatal("no body was refused")
			}
			if shed := gaugeValue(t, ts, "geoscope_overloaded_total", "arriving"); int64(shed) < refused {
				t.Errorf("geoscope_overloaded_total{lane=\"arriving\"} = %v, want at least %d", shed, refused)
			}
			for range refused {
				resp := <-answers
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !resp.Close {
					t.Errorf("a body beyond the budget: %s, Retry-After %q, close %v; want 503 with Retry-After, closed", resp.Status, resp.Header.Get("Retry-After"), resp.Close)
				}
			}
			resp, err := http.Post("http://"+addr+"/v1/admission", "application/json", strings.NewReader(admissionBody))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("an admission while the arriving budget is taken: %s %s", resp.Status, raw)
			}
			for _, conn := range open {
				conn.Close()
			}
			readers.Wait()
			for deadline := time.Now().Add(5 * time.Second); f.arrivingUsed.Load() != 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d bytes still held after the clients left", f.arrivingUsed.Load())
				}
			}
			t.Logf("%d bodies held %d bytes, %d refused", int64(conns)-refused, held, refused)
		})
	}
	close(stopSampling)
	<-sampled
	if highest.Load() > f.arrivingCap {
		t.Errorf("bodies arriving held up to %d bytes, over the budget of %d", highest.Load(), f.arrivingCap)
	}
	if f.smallUsed.Load() != 0 || f.largeUsed.Load() != 0 {
		t.Errorf("lanes in use after the test: small %d, large %d", f.smallUsed.Load(), f.largeUsed.Load())
	}
}

// gaugeValue is the value of a metric of ts with the label lane.
func gaugeValue(t *testing.T, ts *testServer, name, lane string) float64 {
	t.Helper()
	families, err := ts.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "lane" && l.GetValue() == lane {
					if m.GetGauge() != nil {
						return m.GetGauge().GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{lane=%q}", name, lane)
	return 0
}

// A request refused for want of room is told to come back once a queue
// timeout has passed: Retry-After is --queue-timeout in whole seconds,
// rounded up, so that a client honouring it does not send again into the
// wait that just refused it.
func TestRetryAfterCoversTheQueueTimeout(t *testing.T) {
	for timeout, want := range map[time.Duration]string{
		50 * time.Millisecond:   "1",
		time.Second:             "1",
		1500 * time.Millisecond: "2",
		3 * time.Second:         "3",
	} {
		ts := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: timeout}})
		for _, lane := range []string{"small", "large", "arriving"} {
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest(http.MethodPost, "/v1/decisions", nil)
			ts.overloaded(c, errOverloaded, lane)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != want {
				t.Errorf("--queue-timeout %s, %s lane: %d with Retry-After %q, want 503 with %q", timeout, lane, w.Code, w.Header().Get("Retry-After"), want)
			}
		}
	}
}

// The small lane is a quarter of --max-inflight and never under 1 MiB
// (docs/operations.md), and the arriving budget as large: under a small
// --max-inflight, sixteen bodies of SmallBody are still admitted at once,
// and arrive at once, and a seventeenth is not.
func TestSmallLaneIsAtLeastOneMiB(t *testing.T) {
	for largeCap, want := range map[int64]int64{256 << 10: 1 << 20, 4 << 20: 1 << 20, 16 << 20: 4 << 20} {
		f := newInflight(largeCap, time.Millisecond, nil)
		var held []*reservation
		for range want / SmallBody {
			r, err := f.acquire(context.Background(), SmallBody, largeCap)
			if err != nil {
				t.Fatalf("--max-inflight %d: the small lane refused a body of SmallBody with %d held: %v", largeCap, f.smallUsed.Load(), err)
			}
			held = append(held, r)
		}
		if _, err := f.acquire(context.Background(), SmallBody, largeCap); !errors.Is(err, errOverloaded) {
			t.Errorf("--max-inflight %d: a body past a small lane of %d: %v, want errOverloaded", largeCap, want, err)
		}
		for _, r := range held {
			r.release()
		}
		a := arrival{f: f}
		if !a.hold(want+minWeight) || a.hold(1) {
			t.Errorf("--max-inflight %d: the arriving budget is not %d", largeCap, want)
		}
		a.release()
	}
}

// A --max-inflight of exactly --max-body is enough (one body of the
// largest size at a time), and a byte less is refused.
func TestConfigBudgetOfOneBody(t *testing.T) {
	const maxBody = 1 << 20
	if err := (Config{MaxBody: maxBody, MaxInflight: maxBody}).Validate(); err != nil {
		t.Errorf("--max-inflight equal to --max-body: %v", err)
	}
	if err := (Config{MaxBody: maxBody, MaxInflight: maxBody - 1}).Validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("--max-inflight a byte under --max-body: %v, want a configuration error", err)
	}
}

// TestUnreadAnswerHoldsOnlyItsBytes: a roster whose client does not read
// its answer holds, while the answer waits to be written, what the answer
// holds, not what its body reserved. Before, one client leaving the answer
// of a 1.2 MB roster unread kept another client's roster of the same size
// refused 503 overloaded under a --max-inflight of 2 MiB, for as long as
// the write could wait.
func TestUnreadAnswerHoldsOnlyItsBytes(t *testing.T) {
	first, _ := mixedRoster(1_200_000, 8)
	second, removed := mixedRoster(1_000_000, 8)
	for _, c := range []struct{ path, body, second string }{
		{"/v1/decisions", string(first), string(second)},
		{DataDecisionPath, `{"input": ` + string(first) + `}`, `{"input": ` + string(second) + `}`},
		// Indented, the answer is held twice: as decided and as sent.
		{DataDecisionPath + "?pretty", `{"input": ` + string(first) + `}`, `{"input": ` + string(second) + `}`},
	} {
		t.Run(c.path, func(t *testing.T) {
			const budget = 2 << 20
			ts := newTestServer(t, serverSetup{cfg: Config{MaxBody: budget, MaxInflight: budget}})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			// Small send buffers stand for a client far away: a few
			// kilobytes of an answer unread fill the path, not the
			// megabytes of loopback's buffers.
			addr := serveOn(t, ts.Server, smallSendBuffers{ln})

			dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			}}
			unread, err := dialer.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer unread.Close()
			fmt.Fprintf(unread, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c.path, addr, len(c.body), c.body)
			// The answer's first line: its decision is made and recorded,
			// and the rest of the answer waits for a reader that never
			// comes.
			unread.SetReadDeadline(time.Now().Add(20 * time.Second))
			status, err := bufio.NewReaderSize(unread, 16).ReadString('\n')
			if err != nil || !strings.Contains(status, " 200 ") {
				t.Fatalf("the unread roster's answer: %q, %v", status, err)
			}

			held := ts.inflight.largeUsed.Load()
			if held <= 0 || held >= int64(len(c.body)) {
				t.Errorf("the unread answer holds %d bytes of the budget; want what it holds, under the body's %d", held, len(c.body))
			}
			resp, err := http.Post("http://"+addr+c.path, "application/json", strings.NewReader(c.second))
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("another client's roster while the first answer was unread: %d %s", resp.StatusCode, input.Shorten(string(answer), 200))
			}
			if got := strings.Count(string(answer), `"remove_participant"`); got != removed {
				t.Errorf("%d participants removed of the %d in mainland China", got, removed)
			}
			// Its client gone, the unread answer gives back what it held,
			// shrunk, and no more.
			unread.Close()
			settled(t, ts.inflight)
		})
	}
}

// smallSendBuffers gives each connection it accepts a send buffer of 8 KiB.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// mixedRoster is a decision request for meeting june4-b of at least size
// bytes, one participant in every of them located in mainland China and
// the rest in the United States, with ids of 120 characters. It returns
// the request and how many participants are in mainland China.
func mixedRoster(size, every int) ([]byte, int) {
	var b strings.Builder
	b.WriteString(`{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": [`)
	pad := strings.Repeat("x", 110)
	cn := 0
	for n := 0; b.Len() < size; n++ {
		if n > 0 {
			b.WriteByte(',')
		}
		ip := fmt.Sprintf("8.8.8.%d", n%250+1)
		if n%every == 0 {
			ip = fmt.Sprintf("1.0.16.%d", n%250+1)
			cn++
		}
		fmt.Fprintf(&b, `{"id": "%s-%08d", "ip": "%s"}`, pad, n, ip)
	}
	b.WriteString(`]}}`)
	return []byte(b.String()), cn
}
