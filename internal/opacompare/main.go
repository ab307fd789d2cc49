// Command opacompare is `make bench-vs-opa`: geoscope's join-time path
// (POST /v1/admission) side by side with stock OPA answering the same
// question.
//
// It builds geoscope from this checkout and OPA from the module's own
// dependency (the `tool` in go.mod), generates one registry of standing
// orders for both, starts three servers on loopback — geoscope with its
// durable SQLite ledger, geoscope with --ledger off, and `opa run --server`
// with an expert's pre-indexed policy (policy/admission.rego) that is given
// the joiner's country instead of an address and logs no decisions — checks
// that they give the same answers, and then alternates the same closed-loop
// load runs between geoscope and OPA (package loadgen, like `hey -n N -c C`).
// It prints, for each workload, the median requests/s of each side, the
// median of the per-round ratios, and the median p99s.
//
// Both sides share the machine with the load generator, and request logs
// are off on both (geoscope --log-level warn, OPA --log-level error).
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/geoscope/geoscope/internal/loadgen"
	"github.com/geoscope/geoscope/internal/proctest"
)

//go:embed policy/admission.rego
var admissionRego []byte

// Addresses the embedded DB-IP database locates in CN and in the US (the
// same ones the end-to-end tests use).
var (
	addrCN = []string{"202.96.128.86", "202.96.128.87", "202.96.134.133"}
	addrUS = []string{"8.8.8.8", "8.8.4.4"}
)

type options struct {
	orders, requests, concurrency, rounds, warmup int
	workDir                                       string
	keep                                          bool
	only                                          string
	floor                                         bool
}

