package tests

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// A request sent again with the same X-Request-Id (a client or a load
// balancer retrying after an answer was lost) is decided and recorded
// again, as any request: the ledger holds both entries, which name the
// same request (request), and the transparency report counts it once.
// The same body under another request id or none, and another body under
// the same id, are requests of their own.
func TestRequestSentAgainIsCountedOnce(t *testing.T) {
	s := startServe(t, serveOpts{ready: true})
	send := func(requestID string, body []byte) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/decisions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if requestID != "" {
			req.Header.Set("X-Request-Id", requestID)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		var d struct {
			DecisionID string `json:"decision_id"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(answer, &d) != nil || d.DecisionID == "" {
			t.Fatalf("POST /v1/decisions: %d %s", resp.StatusCode, answer)
		}
		return d.DecisionID
	}
	first, again := send("meeting-server-7f3a", june4b), send("meeting-server-7f3a", june4b)
	other, none := send("meeting-server-7f3b", june4b), send("", june4b)
	// A client that gives one id to another request: another body.
	reused := send("meeting-server-7f3a", append(slices.Clone(june4b), ' '))

	requestOf := map[string]string{}
	for _, id := range []string{first, again, other, none, reused} {
		r := s.get("/v1/ledger/"+id, "")
		var e struct {
			Request string `json:"request"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &e) != nil {
			t.Fatalf("GET /v1/ledger/%s: %s", id, r.body)
		}
		requestOf[id] = e.Request
	}
	if q := requestOf[first]; !strings.HasPrefix(q, "rq:") || requestOf[again] != q || requestOf[other] == q || requestOf[other] == "" ||
		requestOf[none] != "" || requestOf[reused] == q || requestOf[reused] == "" {
		t.Errorf("the entries' requests: first %q, sent again %q, another id %q, none %q, the id reused %q; want the first two alike, the rest but none their own",
			requestOf[first], requestOf[again], requestOf[other], requestOf[none], requestOf[reused])
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
	if report.Summary.Decisions != 4 {
		t.Errorf("the report counts %d decisions, want 4 (five recorded, one of them a request sent again)", report.Summary.Decisions)
	}
}
