package server

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/ledger"
)

// waiting is how many admin and public requests wait for the gate.
func (g *reportGate) waiting() (admins, public int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.admins), len(g.public)
}

// waitFor polls until cond holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestReportGateHandsAdminsTheSlotFirst(t *testing.T) {
	g := &reportGate{wait: time.Minute}
	ctx := context.Background()
	if err := g.acquire(ctx, false); err != nil {
		t.Fatalf("a free slot: %v", err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	take := func(who string, admin bool) {
		defer wg.Done()
		if err := g.acquire(ctx, admin); err != nil {
			t.Errorf("%s: %v", who, err)
			return
		}
		mu.Lock()
		order = append(order, who)
		mu.Unlock()
		g.release()
	}
	wg.Add(1)
	go take("public", false)
	waitFor(t, "the public request to wait", func() bool { _, p := g.waiting(); return p == 1 })
	if err := g.acquire(ctx, false); !errors.Is(err, errOverloaded) {
		t.Errorf("a second public request while one waits: %v, want errOverloaded at once", err)
	}
	for _, who := range []string{"admin 1", "admin 2"} {
		wg.Add(1)
		go take(who, true)
		waitFor(t, who+" to wait", func() bool { a, _ := g.waiting(); return a == map[string]int{"admin 1": 1, "admin 2": 2}[who] })
	}
	g.release()
	wg.Wait()
	if want := []string{"admin 1", "admin 2", "public"}; !slices.Equal(order, want) {
		t.Errorf("slot handed in the order %v, want %v (admins first, each queue in arrival order)", order, want)
	}
	if g.busy {
		t.Error("the slot is still taken after everyone released it")
	}
}

func TestReportGateWaitIsBounded(t *testing.T) {
	g := &reportGate{wait: 50 * time.Millisecond}
	if err := g.acquire(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := g.acquire(context.Background(), true); !errors.Is(err, errOverloaded) {
		t.Fatalf("waiting past the gate's wait: %v, want errOverloaded", err)
	}
	if waited := time.Since(start); waited < g.wait {
		t.Errorf("gave up after %v, before the gate's wait of %v", waited, g.wait)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.acquire(ctx, false); !errors.Is(err, context.Canceled) {
		t.Errorf("a client gone while waiting: %v, want context.Canceled", err)
	}
	if a, p := g.waiting(); a != 0 || p != 0 {
		t.Errorf("%d admins and %d public requests still queued after giving up", a, p)
	}
	g.release()
	if g.busy {
		t.Error("the slot is still taken after its holder released it")
	}
}

// A request handed the slot just as its wait ends passes it on: the slot
// is never lost, whichever comes first.
func TestReportGateSlotHandedAsTheWaitEnds(t *testing.T) {
	g := &reportGate{wait: time.Minute}
	for range 200 {
		if err := g.acquire(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- g.acquire(ctx, true) }()
		waitFor(t, "the request to wait", func() bool { a, _ := g.waiting(); return a == 1 })
		go cancel()
		g.release()
		if err := <-done; err == nil {
			g.release()
		}
		g.mu.Lock()
		busy, queued := g.busy, len(g.admins)+len(g.public)
		g.mu.Unlock()
		if busy || queued != 0 {
			t.Fatalf("after a hand-over raced with a cancel: busy %v, %d queued; want the slot free", busy, queued)
		}
	}
}

// Over HTTP: a public report request finds the slot taken and another
// public one waiting, and is answered 503 overloaded at once; an admin's
// waits, is served before the public one, and gives up after the wait.
func TestReportSlotOverHTTP(t *testing.T) {
	const decide, admin = "decide-token", "admin-token"
	ts := newTestServer(t, serverSetup{cfg: Config{TokensFile: writeTokens(t, decide, admin), PublicReport: true}})
	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ts.UseLedger(l)
	g := ts.reports

	if err := g.acquire(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	answers := make(chan string, 2)
	get := func(who, token string) {
		r := ts.do(t, request{method: http.MethodGet, path: "/v1/report", token: token})
		if r.status != http.StatusOK {
			t.Errorf("%s: %s, want 200 once the slot is free", who, r)
		}
		answers <- who
	}
	go get("public", "")
	waitFor(t, "the public request to wait", func() bool { _, p := g.waiting(); return p == 1 })

	r := ts.do(t, request{method: http.MethodGet, path: "/report"})
	if r.status != http.StatusServiceUnavailable || r.errorBody(t).Code != apierror.Overloaded || r.header.Get("Retry-After") != "5" {
		t.Errorf("a second public request while one waits: %s (Retry-After %q), want 503 overloaded with Retry-After 5", r, r.header.Get("Retry-After"))
	}

	go get("admin", admin)
	waitFor(t, "the admin request to wait", func() bool { a, _ := g.waiting(); return a == 1 })
	g.release()
	// The admin was handed the slot; the public request still waits.
	if a, p := g.waiting(); a != 0 || p != 1 {
		t.Errorf("after the release: %d admins and %d public requests wait, want the admin served first", a, p)
	}
	<-answers
	<-answers

	g.wait = 50 * time.Millisecond
	if err := g.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	defer g.release()
	r = ts.do(t, request{method: http.MethodGet, path: "/v1/report", token: admin})
	if r.status != http.StatusServiceUnavailable || r.errorBody(t).Code != apierror.Overloaded {
		t.Errorf("an admin request that waited out the gate's wait: %s, want 503 overloaded", r)
	}
	m := ts.do(t, request{method: http.MethodGet, path: "/metrics", token: admin})
	if want := `geoscope_overloaded_total{lane="report"} 2`; !strings.Contains(string(m.body), want) {
		t.Errorf("/metrics does not show %s", want)
	}
}
