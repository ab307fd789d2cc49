package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A reload once asked is carried through even if the client that asked
// leaves before it ends (a client's timeout shorter than a large bundle's
// build): it neither stops half-way nor says the server is stopping.
func TestReloadOutlivesItsClient(t *testing.T) {
	ts := newTestServer(t, serverSetup{bundles: []string{"../../policies", registryBundle}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client has gone
	r := httptest.NewRequest(http.MethodPost, "/v1/admin/reload", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	ts.Handler().ServeHTTP(w, r)
	var resp reloadResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	if !resp.Reloaded || resp.Error != "" {
		t.Errorf("reload asked by a client that left: %+v; want it carried through", resp)
	}
	if logs := ts.logs.String(); strings.Contains(logs, "shutting down") {
		t.Errorf("the log says the server is shutting down, and it is not:\n%s", logs)
	}
}
