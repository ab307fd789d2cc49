package tests

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/proctest"
)

// Helpers for the end-to-end tests of `geoscope serve`: every test starts
// the real binary (built once by TestMain) on a free loopback port and talks
// to it over HTTP. serverProc is the one process harness of this package:
// the bundle, ledger, report and load tests use it too.

const (
	// startTimeout bounds how long a server may take to answer /health
	// (or /ready).
	startTimeout = 30 * time.Second
	// stopTimeout bounds how long a server may take to exit after a
	// signal, and after SIGKILL at the end of a test.
	stopTimeout = 30 * time.Second
	// pollTimeout bounds every wait for an asynchronous change (a file
	// reload, a listener closing).
	pollTimeout = 15 * time.Second
	// pollInterval is the pause between two polls.
	pollInterval = 25 * time.Millisecond
)

// serveOpts describes one `geoscope serve` process.
type serveOpts struct {
	// host to bind; 127.0.0.1 when empty. The tests always connect to
	// 127.0.0.1.
	host string
	// args after --addr.
	args []string
	// rootCAs makes the server's URLs https, trusting these roots.
	rootCAs *x509.CertPool
	// ready waits for /ready (bundles, GeoIP database and ledger loaded)
	// instead of /health (the process serves) at start and restart.
	ready bool
	// env is added to the process's environment.
	env []string
	// loading returns as soon as /health answers, while the first load
	// of local bundles may still run (see waitLoaded).
	loading bool
	// nofile, when not 0, is the process's limit of open files (soft
	// and hard, as `ulimit -n` sets them: Go raises a soft limit to the
	// hard one at start).
	nofile int
}

// serverProc is a `geoscope serve` process. It can be signalled, and
// started again with the same arguments, address and data directory.
type serverProc struct {
	t      *testing.T
	opts   serveOpts
	bind   string // the --addr argument
	addr   string // 127.0.0.1:PORT
	base   string // http(s)://127.0.0.1:PORT
	client *http.Client
	// logs is what every run wrote to stderr (and stdout, where serve
	// writes nothing).
	logs *proctest.LockedBuffer
	// dataDir is the server's GEOSCOPE_DATA_DIR (the SQLite ledger unless
	// --data-dir says otherwise).
	dataDir string

	mu  sync.Mutex
	run *serveRun // the current or last run
}

// serveRun is one run of the process.
type serveRun struct {
	cmd    *exec.Cmd
	exited chan struct{}    // closed once the process has exited
	state  *os.ProcessState // set before exited is closed
}

// startServe starts `geoscope serve --addr HOST:PORT ARGS...` on a free
// port and waits until /health (with opts.ready, /ready) answers 200. A
// port taken between choosing and binding it is retried with another. The
// process is killed when the test ends, and its log printed if it failed.
func startServe(t *testing.T, opts serveOpts) *serverProc {
	t.Helper()
	host := cmp.Or(opts.host, "127.0.0.1")
	var last string
	for range 5 {
		port := proctest.FreePort(t)
		p := newServerProc(t, net.JoinHostPort(host, port), "127.0.0.1:"+port, opts)
		err := p.launch()
		if err == nil {
			return p
		}
		last = fmt.Sprintf("%v\nstderr:\n%s", err, p.logs)
		if !strings.Contains(p.logs.String(), "address already in use") {
			t.Fatalf("geoscope serve %s did not become healthy: %s", strings.Join(opts.args, " "), last)
		}
	}
	t.Fatalf("no free port after 5 attempts: %s", last)
	return nil
}

func newServerProc(t *testing.T, bind, addr string, opts serveOpts) *serverProc {
	scheme := "http"
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	if opts.rootCAs != nil {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.rootCAs, MinVersion: tls.VersionTLS12}
	}
	p := &serverProc{
		t: t, opts: opts, bind: bind, addr: addr, base: scheme + "://" + addr,
		client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		logs:   &proctest.LockedBuffer{}, dataDir: t.TempDir(),
	}
	t.Cleanup(func() {
		if r := p.current(); r != nil {
			select {
			case <-r.exited:
			default:
				_ = r.cmd.Process.Kill()
				select {
				case <-r.exited:
				case <-time.After(stopTimeout):
					t.Errorf("geoscope serve (pid %d) did not exit after SIGKILL", r.cmd.Process.Pid)
				}
			}
		}
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("server stderr:\n%s", p.logs)
		}
	})
	return p
}

// launch starts a run and waits until it answers.
func (p *serverProc) launch() error {
	p.t.Helper()
	cmd := exec.Command(geoscopeBin, append([]string{"serve", "--addr", p.bind}, p.opts.args...)...)
	if p.opts.nofile > 0 {
		// The shell sets the limit and execs the server: the process
		// signalled and waited for is the server itself.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(p.opts.nofile), geoscopeBin, "serve", "--addr", p.bind}, p.opts.args...)...)
	}
	cmd.Env = append(append(os.Environ(), "GEOSCOPE_DATA_DIR="+p.dataDir), p.opts.env...)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("starting geoscope serve: %v", err)
	}
	r := &serveRun{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		r.state = cmd.ProcessState
		close(r.exited)
	}()
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()
	return p.waitUp(r)
}

