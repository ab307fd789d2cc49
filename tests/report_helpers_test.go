package tests

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

// Helpers of the report tests (report_*_test.go). They are prefixed rpt so
// they never collide with the helpers of other end-to-end tests.

// rptServer is a running `geoscope serve`.
type rptServer struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	stderr *rptBuffer
	exited chan struct{}
	client *http.Client
}

// rptServe starts `geoscope serve` on a free loopback port with the test
// GeoIP database and the ledger in dataDir, and waits for /health.
func rptServe(t *testing.T, dataDir string, args ...string) *rptServer {
	t.Helper()
	geoDB := geotest.Standard(t)
	var last string
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		ln.Close()
		all := append([]string{"serve", "--addr", "127.0.0.1:" + port, "--geoip-db", geoDB, "--data-dir", dataDir}, args...)
		s := &rptServer{t: t, cmd: exec.Command(geoscopeBin, all...), base: "http://127.0.0.1:" + port,
			stderr: &rptBuffer{}, exited: make(chan struct{}), client: &http.Client{Timeout: 30 * time.Second}}
		s.cmd.Stdout, s.cmd.Stderr = io.Discard, s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.exited) }()
		t.Cleanup(func() {
			select {
			case <-s.exited:
			default:
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
			if t.Failed() {
				t.Logf("geoscope serve %s stderr:\n%s", strings.Join(args, " "), s.stderr)
			}
		})
		if err := s.waitHealthy(20 * time.Second); err == nil {
			return s
		} else {
			last = fmt.Sprintf("%v\n%s", err, s.stderr)
		}
		if !strings.Contains(s.stderr.String(), "address already in use") {
			break
		}
	}
	t.Fatalf("geoscope serve did not become healthy: %s", last)
	return nil
}

func (s *rptServer) waitHealthy(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("exited with %v", s.cmd.ProcessState)
		default:
		}
		resp, err := s.client.Get(s.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("/health did not answer within %v", timeout)
}

// stop ends the server with SIGINT and waits for it: the ledger is
// committed and its counts flushed when it returns.
func (s *rptServer) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.exited:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 {
			s.t.Fatalf("geoscope serve exited %d after SIGINT:\n%s", code, s.stderr)
		}
	case <-time.After(20 * time.Second):
		s.t.Fatalf("geoscope serve did not stop within 20s")
	}
}

type rptResponse struct {
	status int
	header http.Header
	body   []byte
}

func (r rptResponse) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

func (s *rptServer) do(method, path, token string, body []byte) rptResponse {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return rptResponse{status: resp.StatusCode, header: resp.Header, body: data}
}

