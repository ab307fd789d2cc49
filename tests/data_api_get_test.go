package tests

// OPA's Data API also answers GET, with the input as the JSON value of the
// input parameter. geoscope serves it through the path a POST takes: the
// same scope, limits, pipeline and ledger, and the same strictness, every
// mistake a 4xx naming what is wrong.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// dataError is an error answered under /v1/data: OPA's shape, geoscope's
// error inside.
type dataError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Errors  []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"errors"`
}

// wantDataError checks an OPA-shaped error: its status, OPA's code, and
// geoscope's code and field inside.
func wantDataError(t *testing.T, what string, r httpResult, status int, opaCode, code, field string) {
	t.Helper()
	var e dataError
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || r.status != status || e.Code != opaCode || len(e.Errors) != 1 ||
		e.Errors[0].Code != code || e.Errors[0].Field != field || e.Message == "" {
		t.Errorf("%s: %s; want %d %s with %s naming %q", what, r, status, opaCode, code, field)
	}
}

func TestDataAPIGet(t *testing.T) {
	t.Parallel()
	decide, admin := randomToken(t), randomToken(t)
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t),
		"--tokens-file", writeTokensFile(t, decide, admin), "--max-body", "4096", "--max-participants", "10"}})
	get := func(path, rawQuery, token string) httpResult {
		t.Helper()
		return p.mustDo(http.MethodGet, path+"?"+rawQuery, token, "", nil)
	}
	input := func(in []byte) string { return "input=" + url.QueryEscape(string(in)) }

	// The decision is the one a POST gets, recorded in the ledger.
	r := get("/v1/data/geoscope/decision", input(june4b), decide)
	var got struct {
		DecisionID string            `json:"decision_id"`
		Result     decision.Decision `json:"result"`
	}
	if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil || got.DecisionID == "" || got.DecisionID != got.Result.DecisionID {
		t.Fatalf("GET /v1/data/geoscope/decision: %s", r)
	}
	post := p.post("/v1/data/geoscope/decision", decide, []byte(`{"input": `+string(june4b)+`}`))
	var want struct {
		Result decision.Decision `json:"result"`
	}
	if err := json.Unmarshal(post.body, &want); post.status != 200 || err != nil {
		t.Fatalf("POST /v1/data/geoscope/decision: %s", post)
	}
	id := got.DecisionID
	got.Result.DecisionID, want.Result.DecisionID, got.Result.Time, want.Result.Time = "", "", time.Time{}, time.Time{}
	a, _ := json.Marshal(got.Result)
	b, _ := json.Marshal(want.Result)
	if !bytes.Equal(a, b) || len(got.Result.Actions) != 1 {
		t.Errorf("GET decided otherwise than POST:\n%s\n%s", a, b)
	}
	if r := p.get("/v1/ledger/"+id, admin); r.status != 200 {
		t.Errorf("the decision answered to a GET is not in the ledger: %s", r)
	}
	// pretty, and OPA's other parameters beside input.
	if r := get("/v1/data/geoscope/admission", "pretty=true&metrics=true&"+input(admissionCN), decide); r.status != 200 ||
		bytes.Count(r.body, []byte("\n")) < 4 || !bytes.Contains(r.body, []byte(`"allow": false`)) {
		t.Errorf("GET /v1/data/geoscope/admission?pretty: %s", r)
	}

	// The same scope as POST.
	wantDataError(t, "no token", get("/v1/data/geoscope/decision", input(june4b), ""), 401, "unauthorized", "unauthorized", "")
	wantDataError(t, "wrong token", get("/v1/data/geoscope/admission", input(admissionCN), "not-a-token"), 401, "unauthorized", "unauthorized", "")

	// Mistakes are 4xx naming what is wrong; none is a 5xx.
	big := `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [` + strings.Repeat(`{"id": "p", "ip": "8.8.8.8"},`, 150) + `{"id": "q"}]}}`
	var people []string
	for i := range 11 {
		people = append(people, fmt.Sprintf(`{"id": "p%d"}`, i))
	}
	eleven := `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [` + strings.Join(people, ", ") + `]}}`
	// A phone number's "+" sent unencoded is a space once the query is
	// decoded, as in any form: the number is refused, by name.
	dialIn := `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "phone": "+8613800138000"}}`
	for _, c := range []struct {
		name, path, rawQuery string
		status               int
		code, field          string
	}{
		{"bad JSON", "decision", "input=" + url.QueryEscape(`{"meeting": `), 400, "invalid_input", "input"},
		{"not JSON", "decision", "input=meeting", 400, "invalid_input", "input"},
		{"+ unencoded", "admission", "input=" + strings.ReplaceAll(url.QueryEscape(dialIn), "%2B", "+"), 400, "invalid_input", "input.participant.phone"},
		{"unknown field", "decision", input([]byte(`{"meeting": {"id": "m", "colour": "red"}}`)), 400, "invalid_input", "input.meeting.colour"},
		{"bad IP", "decision", input(bytes.Replace(june4b, []byte("147.8.1.1"), []byte("147.8.1"), 1)), 400, "invalid_input", "input.meeting.participants[1].ip"},
		{"admission as decision", "decision", input(admissionCN), 400, "invalid_input", "input.participant"},
		{"no input", "decision", "pretty", 400, "invalid_input", "input"},
		{"empty input", "admission", "input=", 400, "invalid_input", "input"},
		{"null input", "admission", "input=null", 400, "invalid_input", "input"},
		{"a number", "admission", "input=7", 400, "invalid_input", "input"},
		{"input twice", "decision", input(june4b) + "&" + input(june4b), 400, "invalid_input", "input"},
		{"bad escape", "decision", "input=%7B%zz", 400, "invalid_input", "query"},
		{"semicolon", "decision", input(june4b) + ";pretty=true", 400, "invalid_input", "query"},
		{"invalid UTF-8", "decision", "input=" + url.QueryEscape(`{"meeting": {"id": "`) + "%ff%fe" + url.QueryEscape(`"}}`), 400, "invalid_input", "input.meeting.id"},
		{"over --max-body", "decision", input([]byte(big)), 413, "too_large", "input"},
		{"over --max-participants", "decision", input([]byte(eleven)), 413, "too_large", "input.meeting.participants"},
	} {
		wantDataError(t, c.name, get("/v1/data/geoscope/"+c.path, c.rawQuery, decide), c.status, "invalid_parameter", c.code, c.field)
	}

	// A GET with a body, and a POST with an input parameter: the client
	// meant one of them, and is told which goes where.
	wantDataError(t, "GET with a body", p.mustDo(http.MethodGet, "/v1/data/geoscope/decision?"+input(june4b), decide, "application/json", []byte(`{"input": `+string(june4b)+`}`)),
		400, "invalid_parameter", "invalid_input", "body")
	// A body of undeclared length (chunked) is a body all the same; the
	// last chunk alone is none.
	for _, c := range []struct {
		name string
		body string
		ok   bool
	}{{"GET with a chunked body", `{"input": ` + string(june4b) + `}`, false}, {"GET with an empty chunked body", "", true}} {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/v1/data/geoscope/decision?"+input(june4b), io.MultiReader(strings.NewReader(c.body)))
		req.Header.Set("Authorization", "Bearer "+decide)
		req.TransferEncoding = []string{"chunked"}
		r, err := p.send(req)
		if err != nil {
			t.Fatal(err)
		}
		if c.ok {
			if r.status != 200 {
				t.Errorf("%s: %s; want it answered", c.name, r)
			}
			continue
		}
		wantDataError(t, c.name, r, 400, "invalid_parameter", "invalid_input", "body")
	}
	wantDataError(t, "POST with an input parameter", p.mustDo(http.MethodPost, "/v1/data/geoscope/decision?"+input(june4b), decide, "application/json", []byte(`{"input": `+string(june4b)+`}`)),
		400, "invalid_parameter", "invalid_input", "input")

	// A query over net/http's limit on a request's head is refused
	// before any handler (431), with no 5xx either.
	if r, err := p.do(http.MethodGet, "/v1/data/geoscope/decision?input="+strings.Repeat("a", 1<<20+8192), decide, "", nil); err == nil && r.status >= 500 {
		t.Errorf("an input over the head's limit: %s", r)
	}
	if r := p.get("/health", ""); r.status != 200 {
		t.Errorf("after the requests above: /health %s", r)
	}
}