func main() {
	var o options
	flag.IntVar(&o.orders, "orders", 100_000, "standing orders in the generated registry")
	flag.IntVar(&o.requests, "n", 20_000, "requests per load run")
	flag.IntVar(&o.concurrency, "c", 16, "concurrent clients per load run")
	flag.IntVar(&o.rounds, "rounds", 3, "alternated rounds per workload")
	flag.IntVar(&o.warmup, "warmup", 20_000, "requests per server and workload before the first round")
	flag.StringVar(&o.workDir, "workdir", "", "directory for binaries, bundles and the ledger (default: a new temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.StringVar(&o.only, "only", "", "run only the workloads whose name contains this text")
	flag.BoolVar(&o.floor, "floor", true, "also measure net/http alone (internal/opacompare/floor) on the questions about meetings nobody targets")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench-vs-opa:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	work := o.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "geoscope-vs-opa-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	say("work directory %s", work)

	geoscopeBin, opaBin, floorBin := filepath.Join(work, "geoscope"), filepath.Join(work, "opa"), filepath.Join(work, "floor")
	say("building geoscope and OPA")
	if err := goBuild(root, geoscopeBin, "./cmd/geoscope"); err != nil {
		return err
	}
	if err := goBuild(root, opaBin, "github.com/open-policy-agent/opa"); err != nil {
		return err
	}
	if err := goBuild(root, floorBin, "./internal/opacompare/floor"); err != nil {
		return err
	}
	say("generating %d standing orders", o.orders)
	regDir, opaDir := filepath.Join(work, "registry"), filepath.Join(work, "opa-bundle")
	if err := writeRegistries(o.orders, regDir, opaDir, map[string][]byte{"bench/admission.rego": admissionRego}); err != nil {
		return err
	}

	geoArgs := []string{"serve", "--bundle", filepath.Join(root, "policies"), "--bundle", regDir, "--log-level", "warn"}
	servers := []*server{
		{name: "geoscope (SQLite ledger)", bin: geoscopeBin, args: append(slices.Clone(geoArgs), "--data-dir", filepath.Join(work, "data")), ready: "/ready"},
		{name: "geoscope (--ledger off)", bin: geoscopeBin, args: append(slices.Clone(geoArgs), "--ledger", "off"), ready: "/ready"},
		{name: "OPA", bin: opaBin, args: []string{"run", "--server", "--bundle", "--log-level", "error", "--skip-version-check", "--optimize-store-for-read-speed", opaDir}, ready: "/health", opa: true},
	}
	if o.floor {
		servers = append(servers, &server{name: "net/http alone", bin: floorBin, args: []string{"serve"}, ready: "/health"})
	}
	for _, s := range servers {
		if err := s.start(work); err != nil {
			return err
		}
		defer s.stop()
	}
	for _, s := range servers {
		say("waiting for %s to load the registry", s.name)
		if err := s.waitReady(ctx, 10*time.Minute); err != nil {
			return err
		}
	}
	geoLedger, geoOff, opa := servers[0], servers[1], servers[2]
	var floor *floorRuns
	if o.floor {
		floor = &floorRuns{server: servers[3]}
	}

	workloads := []*workload{
		{name: "joiner denied, SQLite ledger on (durable)", geo: geoLedger, targeted: true, addrs: addrCN, country: "CN", allow: false},
		{name: "joiner denied, --ledger off", geo: geoOff, targeted: true, addrs: addrCN, country: "CN", allow: false},
		{name: "joiner allowed, meeting targeted by an order", geo: geoLedger, targeted: true, addrs: addrUS, country: "US", allow: true},
		{name: "meeting nobody targets", geo: geoLedger, targeted: false, addrs: addrCN, country: "CN", allow: true},
	}
	workloads = slices.DeleteFunc(workloads, func(w *workload) bool { return !strings.Contains(w.name, o.only) })
	for _, w := range workloads {
		w.bodies(o.orders)
		if err := w.verify(opa); err != nil {
			return fmt.Errorf("%s: geoscope and OPA disagree: %w", w.name, err)
		}
		if floor != nil && !w.targeted {
			floor.workload = w
		}
	}
	if floor != nil && floor.workload == nil {
		floor = nil // its questions are those of the meeting nobody targets
	}

	loadBefore := loadAverage()
	say("warming up (%d requests per server and workload)", o.warmup)
	for _, w := range workloads {
		for _, side := range []bool{true, false} {
			if r := w.load(ctx, opa, side, o.warmup, o.concurrency); r.Errors > 0 {
				return fmt.Errorf("%s, warm-up: %d errors, first: %s", w.name, r.Errors, r.FirstError)
			}
		}
	}
	if floor != nil {
		if r, _, _ := floor.run(ctx, o.warmup, o.concurrency); r.Errors > 0 {
			return fmt.Errorf("net/http alone, warm-up: %d errors, first: %s", r.Errors, r.FirstError)
		}
	}
	// settled holds, per side (geoscope is true), how long the machine
	// took to become quiet after each of its runs.
	settled := map[bool][]time.Duration{}
	settle(ctx)
	for round := range o.rounds {
		for _, w := range workloads {
			// Alternate which side goes first, so drift on a shared
			// machine weighs on both.
			order := []bool{round%2 == 0, round%2 != 0}
			// Index 0 is geoscope's, 1 OPA's.
			var pair [2]loadgen.Result
			var cpu, client, quiet [2]time.Duration
			for _, geoSide := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				srv, i := opa, 1
				if geoSide {
					srv, i = w.geo, 0
				}
				pair[i], cpu[i], client[i], quiet[i] = measured(ctx, srv, func() loadgen.Result {
					return w.load(ctx, opa, geoSide, o.requests, o.concurrency)
				})
				if r := pair[i]; r.Errors > 0 {
					return fmt.Errorf("%s: %d errors, first: %s", w.name, r.Errors, r.FirstError)
				}
				settled[geoSide] = append(settled[geoSide], quiet[i])
			}
			w.rounds = append(w.rounds, pair)
			w.cpu = append(w.cpu, cpu)
			w.client = append(w.client, client)
			say("round %d  %-46s geoscope %6.0f req/s p99 %-9s %4.0f µs CPU  OPA %6.0f req/s p99 %-9s %4.0f µs CPU  ratio %.2f  (load generator %.0f / %.0f µs CPU; quiet again after %s / %s)",
				round+1, w.name, pair[0].RPS(), ms(pair[0].P99), us(cpu[0]), pair[1].RPS(), ms(pair[1].P99), us(cpu[1]), pair[0].RPS()/pair[1].RPS(), us(client[0]), us(client[1]),
				quiet[0].Round(time.Millisecond), quiet[1].Round(time.Millisecond))
		}
		if floor != nil {
			r, cpu, client := floor.run(ctx, o.requests, o.concurrency)
			if r.Errors > 0 {
				return fmt.Errorf("net/http alone: %d errors, first: %s", r.Errors, r.FirstError)
			}
			floor.rounds, floor.cpu, floor.client = append(floor.rounds, r), append(floor.cpu, cpu), append(floor.client, client)
			say("round %d  %-46s %6.0f req/s p99 %-9s %4.0f µs CPU  (load generator %.0f µs CPU)", round+1, "net/http alone", r.RPS(), ms(r.P99), us(cpu), us(client))
		}
	}
	report(os.Stdout, o, workloads, servers, loadBefore, loadAverage())
	if len(settled[true]) > 0 {
		fmt.Printf("\nafter its runs the machine was quiet again (see settle) within a median of %s for geoscope (longest %s) and %s for OPA (longest %s)\n",
			median(settled[true]).Round(time.Millisecond), slices.Max(append(settled[true], 0)).Round(time.Millisecond),
			median(settled[false]).Round(time.Millisecond), slices.Max(append(settled[false], 0)).Round(time.Millisecond))
	}
	if floor != nil {
		floor.report(os.Stdout)
	}
	return nil
}

