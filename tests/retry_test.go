package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A request sent again with the same X-Request-Id (a client or a load
// balancer retrying after an answer was lost) is decided and recorded
// again, as any request: the ledger holds both entries, which name the
// same question (request), and the transparency report counts it once.
// The same body under another request id, or with none, is a question of
// its own.
func TestRequestSentAgainIsCountedOnce(t *testing.T) {
	s := startServe(t, serveOpts{ready: true})
	send := func(requestID string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/decisions", bytes.NewReader(june4b))
		req.Header.Set("Content-Type", "application/json")
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var d struct {
			DecisionID string `json:"decision_id"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &d) != nil || d.DecisionID == "" {
			t.Fatalf("POST /v1/decisions: %d %s", resp.StatusCode, body)
		}
		return d.DecisionID
	}
	first, again := send("meeting-server-7f3a"), send("meeting-server-7f3a")
	other, none := send("meeting-server-7f3b"), send("")

	requestOf := map[string]string{}
	for _, id := range []string{first, again, other, none} {
		r := s.get("/v1/ledger/"+id, "")
		var e struct {
			Request string `json:"request"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &e) != nil {
			t.Fatalf("GET /v1/ledger/%s: %s", id, r.body)
		}
		requestOf[id] = e.Request
	}
	if q := requestOf[first]; !strings.HasPrefix(q, "rq:") || requestOf[again] != q || requestOf[other] == q || requestOf[other] == "" || requestOf[none] != "" {
		t.Errorf("the entries' requests: first %q, sent again %q, another id %q, none %q; want the first two alike, the third its own, the last none",
			requestOf[first], requestOf[again], requestOf[other], requestOf[none])
	}
	if strings.Contains(string(s.get("/v1/ledger/"+first, "").body), "meeting-server-7f3a") {
		t.Error("the entry holds the client's request id as sent")
	}

	// Every count as it is (--min-count 1), read beside the running
	// server as compliance staff do.
	today := time.Now().UTC().Format(time.DateOnly)
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	rep := runBounded(t, time.Minute, "report", "--data-dir", s.dataDir, "--format", "json", "--min-count", "1", "--since", today, "--until", tomorrow)
	var report struct {
		Summary struct {
			Decisions int `json:"decisions_recorded"`
		} `json:"summary"`
	}
	if rep.code != 0 || json.Unmarshal([]byte(rep.stdout), &report) != nil {
		t.Fatalf("geoscope report: %s", rep)
	}
	if report.Summary.Decisions != 3 {
		t.Errorf("the report counts %d decisions, want 3 (four recorded, one of them a request sent again)", report.Summary.Decisions)
	}
}
