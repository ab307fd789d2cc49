package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/geoscope/geoscope/engine/apierror"
)

// TestRecoverPanic adds a route that panics to a real server's router (so
// it runs behind the same middleware as every endpoint) and checks that the
// panic is answered 500 internal with an error id that is logged with the
// stack, and that the server keeps serving.
func TestRecoverPanic(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	ts.router.GET("/test/panic", func(*gin.Context) { panic("test panic: boom") })
	ts.router.GET("/test/panic-error", func(*gin.Context) { panic(io.ErrUnexpectedEOF) })
	ts.router.GET("/test/abort", func(*gin.Context) { panic(http.ErrAbortHandler) })
	srv := httptest.NewServer(ts.Handler())
	t.Cleanup(srv.Close)

	o := loadOpenAPI(t)
	for _, path := range []string{"/test/panic", "/test/panic-error"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("X-Request-Id", "panic-"+strings.TrimPrefix(path, "/test/"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("GET %s: status %d, want 500: %s", path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Request-Id"); got != req.Header.Get("X-Request-Id") {
			t.Errorf("X-Request-Id = %q, want the client's %q", got, req.Header.Get("X-Request-Id"))
		}
		var e apiError
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("GET %s: body %q: %v", path, body, err)
		}
		if e.Code != apierror.Internal {
			t.Errorf("code = %q, want %q", e.Code, apierror.Internal)
		}
		if _, err := uuid.Parse(e.ErrorID); err != nil {
			t.Errorf("error_id %q is not a UUID: %v", e.ErrorID, err)
		}
		if strings.Contains(e.Message, "boom") || strings.Contains(e.Message, "EOF") {
			t.Errorf("the message leaks the panic value: %q", e.Message)
		}
		v, _ := decodeJSON(body)
		for _, msg := range o.validate(map[string]any{"$ref": "#/components/responses/Internal/content/application~1json/schema"}, v, "") {
			t.Errorf("the answer does not match the documented Internal response: %s", msg)
		}
		// The log ties the id to the panic and its stack.
		var logged bool
		for _, line := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(line, e.ErrorID) && strings.Contains(line, `"level":"ERROR"`) &&
				strings.Contains(line, "panic: ") && strings.Contains(line, "goroutine") {
				logged = true
			}
		}
		if !logged {
			t.Errorf("no ERROR log line holds error_id %s with the panic and its stack:\n%s", e.ErrorID, ts.logs)
		}
		// The access log records the 500 with the error code.
		if !strings.Contains(ts.logs.String(), `"error_code":"internal"`) {
			t.Error("the access log does not record error_code internal")
		}
	}

	// http.ErrAbortHandler is re-panicked for net/http to abort the
	// response, as its documentation asks.
	if resp, err := srv.Client().Get(srv.URL + "/test/abort"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /test/abort answered %d; the connection should have been aborted", resp.StatusCode)
	}

	// The server keeps serving.
	for _, path := range []string{"/health", "/ready"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s after the panics: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s after the panics: %d", path, resp.StatusCode)
		}
	}
	resp, err := srv.Client().Post(srv.URL+"/v1/decisions", "application/json", strings.NewReader(decisionBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /v1/decisions after the panics: %d", resp.StatusCode)
	}
}
