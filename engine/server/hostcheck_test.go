package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A server open to local clients answers only requests addressed to a
// loopback name: a web page that rebinds its own name to 127.0.0.1 sends
// that name as Host, and is refused. With tokens, or with
// --insecure-no-auth, Host is not what protects the server, and is not
// checked.
func TestOpenServerAnswersOnlyLoopbackNames(t *testing.T) {
	get := func(t *testing.T, addr, host, token string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	open := newTestServer(t, serverSetup{})
	addr := serveLoopback(t, open.Server)
	_, port, _ := strings.Cut(addr, ":")
	for _, host := range []string{addr, "localhost:" + port, "LOCALHOST", "localhost.", "[::1]:" + port, "[::1]", "127.0.0.2"} {
		if resp := get(t, addr, host, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("Host %q: %d, want 200", host, resp.StatusCode)
		}
	}
	for _, host := range []string{"attacker.example:" + port, "attacker.example", "localhost.attacker.example", "192.0.2.1:" + port} {
		resp := get(t, addr, host, "")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("Host %q: %d, want 403", host, resp.StatusCode)
		}
	}

	// An Origin other than a loopback one (a form another site's page
	// submits) is refused; a loopback one is not.
	post := func(path, origin string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for origin, want := range map[string]int{"https://attacker.example": http.StatusForbidden, "null": http.StatusForbidden, "http://localhost:" + port: http.StatusOK} {
		if resp := post("/v1/admin/reload", origin); resp.StatusCode != want {
			t.Errorf("reload with Origin %q: %d, want %d", origin, resp.StatusCode, want)
		}
	}
	// Under /v1/data, in OPA's error shape.
	resp := post(DataAdmissionPath, "https://attacker.example")
	var opaErr struct {
		Code   string `json:"code"`
		Errors []struct {
			Code, Field string
		} `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&opaErr); err != nil || resp.StatusCode != http.StatusForbidden || opaErr.Code != "unauthorized" ||
		len(opaErr.Errors) != 1 || opaErr.Errors[0].Code != "forbidden" || opaErr.Errors[0].Field != "Origin" {
		t.Errorf("%s with a foreign Origin: %d %+v %v", DataAdmissionPath, resp.StatusCode, opaErr, err)
	}

	withTokens := newTestServer(t, serverSetup{cfg: Config{TokensFile: writeTokens(t, "decide-token", "admin-token")}})
	if resp := get(t, serveLoopback(t, withTokens.Server), "geoscope.example", "admin-token"); resp.StatusCode != http.StatusOK {
		t.Errorf("with tokens, Host geoscope.example: %d, want 200", resp.StatusCode)
	}
	insecure := newTestServer(t, serverSetup{cfg: Config{InsecureNoAuth: true}})
	if resp := get(t, serveLoopback(t, insecure.Server), "geoscope.example", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("with --insecure-no-auth, Host geoscope.example: %d, want 200", resp.StatusCode)
	}
}

// Without tokens, Serve checks the listener it is given, not only
// Config.Addr: a listener on every interface is refused unless the
// operator passed --insecure-no-auth.
func TestServeWithoutTokensRefusesAnOpenListener(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := newTestServer(t, serverSetup{})
	// Bounded: a Serve that wrongly serves returns nil at the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Serve(ctx, ln); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "without authentication") {
		t.Errorf("Serve on %s without tokens: %v", ln.Addr(), err)
	}
}

// /ready and /health?bundles are open to anyone: on a server with tokens
// they say why it is not ready without the loading error, which can name a
// bundle service's URL with a token in its query; /v1/status has it.
func TestOpenEndpointsLeaveOutTheLoadingError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "secret-path")
	for _, withTokens := range []bool{true, false} {
		setup := serverSetup{bundles: []string{missing}, noLoad: true}
		if withTokens {
			setup.cfg.TokensFile = writeScopedTokens(t, ScopeDecide, "decide-token", ScopeAdmin, "admin-token", ScopeMetrics, "metrics-token")
		}
		ts := newTestServer(t, setup)
		if err := ts.src.Load(context.Background()); err == nil {
			t.Fatal("loading a missing bundle succeeded")
		}
		for _, path := range []string{"/ready", "/health?bundles"} {
			r := ts.do(t, request{method: http.MethodGet, path: path})
			e := r.errorBody(t)
			if r.status != http.StatusServiceUnavailable || e.Code != "not_ready" || !strings.HasPrefix(e.Message, "no policy and registry bundles are active") {
				t.Fatalf("tokens %v, GET %s: %s", withTokens, path, r)
			}
			if shows := strings.Contains(e.Message, "secret-path"); shows == withTokens {
				t.Errorf("tokens %v, GET %s: the message %q shows the loading error: %v", withTokens, path, e.Message, shows)
			}
		}
		if withTokens {
			r := ts.do(t, request{method: http.MethodGet, path: "/v1/status", token: "admin-token"})
			if r.status != http.StatusOK || !strings.Contains(string(r.body), "secret-path") {
				t.Errorf("/v1/status does not have the loading error: %s", r)
			}
			// A monitoring system's token learns that loading failed,
			// not the URL it failed on.
			r = ts.do(t, request{method: http.MethodGet, path: "/v1/status", token: "metrics-token"})
			if r.status != http.StatusOK || strings.Contains(string(r.body), "secret-path") || !strings.Contains(string(r.body), "bundle_error") {
				t.Errorf("/v1/status with a metrics token shows the loading error, or no bundle_error: %s", r)
			}
		}
	}

	// --public-metrics opens /v1/status: without an admin token it leaves
	// the loading errors out too.
	ts := newTestServer(t, serverSetup{bundles: []string{missing}, noLoad: true,
		cfg: Config{TokensFile: writeTokens(t, "decide-token", "admin-token"), PublicMetrics: true}})
	if err := ts.src.Load(context.Background()); err == nil {
		t.Fatal("loading a missing bundle succeeded")
	}
	r := ts.do(t, request{method: http.MethodGet, path: "/v1/status"})
	if r.status != http.StatusOK || strings.Contains(string(r.body), "secret-path") || !strings.Contains(string(r.body), "bundle_error") {
		t.Errorf("public /v1/status shows the loading error, or no bundle_error: %s", r)
	}
	if r := ts.do(t, request{method: http.MethodGet, path: "/v1/status", token: "admin-token"}); !strings.Contains(string(r.body), "secret-path") {
		t.Errorf("public /v1/status with an admin token lacks the loading error: %s", r)
	}
}

// A token is added or revoked by editing the tokens file, without a
// restart; a version that does not load keeps the tokens in use.
func TestTokensFileReadAgainWhenItChanges(t *testing.T) {
	path := writeTokens(t, "old-decide", "old-admin")
	ts := newTestServer(t, serverSetup{cfg: Config{TokensFile: path}})
	addr := serveLoopback(t, ts.Server)
	status := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/status", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 5 s", what)
			}
		}
	}
	if got := status("old-admin"); got != http.StatusOK {
		t.Fatalf("the admin token at start: %d", got)
	}

	// Rotated: the new admin token works, the old one no longer does.
	if err := os.Rename(writeTokens(t, "new-decide", "new-admin"), path); err != nil {
		t.Fatal(err)
	}
	eventually("the new admin token admitted", func() bool { return status("new-admin") == http.StatusOK })
	if got := status("old-admin"); got != http.StatusUnauthorized {
		t.Errorf("the revoked admin token: %d, want 401", got)
	}

	// A version that does not load: the tokens in use stay, said once.
	// (Replaced whole, as a Secret is: written in place, its empty first
	// state would be a version of its own.)
	bad := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(bad, []byte("admin not-a-digest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad, path); err != nil {
		t.Fatal(err)
	}
	eventually("the failed version logged", func() bool { return strings.Contains(ts.logs.String(), "does not load") })
	time.Sleep(4 * fileDebounce) // a second line would have come by now
	if got := status("new-admin"); got != http.StatusOK {
		t.Errorf("after a tokens file that does not load: %d, want 200", got)
	}
	if n := strings.Count(ts.logs.String(), "does not load"); n != 1 {
		t.Errorf("the failed version logged %d times, want once", n)
	}

	// An empty version is taken for an accident (a full disk, an editor
	// truncating first), not for revoking: it does not load.
	empty := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(empty, path); err != nil {
		t.Fatal(err)
	}
	eventually("the empty version logged", func() bool { return strings.Contains(ts.logs.String(), "is empty (to revoke every token") })
	if got := status("new-admin"); got != http.StatusOK {
		t.Errorf("after an empty tokens file: %d, want 200 (the tokens in use stay)", got)
	}

	// A version that other users may write does not load either: any of
	// them could have added their own admin token to it.
	open := writeTokens(t, "planted-decide", "planted-admin")
	if err := os.Chmod(open, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(open, path); err != nil {
		t.Fatal(err)
	}
	eventually("the writable version logged", func() bool { return strings.Contains(ts.logs.String(), "can be written by other users") })
	if got := status("planted-admin"); got != http.StatusUnauthorized {
		t.Errorf("a token of a tokens file others may write: %d, want 401", got)
	}
	if got := status("new-admin"); got != http.StatusOK {
		t.Errorf("after a tokens file others may write: %d, want 200 (the tokens in use stay)", got)
	}

	// A version with comments and no token revokes them all.
	for _, content := range []string{"# every token revoked\n", "\n# revoked\n\n"} {
		if err := os.Rename(writeTokens(t, "next-decide", "next-admin"), path); err != nil {
			t.Fatal(err)
		}
		eventually("the next admin token admitted", func() bool { return status("next-admin") == http.StatusOK })
		none := filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(none, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(none, path); err != nil {
			t.Fatal(err)
		}
		eventually(fmt.Sprintf("the admin token revoked by a file holding %q", content), func() bool { return status("next-admin") == http.StatusUnauthorized })
	}
	if !strings.Contains(ts.logs.String(), "every token is revoked") {
		t.Error("revoking every token is not logged")
	}
}
