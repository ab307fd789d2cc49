// Package pgtest runs a private PostgreSQL server for tests.
//
// The binaries are taken from GEOSCOPE_PG_BIN (a directory holding initdb
// and postgres) or else from the newest /usr/lib/postgresql/*/bin (Debian's
// layout), or else from initdb found on PATH. When none is found the test
// is skipped, unless GEOSCOPE_REQUIRE_POSTGRES=1, which makes it fail: CI
// sets it so the PostgreSQL tests cannot silently vanish.
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and
// postgres run as the "postgres" system user (GEOSCOPE_PG_USER overrides
// it), in directories chowned to that user.
//
// A server listens on 127.0.0.1 on a free port, with its Unix socket
// directory inside its own temporary directory, and is reachable with
// trust authentication as user postgres. Durability settings are
// PostgreSQL's defaults (fsync, synchronous_commit and full_page_writes
// on): crash tests rely on them.
//
// initdb is slow (seconds), so a cluster is created once per machine, with
// an empty database named Database in it, and kept in the temporary
// directory as a template; each server starts from a copy of it.
package pgtest

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/geoscope/geoscope/internal/proctest"
)

// Environment variables.
const (
	// envBin names the directory holding initdb and postgres.
	envBin = "GEOSCOPE_PG_BIN"
	// envRequire=1 turns a missing PostgreSQL into a test failure.
	envRequire = "GEOSCOPE_REQUIRE_POSTGRES"
	// envUser names the system user PostgreSQL runs as when the tests run
	// as root (default "postgres").
	envUser = "GEOSCOPE_PG_USER"
)

// Database is the database every server is created with.
const Database = "geoscope"

// templateFormat changes whenever what a template holds changes, so a
// template cached by an older pgtest is not reused.
const templateFormat = "1"

// errNoPostgres is returned (and turned into a skip) when no PostgreSQL
// binaries are found.
var errNoPostgres = errors.New("pgtest: no PostgreSQL binaries found")

// Server is one private PostgreSQL server.
type Server struct {
	tb      testing.TB // nil for the shared server
	bin     string
	root    string // owned by the server's user; holds data, sock, log
	data    string
	sock    string
	logPath string
	port    int
	cred    *syscall.Credential

	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
	closed bool
}

// New starts a private server for tb, stopped and removed when tb ends.
// Without PostgreSQL binaries it skips tb (fails it with
// GEOSCOPE_REQUIRE_POSTGRES=1).
func New(tb testing.TB) *Server {
	tb.Helper()
	s, err := newServer(tb)
	if err != nil {
		skipOrFatal(tb, err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("pgtest: PostgreSQL log (%s), last lines:\n%s", s.logPath, s.LogTail(40))
		}
		s.close()
	})
	return s
}

var shared struct {
	once sync.Once
	s    *Server
	err  error
}

// Shared returns a server shared by every test of the process, started at
// the first call. Use NewSchema to isolate tests from each other; call
// StopShared at the end of TestMain. It cannot be stopped by a test.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	shared.once.Do(func() { shared.s, shared.err = newServer(nil) })
	if shared.err != nil {
		skipOrFatal(tb, shared.err)
	}
	return shared.s
}

// StopShared stops and removes the shared server, if one was started.
func StopShared() {
	if shared.s != nil {
		shared.s.close()
	}
}

func skipOrFatal(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNoPostgres) {
		if os.Getenv(envRequire) == "1" {
			tb.Fatalf("%v, and %s=1: install PostgreSQL (Debian: apt-get install postgresql) or set %s", err, envRequire, envBin)
		}
		tb.Skipf("%v (set %s, or install PostgreSQL; %s=1 makes this a failure)", err, envBin, envRequire)
	}
	tb.Fatalf("pgtest: %v", err)
}

// URL is the postgres:// URL of the server's database.
func (s *Server) URL() string { return s.DatabaseURL(Database) }

// DatabaseURL is the URL of database name on this server.
func (s *Server) DatabaseURL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, url.PathEscape(name))
}

// Port is the TCP port the server listens on (the same after Start).
func (s *Server) Port() int { return s.port }