// workload is one row of the table: the same question put to geoscope (an
// address to locate) and to OPA (the country already resolved).
type workload struct {
	name     string
	geo      *server
	targeted bool
	addrs    []string
	country  string
	allow    bool

	geoBodies, opaBodies [][]byte
	rounds               [][2]loadgen.Result // [geoscope, OPA] per round
	// cpu is the CPU time each server process used per request, per
	// round: [geoscope, OPA].
	cpu [][2]time.Duration
	// client is the load generator's own CPU time per request, per round,
	// while it drove [geoscope, OPA]: it shares the machine's CPUs with
	// the server it drives.
	client [][2]time.Duration
}

// bodies builds 256 distinct requests: different meetings (targeted ones
// from the registry, or ones nobody targets) and joiners.
func (w *workload) bodies(orders int) {
	for i := range 256 {
		m := (i*7919 + 13) % orders
		meeting, account := meetingID(m), accountID(m)
		if !w.targeted {
			meeting, account = "weekly-"+strconv.Itoa(i), "acct-untargeted-"+strconv.Itoa(i)
		}
		participant := fmt.Sprintf("joiner-%d", i)
		host := map[string]any{"account_id": account, "account_country": "US"}
		geo, _ := json.Marshal(map[string]any{
			"meeting":     map[string]any{"id": meeting, "host": host},
			"participant": map[string]any{"id": participant, "ip": w.addrs[i%len(w.addrs)]},
		})
		opa, _ := json.Marshal(map[string]any{"input": map[string]any{
			"meeting":     map[string]any{"id": meeting, "host": host},
			"participant": map[string]any{"id": participant, "country": w.country},
		}})
		w.geoBodies, w.opaBodies = append(w.geoBodies, geo), append(w.opaBodies, opa)
	}
}

// answer is the part of both answers that must agree.
type answer struct {
	Allow    bool     `json:"allow"`
	OrderIDs []string `json:"order_ids"`
	Actions  []struct {
		Type          string   `json:"type"`
		ParticipantID string   `json:"participant_id"`
		OrderID       string   `json:"order_id"`
		Jurisdiction  []string `json:"jurisdiction"`
		Country       string   `json:"country"`
	} `json:"actions"`
}

// verify puts the first few questions to both sides and compares the
// answers.
func (w *workload) verify(opa *server) error {
	for i := range 4 {
		var g answer
		var o struct{ Result answer }
		if err := postJSON(w.geo.url("/v1/admission"), w.geoBodies[i], &g); err != nil {
			return err
		}
		if err := postJSON(opa.url("/v1/data/bench/admission"), w.opaBodies[i], &o); err != nil {
			return err
		}
		gj, _ := json.Marshal(g)
		oj, _ := json.Marshal(o.Result)
		if !bytes.Equal(gj, oj) {
			return fmt.Errorf("geoscope answered %s, OPA %s", gj, oj)
		}
		if g.Allow != w.allow {
			return fmt.Errorf("allow is %v, the workload expects %v: %s", g.Allow, w.allow, gj)
		}
	}
	return nil
}

// load runs n requests against geoscope (geoSide) or OPA.
func (w *workload) load(ctx context.Context, opa *server, geoSide bool, n, c int) loadgen.Result {
	spec := loadgen.Spec{Requests: n, Concurrency: c, Check: answers(w.allow)}
	if geoSide {
		spec.URL, spec.Bodies = w.geo.url("/v1/admission"), w.geoBodies
	} else {
		spec.URL, spec.Bodies = opa.url("/v1/data/bench/admission"), w.opaBodies
	}
	return loadgen.Run(ctx, spec)
}

// answers checks that an answer is 200 with allow as given.
func answers(allow bool) func(int, http.Header, []byte) error {
	want := []byte(`"allow":` + strconv.FormatBool(allow))
	return func(status int, _ http.Header, body []byte) error {
		if status != http.StatusOK || !bytes.Contains(body, want) {
			return fmt.Errorf("HTTP %d: %.300s", status, body)
		}
		return nil
	}
}