// rptTokens writes a tokens file with a decide and an admin token.
func rptTokens(t *testing.T, decide, admin string) string {
	t.Helper()
	digest := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("decide "+digest(decide)+"\nadmin "+digest(admin)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type rptBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *rptBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *rptBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rptSeed records, through the ledger package, a small first half of 2026
// into a SQLite ledger in dir: meeting B's pattern (CN participants
// removed, ending the meeting and suspending the account refused) six
// times, the control meeting entirely in CN ended, a CN participant denied
// admission, a guard block, and plain admissions.
func rptSeed(t *testing.T, dir string) {
	t.Helper()
	rptSeedLedger(t, ledger.Config{DataDir: dir})
}

// rptSeedLedger is rptSeed into any ledger.
func rptSeedLedger(t *testing.T, cfg ledger.Config) {
	t.Helper()
	ctx := context.Background()
	cfg.EngineVersion, cfg.Logger = "test", slog.New(slog.DiscardHandler)
	l, err := ledger.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cn := registry.Authority{Name: "Cyberspace Administration of China", Jurisdiction: []string{"CN"}}
	orders := map[string]registry.Order{
		"CN-2026-0601": {Authority: "cn.cac", Demands: []string{"end_meeting", "suspend_account"}, LegalBasis: "seed", Received: "2026-01-05"},
		"CN-2026-0602": {Authority: "cn.cac", Demands: []string{"end_meeting"}, LegalBasis: "seed", Received: "2026-01-06"},
	}
	n := 0
	rec := func(at time.Time, meeting, order string) *engine.Record {
		n++
		return &engine.Record{
			Decision: &decision.Decision{
				DecisionID: fmt.Sprintf("00000000-0000-7000-8000-%012d", n), Time: at, MeetingID: meeting,
				Actions: []decision.Action{}, Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{},
				OrderIDs: []string{order},
				Geo:      decision.Geo{Database: "GeoIP2-Country", Build: geotest.BuildTime},
				Bundles:  map[string]string{"policies": "sha256:seed-p", "registry": "sha256:seed-r"},
			},
			AccountID: "acct-" + meeting, Orders: map[string]registry.Order{order: orders[order]},
			Authorities: map[string]registry.Authority{"cn.cac": cn},
		}
	}
	remove := func(r *engine.Record, ids ...string) {
		for _, id := range ids {
			r.Decision.Actions = append(r.Decision.Actions, decision.Action{Type: decision.RemoveParticipant, MeetingID: r.Decision.MeetingID,
				ParticipantID: id, OrderID: r.Decision.OrderIDs[0], Jurisdiction: []string{"CN"}, Country: "CN", Reason: "inside"})
			r.Networks = append(r.Networks, netip.MustParsePrefix("1.0.16.0/24"))
		}
	}
	var recs []*engine.Record
	for i := range 6 {
		r := rec(time.Date(2026, 2, 1+i, 12, 0, 0, 0, time.UTC), fmt.Sprintf("june4-b%d", i), "CN-2026-0601")
		remove(r, "p1", "p2")
		r.Decision.Refused = []decision.Refusal{
			{OrderID: "CN-2026-0601", Demand: "end_meeting", Code: "affects_outside", Reason: "x", AffectedOutside: 2},
			{OrderID: "CN-2026-0601", Demand: "suspend_account", Code: "affects_outside", Reason: "x", AffectedOutside: 3},
		}
		recs = append(recs, r)
	}
	ctl := rec(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), "control-cn", "CN-2026-0602")
	ctl.Decision.Actions = append(ctl.Decision.Actions, decision.Action{Type: decision.EndMeeting, MeetingID: "control-cn", OrderID: "CN-2026-0602", Jurisdiction: []string{"CN"}, Reason: "all inside"})
	ctl.Networks = append(ctl.Networks, netip.Prefix{})
	ctl.Reached = map[string]int{"CN": 6}
	remove(ctl, "c1", "c2", "c3", "c4", "c5")
	recs = append(recs, ctl)
	deny := rec(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), "june4-d", "CN-2026-0601")
	allow := false
	deny.Admission, deny.Decision.AllowJoin = true, &allow
	deny.Decision.Actions = append(deny.Decision.Actions, decision.Action{Type: decision.DenyJoin, MeetingID: "june4-d", ParticipantID: "j1", OrderID: "CN-2026-0601", Jurisdiction: []string{"CN"}, Country: "CN", Reason: "inside"})
	deny.Networks = append(deny.Networks, netip.MustParsePrefix("36.110.1.0/24"))
	recs = append(recs, deny)
	blocked := rec(time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), "june4-b9", "CN-2026-0601")
	blocked.Decision.GuardBlocked = []decision.Blocked{{Code: "outside_jurisdiction", Reason: "x", Action: decision.Action{Type: decision.RemoveParticipant, ParticipantID: "p-us", OrderID: "CN-2026-0601"}}}
	recs = append(recs, blocked)
	for i := range 6 {
		r := rec(time.Date(2026, 3, 4, 10+i, 0, 0, 0, time.UTC), "june4-d", "CN-2026-0601")
		ok := true
		r.Admission, r.Decision.AllowJoin = true, &ok
		recs = append(recs, r)
	}
	for _, r := range recs {
		if err := l.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
