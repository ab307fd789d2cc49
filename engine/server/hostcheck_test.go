package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
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
	for _, host := range []string{addr, "localhost:" + port, "LOCALHOST", "localhost.", "[::1]:" + port, "127.0.0.2"} {
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
	if err := s.Serve(context.Background(), ln); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "without authentication") {
		t.Errorf("Serve on %s without tokens: %v", ln.Addr(), err)
	}
}