// NewSchema creates a fresh, empty schema and returns a URL whose
// connections use it (search_path), so tests sharing a server do not see
// each other's tables.
func (s *Server) NewSchema(tb testing.TB) string {
	tb.Helper()
	name := "t_" + randomHex(8)
	db, err := sql.Open("pgx", s.URL())
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("pgtest: creating schema: %v", err)
	}
	return s.URL() + "&search_path=" + name
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// Stop shuts the server down (fast mode: sessions are terminated, then a
// checkpoint) and waits until it is gone. Start brings it back on the same
// port with the same data.
func (s *Server) Stop() {
	s.mustTB("Stop")
	if err := s.stop(syscall.SIGINT); err != nil {
		s.tb.Fatalf("pgtest: stop: %v", err)
	}
}

// Kill stops the server in immediate mode (no checkpoint: the next start
// runs crash recovery) and waits until it is gone.
func (s *Server) Kill() {
	s.mustTB("Kill")
	if err := s.stop(syscall.SIGQUIT); err != nil {
		s.tb.Fatalf("pgtest: kill: %v", err)
	}
}

// Start starts a stopped server again, on the same port, and waits until
// it accepts connections.
func (s *Server) Start() {
	s.mustTB("Start")
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		return
	}
	if err := s.launch(); err != nil {
		s.tb.Fatalf("pgtest: start: %v", err)
	}
}

func (s *Server) mustTB(what string) {
	if s.tb == nil {
		panic("pgtest: " + what + " on the shared server; use New for a server a test may stop")
	}
	s.tb.Helper()
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	raw, _ := os.ReadFile(s.logPath)
	return string(raw)
}

// LogTail returns the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (s *Server) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	if err := s.stop(syscall.SIGINT); err != nil {
		_ = s.stop(syscall.SIGKILL)
	}
	_ = os.RemoveAll(s.root)
}

// newServer copies the template cluster into a new directory and starts it.
func newServer(tb testing.TB) (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	tmpl, err := template(bin, cred)
	if err != nil {
		return nil, err
	}
	s, err := prepare(bin, cred, "pgtest-")
	if err != nil {
		return nil, err
	}
	s.tb = tb
	if err := copyTree(tmpl, s.data, cred); err != nil {
		os.RemoveAll(s.root)
		return nil, fmt.Errorf("copying the template cluster: %w", err)
	}
	if err := s.launchFreePort(); err != nil {
		os.RemoveAll(s.root)
		return nil, err
	}
	return s, nil
}

// prepare makes the server's directory, owned by the server's user.
func prepare(bin string, cred *syscall.Credential, prefix string) (*Server, error) {
	root, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, root: root, data: filepath.Join(root, "data"), sock: filepath.Join(root, "sock"), logPath: filepath.Join(root, "postgres.log"), cred: cred}
	if err := os.Mkdir(s.sock, 0o700); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	if cred != nil {
		for _, p := range []string{root, s.sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				os.RemoveAll(root)
				return nil, err
			}
		}
	}
	return s, nil
}

// launchFreePort starts the server on a free port, retrying when another
// process took the port in between.
func (s *Server) launchFreePort() error {
	var err error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			return err
		}
		if err = s.launch(); err == nil {
			return nil
		}
		if !strings.Contains(s.LogTail(20), "could not bind") && !strings.Contains(s.LogTail(20), "could not create any TCP/IP sockets") {
			return err
		}
	}
	return err
}

// freePort is a loopback port for the server: one of GEOSCOPE_TEST_PORTS
// when it is set, as for every server the tests start.
func freePort() (int, error) {
	port, err := proctest.Port()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}

