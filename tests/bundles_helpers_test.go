package tests

// Helpers of the bundle tests (bundles_*_test.go): building signed and
// unsigned bundles with OPA's Go API, and reading a server's status,
// metrics and answers (the process is server_helpers_test.go's
// serverProc, which need not become ready).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/geoscope/geoscope/internal/bundletest"
)

// bndKey is a development signing key pair from bundles/keys.
type bndKey struct {
	priv    []byte
	pubPath string
	alg     string
}

func bndDevKey(t *testing.T, name, alg string) bndKey {
	t.Helper()
	dir := filepath.Join("..", "bundles", "keys")
	priv, err := os.ReadFile(filepath.Join(dir, name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := filepath.Abs(filepath.Join(dir, name+".pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return bndKey{priv: priv, pubPath: pub, alg: alg}
}

// bndWrite writes b as a .tar.gz, signed with key unless key is nil.
func bndWrite(t *testing.T, b *bundle.Bundle, key *bndKey) []byte {
	t.Helper()
	if key != nil {
		if err := b.GenerateSignature(bundle.NewSigningConfig(string(key.priv), key.alg, ""), "default", false); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(*b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bndPolicyBundle is the repository's policy (../policies without tests)
// at revision rev.
func bndPolicyBundle(t *testing.T, rev string, key *bndKey) []byte {
	t.Helper()
	return bndPolicyBundleWith(t, rev, key, nil)
}

// bndPolicyBundleWith is the default policy bundle with extra modules
// (path → source), such as an extension.
func bndPolicyBundleWith(t *testing.T, rev string, key *bndKey, extra map[string]string) []byte {
	t.Helper()
	root := filepath.Join("..", "policies")
	b := &bundle.Bundle{Manifest: bundle.Manifest{Revision: rev, Roots: &[]string{"geoscope"}}, Data: map[string]any{}}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".rego") || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		name := "/" + filepath.ToSlash(rel)
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, RelativePath: filepath.ToSlash(rel), Raw: raw})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range extra {
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, RelativePath: name, Raw: []byte(src)})
	}
	return bndWrite(t, b, key)
}

// bndRegistryData is a valid registry: the example authority and one order,
// orderID, targeting meeting and account.
func bndRegistryData(orderID, meeting, account string) map[string]any {
	return map[string]any{
		"authorities": map[string]any{
			"cn.cac": map[string]any{"name": "Cyberspace Administration of China", "jurisdiction": []any{"CN"}},
		},
		"orders": map[string]any{
			orderID: map[string]any{
				"authority":   "cn.cac",
				"demands":     []any{"end_meeting", "suspend_account"},
				"targets":     map[string]any{"meetings": []any{meeting}, "accounts": []any{account}},
				"legal_basis": "bundle test order " + orderID,
				"received":    "2026-01-02",
			},
		},
	}
}

// bndRegistryBundle is a registry bundle holding data at revision rev.
func bndRegistryBundle(t *testing.T, rev string, data map[string]any, key *bndKey) []byte {
	t.Helper()
	b := &bundle.Bundle{Manifest: bundle.Manifest{Revision: rev, Roots: &[]string{"authorities", "orders"}}, Data: data}
	return bndWrite(t, b, key)
}

// bndTar packs raw files (slash paths; content as given, valid or not) as a
// .tar.gz.
func bndTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	return bundletest.TarballOf(t, files)
}

// bndRetar rewrites a .tar.gz, passing every file through edit.
func bndRetar(t *testing.T, tarball []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(tarball))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "/")
		files[name] = string(edit(name, body))
	}
	return bndTar(t, files)
}

// bndCopyDir copies a directory tree.
func bndCopyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, raw, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// bndTokens writes a tokens file with one admin and one decide token.
func bndTokens(t *testing.T) (file, admin, decide string) {
	t.Helper()
	admin, decide = "admin-token-for-bundle-tests", "decide-token-for-bundle-tests"
	return writeTokensFile(t, decide, admin), admin, decide
}

// bndServer is a geoscope serve process of the bundle tests.
type bndServer struct {
	*serverProc
	token string // sent on status, metrics and reload requests
}

// bndStart runs `geoscope serve` with args and waits until it answers
// /health (not /ready: a server given bundles it rejects never is).
func bndStart(t *testing.T, args ...string) *bndServer {
	t.Helper()
	return &bndServer{serverProc: startServe(t, serveOpts{args: append([]string{"--log-level", "info"}, args...)})}
}

// bndStatus is GET /v1/status.
type bndStatus struct {
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready"`
	Bundles  []struct {
		Name     string `json:"name"`
		Revision string `json:"revision"`
	} `json:"bundles"`
	BundleError *struct {
		At    time.Time `json:"at"`
		Error string    `json:"error"`
	} `json:"bundle_error"`
	Reloads   int `json:"reloads"`
	Downloads []struct {
		Name                   string    `json:"name"`
		LastSuccessfulRequest  time.Time `json:"last_successful_request"`
		LastSuccessfulDownload time.Time `json:"last_successful_download"`
	} `json:"downloads"`
}

func (st bndStatus) revision(name string) string {
	for _, b := range st.Bundles {
		if b.Name == name {
			return b.Revision
		}
	}
	return ""
}

func (st bndStatus) String() string {
	raw, _ := json.Marshal(st)
	return string(raw)
}

func (s *bndServer) status(t *testing.T) bndStatus {
	t.Helper()
	r := s.request(t, http.MethodGet, "/v1/status", s.token, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/status: HTTP %d: %s", r.status, r.body)
	}
	var st bndStatus
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatalf("GET /v1/status: %v: %s", err, r.body)
	}
	return st
}

// waitStatus polls /v1/status until cond holds, failing after timeout.
func (s *bndServer) waitStatus(t *testing.T, what string, timeout time.Duration, cond func(bndStatus) bool) bndStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.status(t)
		if cond(st) {
			return st
		}
		if !s.running() {
			t.Fatalf("waiting for %s: geoscope exited", what)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last status %s", timeout, what, st)
		}
		time.Sleep(pollInterval)
	}
}

func (s *bndServer) metrics(t *testing.T) string {
	t.Helper()
	r := s.request(t, http.MethodGet, "/metrics", s.token, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", r.status)
	}
	return string(r.body)
}

// bndAnswer is the part of an admission answer the bundle tests read.
type bndAnswer struct {
	Bundles  map[string]string `json:"bundles"`
	OrderIDs []string          `json:"order_ids"`
}

func (a bndAnswer) key() string {
	return a.Bundles["policies"] + "|" + a.Bundles["registry"] + "|" + strings.Join(a.OrderIDs, ",")
}

func bndAnswerKey(body []byte) string {
	var a bndAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return "undecodable: " + string(body)
	}
	return a.key()
}

// admit sends one admission for meeting/account and decodes the answer.
func (s *bndServer) admit(t *testing.T, token, meeting, account string) bndAnswer {
	t.Helper()
	r := s.request(t, http.MethodPost, "/v1/admission", token, "application/json", admissionBodies(meeting, account)[0])
	if r.status != http.StatusOK {
		t.Fatalf("POST /v1/admission: HTTP %d: %s", r.status, r.body)
	}
	var a bndAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("admission answer: %v: %s", err, r.body)
	}
	return a
}

// bndMetric returns the sample lines of metric name.
func bndMetric(exposition, name string) []string {
	var out []string
	for line := range strings.Lines(exposition) {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
