package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/sources"
	"github.com/geoscope/geoscope/internal/proctest"
)

// registryBundle is the example registry, relative to this package.
const registryBundle = "../../bundles/registry"

// testServer is a Server built in-process, with its log captured.
type testServer struct {
	*Server
	logs *proctest.LockedBuffer
	// dataDir is the ledger's data directory, when it has one.
	dataDir string
}

// serverSetup describes a test server.
type serverSetup struct {
	cfg Config
	// bundles are bundle paths; nil selects the embedded policy and registry.
	bundles []string
	// geo is the GeoIP database file; "" selects geotest.Standard.
	geo string
	// noLoad leaves the sources unloaded (the server is not ready).
	noLoad bool
	// engineOpts configure the engine (a failing recorder, ...).
	engineOpts []engine.Option
}

func newTestServer(t testing.TB, setup serverSetup) *testServer {
	t.Helper()
	logs := &proctest.LockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	geoPath := setup.geo
	if geoPath == "" {
		geoPath = geotest.Standard(t)
	}
	eng := engine.New(setup.engineOpts...)
	src := sources.New(sources.Config{Bundles: setup.bundles, GeoIPDB: geoPath, Logger: log}, eng)
	if !setup.noLoad {
		if err := src.Load(context.Background()); err != nil {
			t.Fatalf("loading sources: %v", err)
		}
	}
	s, err := New(setup.cfg, eng, src, log)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	return &testServer{Server: s, logs: logs}
}

// request is one HTTP request to a test server.
type request struct {
	method, path string
	// rawQuery, when set, is the query as sent, whatever its bytes (path
	// must then hold none).
	rawQuery    string
	token       string // Authorization: Bearer token, when set
	host        string // Host, when set (httptest's default is example.com)
	origin      string // Origin, when set
	contentType string // defaults to application/json when a body is given
	// noContentType sends no Content-Type header at all.
	noContentType bool
	body          string
	// chunked hides the body's length (Content-Length -1), as a chunked
	// request would.
	chunked bool
	// header holds header lines sent as given, each value on a line of
	// its own.
	header http.Header
	// stalls ends the body, after what it gives, with the error a
	// connection's read gives at its read deadline (httptest has no
	// connection to set one on; tests/overload_test.go uses a real one).
	stalls bool
}

// stalledBody is a body whose reads run into a read deadline.
type stalledBody struct{ io.Reader }

func (b stalledBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == io.EOF {
		err = &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	}
	return n, err
}

// response is what a test server answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return http.StatusText(r.status) + " " + strings.TrimSpace(string(r.body))
}

// errorBody decodes an error response strictly. An OPA-shaped error
// (under /v1/data) must carry geoscope's error as its one errors entry,
// under the OPA code that maps from it; that entry is returned.
func (r response) errorBody(t *testing.T) apiError {
	t.Helper()
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &probe); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if _, opa := probe["errors"]; opa {
		var oe opaError
		if err := dec.Decode(&oe); err != nil {
			t.Fatalf("OPA error body %q: %v", r.body, err)
		}
		if len(oe.Errors) != 1 {
			t.Fatalf("OPA error body %q: want exactly one errors entry", r.body)
		}
		d := oe.Errors[0]
		if want := opaErrorOf(apiError{Code: d.Code}).Code; oe.Code != want || oe.Message != d.Message {
			t.Errorf("OPA error %q: code %q and message must be %q (from %q) and the entry's message", r.body, oe.Code, want, d.Code)
		}
		return apiError{Code: d.Code, Message: d.Message, Field: d.Field, ErrorID: d.ErrorID}
	}
	var e apiError
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	return e
}

func (ts *testServer) do(t *testing.T, req request) response {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	if req.stalls {
		body = stalledBody{body}
	}
	r := httptest.NewRequest(req.method, req.path, body)
	if req.stalls {
		r.ContentLength = int64(len(req.body)) + 1
	}
	if req.rawQuery != "" {
		r.URL.RawQuery = req.rawQuery
	}
	if req.chunked {
		r.ContentLength = -1
	}
	ct := req.contentType
	if ct == "" && req.body != "" && !req.noContentType {
		ct = "application/json"
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	if req.token != "" {
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.host != "" {
		r.Host = req.host
	}
	if req.origin != "" {
		r.Header.Set("Origin", req.origin)
	}
	for name, values := range req.header {
		for _, v := range values {
			r.Header.Add(name, v)
		}
	}
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, r)
	return response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// writeTokens writes a tokens file granting decide to the first token and
// admin to the second, and returns its path.
func writeTokens(t *testing.T, decide, admin string) string {
	t.Helper()
	return writeScopedTokens(t, ScopeDecide, decide, ScopeAdmin, admin)
}

// writeScopedTokens writes a tokens file from SCOPE, TOKEN pairs, and
// returns its path.
func writeScopedTokens(t *testing.T, pairs ...string) string {
	t.Helper()
	digest := func(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }
	path := filepath.Join(t.TempDir(), "tokens")
	data := "# test tokens\n"
	for i := 0; i+1 < len(pairs); i += 2 {
		data += pairs[i] + " " + digest(pairs[i+1]) + "\n\n"
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeBundle writes a bundle directory from file contents.
func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// failingRecorder fails every record, which the server must answer as an
// internal error.
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, *engine.Record) error {
	return io.ErrShortWrite
}
