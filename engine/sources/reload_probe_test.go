package sources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/bundletest"
)

// TestStatusAnswersWhileABundleIsBuilt holds a reload in the middle of
// reading a bundle (a tarball behind a named pipe, which the test fills
// only once it has seen what it checks) and asks what a readiness probe
// and a scrape ask meanwhile. A large registry takes seconds to read and
// build: probes that waited for it would fail on every replica reloading
// the same bundle, though each still decides with the snapshot it has.
func TestStatusAnswersWhileABundleIsBuilt(t *testing.T) {
	ctx := context.Background()
	tarball := filepath.Join(t.TempDir(), "registry.tar.gz")
	writeRegistryTarball(t, tarball, registryFiles("reg-1"))
	src, _, _ := newSources(t, tarball, "")
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(tarball); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(tarball, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	reloaded := make(chan error, 1)
	go func() { reloaded <- src.ReloadBundles(ctx) }()
	// Opening the pipe for writing succeeds once the reload has opened it
	// for reading: from then on the reload is under way and waits for the
	// bundle's bytes.
	w, err := openWhenRead(tarball, reloaded)
	if err != nil {
		t.Fatal(err)
	}

	answered := make(chan string, 1)
	go func() {
		ok, why := src.Ready()
		st := src.Status()
		if !ok {
			answered <- "not ready: " + why
			return
		}
		answered <- revisionOf(st, "registry")
	}()
	select {
	case got := <-answered:
		if got != "reg-1" {
			t.Errorf("during the reload: %s, want ready with registry reg-1", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("Ready and Status waited for the bundle being read (5 s and counting)")
	}

	// The bundle is read again after this read (for the names in its
	// files): a regular file with the same tarball takes the pipe's
	// place before the pipe gets the bytes.
	next := bundletest.TarballOf(t, registryFiles("reg-2"))
	file := tarball + ".next"
	if err := os.WriteFile(file, next, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file, tarball); err != nil {
		t.Fatal(err)
	}
	if err := syscall.SetNonblock(int(w.Fd()), false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(next); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := <-reloaded; err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := revisionOf(src.Status(), "registry"); got != "reg-2" {
		t.Errorf("after the reload: registry %q, want reg-2", got)
	}
}

// openWhenRead opens the named pipe for writing once a reader has opened
// it, or fails if the reload ends first.
func openWhenRead(pipe string, reloaded chan error) (*os.File, error) {
	for deadline := time.Now().Add(10 * time.Second); ; {
		f, err := os.OpenFile(pipe, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.ENXIO) {
			return nil, err
		}
		select {
		case err := <-reloaded:
			return nil, fmt.Errorf("the reload ended without reading the pipe: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the reload did not open the bundle within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoadCutShortIsNoRejection: a signal during the first load of local
// bundles cancels it; that is no rejected version (no ERROR line, no
// rejection counted for an alert to fire on).
func TestLoadCutShortIsNoRejection(t *testing.T) {
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, registryFiles("reg-1"))
	src, _, logs := newSources(t, regDir, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// OPA notices a cancelled context between steps of its compilation,
	// so a load under one sometimes gets to its end first (6 of 30 here):
	// loaded again, which is no rejection either, until one is cut short.
	cut := false
	for range 50 {
		if cut = src.ReloadBundles(ctx) != nil; cut {
			break
		}
	}
	if !cut {
		t.Fatal("50 loads under a cancelled context succeeded; the test shows nothing")
	}
	if st := src.Status(); st.BundleRejections != 0 || st.BundleError != nil {
		t.Errorf("a load cut short counted as a rejection: %d, %+v", st.BundleRejections, st.BundleError)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Errorf("a load cut short logged an error:\n%s", logs)
	}
}
