package server

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/proctest"
)

// A certificate renewed in place is served from the next handshake on,
// without a restart; a renewal that does not load leaves the served one,
// and is logged once for each change.
func TestRenewedCertificateIsServed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	proctest.WriteTLSPair(t, certFile, keyFile, 1)
	ts := newTestServer(t, serverSetup{cfg: Config{TLSCert: certFile, TLSKey: keyFile}})
	addr := serveLoopback(t, ts.Server)
	served := func() int64 {
		t.Helper()
		// Not verified: the test reads which certificate is served.
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
			t.Errorf("ALPN chose %q, want h2", p)
		}
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 5 s", what)
			}
		}
	}
	failures := func() int { return strings.Count(ts.logs.String(), "do not load") }
	if got := served(); got != 1 {
		t.Fatalf("serial %d served, want 1", got)
	}

	proctest.WriteTLSPair(t, certFile, keyFile, 2)
	eventually("the renewal served", func() bool { return served() == 2 })

	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually("the failed renewal logged", func() bool { return failures() == 1 })
	time.Sleep(4 * fileDebounce) // a second line would have come by now
	if got := served(); got != 2 {
		t.Errorf("after a renewal that does not load: serial %d served, want 2 still", got)
	}
	if n := failures(); n != 1 {
		t.Errorf("the failed renewal logged %d times, want once:\n%s", n, ts.logs.String())
	}

	// A key file that is gone (being replaced): logged once more, and the
	// served certificate kept.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	eventually("the missing key logged", func() bool { return failures() == 2 })
	if got := served(); got != 2 {
		t.Errorf("with the key file gone: serial %d served, want 2 still", got)
	}
	proctest.WriteTLSPair(t, certFile, keyFile, 3)
	eventually("the pair back served", func() bool { return served() == 3 })
	if n := failures(); n != 2 {
		t.Errorf("the failures logged %d times, want twice (one per change):\n%s", n, ts.logs.String())
	}

	// A renewal whose key other users may read is not served: they could
	// pose as this server with it.
	// The key file is opened to others first, so that the renewal's key
	// is never there closed for a moment that the watcher could load.
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	proctest.WriteTLSPair(t, certFile, keyFile, 4)
	eventually("the renewal with an open key logged", func() bool { return strings.Contains(ts.logs.String(), "open to other users") })
	time.Sleep(4 * fileDebounce)
	if got := served(); got != 3 {
		t.Errorf("after a renewal whose key others may read: serial %d served, want 3 still", got)
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually("the renewal served once its key is private", func() bool { return served() == 4 })
}
