package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/internal/proctest"
)

// TestFilesOpenToOthersRefused: a ledger key or a TLS key that other
// users of the system may read, and a tokens file they may write, are
// refused at start (exit 2), naming the file, its mode and the chmod
// that fixes it: read, the key would let them match the ledger's
// pseudonyms to people or pose as the server; written, the tokens file
// would let them give themselves an admin token. The same files,
// readable by the owner and group only (a Kubernetes Secret mounted with
// the pod's fsGroup), and a tokens file others may read, are served.
func TestFilesOpenToOthersRefused(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode fs.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		chmod(t, p, mode)
		return p
	}
	digest := sha256.Sum256([]byte("open-admin-token"))
	tokens := write("tokens", []byte("admin "+hex.EncodeToString(digest[:])+"\n"), 0o666)
	key := write("ledger.key", []byte(strings.Repeat("0123456789abcdef", 4)+"\n"), 0o644)
	certFile, tlsKey := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	pool := proctest.WriteTLSPair(t, certFile, tlsKey, 1)
	chmod(t, tlsKey, 0o604)

	// A data directory whose generated key was later opened to others (a
	// copy restored from a backup with the wrong mode).
	data := filepath.Join(dir, "data")
	if res := runIn(t, dir, nil, []byte(validRequest), "decide", "--geoip-db", geotest.Standard(t), "--data-dir", data); res.code != 0 {
		t.Fatalf("decide --data-dir: %v", res)
	}
	generated := filepath.Join(data, "ledger.key")
	chmod(t, generated, 0o644)

	for _, tc := range []struct {
		name  string
		args  []string
		names []string
	}{
		{"serve --tokens-file", []string{"serve", "--tokens-file", tokens, "--ledger", "off"},
			[]string{"--tokens-file " + tokens, "(mode 0666)", "admin scope", "chmod go-w " + tokens}},
		{"serve --ledger-key-file", []string{"serve", "--ledger-key-file", key, "--data-dir", filepath.Join(dir, "other")},
			[]string{"--ledger-key-file " + key, "(mode 0644)", "pseudonyms", "chmod 600 " + key}},
		{"serve, the data directory's key", []string{"serve", "--data-dir", data},
			[]string{"the ledger key " + generated, "(mode 0644)", "chmod 600 " + generated}},
		{"decide, the data directory's key", []string{"decide", "--geoip-db", geotest.Standard(t), "--data-dir", data},
			[]string{"the ledger key " + generated, "(mode 0644)"}},
		{"ledger export --ledger-key-file", []string{"ledger", "export", "--data-dir", data, "--ledger-key-file", generated},
			[]string{"--ledger-key-file " + generated, "(mode 0644)"}},
		{"serve --tls-key", []string{"serve", "--tls-cert", certFile, "--tls-key", tlsKey, "--ledger", "off"},
			[]string{"--tls-key " + tlsKey, "(mode 0604)", "pose as this server", "chmod 600 " + tlsKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args[0] == "serve" {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			res := runIn(t, dir, nil, []byte(validRequest), args...)
			if res.code != 2 {
				t.Fatalf("exit %d, want 2\n%v", res.code, res)
			}
			line := cliErrorLine(t, res.stderr)
			for _, n := range tc.names {
				if !strings.Contains(line, n) {
					t.Errorf("error %q does not name %q", line, n)
				}
			}
		})
	}

	// Owner and group only (the keys), not writable by others (the
	// tokens): served.
	chmod(t, tokens, 0o644)
	chmod(t, key, 0o640)
	chmod(t, tlsKey, 0o440)
	srv := startServe(t, serveOpts{rootCAs: pool, args: []string{"--tokens-file", tokens, "--ledger-key-file", key,
		"--data-dir", filepath.Join(dir, "served"), "--tls-cert", certFile, "--tls-key", tlsKey}})
	if r := srv.get("/v1/status", "open-admin-token"); r.status != http.StatusOK {
		t.Errorf("GET /v1/status with the admin token: %s", r)
	}
	chmod(t, generated, 0o600)
	if res := runIn(t, dir, nil, nil, "ledger", "export", "--data-dir", data, "--ledger-key-file", generated); res.code != 0 {
		t.Errorf("ledger export with the key back to 0600: %v", res)
	}
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(fmt.Errorf("chmod %04o: %w", mode, err))
	}
}

// TestDataDirOpenToOthersRefused: a SQLite data directory that other
// users may write (a Kubernetes emptyDir is 0777) is refused to serve and
// to decide --data-dir, which record (exit 2, naming --data-dir, its mode
// and the fixes, and creating nothing in it): whoever writes there can
// add journal segments that the next start copies into the ledger as
// recorded decisions. A directory inside it, which serve creates
// owner-only, is served, as is one of mode 0770 (the pod's fsGroup);
// the readers read the ledger in a directory open to others.
func TestDataDirOpenToOthersRefused(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	chmod(t, open, 0o777)
	for _, args := range [][]string{
		{"serve", "--addr", "127.0.0.1:0", "--data-dir", open},
		{"decide", "--geoip-db", geotest.Standard(t), "--data-dir", open},
	} {
		res := runIn(t, dir, nil, []byte(validRequest), args...)
		line := cliErrorLine(t, res.stderr)
		if res.code != 2 {
			t.Errorf("%s with --data-dir of mode 0777: exit %d, want 2\n%v", args[0], res.code, res)
		}
		for _, n := range []string{"--data-dir " + open, "(mode 0777)", "journal", "chmod o-w " + open, "--data-dir " + filepath.Join(open, "ledger")} {
			if !strings.Contains(line, n) {
				t.Errorf("%s: error %q does not name %q", args[0], line, n)
			}
		}
		if got := dirEntries(t, open); len(got) != 0 {
			t.Errorf("%s: the refused command created %v in --data-dir", args[0], got)
		}
	}

	// Given by GEOSCOPE_DATA_DIR, as the image gives /data, the error says
	// so: the command line names no --data-dir.
	res := runIn(t, dir, []string{"GEOSCOPE_DATA_DIR=" + open}, nil, "serve", "--addr", "127.0.0.1:0")
	if line := cliErrorLine(t, res.stderr); res.code != 2 || !strings.Contains(line, "GEOSCOPE_DATA_DIR (in place of --data-dir)") {
		t.Errorf("serve with GEOSCOPE_DATA_DIR of mode 0777: exit %d, error %q; want 2 naming GEOSCOPE_DATA_DIR", res.code, line)
	}

	inside := filepath.Join(open, "ledger")
	srv := startServe(t, serveOpts{ready: true, args: []string{"--data-dir", inside}})
	recordOne(t, srv)
	srv.stop(syscall.SIGTERM)
	if fi, err := os.Stat(inside); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the data directory serve created inside one of mode 0777: %v (%v), want mode 0700", fi.Mode(), err)
	}
	chmod(t, inside, 0o770)
	srv = startServe(t, serveOpts{ready: true, args: []string{"--data-dir", inside}})
	recordOne(t, srv)
	srv.stop(syscall.SIGTERM)

	chmod(t, inside, 0o777)
	for _, args := range [][]string{{"ledger", "export"}, {"ledger", "verify"}, {"ledger", "statements", "--participant", "p-1"}, {"report", "--out", filepath.Join(dir, "report.md")}} {
		if res := runIn(t, dir, nil, nil, append(args, "--data-dir", inside)...); res.code != 0 {
			t.Errorf("%v of a data directory of mode 0777: %v; want it read", args, res)
		}
	}
}
