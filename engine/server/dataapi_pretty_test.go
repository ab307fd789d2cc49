package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ?pretty means what OPA makes of it, present without a value or "true"
// in any case to indent the answer, "false" not to; a value OPA would
// silently read as false, or the parameter given twice, is refused naming
// it. The indented answer is what json.MarshalIndent (OPA's writer, and
// gin's before) makes of the same answer.
func TestDataAPIPrettyAsOPA(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()
	body := []byte(`{"input": ` + admissionBody + `}`)
	for query, indented := range map[string]bool{
		"":                  false,
		"?pretty":           true,
		"?pretty=":          true,
		"?pretty=true":      true,
		"?pretty=TRUE":      true,
		"?pretty=false":     false,
		"?pretty=False":     false,
		"?metrics=true":     false,
		"?pretty&metrics":   true,
		"?explain=off":      false,
		"?instrument=false": false,
	} {
		r := postHeaders(t, hs, DataAdmissionPath+query, http.Header{}, body)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %s", query, r)
		}
		if got := bytes.Contains(r.body, []byte("\n    ")); got != indented {
			t.Errorf("%q: indented %v, want %v: %s", query, got, indented, r.body)
		}
		var compact, want bytes.Buffer
		if err := json.Compact(&compact, r.body); err != nil {
			t.Fatalf("%q: %v: %s", query, err, r.body)
		}
		if indented {
			_ = json.Indent(&want, compact.Bytes(), "", "    ")
		} else {
			want = compact
		}
		if !bytes.Equal(r.body, want.Bytes()) {
			t.Errorf("%q: answered\n%s\nwant\n%s", query, r.body, want.Bytes())
		}
		if n, err := strconv.Atoi(r.header.Get("Content-Length")); err != nil || n != len(r.body) {
			t.Errorf("%q: Content-Length %q for %d bytes", query, r.header.Get("Content-Length"), len(r.body))
		}
	}
	for _, query := range []string{"?pretty=1", "?pretty=no", "?pretty=yes", "?pretty&pretty=true", "?pretty=true&pretty=false"} {
		r := postHeaders(t, hs, DataAdmissionPath+query, http.Header{}, body)
		if e := r.errorBody(t); r.status != http.StatusBadRequest || e.Code != "invalid_input" || e.Field != "pretty" {
			t.Errorf("%q: %s; want 400 naming pretty", query, r)
		}
	}
}

// The indenter makes and sizes what json.Indent makes, whatever the JSON
// and however it is cut into parts: its count decides, before a decision
// is recorded, whether the indented answer fits --max-response.
func TestIndenterIsJSONIndent(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `{"a":{}}`, `{"a":[],"b":[{}]}`, `"x"`, `7`, `null`,
		`{"decision_id":"d","result":{"actions":[{"reason":"a \"quoted\" {brace}, [bracket]: colon","n":-1.5e3}],"ok":true}}`,
		`{"s":"\\","t":"\\\"","u":"\u00e9\u003c","v":"é ✓"}`,
		`[1,[2,[3,[]]],{"k":{"k":{"k":null}}}]`,
		"{ \"spaced\" : [ 1 , 2 ] ,\n\t\"x\" : { } }",
	}
	for _, doc := range docs {
		var want bytes.Buffer
		if err := json.Indent(&want, []byte(doc), "", "    "); err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		for cut := 0; cut <= len(doc); cut++ {
			parts := [][]byte{[]byte(doc[:cut]), []byte(doc[cut:])}
			built := indenter{build: true}
			for _, p := range parts {
				built.write(p)
			}
			if got := dataSize(parts, true); got != int64(want.Len()) || !bytes.Equal(built.out, want.Bytes()) || built.n != got {
				t.Fatalf("%s cut at %d: made %d bytes (counted %d)\n%s\nwant %d\n%s", doc, cut, len(built.out), got, built.out, want.Len(), want.Bytes())
			}
		}
	}
}

// An error names the offending key of the envelope by its start only: the
// answer stays small whatever the client sent.
func TestDataAPIEnvelopeErrorBounded(t *testing.T) {
	ts := newTestServer(t, serverSetup{})
	key := strings.Repeat("k", 100_000)
	r := ts.do(t, request{method: http.MethodPost, path: DataDecisionPath, body: `{"` + key + `": 1}`})
	if r.status != http.StatusBadRequest {
		t.Fatalf("unknown envelope key: %s", r)
	}
	if len(r.body) > 2048 {
		t.Errorf("the error answer is %d bytes; it repeats the client's key", len(r.body))
	}
	e := r.errorBody(t)
	if !strings.HasPrefix(e.Field, "kkkk") || !strings.HasSuffix(e.Field, "…") || len(e.Field) > 128 {
		t.Errorf("field %q: want the start of the key, marked as cut", e.Field)
	}
}

// A policy that fails to evaluate is answered as OPA's Data API answers an
// evaluation error: 500 internal_error, geoscope's policy_error inside.
func TestDataAPIPolicyErrorIsOPAsInternalError(t *testing.T) {
	broken := newTestServer(t, serverSetup{
		bundles: []string{writeBundle(t, map[string]string{"p.rego": brokenRego, ".manifest": manifest}), registryBundle},
	})
	r := broken.do(t, request{method: http.MethodPost, path: DataDecisionPath, body: `{"input": ` + decisionBody + `}`})
	var e struct {
		Code   string `json:"code"`
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || r.status != http.StatusInternalServerError || e.Code != "internal_error" || len(e.Errors) != 1 || e.Errors[0].Code != "policy_error" {
		t.Errorf("%s: want 500 internal_error with policy_error in errors[0]", r)
	}
}

// A policy that runs past the deadline is answered 503 eval_timeout with
// the deadline and the flag that sets it, at both endpoints: whoever
// reads it can tell a slow policy from a deadline set too short.
func TestEvalTimeoutNamesTheDeadline(t *testing.T) {
	spin := newTestServer(t, serverSetup{
		cfg:     Config{EvalTimeout: 50 * time.Millisecond},
		bundles: []string{writeBundle(t, map[string]string{"p.rego": spinRego, ".manifest": manifest}), registryBundle},
	})
	for _, req := range []request{
		{method: http.MethodPost, path: "/v1/decisions", body: decisionBody},
		{method: http.MethodPost, path: DataDecisionPath, body: `{"input": ` + decisionBody + `}`},
	} {
		r := spin.do(t, req)
		e := r.errorBody(t)
		if r.status != http.StatusServiceUnavailable || e.Code != "eval_timeout" || !strings.Contains(e.Message, "(50ms, the server's --eval-timeout)") {
			t.Errorf("%s: %s; want 503 eval_timeout naming 50ms and --eval-timeout", req.path, r)
		}
	}
}
