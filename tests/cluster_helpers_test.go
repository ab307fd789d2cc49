package tests

// Helpers of the cluster test (cluster_test.go): Debian's nginx as the
// bundle service and Debian's HAProxy as the load balancer, each run as a
// private process on loopback ports with a configuration file written into
// the test's temporary directory (no system service is touched).

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/proctest"
)

// Environment variables that turn a missing tool into a failure instead of
// a skip (CI sets them).
const (
	envRequireHAProxy = "GEOSCOPE_REQUIRE_HAPROXY"
	envRequireNginx   = "GEOSCOPE_REQUIRE_NGINX"
)

// requireTool returns the path of a program, or skips the test (fails it
// when env is 1).
func requireTool(t *testing.T, name, pkg, env string) string {
	t.Helper()
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv(env) == "1" {
		t.Fatalf("%s is not installed, and %s=1 (Debian: apt-get install %s)", name, env, pkg)
	}
	t.Skipf("%s is not installed (Debian: apt-get install %s; %s=1 makes this a failure)", name, pkg, env)
	return ""
}

// daemon is a private server process (nginx, HAProxy) in its own process
// group, stopped when the test ends.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	logs   *proctest.LockedBuffer
	exited chan struct{}
}

func startDaemon(t *testing.T, name string, argv ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, logs: &proctest.LockedBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	// Its own process group, so that its workers are stopped with it; and
	// gone if the test binary dies.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proctest.StopWithParent(d.cmd.SysProcAttr, syscall.SIGKILL)
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
			<-d.exited
		}
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL) // stray workers
		if t.Failed() {
			t.Logf("%s output:\n%s", name, d.logs)
		}
	})
	return d
}

// waitListening waits until addr accepts connections, failing if the
// daemon exits first.
func (d *daemon) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			t.Fatalf("%s exited: %s", d.name, d.logs)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(pollInterval)
	}
	t.Fatalf("%s did not listen on %s within %v: %s", d.name, addr, startTimeout, d.logs)
}

// bundleService is nginx serving bundle files from a directory, with
// ETags, to clients presenting a bearer token.
type bundleService struct {
	dir  string // nginx's prefix: configuration, logs
	root string // bundles are served from root/bundles/
	url  string
}

func startNginx(t *testing.T, token string) *bundleService {
	t.Helper()
	nginx := requireTool(t, "nginx", "nginx", envRequireNginx)
	dir := t.TempDir()
	bs := &bundleService{dir: dir, root: filepath.Join(dir, "www")}
	for _, d := range []string{"www/bundles", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// nginx started as root runs its workers as another user, which could
	// not read the test's private directory: run them as this user.
	userLine := ""
	if os.Geteuid() == 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		userLine = fmt.Sprintf("user %s %s;\n", u.Username, g.Name)
	}
	port := proctest.FreePort(t)
	conf := filepath.Join(dir, "nginx.conf")
	cfg := fmt.Sprintf(`# written by the cluster test
%sdaemon off;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log %[2]s/logs/access.log;
    client_body_temp_path %[2]s/tmp/body;
    proxy_temp_path %[2]s/tmp/proxy;
    fastcgi_temp_path %[2]s/tmp/fastcgi;
    uwsgi_temp_path %[2]s/tmp/uwsgi;
    scgi_temp_path %[2]s/tmp/scgi;
    types { application/gzip gz; }
    default_type application/octet-stream;
    etag on;
    server {
        listen 127.0.0.1:%[3]s;
        root %[2]s/www;
        location /bundles/ {
            if ($http_authorization != "Bearer %[4]s") { return 401; }
        }
    }
}
`, userLine, dir, port, token)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-q", "-p", dir, "-e", filepath.Join(dir, "logs/error.log"), "-c", conf).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s\n%s", err, out, cfg)
	}
	d := startDaemon(t, "nginx", nginx, "-p", dir, "-e", filepath.Join(dir, "logs/error.log"), "-c", conf)
	d.waitListening(t, "127.0.0.1:"+port)
	bs.url = "http://127.0.0.1:" + port
	return bs
}

// publish replaces bundles/name atomically (write, then rename), as a
// release pipeline uploads a bundle.
func (bs *bundleService) publish(t *testing.T, name string, body []byte) {
	t.Helper()
	replaceFile(t, filepath.Join(bs.root, "bundles", name), body)
}

