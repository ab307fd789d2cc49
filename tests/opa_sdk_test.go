package tests

// OPA clients talk to geoscope through OPA's Data API. This test uses the
// official OPA TypeScript SDK (@styra/opa, installed by .ci/run into
// .ci/npm) against the real server: the answers are geoscope's guarded,
// recorded decisions, errors reach the SDK as OPA errors, and the scopes
// hold.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// npmTools returns the node_modules directory holding the npm test tools
// (GEOSCOPE_NPM_DIR, by default .ci/npm/node_modules). Where they are not
// installed the test is skipped, unless GEOSCOPE_REQUIRE_NPM=1 (as .ci/run
// sets): then it fails.
func npmTools(t *testing.T, pkg string) string {
	t.Helper()
	dir := os.Getenv("GEOSCOPE_NPM_DIR")
	if dir == "" {
		dir = filepath.Join("..", ".ci", "npm", "node_modules")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, nodeErr := exec.LookPath("node")
	_, pkgErr := os.Stat(filepath.Join(dir, filepath.FromSlash(pkg), "package.json"))
	if nodeErr != nil || pkgErr != nil {
		msg := "node or the npm package " + pkg + " is not installed in " + dir + " (.ci/run installs it: cd .ci/npm && npm ci)"
		if os.Getenv("GEOSCOPE_REQUIRE_NPM") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// sdkOutcome is what the SDK returned for one case.
type sdkOutcome struct {
	Result     json.RawMessage `json:"result"`
	DecisionID string          `json:"decisionId"`
	Error      *struct {
		Name    string `json:"name"`
		Code    string `json:"code"`
		Message string `json:"message"`
		Status  int    `json:"status"`
		Errors  []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"error"`
}

func TestOPASDKClient(t *testing.T) {
	modules := npmTools(t, "@styra/opa")
	decide, admin := randomToken(t), randomToken(t)
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t), "--tokens-file", writeTokensFile(t, decide, admin)}})

	badIP := bytes.Replace(june4b, []byte(`"147.8.1.1"`), []byte(`"147.8.1"`), 1)
	cases := map[string]map[string]any{
		"decision":           {"path": "geoscope/decision", "input": json.RawMessage(june4b)},
		"decision low-level": {"path": "geoscope/decision", "input": json.RawMessage(june4b), "lowLevel": true},
		"admission":          {"path": "geoscope/admission", "input": json.RawMessage(admissionCN)},
		"admin token":        {"path": "geoscope/admission", "input": json.RawMessage(admissionCN), "token": admin},
		"bad input":          {"path": "geoscope/decision", "input": json.RawMessage(badIP)},
		"admission as input": {"path": "geoscope/decision", "input": json.RawMessage(admissionCN)},
		"no token":           {"path": "geoscope/decision", "input": json.RawMessage(june4b), "token": ""},
		"wrong token":        {"path": "geoscope/decision", "input": json.RawMessage(june4b), "token": "not-a-token"},
		"other document":     {"path": "geoscope/registry/violations", "input": map[string]any{}},
	}
	raw, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	casesFile := writeTemp(t, "cases.json", raw)
	cmd := exec.Command("node", filepath.Join("testdata", "opa_sdk_client.cjs"), p.base, decide, casesFile)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("%d SDK calls in %s", len(cases), time.Since(start).Round(time.Millisecond))
	var out map[string]sdkOutcome
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("SDK output %q: %v", stdout.String(), err)
	}

	// The decision is geoscope's, as POST /v1/decisions answers it, and it
	// was recorded.
	direct := p.post("/v1/decisions", decide, june4b)
	var want, got decision.Decision
	if err := json.Unmarshal(direct.body, &want); direct.status != 200 || err != nil {
		t.Fatalf("POST /v1/decisions: %s", direct)
	}
	if o := out["decision"]; o.Error != nil || json.Unmarshal(o.Result, &got) != nil {
		t.Fatalf("evaluate geoscope/decision: %+v", o)
	}
	if len(got.Actions) != 1 || got.Actions[0].Type != decision.RemoveParticipant || got.Actions[0].ParticipantID != "p-cn" || len(got.Refused) != 2 {
		t.Errorf("SDK decision: actions %+v refused %+v; want p-cn removed, end_meeting and suspend_account refused", got.Actions, got.Refused)
	}
	gotID := got.DecisionID
	got.DecisionID, want.DecisionID, got.Time, want.Time = "", "", time.Time{}, time.Time{}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("the Data API decision differs from POST /v1/decisions:\n%s\n%s", a, b)
	}
	if r := p.get("/v1/ledger/"+gotID, admin); r.status != 200 {
		t.Errorf("the decision %s answered to the SDK is not in the ledger: %s", gotID, r)
	}

	// OPA's decision_id is the decision's.
	low := out["decision low-level"]
	var lowDecision decision.Decision
	if low.Error != nil || json.Unmarshal(low.Result, &lowDecision) != nil || low.DecisionID == "" || low.DecisionID != lowDecision.DecisionID {
		t.Errorf("executePolicyWithInput: decision_id %q, result decision_id %q (%+v)", low.DecisionID, lowDecision.DecisionID, low.Error)
	}

	for _, name := range []string{"admission", "admin token"} {
		var adm decision.Admission
		if o := out[name]; o.Error != nil || json.Unmarshal(o.Result, &adm) != nil || adm.Allow || len(adm.Actions) != 1 || adm.Actions[0].Type != decision.DenyJoin {
			t.Errorf("%s: %+v %s; want allow false with one deny_join", name, o.Error, o.Result)
		}
	}

	// Errors reach the SDK as OPA errors naming the field.
	if e := out["bad input"].Error; e == nil || e.Name != "ClientError" || e.Code != "invalid_parameter" ||
		!strings.Contains(e.Message, "input.meeting.participants[1].ip") || len(e.Errors) != 1 || e.Errors[0].Code != "invalid_input" {
		t.Errorf("bad input: %+v; want a ClientError invalid_parameter naming input.meeting.participants[1].ip", e)
	}
	if e := out["admission as input"].Error; e == nil || e.Code != "invalid_parameter" || !strings.Contains(e.Message, "input.participant") {
		t.Errorf("an admission request sent to geoscope/decision: %+v", e)
	}
	for name, status := range map[string]int{"no token": 401, "wrong token": 401, "other document": 404} {
		if e := out[name].Error; e == nil || e.Status != status {
			t.Errorf("%s: %+v, want HTTP %d", name, e, status)
		}
	}
	if r := p.post("/v1/data/geoscope/registry/violations", decide, []byte(`{"input": {}}`)); !strings.Contains(string(r.body), `"code":"resource_not_found"`) {
		t.Errorf("other document: %s", r)
	}
}
