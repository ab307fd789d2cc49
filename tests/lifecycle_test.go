package tests

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/internal/bundletest"
)

// registryTarball is the example registry as a .tar.gz bundle.
func registryTarball(t *testing.T) []byte {
	t.Helper()
	files := map[string]string{}
	for _, name := range []string{".manifest", "authorities/data.json", "orders/data.json"} {
		raw, err := os.ReadFile(filepath.Join(registryDir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(raw)
	}
	return bundletest.TarballOf(t, files)
}

// openPipeWhenRead opens the named pipe for writing once a reader has
// opened it, within timeout.
func openPipeWhenRead(pipe string, timeout time.Duration) (*os.File, error) {
	for deadline := time.Now().Add(timeout); ; {
		f, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return f, syscall.SetNonblock(int(f.Fd()), false)
		}
		if !errors.Is(err, syscall.ENXIO) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("nothing opened %s for reading within %v", pipe, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeIsLiveWhileItLoads starts the server on a registry bundle it
// cannot finish reading (a tarball behind a named pipe, filled only once
// the test has seen what it checks), as a large registry keeps a start
// busy for seconds. Meanwhile /health answers 200, so that a liveness
// probe does not restart a process that is only loading, and /ready and
// OPA's /health?bundles answer 503 not_ready, so that it gets no traffic;
// once the bundle has arrived it is ready.
func TestServeIsLiveWhileItLoads(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "registry.tar.gz")
	if err := syscall.Mkfifo(tarball, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	// startServe returns once /health answers 200.
	p := startServe(t, serveOpts{loading: true, args: []string{
		"--geoip-db", geotest.Standard(t), "--ledger", "off", "--bundle", "../policies", "--bundle", tarball,
	}})
	w, err := openPipeWhenRead(tarball, pollTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, path := range []string{"/health", "/ready", "/health?bundles"} {
		r := p.get(path, "")
		switch {
		case path == "/health" && r.status != http.StatusOK:
			t.Errorf("GET %s while the registry loads: %s, want 200", path, r)
		case path != "/health":
			wantError(t, r, http.StatusServiceUnavailable, "not_ready", "")
		}
	}

	// The bundle is read again after this read (for the names in its
	// files): a regular file takes the pipe's place before the pipe gets
	// the bytes.
	raw := registryTarball(t)
	if err := os.WriteFile(tarball+".next", raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tarball+".next", tarball); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	w.Close()
	poll(t, pollTimeout, "/ready to answer 200 once the registry has arrived", func() bool {
		return p.get("/ready", "").status == http.StatusOK
	})
	if r := p.post("/v1/decisions", "", june4b); r.status != http.StatusOK {
		t.Errorf("a decision once ready: %s", r)
	}
}