// accessCounts counts nginx's answers by path and status from its access
// log.
func (bs *bundleService) accessCounts(t *testing.T) map[string]map[int]int {
	t.Helper()
	f, err := os.Open(filepath.Join(bs.dir, "logs/access.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// combined format: ... "GET /path HTTP/1.1" STATUS BYTES ...
		line := sc.Text()
		q1 := strings.Index(line, `"`)
		q2 := strings.Index(line[q1+1:], `"`)
		if q1 < 0 || q2 < 0 {
			continue
		}
		req := strings.Fields(line[q1+1 : q1+1+q2])
		rest := strings.Fields(line[q1+q2+2:])
		if len(req) < 2 || len(rest) < 1 {
			continue
		}
		status, _ := strconv.Atoi(rest[0])
		if out[req[1]] == nil {
			out[req[1]] = map[int]int{}
		}
		out[req[1]][status]++
	}
	return out
}

// loadBalancer is HAProxy in front of the replicas, with an HTTP check of
// /ready on each and a statistics page.
type loadBalancer struct {
	url   string
	stats string // the statistics page, CSV
}

// startHAProxy balances over servers (name → host:port). A request whose
// server could not be connected to, or closed the connection without
// answering (a replica killed mid-request), is sent to another server;
// nothing else is retried (see docs/operations.md on why that is safe for
// the ledger).
func startHAProxy(t *testing.T, servers map[string]string, order []string) *loadBalancer {
	t.Helper()
	haproxy := requireTool(t, "haproxy", "haproxy", envRequireHAProxy)
	dir := t.TempDir()
	port, statsPort := proctest.FreePort(t), proctest.FreePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, `# written by the cluster test
global
    maxconn 1024

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend decisions
    bind 127.0.0.1:%s
    default_backend geoscope

backend geoscope
    balance roundrobin
    option httpchk
    http-check send meth GET uri /ready
    http-check expect status 200
    default-server check inter 200ms fall 2 rise 2
`, port)
	for _, name := range order {
		fmt.Fprintf(&b, "    server %s %s\n", name, servers[name])
	}
	fmt.Fprintf(&b, `
listen stats
    bind 127.0.0.1:%s
    stats enable
    stats uri /stats
`, statsPort)
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(haproxy, "-c", "-q", "-f", conf).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, b.String())
	}
	d := startDaemon(t, "haproxy", haproxy, "-db", "-f", conf)
	d.waitListening(t, "127.0.0.1:"+port)
	d.waitListening(t, "127.0.0.1:"+statsPort)
	return &loadBalancer{url: "http://127.0.0.1:" + port, stats: "http://127.0.0.1:" + statsPort + "/stats;csv"}
}

// lbServer is one row of HAProxy's statistics.
type lbServer struct {
	status                   string // UP, DOWN, ...
	responses                map[string]int64
	retries, redispatches    int64
	requestsTotal, downCount int64
}

// serverStats reads HAProxy's statistics of the backend's servers.
func (lb *loadBalancer) serverStats(t *testing.T) map[string]lbServer {
	t.Helper()
	resp, err := http.Get(lb.stats)
	if err != nil {
		t.Fatalf("HAProxy statistics: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(raw), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("HAProxy statistics: %v\n%s", err, raw)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	num := func(row []string, name string) int64 {
		i, ok := col[name]
		if !ok || i >= len(row) {
			return 0
		}
		n, _ := strconv.ParseInt(row[i], 10, 64)
		return n
	}
	out := map[string]lbServer{}
	for _, row := range rows[1:] {
		if len(row) < 2 || row[col["pxname"]] != "geoscope" {
			continue
		}
		s := lbServer{status: row[col["status"]], responses: map[string]int64{},
			retries: num(row, "wretr"), redispatches: num(row, "wredis"), requestsTotal: num(row, "stot"), downCount: num(row, "chkdown")}
		for _, c := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"} {
			s.responses[c] = num(row, "hrsp_"+c)
		}
		out[row[col["svname"]]] = s
	}
	return out
}

// waitServerUp waits until HAProxy's check has brought server name up.
func (lb *loadBalancer) waitServerUp(t *testing.T, name string) {
	t.Helper()
	poll(t, pollTimeout, "HAProxy to mark "+name+" up", func() bool {
		return strings.HasPrefix(lb.serverStats(t)[name].status, "UP")
	})
}

// peakRSS is a process's peak resident set size in bytes (VmHWM).
func peakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n * 1024, err
			}
		}
	}
	return 0, errors.New("no VmHWM")
}