func report(out io.Writer, o options, workloads []*workload, servers []*server, loadBefore, loadAfter string) {
	fmt.Fprintf(out, "\n%s, %s, %s; %d standing orders; %d round(s) of %d requests from %d clients per side and workload\n",
		time.Now().UTC().Format(time.DateOnly), cpuModel(), runtime.Version(), o.orders, o.rounds, o.requests, o.concurrency)
	fmt.Fprintf(out, "commit %s; load average before %s, after %s\n\n", gitDescribe(), loadBefore, loadAfter)
	fmt.Fprintln(out, "| workload on /v1/admission | geoscope req/s | OPA req/s | geoscope ÷ OPA | geoscope p99 | OPA p99 |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|")
	for _, w := range workloads {
		var g, op, ratio []float64
		var gp, opp []time.Duration
		for _, r := range w.rounds {
			g, op = append(g, r[0].RPS()), append(op, r[1].RPS())
			ratio = append(ratio, r[0].RPS()/r[1].RPS())
			gp, opp = append(gp, r[0].P99), append(opp, r[1].P99)
		}
		fmt.Fprintf(out, "| %s | %.0f | %.0f | %.2f | %s | %s |\n", w.name, median(g), median(op), median(ratio), ms(median(gp)), ms(median(opp)))
	}
	// CPU time of each server process per request (user and system, from
	// /proc), medians of the rounds: the load generator's own time and
	// other work on the machine are not in it.
	fmt.Fprintln(out)
	// The load generator's own CPU time per request is beside them: it
	// runs on the same CPUs, so it bounds how far a throughput ratio can
	// follow a CPU ratio.
	fmt.Fprintln(out, "| workload on /v1/admission | geoscope CPU per request | OPA CPU per request | OPA ÷ geoscope | load generator CPU per request (driving geoscope / OPA) |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|")
	for _, w := range workloads {
		var g, op, lg, lo []time.Duration
		var ratio []float64
		for _, c := range w.cpu {
			g, op = append(g, c[0]), append(op, c[1])
			if c[0] > 0 {
				ratio = append(ratio, float64(c[1])/float64(c[0]))
			}
		}
		for _, c := range w.client {
			lg, lo = append(lg, c[0]), append(lo, c[1])
		}
		fmt.Fprintf(out, "| %s | %.0f µs | %.0f µs | %.2f | %.0f µs / %.0f µs |\n", w.name, us(median(g)), us(median(op)), median(ratio), us(median(lg)), us(median(lo)))
	}
	fmt.Fprintln(out)
	for _, s := range servers {
		resident, peak := s.memory()
		fmt.Fprintf(out, "%s: resident %s, peak %s\n", s.name, resident, peak)
	}
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

// server is one server process on a loopback port.
type server struct {
	name, bin string
	args      []string
	ready     string
	opa       bool

	addr   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed once the process has exited
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

func (s *server) start(work string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	ln.Close()
	args := slices.Clone(s.args)
	if s.opa {
		args = slices.Insert(args, 2, "--addr", s.addr)
	} else {
		args = slices.Insert(args, 1, "--addr", s.addr)
	}
	name := strings.NewReplacer(" ", "-", "/", "-", "(", "", ")", "").Replace(s.name)
	if s.log, err = os.Create(filepath.Join(work, name+".log")); err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	return nil
}

func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(s.log.Name())
			return fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", s.name, s.cmd.ProcessState, log)
		default:
		}
		resp, err := http.Get(s.url(s.ready))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.log.Name())
	return fmt.Errorf("%s did not answer %s within %v; its log:\n%s", s.name, s.ready, timeout, log)
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.log.Close()
}

// cpuTime is the CPU time (user and system) the server process has used.
func (s *server) cpuTime() time.Duration {
	p, err := procfs.NewProc(s.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	st, err := p.Stat()
	if err != nil {
		return 0
	}
	return time.Duration(st.CPUTime() * float64(time.Second))
}

// measured runs load against srv and returns its result, srv's CPU time
// per request and the load generator's, and how long the machine then took
// to be quiet again (see settle): srv's CPU time is read after that wait,
// the generator's before it.
func measured(ctx context.Context, srv *server, load func() loadgen.Result) (r loadgen.Result, used, gen, quiet time.Duration) {
	before, clientBefore := srv.cpuTime(), proctest.ProcessCPU()
	r = load()
	n := time.Duration(max(r.Requests, 1))
	gen = (proctest.ProcessCPU() - clientBefore) / n
	quiet = settle(ctx)
	used = (srv.cpuTime() - before) / n
	return r, used, gen, quiet
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// memory is the server's resident memory now and at its peak (VmRSS and
// VmHWM), or "?".
func (s *server) memory() (resident, peak string) {
	p, err := procfs.NewProc(s.cmd.Process.Pid)
	if err != nil {
		return "?", "?"
	}
	st, err := p.NewStatus()
	if err != nil {
		return "?", "?"
	}
	mib := func(b uint64) string { return strconv.FormatUint(b>>20, 10) + " MiB" }
	return mib(st.VmRSS), mib(st.VmHWM)
}

func postJSON(url string, body []byte, into any) error {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: HTTP %d: %s", url, resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, into)
}

func goBuild(root, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if raw, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, raw)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run inside the geoscope module")
	}
	return filepath.Dir(gomod), nil
}