func (p *serverProc) current() *serveRun {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.run
}

// waitUp waits until run r answers /health (/ready with opts.ready).
func (p *serverProc) waitUp(r *serveRun) error {
	path := "/health"
	if p.opts.ready {
		path = "/ready"
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("exited with %v before answering %s", r.state, path)
		default:
		}
		resp, err := p.client.Get(p.base + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p.waitLoaded(r, deadline)
			}
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("%s did not answer 200 within %v", path, startTimeout)
}

// waitLoaded waits, for a server of local bundles, until its first load
// has ended, one way or the other: /health answers while the bundles are
// read and built, and a test that decides next expects what it loaded.
// /ready says "yet" until then (and, when the load failed, the error or
// where to find it). Remote bundles (--config) arrive whenever they do,
// as they did before.
func (p *serverProc) waitLoaded(r *serveRun, deadline time.Time) error {
	if p.opts.ready || p.opts.loading || slices.Contains(p.opts.args, "--config") {
		return nil
	}
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("exited with %v while loading", r.state)
		default:
		}
		resp, err := p.client.Get(p.base + "/ready")
		if err == nil {
			var e struct {
				Message string `json:"message"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || !strings.HasSuffix(e.Message, " yet") {
				return nil
			}
		}
		time.Sleep(pollInterval)
	}
	return fmt.Errorf("the first load did not end within %v", startTimeout)
}

// restart starts the stopped server again with the same arguments, address
// and data directory, and waits as startServe does.
func (p *serverProc) restart() {
	p.t.Helper()
	if p.running() {
		p.t.Fatal("restart: geoscope serve is still running")
	}
	if err := p.launch(); err != nil {
		p.t.Fatalf("geoscope serve did not come back on %s: %v\nstderr:\n%s", p.addr, err, p.logs)
	}
}

// running reports whether the current run has not exited yet.
func (p *serverProc) running() bool {
	select {
	case <-p.current().exited:
		return false
	default:
		return true
	}
}

// httpResult is one answer from the server.
type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResult) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// do sends one request; token adds a bearer token, contentType a
// Content-Type header (when not empty).
func (p *serverProc) do(method, path, token, contentType string, body []byte) (httpResult, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		return httpResult{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return p.send(req)
}

// send sends req, made by the caller (a chunked body, headers of its
// own), and reads the answer.
func (p *serverProc) send(req *http.Request) (httpResult, error) {
	resp, err := p.client.Do(req)
	if err != nil {
		return httpResult{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return httpResult{}, err
	}
	return httpResult{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// mustDo is do that fails the test on a transport error.
func (p *serverProc) mustDo(method, path, token, contentType string, body []byte) httpResult {
	p.t.Helper()
	return p.request(p.t, method, path, token, contentType, body)
}

// request is mustDo on behalf of t, which may be a subtest of the one that
// started the server.
func (p *serverProc) request(t *testing.T, method, path, token, contentType string, body []byte) httpResult {
	t.Helper()
	r, err := p.do(method, path, token, contentType, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (p *serverProc) get(path, token string) httpResult {
	p.t.Helper()
	return p.mustDo(http.MethodGet, path, token, "", nil)
}

func (p *serverProc) post(path, token string, body []byte) httpResult {
	p.t.Helper()
	return p.mustDo(http.MethodPost, path, token, "application/json", body)
}

// waitExit waits for the process to exit and returns its exit code, or
// fails the test after timeout.
func (p *serverProc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	r := p.current()
	select {
	case <-r.exited:
		return r.state.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("geoscope serve did not exit within %v", timeout)
		return -1
	}
}

func (p *serverProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.current().cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends sig and waits for the process to exit (SIGKILL: a crash, no
// shutdown and no flush); it returns the exit code, and fails the test if
// the process has not exited within stopTimeout.
func (p *serverProc) stop(sig syscall.Signal) int {
	p.t.Helper()
	p.signal(sig)
	code := p.waitExit(stopTimeout)
	p.client.CloseIdleConnections()
	return code
}

// logLines decodes the server's JSON log lines.
func (p *serverProc) logLines() []map[string]any {
	p.t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			p.t.Errorf("stderr line is not a JSON log record: %q", line)
			continue
		}
		out = append(out, m)
	}
	return out
}

// apiErr is the body of every error response.
type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	ErrorID string `json:"error_id,omitempty"`
}

// wantError checks an error answer: status, code, field (when not "-"),
// and the error shape.
func wantError(t *testing.T, r httpResult, status int, code, field string) apiErr {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d: %s", r.status, status, r)
	}
	var e apiErr
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("error body %q is not an error object: %v", r.body, err)
		return e
	}
	if e.Code != code {
		t.Errorf("code %q, want %q: %s", e.Code, code, r)
	}
	if field != "-" && e.Field != field {
		t.Errorf("field %q, want %q: %s", e.Field, field, r)
	}
	if strings.TrimSpace(e.Message) == "" {
		t.Errorf("error without a message: %s", r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want JSON", ct)
	}
	return e
}

// poll calls fn until it returns true or timeout passes.
func poll(t *testing.T, timeout time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if fn() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// replaceFile replaces path atomically (write a temporary file in the same
// directory, then rename it over path), as operators replace databases.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// randomToken returns a fresh random bearer token.
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "gs_" + hex.EncodeToString(b)
}

// writeTokensFile writes a tokens file (SHA-256 digests only) with one
// decide and one admin token and returns its path.
func writeTokensFile(t *testing.T, decide, admin string) string {
	t.Helper()
	digest := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	return writeTemp(t, "tokens", []byte("# scope sha256\ndecide "+digest(decide)+"\nadmin "+digest(admin)+"\n"))
}

// writeScopedTokensFile writes a tokens file from SCOPE, TOKEN pairs
// (SHA-256 digests only) and returns its path.
func writeScopedTokensFile(t *testing.T, pairs ...string) string {
	t.Helper()
	digest := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	data := "# scope sha256\n"
	for i := 0; i+1 < len(pairs); i += 2 {
		data += pairs[i] + " " + digest(pairs[i+1]) + "\n"
	}
	return writeTemp(t, "tokens", []byte(data))
}

// serverEnv is the environment of a server process: its data (the SQLite
// ledger and its key) goes to a fresh temporary directory, never into the
// source tree, and no two processes share it.
func serverEnv(t *testing.T) []string {
	return append(os.Environ(), "GEOSCOPE_DATA_DIR="+t.TempDir())
}

// runBounded runs the binary like runCLI, but kills it after timeout: a
// command that should exit at once must not hang the suite if it serves.
func runBounded(t *testing.T, timeout time.Duration, args ...string) cliResult {
	t.Helper()
	return runBoundedEnv(t, timeout, nil, args...)
}

// runBoundedEnv is runBounded with extra environment variables.
func runBoundedEnv(t *testing.T, timeout time.Duration, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, geoscopeBin, args...)
	cmd.Env = append(serverEnv(t), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("geoscope %s still running after %v (killed)\nstderr:\n%s", strings.Join(args, " "), timeout, stderr.String())
	}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("running geoscope %s: %v", strings.Join(args, " "), err)
	}
	return cliResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// cliErrorLine returns the command's error line from stderr: exactly one
// line starting with "geoscope: ", the last one; any other line must be a
// JSON log record.
func cliErrorLine(t *testing.T, stderr string) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	var found []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "geoscope: "):
			found = append(found, l)
		case json.Valid([]byte(l)):
		default:
			t.Errorf("stderr line is neither the error nor a JSON log record: %q", l)
		}
	}
	if len(found) != 1 || lines[len(lines)-1] != found[0] {
		t.Errorf("stderr does not end with exactly one \"geoscope: \" error line:\n%s", stderr)
		return ""
	}
	return found[0]
}

// metricSample is one line of the Prometheus text format.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrapeMetrics fetches /metrics and parses the samples.
func scrapeMetrics(t *testing.T, p *serverProc, token string) []metricSample {
	t.Helper()
	r := p.get("/metrics", token)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
	var out []metricSample
	for _, line := range strings.Split(string(r.body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSample(line)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out = append(out, s)
	}
	return out
}

func parseSample(line string) (metricSample, error) {
	s := metricSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return s, errors.New("no value")
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for !strings.HasPrefix(rest, "}") {
			eq := strings.Index(rest, `="`)
			if eq < 0 {
				return s, errors.New("bad label")
			}
			name := strings.TrimPrefix(rest[:eq], ",")
			rest = rest[eq+2:]
			var val strings.Builder
			for {
				if rest == "" {
					return s, errors.New("unterminated label value")
				}
				c := rest[0]
				rest = rest[1:]
				if c == '\\' && rest != "" {
					switch rest[0] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[0])
					}
					rest = rest[1:]
					continue
				}
				if c == '"' {
					break
				}
				val.WriteByte(c)
			}
			s.labels[name] = val.String()
			rest = strings.TrimPrefix(rest, ",")
		}
		rest = rest[1:]
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return s, errors.New("no value")
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, err
	}
	s.value = v
	return s, nil
}

// metricValue returns the value of the sample named name whose labels
// include want, and whether there is one.
func metricValue(samples []metricSample, name string, want map[string]string) (float64, bool) {
	for _, s := range samples {
		if s.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}