// launch starts postgres in the foreground as a child process and waits
// until it accepts connections to the postgres database.
func (s *Server) launch() error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(s.bin, "postgres"),
		"-D", s.data,
		"-p", strconv.Itoa(s.port),
		"-k", s.sock,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "logging_collector=off",
		// Startup speed only; durability settings stay at their defaults.
		"-c", "shared_buffers=32MB",
		"-c", "max_connections=200",
		// After an immediate stop, one syncfs instead of an fsync per file.
		"-c", "recovery_init_sync_method=syncfs",
	)
	cmd.Dir = s.root
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Setpgid: true}
	// If the test binary dies (timeout panic, kill), the server goes down
	// with it in immediate mode instead of lingering.
	proctest.StopWithParent(cmd.SysProcAttr, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.proc, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.mu.Lock()
			s.proc = nil
			s.mu.Unlock()
			return fmt.Errorf("postgres exited during startup; log:\n%s", s.LogTail(20))
		default:
		}
		if last = ping(s.DatabaseURL("postgres")); last == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	_ = s.stop(syscall.SIGQUIT)
	return fmt.Errorf("postgres did not accept connections within 60s (last error: %v); log:\n%s", last, s.LogTail(20))
}

func ping(u string) error {
	db, err := sql.Open("pgx", u)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// stop signals the server (SIGINT fast, SIGQUIT immediate, SIGKILL) and
// waits for it to exit.
func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, exited := s.proc, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("postgres did not stop within 60s after %v; killed", sig)
	}
	s.mu.Lock()
	s.proc = nil
	s.mu.Unlock()
	return nil
}

// findBin returns the directory holding initdb and postgres.
func findBin() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(envBin); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("%w: %s=%s holds no initdb and postgres", errNoPostgres, envBin, dir)
		}
		return dir, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		switch va, vb := version(a), version(b); {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(p); has(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w (looked in $%s, /usr/lib/postgresql/*/bin and PATH)", errNoPostgres, envBin)
}

// credential is the user PostgreSQL runs as: nil (the current user) unless
// running as root.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	name := os.Getenv(envUser)
	if name == "" {
		name = "postgres"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: %w (set %s)", err, envUser)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: bad uid/gid %s/%s", name, u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

var templateMu sync.Mutex

// template returns the data directory of a cluster holding an empty
// Database, creating it on first use. It is cached in the temporary
// directory, keyed by the binaries, their version and the running user, and
// published with a rename so concurrent test processes never see half of
// one.
func template(bin string, cred *syscall.Credential) (string, error) {
	templateMu.Lock()
	defer templateMu.Unlock()
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s/postgres --version: %v", errNoPostgres, bin, err)
	}
	owner := os.Geteuid()
	if cred != nil {
		owner = int(cred.Uid)
	}
	sum := sha256.Sum256([]byte(templateFormat + "\x00" + bin + "\x00" + string(out) + "\x00" + strconv.Itoa(owner)))
	dir := filepath.Join(os.TempDir(), "geoscope-pgtest-template-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); err == nil {
		return dir, nil
	}

	s, err := prepare(bin, cred, "geoscope-pgtest-initdb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(s.root)
	// --no-sync: initdb does not flush the new cluster to disk. That only
	// matters for an operating-system crash during the tests, which no test
	// simulates; the servers themselves run with fsync on.
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = s.root
	initdb.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := s.launchFreePort(); err != nil {
		return "", err
	}
	err = createDatabase(s.DatabaseURL("postgres"), Database)
	if serr := s.stop(syscall.SIGINT); err == nil {
		err = serr
	}
	if err != nil {
		return "", err
	}
	_ = os.Remove(filepath.Join(s.data, "postmaster.pid"))
	if err := os.Rename(s.data, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "PG_VERSION")); serr == nil {
			return dir, nil // another process published one first
		}
		return "", err
	}
	return dir, nil
}

func createDatabase(adminURL, name string) error {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// copyTree copies the directory src to dst (which must not exist),
// keeping modes, owned by cred's user.
func copyTree(src, dst string, cred *syscall.Credential) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			err = os.Mkdir(target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			var link string
			if link, err = os.Readlink(path); err == nil {
				err = os.Symlink(link, target)
			}
		case d.Type().IsRegular():
			err = copyFile(path, target, info.Mode().Perm())
		default:
			return nil // sockets and the like are not part of a cluster at rest
		}
		if err != nil {
			return err
		}
		if cred != nil {
			return os.Lchown(target, int(cred.Uid), int(cred.Gid))
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, bufio.NewReader(in)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