func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	model := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(raw)) {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s)", runtime.NumCPU(), model)
}

func loadAverage() string {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return "?"
	}
	l, err := fs.LoadAvg()
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l.Load1, l.Load5, l.Load15)
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// floorRuns measures net/http alone (internal/opacompare/floor) on the
// questions of the meeting nobody targets, once per round after the
// workloads: what serving HTTP costs here, with nothing decided.
type floorRuns struct {
	server   *server
	workload *workload // the meeting nobody targets, whose bodies it is sent
	rounds   []loadgen.Result
	cpu      []time.Duration // the server's CPU time per request, per round
	client   []time.Duration // the load generator's, per round
}

func (f *floorRuns) run(ctx context.Context, n, c int) (loadgen.Result, time.Duration, time.Duration) {
	r, used, gen, _ := measured(ctx, f.server, func() loadgen.Result {
		return loadgen.Run(ctx, loadgen.Spec{URL: f.server.url("/v1/admission"), Bodies: f.workload.geoBodies, Requests: n, Concurrency: c,
			Check: answers(f.workload.allow)})
	})
	return r, used, gen
}

// settle waits after a measured run until the machine is quiet again: at
// least quietShare of its CPU time idle (not waiting for the disk either)
// over quietWindow, for at most settleLimit. A server may go on working
// after its last answer (geoscope's durable ledger copies its journal into
// SQLite and checkpoints it); that work must not be taken from the next
// run, which is often the other side's, and it belongs in the CPU time of
// the run that caused it, which is read after settling. It returns how long
// it waited.
func settle(ctx context.Context) time.Duration {
	start := time.Now()
	prevTotal, prevIdle, ok := machineTicks()
	for ok && time.Since(start) < settleLimit && ctx.Err() == nil {
		time.Sleep(quietWindow)
		total, idle, ok2 := machineTicks()
		if !ok2 {
			break
		}
		if t := total - prevTotal; t > 0 && idle-prevIdle >= quietShare*t {
			break
		}
		prevTotal, prevIdle = total, idle
	}
	return time.Since(start)
}

const (
	quietWindow = 100 * time.Millisecond
	quietShare  = 0.9
	settleLimit = 5 * time.Second
)

// machineTicks reads the machine's CPU time from /proc/stat: the sum of
// its kinds, and the idle one (iowait is counted as busy; guest time is
// already in user and nice).
func machineTicks() (total, idle float64, ok bool) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0, false
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, 0, false
	}
	c := st.CPUTotal
	return c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal, c.Idle, true
}

// report prints the floor's medians beside the workload it shares
// questions with: its throughput over OPA's estimates the highest ratio a
// net/http server reaches on this machine (it runs after the round's
// workloads, not alternated with OPA).
func (f *floorRuns) report(out io.Writer) {
	var rps, ratio, geoRatio []float64
	var p99 []time.Duration
	for i, r := range f.rounds {
		rps, p99 = append(rps, r.RPS()), append(p99, r.P99)
		if i < len(f.workload.rounds) {
			pair := f.workload.rounds[i]
			ratio = append(ratio, r.RPS()/pair[1].RPS())
			geoRatio = append(geoRatio, pair[0].RPS()/r.RPS())
		}
	}
	fmt.Fprintf(out, "\nnet/http alone (the body read, a fixed answer written), on the questions of %q: %.0f req/s, p99 %s, %.0f µs CPU per request, load generator %.0f µs; "+
		"÷ OPA's req/s on the same questions %.2f (about the most a net/http server reaches here); geoscope reaches %.2f of it\n",
		f.workload.name, median(rps), ms(median(p99)), us(median(f.cpu)), us(median(f.client)), median(ratio), median(geoRatio))
}
