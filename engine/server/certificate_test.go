package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for 127.0.0.1 with the given
// serial number, and its key, to certFile and keyFile.
func writePair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "geoscope test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A certificate renewed in place is served from the next handshake on,
// without a restart; a renewal that does not load leaves the served one.
func TestRenewedCertificateIsServed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, certFile, keyFile, 1)
	ts := newTestServer(t, serverSetup{cfg: Config{TLSCert: certFile, TLSKey: keyFile}})
	ts.certificateCheck = time.Millisecond
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
	if got := served(); got != 1 {
		t.Fatalf("serial %d served, want 1", got)
	}

	writePair(t, certFile, keyFile, 2)
	time.Sleep(5 * time.Millisecond)
	if got := served(); got != 2 {
		t.Errorf("after the renewal: serial %d served, want 2", got)
	}

	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	for range 2 {
		if got := served(); got != 2 {
			t.Errorf("after a renewal that does not load: serial %d served, want 2 still", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := strings.Count(ts.logs.String(), "do not load"); n != 1 {
		t.Errorf("the failed renewal logged %d times, want once:\n%s", n, ts.logs.String())
	}

	// A key file that is gone (being replaced) fails every look: logged
	// once more, and the served certificate kept.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		time.Sleep(5 * time.Millisecond)
		if got := served(); got != 2 {
			t.Errorf("with the key file gone: serial %d served, want 2 still", got)
		}
	}
	if n := strings.Count(ts.logs.String(), "do not load"); n != 2 {
		t.Errorf("the failures logged %d times, want twice (one per failure):\n%s", n, ts.logs.String())
	}
	writePair(t, certFile, keyFile, 3)
	time.Sleep(5 * time.Millisecond)
	if got := served(); got != 3 {
		t.Errorf("after the pair is back: serial %d served, want 3", got)
	}
}
