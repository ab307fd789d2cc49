package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
)

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations maps "METHOD /path" to the document's operation objects.
func (o *openAPI) operations(t *testing.T) map[string]map[string]any {
	t.Helper()
	paths, ok := o.doc["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		t.Fatal("openapi.json has no paths")
	}
	ops := map[string]map[string]any{}
	for path, item := range paths {
		item, ok := item.(map[string]any)
		if !ok {
			t.Fatalf("paths[%q] is not an object", path)
		}
		for key, op := range item {
			if !slices.Contains(httpMethods, key) {
				t.Errorf("paths[%q] has %q, which is not an HTTP method (path-level fields are not used)", path, key)
				continue
			}
			m, ok := op.(map[string]any)
			if !ok {
				t.Fatalf("paths[%q].%s is not an object", path, key)
			}
			ops[strings.ToUpper(key)+" "+path] = m
		}
	}
	return ops
}

// responseOf returns the (dereferenced) response object op documents for
// status, or nil.
func (o *openAPI) responseOf(t *testing.T, op map[string]any, status int) map[string]any {
	t.Helper()
	responses, _ := op["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(status)]
	if !ok {
		return nil
	}
	m, err := o.deref(r)
	if err != nil {
		t.Fatalf("response %d: %v", status, err)
	}
	return m
}

// unmatchedResponse is the response documented for requests no operation
// matches (x-geoscope-unmatched), or nil.
func (o *openAPI) unmatchedResponse(t *testing.T, status int) map[string]any {
	t.Helper()
	return o.responseOf(t, map[string]any{"responses": o.doc["x-geoscope-unmatched"]}, status)
}

// errorCodes returns the error codes a response's JSON schema admits: the
// const or enum of its "code" member, found through $ref and allOf.
func (o *openAPI) errorCodes(t *testing.T, schema any) []string {
	t.Helper()
	s, err := o.deref(schema)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	props, _ := s["properties"].(map[string]any)
	if errs, ok := props["errors"].(map[string]any); ok {
		// An OPA-shaped error (DataError) carries geoscope's code in its
		// errors entry; that is the code the handler answers.
		if items, ok := errs["items"]; ok {
			codes = append(codes, o.errorCodes(t, items)...)
		}
	} else if props != nil {
		if code, ok := props["code"].(map[string]any); ok {
			if c, ok := code["const"].(string); ok {
				codes = append(codes, c)
			}
			if e, ok := code["enum"].([]any); ok && len(codes) == 0 {
				for _, x := range e {
					codes = append(codes, x.(string))
				}
			}
		}
	}
	// allOf narrows: the most specific part wins (Error lists every code,
	// the second part names this response's codes).
	if all, ok := s["allOf"].([]any); ok {
		var narrowest []string
		for _, sub := range all {
			if c := o.errorCodes(t, sub); narrowest == nil || (len(c) > 0 && len(c) < len(narrowest)) {
				narrowest = c
			}
		}
		codes = append(codes, narrowest...)
	}
	// anyOf admits each alternative's codes.
	if one, ok := s["anyOf"].([]any); ok {
		for _, sub := range one {
			codes = append(codes, o.errorCodes(t, sub)...)
		}
	}
	slices.Sort(codes)
	return slices.Compact(codes)
}

// jsonSchemaOf is the application/json schema of a response, or nil.
func jsonSchemaOf(resp map[string]any) any {
	content, _ := resp["content"].(map[string]any)
	media, _ := content["application/json"].(map[string]any)
	if media == nil {
		return nil
	}
	return media["schema"]
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	o := loadOpenAPI(t)
	onDisk, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(onDisk) != string(openAPIDocument) {
		t.Error("the embedded document differs from openapi.json")
	}
	if v := o.doc["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	info, _ := o.doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info needs title and version: %v", info)
	}
	schemes, _ := o.doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	if b, _ := schemes["bearer"].(map[string]any); b["type"] != "http" || b["scheme"] != "bearer" {
		t.Errorf("securitySchemes.bearer = %v, want an http bearer scheme", schemes["bearer"])
	}

	ids := map[string]string{}
	for key, op := range o.operations(t) {
		id, _ := op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", key)
		} else if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %q", key, prev, id)
		}
		ids[id] = key
		sec, ok := op["security"].([]any)
		if !ok {
			t.Errorf("%s does not state its security (use [] for open endpoints)", key)
		}
		for _, req := range sec {
			for name := range req.(map[string]any) {
				if _, ok := schemes[name]; !ok {
					t.Errorf("%s requires undefined security scheme %q", key, name)
				}
			}
		}
		responses, _ := op["responses"].(map[string]any)
		if _, ok := responses["200"]; !ok {
			t.Errorf("%s documents no 200 response", key)
		}
		for status, r := range responses {
			resp, err := o.deref(r)
			if err != nil {
				t.Errorf("%s %s: %v", key, status, err)
				continue
			}
			if d, _ := resp["description"].(string); d == "" {
				t.Errorf("%s %s has no description", key, status)
			}
			content, _ := resp["content"].(map[string]any)
			if len(content) == 0 {
				t.Errorf("%s %s documents no content", key, status)
			}
			for mt, media := range content {
				schema := media.(map[string]any)["schema"]
				if schema == nil {
					t.Errorf("%s %s %s has no schema", key, status, mt)
					continue
				}
				for _, e := range o.checkKeywords(schema, fmt.Sprintf("%s/%s/%s", key, status, mt)) {
					t.Error(e)
				}
			}
			if n, _ := strconv.Atoi(status); n >= 400 && jsonSchemaOf(resp) == nil {
				t.Errorf("%s %s: errors must be documented as application/json", key, status)
			}
		}
		if rb, ok := op["requestBody"]; ok {
			if s := jsonSchemaOf(rb.(map[string]any)); s == nil {
				t.Errorf("%s: the request body is not documented as application/json", key)
			}
		}
	}
	schemas, _ := o.doc["components"].(map[string]any)["schemas"].(map[string]any)
	for _, name := range sortedKeys(schemas) {
		for _, e := range o.checkKeywords(schemas[name], "#/components/schemas/"+name) {
			t.Error(e)
		}
	}
	for _, status := range []int{401, 403, 404, 405} {
		if o.unmatchedResponse(t, status) == nil {
			t.Errorf("x-geoscope-unmatched does not document %d", status)
		}
	}
	// Every $ref anywhere resolves.
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := o.pointer(ref); err != nil {
					t.Errorf("%s: %v", path, err)
				}
			}
			for k, x := range v {
				walk(x, path+"/"+k)
			}
		case []any:
			for i, x := range v {
				walk(x, fmt.Sprintf("%s/%d", path, i))
			}
		}
	}
	walk(o.doc, "#")
}

// TestOpenAPIRoutesMatch checks in both directions that the router's routes
// are exactly the document's operations.
func TestOpenAPIRoutesMatch(t *testing.T) {
	o := loadOpenAPI(t)
	ts := newTestServer(t, serverSetup{})
	var routes []string
	param := regexp.MustCompile(`:([A-Za-z_]+)`)
	for _, r := range ts.router.Routes() {
		// gin's /v1/ledger/:decision_id is OpenAPI's /v1/ledger/{decision_id}.
		routes = append(routes, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	var documented []string
	for key := range o.operations(t) {
		documented = append(documented, key)
	}
	slices.Sort(routes)
	slices.Sort(documented)
	for _, r := range routes {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not documented in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routes, d) {
			t.Errorf("openapi.json documents %s, which the server does not route", d)
		}
	}
	if len(routes) < 7 {
		t.Errorf("routes = %v, want at least the 7 endpoints of the API", routes)
	}
}

// handlerOutcomes is what each handler can answer, read from the code: the
// status codes and, for errors, the error codes. Every route may panic,
// which recoverPanic answers 500 internal, and every route may answer 403
// forbidden on a server open to local clients (localNamesOnly).
var handlerOutcomes = map[string]map[int][]string{
	"GET /health":           {200: nil, 403: {apierror.Forbidden}, 500: {apierror.Internal}, 503: {apierror.NotReady}},
	"GET /ready":            {200: nil, 403: {apierror.Forbidden}, 500: {apierror.Internal}, 503: {apierror.NotReady}},
	"GET /openapi.json":     {200: nil, 403: {apierror.Forbidden}, 500: {apierror.Internal}},
	"GET /metrics":          {200: nil, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 500: {apierror.Internal}},
	"GET /v1/status":        {200: nil, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 500: {apierror.Internal}},
	"POST /v1/admin/reload": {200: nil, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 500: {apierror.Internal}},
	"GET /v1/ledger": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 404: {apierror.NotFound},
		500: {apierror.Internal}, 503: {apierror.LedgerUnavailable},
	},
	"GET /report": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 404: {apierror.NotFound},
		500: {apierror.Internal}, 503: {apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"GET /v1/report": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 404: {apierror.NotFound},
		500: {apierror.Internal}, 503: {apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"GET /v1/ledger/{decision_id}": {
		200: nil, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 404: {apierror.NotFound},
		500: {apierror.Internal}, 503: {apierror.LedgerUnavailable},
	},
	"POST /v1/decisions": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 408: {apierror.BodyTimeout}, 413: {apierror.TooLarge},
		415: {apierror.UnsupportedMediaType}, 500: {apierror.Internal, apierror.PolicyError}, 503: {apierror.EvalTimeout, apierror.NotReady, apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"POST /v1/admission": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 408: {apierror.BodyTimeout}, 413: {apierror.TooLarge},
		415: {apierror.UnsupportedMediaType}, 500: {apierror.Internal, apierror.PolicyError}, 503: {apierror.EvalTimeout, apierror.NotReady, apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"POST /v1/data/geoscope/decision": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 408: {apierror.BodyTimeout}, 413: {apierror.TooLarge},
		415: {apierror.UnsupportedMediaType}, 500: {apierror.Internal, apierror.PolicyError}, 503: {apierror.EvalTimeout, apierror.NotReady, apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"GET /v1/data/geoscope/decision": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 413: {apierror.TooLarge},
		500: {apierror.Internal, apierror.PolicyError}, 503: {apierror.EvalTimeout, apierror.NotReady, apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"GET /v1/data/geoscope/admission": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 413: {apierror.TooLarge},
		500: {apierror.Internal, apierror.PolicyError}, 503: {apierror.EvalTimeout, apierror.NotReady, apierror.LedgerUnavailable, apierror.Overloaded},
	},
	"POST /v1/data/geoscope/admission": {
		200: nil, 400: {apierror.InvalidInput}, 401: {apierror.Unauthorized}, 403: {apierror.Forbidden}, 408: {apierror.BodyTimeout}, 413: {apierror.TooLarge},
		415: {apierror.UnsupportedMediaType}, 500: {apierror.Internal, apierror.PolicyError}, 503: {apierror.EvalTimeout, apierror.NotReady, apierror.LedgerUnavailable, apierror.Overloaded},
	},
}

// TestOpenAPIStatusCodes checks that every operation documents exactly the
// status codes and error codes its handler can produce.
func TestOpenAPIStatusCodes(t *testing.T) {
	o := loadOpenAPI(t)
	ops := o.operations(t)
	for key, want := range handlerOutcomes {
		op, ok := ops[key]
		if !ok {
			t.Errorf("%s is not documented", key)
			continue
		}
		responses, _ := op["responses"].(map[string]any)
		var got []int
		for status := range responses {
			n, err := strconv.Atoi(status)
			if err != nil {
				t.Errorf("%s: response key %q is not a status code", key, status)
				continue
			}
			got = append(got, n)
		}
		slices.Sort(got)
		wantStatuses := slices.Sorted(func(yield func(int) bool) {
			for s := range want {
				if !yield(s) {
					return
				}
			}
		})
		if !slices.Equal(got, wantStatuses) {
			t.Errorf("%s documents statuses %v, the handler answers %v", key, got, wantStatuses)
		}
		for status, codes := range want {
			resp := o.responseOf(t, op, status)
			if resp == nil {
				continue
			}
			schema := jsonSchemaOf(resp)
			if status < 400 {
				continue
			}
			if schema == nil {
				t.Errorf("%s %d has no JSON schema", key, status)
				continue
			}
			gotCodes := o.errorCodes(t, schema)
			wantCodes := slices.Sorted(slices.Values(codes))
			if !slices.Equal(gotCodes, wantCodes) {
				t.Errorf("%s %d documents error codes %v, the handler answers %v", key, status, gotCodes, wantCodes)
			}
		}
	}
	for key := range ops {
		if _, ok := handlerOutcomes[key]; !ok {
			t.Errorf("%s is documented but not in handlerOutcomes (update the test from the handler)", key)
		}
	}
	for status, code := range map[int]string{401: apierror.Unauthorized, 403: apierror.Forbidden, 404: apierror.NotFound, 405: apierror.MethodNotAllowed} {
		if resp := o.unmatchedResponse(t, status); resp != nil {
			if got := o.errorCodes(t, jsonSchemaOf(resp)); !slices.Equal(got, []string{code}) {
				t.Errorf("unmatched %d documents codes %v, want [%s]", status, got, code)
			}
		}
	}
	// The Error schema lists every code the server defines, except
	// client_closed_request: it is logged and counted for a client that
	// went away, and never reaches one.
	all := o.errorCodes(t, map[string]any{"$ref": "#/components/schemas/Error"})
	want := []string{apierror.InvalidInput, apierror.TooLarge, apierror.UnsupportedMediaType, apierror.Unauthorized, apierror.Forbidden,
		apierror.NotFound, apierror.MethodNotAllowed, apierror.NotReady, apierror.EvalTimeout, apierror.PolicyError, apierror.LedgerUnavailable, apierror.Overloaded, apierror.BodyTimeout, apierror.Internal}
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Errorf("Error.code enum = %v, want %v", all, want)
	}
}

// Bodies used by the probes below.
const (
	// decisionBody is targeted by standing order CN-2020-0601: the CN
	// participant is removed, ending the meeting and suspending the account
	// are refused.
	decisionBody = `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
		"participants": [{"id": "cn-1", "ip": "1.0.16.5"}, {"id": "hk-1", "ip": "147.8.1.1"}]}}`
	// Three people in CN: more actions than the two refusals.
	crowdBody = `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
		"participants": [{"id": "cn-1", "ip": "1.0.16.5"}, {"id": "cn-2", "ip": "1.0.16.6"}, {"id": "cn-3", "ip": "1.0.16.7"}]}}`
	joiningBody = `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"}, "participants": []},
		"joining": {"id": "cn-9", "ip": "1.0.16.9"}}`
	admissionBody = `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}},
		"participant": {"id": "joiner-cn", "ip": "36.110.44.4"}}`
	// Meeting m1 of engine/testdata/registry-orders: people in Crimea
	// (UA-43), Kyiv and CN.
	ordersBody = `{"meeting": {"id": "m1", "host": {"account_id": "acct-1", "account_country": "UA", "ip": "91.200.1.9"},
		"participants": [{"id": "p-crimea", "ip": "91.200.1.1"}, {"id": "p-kyiv", "ip": "91.202.1.1"}, {"id": "p-cn", "ip": "1.0.16.5"}]}}`
	serviceWideAdmissionBody = `{"meeting": {"id": "m-any", "host": {"account_id": "acct-z"}}, "participant": {"id": "j", "ip": "91.200.1.1"}}`
	// A policy that never finishes in time, and one whose answer is not an
	// object.
	spinRego   = "package geoscope\n\nfound if {\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n\ti * j < 0\n}\n\ndecision := {\"actions\": [], \"refused\": []} if not found\n"
	brokenRego = "package geoscope\n\ndecision := \"not an object\"\n"
	manifest   = `{"roots": ["geoscope"]}`
)

// probe is one real request, with the outcome the handler must give.
type probe struct {
	name   string
	srv    *testServer
	req    request
	status int
	code   string // error code; "" for success
	field  string // error field, when one is named
}

// probes builds servers in every state and the requests that make each
// handler produce each of its outcomes.
func probes(t *testing.T) []probe {
	t.Helper()
	const decide, admin, metrics = "decide-token-for-tests", "admin-token-for-tests", "metrics-token-for-tests"
	open := newTestServer(t, serverSetup{cfg: Config{MaxBody: 2048, MaxParticipants: 2}})
	auth := newTestServer(t, serverSetup{cfg: Config{TokensFile: writeScopedTokens(t, ScopeDecide, decide, ScopeAdmin, admin, ScopeMetrics, metrics)}})
	notReady := newTestServer(t, serverSetup{noLoad: true})
	spin := newTestServer(t, serverSetup{
		cfg:     Config{EvalTimeout: 50 * time.Millisecond},
		bundles: []string{writeBundle(t, map[string]string{"p.rego": spinRego, ".manifest": manifest}), registryBundle},
	})
	broken := newTestServer(t, serverSetup{
		bundles: []string{writeBundle(t, map[string]string{"p.rego": brokenRego, ".manifest": manifest}), registryBundle},
	})
	failing := newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithRecorder(failingRecorder{})}})
	unrecorded := newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithRecorder(unavailableRecorder{})}})
	led, ledgerID := newLedgerServer(t)
	// A ledger that is closed, and whose database file has become
	// unreadable: records and reads both fail.
	closedLedger, _ := newLedgerServer(t)
	if err := closedLedger.ledger.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(closedLedger.dataDir, "ledger.db"), []byte("not a database, not even close"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A server building a report, whose next report request gives up
	// waiting for its turn at once.
	busyReports, _ := newLedgerServer(t)
	busyReports.reports.wait = time.Millisecond
	if err := busyReports.reports.acquire(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	// A server whose in-flight budget is taken: nothing is admitted.
	full := newTestServer(t, serverSetup{cfg: Config{QueueTimeout: time.Millisecond}})
	full.fillLanes(t)
	// A server open to local clients, as Serve runs it on a loopback
	// listener without tokens: it answers only loopback names and origins.
	local := newTestServer(t, serverSetup{})
	local.loopbackNamesOnly.Store(true)
	// A server whose answers may not exceed a few bytes.
	tiny := newTestServer(t, serverSetup{cfg: Config{MaxResponse: 64}})
	// A server whose answers hold a preview's refusals, but not with a
	// long order id repeated in each.
	small := newTestServer(t, serverSetup{cfg: Config{MaxResponse: 1024}})
	badGeo := newTestServer(t, serverSetup{geo: writeBundle(t, map[string]string{"geo.mmdb": "not a database"}) + "/geo.mmdb", noLoad: true})
	// Orders with periods of validity, a service-wide order and a
	// subdivision jurisdiction: with a City database (subdivisions in the
	// actions, orders not in force in the decision) and with a Country one
	// (a warning in the status).
	orders := []string{"../../policies", "../../engine/testdata/registry-orders"}
	ordersCity := newTestServer(t, serverSetup{bundles: orders, geo: geotest.StandardCity(t)})
	ordersCountry := newTestServer(t, serverSetup{bundles: orders})

	big := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b"}, "participants": [` +
		strings.Repeat(`{"id": "p", "ip": "8.8.8.8"},`, 100) + `{"id": "q", "ip": "8.8.8.8"}]}}`
	three := `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [
		{"id": "a", "ip": "8.8.8.1"}, {"id": "b", "ip": "8.8.8.2"}, {"id": "c", "ip": "8.8.8.3"}]}}`
	post := func(path, body string) request { return request{method: http.MethodPost, path: path, body: body} }
	get := func(path string) request { return request{method: http.MethodGet, path: path} }
	withToken := func(r request, token string) request { r.token = token; return r }

	var ps []probe
	// The Data API endpoints take the same requests in OPA's envelope and
	// name fields as paths in it.
	wrap := func(body string) string { return `{"input": ` + body + `}` }
	for _, ep := range []struct{ path, ok, bad, prefix string }{
		{"/v1/decisions", decisionBody, `{"meeting": {"id": "m", "colour": "red"}}`, ""},
		{"/v1/admission", admissionBody, `{"meeting": {"id": "m", "colour": "red"}}`, ""},
		{DataDecisionPath, wrap(decisionBody), wrap(`{"meeting": {"id": "m", "colour": "red"}}`), "input."},
		{DataAdmissionPath, wrap(admissionBody), wrap(`{"meeting": {"id": "m", "colour": "red"}}`), "input."},
	} {
		ps = append(ps,
			probe{ep.path + " ok", open, post(ep.path, ep.ok), 200, "", ""},
			probe{ep.path + " bad JSON", open, post(ep.path, `{"meeting": `), 400, apierror.InvalidInput, ""},
			probe{ep.path + " unknown field", open, post(ep.path, ep.bad), 400, apierror.InvalidInput, ep.prefix + "meeting.colour"},
			probe{ep.path + " no token", auth, post(ep.path, ep.ok), 401, apierror.Unauthorized, ""},
			probe{ep.path + " wrong token", auth, withToken(post(ep.path, ep.ok), "nope"), 401, apierror.Unauthorized, ""},
			probe{ep.path + " decide token", auth, withToken(post(ep.path, ep.ok), decide), 200, "", ""},
			probe{ep.path + " admin token", auth, withToken(post(ep.path, ep.ok), admin), 200, "", ""},
			probe{ep.path + " metrics token", auth, withToken(post(ep.path, ep.ok), metrics), 403, apierror.Forbidden, ""},
			probe{ep.path + " body over max-body", open, post(ep.path, big), 413, apierror.TooLarge, "body"},
			probe{ep.path + " chunked body over max-body", open, request{method: http.MethodPost, path: ep.path, body: big, chunked: true}, 413, apierror.TooLarge, "body"},
			probe{ep.path + " body stalls", open, request{method: http.MethodPost, path: ep.path, body: `{"meeting": `, stalls: true}, 408, apierror.BodyTimeout, "body"},
			probe{ep.path + " text/plain", open, request{method: http.MethodPost, path: ep.path, body: ep.ok, contentType: "text/plain"}, 415, apierror.UnsupportedMediaType, "Content-Type"},
			probe{ep.path + " no content type", open, request{method: http.MethodPost, path: ep.path, body: ep.ok, noContentType: true}, 415, apierror.UnsupportedMediaType, "Content-Type"},
			probe{ep.path + " not ready", notReady, post(ep.path, ep.ok), 503, apierror.NotReady, ""},
			probe{ep.path + " eval timeout", spin, post(ep.path, ep.ok), 503, apierror.EvalTimeout, ""},
			probe{ep.path + " policy error", broken, post(ep.path, ep.ok), 500, apierror.PolicyError, ""},
			probe{ep.path + " recorder fails", failing, post(ep.path, ep.ok), 500, apierror.Internal, ""},
			probe{ep.path + " ledger unavailable", unrecorded, post(ep.path, ep.ok), 503, apierror.LedgerUnavailable, ""},
			probe{ep.path + " ledger closed", closedLedger, post(ep.path, ep.ok), 503, apierror.LedgerUnavailable, ""},
			probe{ep.path + " recorded", led, post(ep.path, ep.ok), 200, "", ""},
			probe{ep.path + " overloaded", full, post(ep.path, ep.ok), 503, apierror.Overloaded, ""},
		)
		if ep.prefix == "" {
			ps = append(ps, probe{ep.path + " GET", open, get(ep.path), 405, apierror.MethodNotAllowed, ""})
		} else {
			ps = append(ps, probe{ep.path + " PUT", open, request{method: http.MethodPut, path: ep.path}, 405, apierror.MethodNotAllowed, ""})
		}
	}
	// A GET of the Data API takes the input as the JSON value of its input
	// parameter, as OPA does, through the same checks as a POST's body.
	query := func(path, in string) request {
		return request{method: http.MethodGet, path: path, rawQuery: "input=" + url.QueryEscape(in)}
	}
	for _, ep := range []struct{ path, ok, bad string }{
		{DataDecisionPath, decisionBody, `{"meeting": {"id": "m", "colour": "red"}}`},
		{DataAdmissionPath, admissionBody, `{"meeting": {"id": "m", "colour": "red"}}`},
	} {
		ps = append(ps,
			probe{ep.path + " GET ok", open, query(ep.path, ep.ok), 200, "", ""},
			probe{ep.path + " GET pretty", open, request{method: http.MethodGet, path: ep.path, rawQuery: "pretty&metrics=true&input=" + url.QueryEscape(ep.ok)}, 200, "", ""},
			probe{ep.path + " GET bad JSON", open, query(ep.path, `{"meeting": `), 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET JSON in single quotes", open, query(ep.path, `{'meeting': 1}`), 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET unknown field", open, query(ep.path, ep.bad), 400, apierror.InvalidInput, "input.meeting.colour"},
			probe{ep.path + " GET no input", open, get(ep.path), 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET empty input", open, request{method: http.MethodGet, path: ep.path, rawQuery: "input="}, 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET null input", open, query(ep.path, "null"), 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET not an object", open, query(ep.path, "[]"), 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET trailing data", open, query(ep.path, ep.ok+"{}"), 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET repeated input", open, request{method: http.MethodGet, path: ep.path, rawQuery: "input=" + url.QueryEscape(ep.ok) + "&input=" + url.QueryEscape(ep.ok)}, 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET unencoded percent", open, request{method: http.MethodGet, path: ep.path, rawQuery: `input={"meeting":{"id":"50%"}}`}, 400, apierror.InvalidInput, "query"},
			probe{ep.path + " GET semicolon", open, request{method: http.MethodGet, path: ep.path, rawQuery: "input=" + url.QueryEscape(ep.ok) + ";pretty"}, 400, apierror.InvalidInput, "query"},
			probe{ep.path + " GET with a body", open, request{method: http.MethodGet, path: ep.path, rawQuery: "input=" + url.QueryEscape(ep.ok), body: wrap(ep.ok)}, 400, apierror.InvalidInput, "body"},
			probe{ep.path + " GET input over max-body", open, query(ep.path, big), 413, apierror.TooLarge, "input"},
			probe{ep.path + " POST with an input parameter", open, request{method: http.MethodPost, path: ep.path, rawQuery: "input=" + url.QueryEscape(ep.ok), body: wrap(ep.ok)}, 400, apierror.InvalidInput, "input"},
			probe{ep.path + " GET no token", auth, query(ep.path, ep.ok), 401, apierror.Unauthorized, ""},
			probe{ep.path + " GET wrong token", auth, withToken(query(ep.path, ep.ok), "nope"), 401, apierror.Unauthorized, ""},
			probe{ep.path + " GET decide token", auth, withToken(query(ep.path, ep.ok), decide), 200, "", ""},
			probe{ep.path + " GET admin token", auth, withToken(query(ep.path, ep.ok), admin), 200, "", ""},
			probe{ep.path + " GET metrics token", auth, withToken(query(ep.path, ep.ok), metrics), 403, apierror.Forbidden, ""},
			probe{ep.path + " GET not ready", notReady, query(ep.path, ep.ok), 503, apierror.NotReady, ""},
			probe{ep.path + " GET eval timeout", spin, query(ep.path, ep.ok), 503, apierror.EvalTimeout, ""},
			probe{ep.path + " GET policy error", broken, query(ep.path, ep.ok), 500, apierror.PolicyError, ""},
			probe{ep.path + " GET recorder fails", failing, query(ep.path, ep.ok), 500, apierror.Internal, ""},
			probe{ep.path + " GET ledger unavailable", unrecorded, query(ep.path, ep.ok), 503, apierror.LedgerUnavailable, ""},
			probe{ep.path + " GET recorded", led, query(ep.path, ep.ok), 200, "", ""},
			probe{ep.path + " GET overloaded", full, query(ep.path, ep.ok), 503, apierror.Overloaded, ""},
		)
	}
	ps = append(ps,
		probe{"data decision GET over max-participants", open, query(DataDecisionPath, three), 413, apierror.TooLarge, "input.meeting.participants"},
		probe{"data decision GET bad IP", open, query(DataDecisionPath, strings.Replace(decisionBody, "147.8.1.1", "147.8.1", 1)), 400, apierror.InvalidInput, "input.meeting.participants[1].ip"},
		probe{"data decision GET answer over max-response", tiny, query(DataDecisionPath, crowdBody), 413, apierror.TooLarge, "input.meeting.participants"},
	)
	ps = append(ps,
		probe{"data decision with joining", open, post(DataDecisionPath, wrap(joiningBody)), 200, "", ""},
		probe{"data decision without input", open, post(DataDecisionPath, `{}`), 400, apierror.InvalidInput, "input"},
		probe{"data decision null input", open, post(DataDecisionPath, `{"input": null}`), 400, apierror.InvalidInput, "input"},
		probe{"data decision bare request", open, post(DataDecisionPath, decisionBody), 400, apierror.InvalidInput, "meeting"},
		probe{"data decision repeated input", open, post(DataDecisionPath, `{"input": {}, "input": {}}`), 400, apierror.InvalidInput, "input"},
		probe{"data decision not an object", open, post(DataDecisionPath, `[]`), 400, apierror.InvalidInput, ""},
		probe{"data decision trailing data", open, post(DataDecisionPath, wrap(decisionBody)+"{}"), 400, apierror.InvalidInput, ""},
		probe{"data decision bad IP", open, post(DataDecisionPath, wrap(strings.Replace(decisionBody, "147.8.1.1", "147.8.1", 1))), 400, apierror.InvalidInput, "input.meeting.participants[1].ip"},
		probe{"data decision over max-participants", open, post(DataDecisionPath, wrap(three)), 413, apierror.TooLarge, "input.meeting.participants"},
		probe{"data admission bad IP", open, post(DataAdmissionPath, wrap(strings.Replace(admissionBody, "36.110.44.4", "36.110", 1))), 400, apierror.InvalidInput, "input.participant.ip"},
		probe{"data decision pretty", open, post(DataDecisionPath+"?pretty=true&metrics=true", wrap(decisionBody)), 200, "", ""},
		probe{"data decision with provenance and metrics", open, post(DataDecisionPath+"?provenance=true&metrics=true", wrap(decisionBody)), 200, "", ""},
		probe{"data admission GET with provenance and metrics", open, request{method: http.MethodGet, path: DataAdmissionPath, rawQuery: "provenance&metrics&input=" + url.QueryEscape(admissionBody)}, 200, "", ""},
		probe{"data decision explain", open, post(DataDecisionPath+"?explain=full", wrap(decisionBody)), 400, apierror.InvalidInput, "explain"},
		probe{"data admission GET instrument", open, request{method: http.MethodGet, path: DataAdmissionPath, rawQuery: "instrument=true&input=" + url.QueryEscape(admissionBody)}, 400, apierror.InvalidInput, "instrument"},
		probe{"data decision metrics not a boolean", open, post(DataDecisionPath+"?metrics=1", wrap(decisionBody)), 400, apierror.InvalidInput, "metrics"},
		probe{"data decision X-Request-Id twice", open, request{method: http.MethodPost, path: DataDecisionPath, body: wrap(decisionBody), header: http.Header{"X-Request-Id": {"a", "b"}}}, 400, apierror.InvalidInput, "X-Request-Id"},
		probe{"decisions X-Request-Id twice", open, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody, header: http.Header{"X-Request-Id": {"a", "b"}}}, 400, apierror.InvalidInput, "X-Request-Id"},
		probe{"admission X-Request-Id twice", open, request{method: http.MethodPost, path: "/v1/admission", body: admissionBody, header: http.Header{"X-Request-Id": {"a", "b"}}}, 400, apierror.InvalidInput, "X-Request-Id"},
		probe{"other data document", open, post("/v1/data/geoscope/registry/violations", `{"input": {}}`), 404, apierror.NotFound, ""},
		// With tokens, authentication comes before a path is found
		// missing or a method not allowed: without a token, every path
		// but the open ones answers 401.
		probe{"data root, no token", auth, get("/v1/data"), 401, apierror.Unauthorized, ""},
		probe{"data root, metrics token", auth, withToken(get("/v1/data"), metrics), 403, apierror.Forbidden, ""},
		probe{"data root", auth, withToken(get("/v1/data"), decide), 404, apierror.NotFound, ""},
		probe{"other data document, no token", auth, post("/v1/data/geoscope/registry/violations", `{"input": {}}`), 401, apierror.Unauthorized, ""},
		probe{"other data document, wrong token", auth, withToken(post("/v1/data/geoscope/registry/violations", `{"input": {}}`), "nope"), 401, apierror.Unauthorized, ""},
		probe{"other data document, decide token", auth, withToken(post("/v1/data/geoscope/registry/violations", `{"input": {}}`), decide), 404, apierror.NotFound, ""},
		probe{"decisions with joining", open, post("/v1/decisions", joiningBody), 200, "", ""},
		probe{"decisions bad IP", open, post("/v1/decisions", strings.Replace(decisionBody, "147.8.1.1", "147.8.1", 1)), 400, apierror.InvalidInput, "meeting.participants[1].ip"},
		probe{"decisions charset", open, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody, contentType: "application/json; charset=utf-8"}, 200, "", ""},
		probe{"decisions latin-1", open, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody, contentType: "application/json; charset=latin1"}, 415, apierror.UnsupportedMediaType, "Content-Type"},
		probe{"decisions over max-participants", open, post("/v1/decisions", three), 413, apierror.TooLarge, "meeting.participants"},
		probe{"decisions answer over max-response", tiny, post("/v1/decisions", crowdBody), 413, apierror.TooLarge, "meeting.participants"},
		probe{"data decision answer over max-response", tiny, post(DataDecisionPath, wrap(crowdBody)), 413, apierror.TooLarge, "input.meeting.participants"},
		// Mostly the policy's refusals: its doing, not the roster's.
		probe{"decisions answer over max-response, mostly refusals", tiny, post("/v1/decisions", decisionBody), 500, apierror.PolicyError, ""},
		// A preview's answer is about the order the request submitted: the
		// client's to change, never a 5xx.
		probe{"preview answered within max-response", small, post("/v1/decisions", previewBody("PV-1")), 200, "", ""},
		probe{"preview answer over max-response for its long order id", small, post("/v1/decisions", previewBody(strings.Repeat("O", 256))), 413, apierror.TooLarge, "order.id"},
		probe{"data preview answer over max-response for its long order id", small, post(DataDecisionPath, wrap(previewBody(strings.Repeat("O", 256)))), 413, apierror.TooLarge, "input.order.id"},
		probe{"data preview answer within max-response", small, post(DataDecisionPath, wrap(previewBody("PV-1"))), 200, "", ""},
		probe{"data preview answer over max-response indented", small, post(DataDecisionPath+"?pretty", wrap(previewBody("PV-1"))), 413, apierror.TooLarge, "pretty"},
		probe{"preview answer over max-response, refusals of its demands", tiny, post("/v1/decisions", previewBody("PV-1")), 413, apierror.TooLarge, "order"},
		probe{"data preview answer over max-response, refusals of its demands", tiny, post(DataDecisionPath, wrap(previewBody("PV-1"))), 413, apierror.TooLarge, "input.order"},
		probe{"admission with a roster", open, post("/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}, "participant": {"id": "p", "ip": "8.8.8.8"}}`), 400, apierror.InvalidInput, "meeting.participants"},
		probe{"health", open, get("/health"), 200, "", ""},
		probe{"health not ready", notReady, get("/health"), 200, "", ""},
		// OPA's readiness parameters keep their meaning.
		probe{"health?bundles not ready", notReady, get("/health?bundles"), 503, apierror.NotReady, ""},
		probe{"health?plugins not ready", notReady, get("/health?plugins&exclude-plugin=status"), 503, apierror.NotReady, ""},
		probe{"health?bundle=true not ready (OPA's older name)", notReady, get("/health?bundle=true"), 503, apierror.NotReady, ""},
		probe{"health?bundles=TRUE not ready", notReady, get("/health?bundles=TRUE"), 503, apierror.NotReady, ""},
		probe{"health?bundles=false not ready", notReady, get("/health?bundles=false"), 200, "", ""},
		probe{"health?plugins without the bundle plugin, not ready", notReady, get("/health?plugins&exclude-plugin=bundle"), 200, "", ""},
		probe{"health?bundles ready", open, get("/health?bundles"), 200, "", ""},
		probe{"health?plugins ready", open, get("/health?plugins"), 200, "", ""},
		probe{"health on auth server", auth, get("/health"), 200, "", ""},
		probe{"ready", open, get("/ready"), 200, "", ""},
		probe{"ready on auth server", auth, get("/ready"), 200, "", ""},
		probe{"not ready", notReady, get("/ready"), 503, apierror.NotReady, ""},
		probe{"openapi", open, get("/openapi.json"), 200, "", ""},
		probe{"openapi on auth server", auth, get("/openapi.json"), 200, "", ""},
		probe{"status", open, get("/v1/status"), 200, "", ""},
		probe{"status not ready", notReady, get("/v1/status"), 200, "", ""},
		probe{"status no token", auth, get("/v1/status"), 401, apierror.Unauthorized, ""},
		probe{"status decide token", auth, withToken(get("/v1/status"), decide), 403, apierror.Forbidden, ""},
		probe{"status admin token", auth, withToken(get("/v1/status"), admin), 200, "", ""},
		probe{"status metrics token", auth, withToken(get("/v1/status"), metrics), 200, "", ""},
		probe{"status with a warning", ordersCountry, get("/v1/status"), 200, "", ""},
		probe{"decision with orders not in force and subdivisions", ordersCity, post("/v1/decisions", ordersBody), 200, "", ""},
		probe{"admission by a service-wide order", ordersCity, post("/v1/admission", serviceWideAdmissionBody), 200, "", ""},
		probe{"metrics", open, get("/metrics"), 200, "", ""},
		probe{"metrics no token", auth, get("/metrics"), 401, apierror.Unauthorized, ""},
		probe{"metrics wrong token", auth, withToken(get("/metrics"), "nope"), 401, apierror.Unauthorized, ""},
		probe{"metrics decide token", auth, withToken(get("/metrics"), decide), 403, apierror.Forbidden, ""},
		probe{"metrics admin token", auth, withToken(get("/metrics"), admin), 200, "", ""},
		probe{"metrics metrics token", auth, withToken(get("/metrics"), metrics), 200, "", ""},
		probe{"reload", open, post("/v1/admin/reload", ""), 200, "", ""},
		probe{"reload, GeoIP rejected", badGeo, post("/v1/admin/reload", ""), 200, "", ""},
		probe{"reload no token", auth, post("/v1/admin/reload", ""), 401, apierror.Unauthorized, ""},
		probe{"reload decide token", auth, withToken(post("/v1/admin/reload", ""), decide), 403, apierror.Forbidden, ""},
		probe{"reload metrics token", auth, withToken(post("/v1/admin/reload", ""), metrics), 403, apierror.Forbidden, ""},
		probe{"reload admin token", auth, withToken(post("/v1/admin/reload", ""), admin), 200, "", ""},
		probe{"GET reload, no token", auth, get("/v1/admin/reload"), 401, apierror.Unauthorized, ""},
		probe{"GET reload, decide token", auth, withToken(get("/v1/admin/reload"), decide), 403, apierror.Forbidden, ""},
		probe{"GET reload", auth, withToken(get("/v1/admin/reload"), admin), 405, apierror.MethodNotAllowed, ""},
		// A preview entry (an order submitted for review) is listed too.
		probe{"preview decision recorded", led, post("/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p1", "ip": "1.0.16.1"}]}, "order": {"id": "o", "authority": "cn.cac", "demands": ["remove_participants"], "targets": {"meetings": ["m"]}, "legal_basis": "x", "received": "2020-06-01"}}`), 200, "", ""},
		probe{"ledger list", led, get("/v1/ledger"), 200, "", ""},
		probe{"ledger list, filtered", led, get("/v1/ledger?since=2020-01-01&until=2999-01-01T00:00:00Z&order=CN-2020-0601&authority=cn.cac&limit=1"), 200, "", ""},
		probe{"ledger list, bad since", led, get("/v1/ledger?since=yesterday"), 400, apierror.InvalidInput, "since"},
		probe{"ledger list, bad until", led, get("/v1/ledger?until=2020-13-01"), 400, apierror.InvalidInput, "until"},
		probe{"ledger list, limit 0", led, get("/v1/ledger?limit=0"), 400, apierror.InvalidInput, "limit"},
		probe{"ledger list, limit too large", led, get("/v1/ledger?limit=1001"), 400, apierror.InvalidInput, "limit"},
		probe{"ledger list, bad cursor", led, get("/v1/ledger?cursor=not-a-cursor"), 400, apierror.InvalidInput, "cursor"},
		probe{"ledger list, unknown parameter", led, get("/v1/ledger?LIMIT=1"), 400, apierror.InvalidInput, "LIMIT"},
		probe{"ledger list, repeated parameter", led, get("/v1/ledger?limit=1&limit=2"), 400, apierror.InvalidInput, "limit"},
		// Go's URL.Query drops a pair it cannot read: the filter would be
		// lost, and every order listed.
		probe{"ledger list, semicolon", led, request{method: http.MethodGet, path: "/v1/ledger", rawQuery: "order=CN-2020-0602;limit=5"}, 400, apierror.InvalidInput, "query"},
		probe{"ledger list, bad escape", led, request{method: http.MethodGet, path: "/v1/ledger", rawQuery: "order=CN-2020-0602%"}, 400, apierror.InvalidInput, "query"},
		probe{"ledger list, order not text", led, request{method: http.MethodGet, path: "/v1/ledger", rawQuery: "order=%ff"}, 200, "", ""},
		probe{"ledger entry, id not text", led, get("/v1/ledger/%ff"), 404, apierror.NotFound, "decision_id"},
		probe{"ledger list, off", open, get("/v1/ledger"), 404, apierror.NotFound, ""},
		probe{"ledger list, unavailable", closedLedger, get("/v1/ledger"), 503, apierror.LedgerUnavailable, ""},
		probe{"ledger list no token", auth, get("/v1/ledger"), 401, apierror.Unauthorized, ""},
		probe{"ledger list decide token", auth, withToken(get("/v1/ledger"), decide), 403, apierror.Forbidden, ""},
		probe{"ledger list metrics token", auth, withToken(get("/v1/ledger"), metrics), 403, apierror.Forbidden, ""},
		probe{"report", led, get("/v1/report"), 200, "", ""},
		probe{"report, period", led, get("/v1/report?since=2020-01-01&until=2999-01-01T00:00:00Z"), 200, "", ""},
		probe{"report, until only", led, get("/v1/report?until=2999-01-01"), 200, "", ""},
		probe{"report, bad since", led, get("/v1/report?since=last-year"), 400, apierror.InvalidInput, "since"},
		probe{"report, unknown parameter", led, get("/v1/report?from=2026-01-01"), 400, apierror.InvalidInput, "from"},
		probe{"report, semicolon", led, request{method: http.MethodGet, path: "/v1/report", rawQuery: "since=2026-12-03T23:19:00Z;"}, 400, apierror.InvalidInput, "query"},
		probe{"report, empty period", led, get("/v1/report?since=2030-01-01&until=2020-01-01"), 400, apierror.InvalidInput, "until"},
		probe{"report, off", open, get("/v1/report"), 404, apierror.NotFound, ""},
		probe{"report, unavailable", closedLedger, get("/v1/report"), 503, apierror.LedgerUnavailable, ""},
		probe{"report, another being built", busyReports, get("/v1/report"), 503, apierror.Overloaded, ""},
		probe{"report no token", auth, get("/v1/report"), 401, apierror.Unauthorized, ""},
		probe{"report decide token", auth, withToken(get("/v1/report"), decide), 403, apierror.Forbidden, ""},
		probe{"report metrics token", auth, withToken(get("/v1/report"), metrics), 403, apierror.Forbidden, ""},
		probe{"report page", led, get("/report"), 200, "", ""},
		probe{"report page, bad until", led, get("/report?until=tomorrow"), 400, apierror.InvalidInput, "until"},
		probe{"report page, off", open, get("/report"), 404, apierror.NotFound, ""},
		probe{"report page, unavailable", closedLedger, get("/report"), 503, apierror.LedgerUnavailable, ""},
		probe{"report page, another being built", busyReports, get("/report"), 503, apierror.Overloaded, ""},
		probe{"report page no token", auth, get("/report"), 401, apierror.Unauthorized, ""},
		probe{"report page decide token", auth, withToken(get("/report"), decide), 403, apierror.Forbidden, ""},
		probe{"report page metrics token", auth, withToken(get("/report"), metrics), 403, apierror.Forbidden, ""},
		probe{"ledger entry", led, get("/v1/ledger/" + ledgerID), 200, "", ""},
		probe{"ledger entry, unknown", led, get("/v1/ledger/no-such-decision"), 404, apierror.NotFound, "decision_id"},
		probe{"ledger entry, off", open, get("/v1/ledger/" + ledgerID), 404, apierror.NotFound, ""},
		probe{"ledger entry, unavailable", closedLedger, get("/v1/ledger/" + ledgerID), 503, apierror.LedgerUnavailable, ""},
		probe{"ledger entry no token", auth, get("/v1/ledger/x"), 401, apierror.Unauthorized, ""},
		probe{"ledger entry decide token", auth, withToken(get("/v1/ledger/x"), decide), 403, apierror.Forbidden, ""},
		probe{"ledger entry metrics token", auth, withToken(get("/v1/ledger/x"), metrics), 403, apierror.Forbidden, ""},
		probe{"POST ledger entry", led, post("/v1/ledger/"+ledgerID, "{}"), 405, apierror.MethodNotAllowed, ""},
		probe{"health, foreign Host", local, request{method: http.MethodGet, path: "/health", host: "attacker.example"}, 403, apierror.Forbidden, "Host"},
		probe{"ready, foreign Host", local, request{method: http.MethodGet, path: "/ready", host: "attacker.example:8181"}, 403, apierror.Forbidden, "Host"},
		probe{"openapi, foreign Host", local, request{method: http.MethodGet, path: "/openapi.json", host: "attacker.example"}, 403, apierror.Forbidden, "Host"},
		probe{"ready, loopback Host", local, request{method: http.MethodGet, path: "/ready", host: "localhost:8181"}, 200, "", ""},
		probe{"decision, foreign Origin", local, request{method: http.MethodPost, path: "/v1/decisions", host: "127.0.0.1:8181", origin: "https://attacker.example", body: decisionBody}, 403, apierror.Forbidden, "Origin"},
		probe{"admission, foreign Origin", local, request{method: http.MethodPost, path: "/v1/admission", host: "127.0.0.1:8181", origin: "https://attacker.example", body: admissionBody}, 403, apierror.Forbidden, "Origin"},
		probe{"data decision, foreign Host", local, request{method: http.MethodPost, path: DataDecisionPath, host: "attacker.example", body: `{"input": ` + decisionBody + `}`}, 403, apierror.Forbidden, ""},
		probe{"data admission, foreign Origin", local, request{method: http.MethodPost, path: DataAdmissionPath, host: "127.0.0.1", origin: "null", body: `{"input": ` + admissionBody + `}`}, 403, apierror.Forbidden, ""},
		probe{"unknown path, foreign Host", local, request{method: http.MethodGet, path: "/v2/decisions", host: "attacker.example"}, 403, apierror.Forbidden, "Host"},
		probe{"unknown path", open, get("/v2/decisions"), 404, apierror.NotFound, ""},
		probe{"trailing slash", open, get("/health/"), 404, apierror.NotFound, ""},
		probe{"unknown path, auth server, no token", auth, post("/v1/decisions/x", decisionBody), 401, apierror.Unauthorized, ""},
		probe{"unknown path, auth server, wrong token", auth, withToken(get("/v2/decisions"), "nope"), 401, apierror.Unauthorized, ""},
		probe{"unknown path, auth server", auth, withToken(post("/v1/decisions/x", decisionBody), metrics), 404, apierror.NotFound, ""},
		probe{"POST /health", open, post("/health", "{}"), 405, apierror.MethodNotAllowed, ""},
		probe{"HEAD /health", open, request{method: http.MethodHead, path: "/health"}, 405, apierror.MethodNotAllowed, ""},
		probe{"DELETE /v1/status, no token", auth, request{method: http.MethodDelete, path: "/v1/status"}, 401, apierror.Unauthorized, ""},
		probe{"DELETE /v1/status", auth, request{method: http.MethodDelete, path: "/v1/status", token: metrics}, 405, apierror.MethodNotAllowed, ""},
		probe{"DELETE /v1/ledger, no token", auth, request{method: http.MethodDelete, path: "/v1/ledger"}, 401, apierror.Unauthorized, ""},
		probe{"PUT data decision, no token", auth, request{method: http.MethodPut, path: DataDecisionPath}, 401, apierror.Unauthorized, ""},
		probe{"PUT data decision", auth, request{method: http.MethodPut, path: DataDecisionPath, token: decide}, 405, apierror.MethodNotAllowed, ""},
		probe{"HEAD /health, auth server", auth, request{method: http.MethodHead, path: "/health"}, 405, apierror.MethodNotAllowed, ""},
	)
	return ps
}

// TestOpenAPIResponsesValidate sends real requests that produce every
// documented outcome and validates each response against the document;
// every documented (operation, status, error code) must be produced by some
// probe.
func TestOpenAPIResponsesValidate(t *testing.T) {
	o := loadOpenAPI(t)
	ops := o.operations(t)
	seen := map[outcome]bool{}
	for _, p := range probes(t) {
		t.Run(p.name, func(t *testing.T) {
			resp := p.srv.do(t, p.req)
			if resp.status != p.status {
				t.Fatalf("%s %s: status %d, want %d: %s", p.req.method, p.req.path, resp.status, p.status, resp)
			}
			if id := resp.header.Get("X-Request-Id"); id == "" {
				t.Error("no X-Request-Id header")
			}
			key := matchOperation(ops, p.req.method, p.req.path)
			var documented map[string]any
			if op, ok := ops[key]; ok {
				documented = o.responseOf(t, op, resp.status)
				if documented == nil {
					t.Fatalf("%s answered %d, which openapi.json does not document for it", key, resp.status)
				}
			} else {
				key = "unmatched"
				if documented = o.unmatchedResponse(t, resp.status); documented == nil {
					t.Fatalf("%s %s answered %d, which x-geoscope-unmatched does not document", p.req.method, p.req.path, resp.status)
				}
			}
			code := ""
			if p.req.method == http.MethodHead {
				// No body to validate.
			} else if mt := resp.header.Get("Content-Type"); strings.HasPrefix(mt, "application/json") {
				v, err := decodeJSON(resp.body)
				if err != nil {
					t.Fatalf("body is not one JSON value: %v: %s", err, resp.body)
				}
				schema := jsonSchemaOf(documented)
				if schema == nil {
					t.Fatalf("%s %d: JSON answered, none documented", key, resp.status)
				}
				for _, e := range o.validate(schema, v, "") {
					t.Errorf("%s %d does not match the document: %s", key, resp.status, e)
				}
				if resp.status >= 400 {
					e := resp.errorBody(t)
					code = e.Code
					if p.field != "" && e.Field != p.field {
						t.Errorf("field = %q, want %q (%s)", e.Field, p.field, e.Message)
					}
					if e.Code == apierror.Internal && e.ErrorID == "" {
						t.Error("internal error without error_id")
					}
				}
			} else {
				content, _ := documented["content"].(map[string]any)
				base, _, _ := strings.Cut(mt, ";")
				if _, ok := content[base]; !ok {
					t.Errorf("%s %d answered %q, which is not documented (%v)", key, resp.status, mt, sortedKeys(content))
				}
			}
			if p.req.method != http.MethodHead && code != p.code {
				t.Errorf("code = %q, want %q", code, p.code)
			}
			if resp.status == http.StatusUnauthorized && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer WWW-Authenticate header: %q", resp.header.Get("WWW-Authenticate"))
			}
			switch retry := resp.header.Get("Retry-After"); code {
			case apierror.NotReady, apierror.Overloaded:
				if retry == "" {
					t.Errorf("%s without a Retry-After header", code)
				}
			case apierror.EvalTimeout, apierror.LedgerUnavailable:
				// Not an invitation to repeat the request (errors.go).
				if retry != "" {
					t.Errorf("%s with a Retry-After header (%s)", code, retry)
				}
			}
			if resp.status == http.StatusMethodNotAllowed && resp.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			seen[outcome{key, resp.status, p.code}] = true
		})
	}

	// Coverage: every documented outcome was produced. A 500 internal
	// outside the decision endpoints needs a panic in the handler, which
	// recover_test produces on a route of its own.
	for key, op := range ops {
		responses, _ := op["responses"].(map[string]any)
		for status := range responses {
			n, _ := strconv.Atoi(status)
			codes := []string{""}
			if n >= 400 {
				codes = o.errorCodes(t, jsonSchemaOf(o.responseOf(t, op, n)))
			}
			for _, c := range codes {
				if n == 500 && c == apierror.Internal && !slices.Contains([]string{"POST /v1/decisions", "POST /v1/admission", "POST " + DataDecisionPath, "POST " + DataAdmissionPath, "GET " + DataDecisionPath, "GET " + DataAdmissionPath}, key) {
					continue
				}
				if !seen[outcome{key, n, c}] {
					t.Errorf("no probe produced %s %d %s", key, n, c)
				}
			}
		}
	}
	for _, status := range []int{401, 403, 404, 405} {
		for _, c := range o.errorCodes(t, jsonSchemaOf(o.unmatchedResponse(t, status))) {
			if !seen[outcome{"unmatched", status, c}] {
				t.Errorf("no probe produced an unmatched %d %s", status, c)
			}
		}
	}
}

// matchOperation returns the "METHOD /template" of the operation a
// request is for, or "".
func matchOperation(ops map[string]map[string]any, method, target string) string {
	path, _, _ := strings.Cut(target, "?")
	for key := range ops {
		m, tmpl, _ := strings.Cut(key, " ")
		if m != method {
			continue
		}
		segs := strings.Split(tmpl, "/")
		for i, seg := range segs {
			if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
				segs[i] = "[^/]+"
			} else {
				segs[i] = regexp.QuoteMeta(seg)
			}
		}
		re := "^" + strings.Join(segs, "/") + "$"
		if regexp.MustCompile(re).MatchString(path) {
			return key
		}
	}
	return ""
}

// newLedgerServer is a server recording into a fresh SQLite ledger, with
// one recorded decision whose id it returns.
func newLedgerServer(t *testing.T) (*testServer, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(context.Background(), ledger.Config{DataDir: dir, EngineVersion: "test", FlushInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("ledger.Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ts := newTestServer(t, serverSetup{engineOpts: []engine.Option{engine.WithRecorder(l)}})
	ts.UseLedger(l)
	ts.dataDir = dir
	r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody})
	var d struct {
		DecisionID string `json:"decision_id"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &d) != nil || d.DecisionID == "" {
		t.Fatalf("recording a decision: %s", r)
	}
	return ts, d.DecisionID
}

// unavailableRecorder fails every record as an unavailable ledger does.
type unavailableRecorder struct{}

func (unavailableRecorder) Record(context.Context, *engine.Record) error {
	return fmt.Errorf("%w: test", ledger.ErrUnavailable)
}

// outcome is an operation ("METHOD /path", or "unmatched"), a status and
// an error code.
type outcome struct {
	op     string
	status int
	code   string
}

// TestOpenAPISecurity checks the documented security requirements against
// the server's behaviour with a tokens file, and with --public-metrics.
func TestOpenAPISecurity(t *testing.T) {
	o := loadOpenAPI(t)
	const decide, admin, metrics = "decide-token", "admin-token", "metrics-token"
	tokens := writeScopedTokens(t, ScopeDecide, decide, ScopeAdmin, admin, ScopeMetrics, metrics)
	strict := newTestServer(t, serverSetup{cfg: Config{TokensFile: tokens}})
	public := newTestServer(t, serverSetup{cfg: Config{TokensFile: tokens, PublicMetrics: true}})
	publicReport := newTestServer(t, serverSetup{cfg: Config{TokensFile: tokens, PublicReport: true}})
	bodies := map[string]string{"/v1/decisions": decisionBody, "/v1/admission": admissionBody,
		DataDecisionPath: `{"input": ` + decisionBody + `}`, DataAdmissionPath: `{"input": ` + admissionBody + `}`}

	for key, op := range o.operations(t) {
		method, path, _ := strings.Cut(key, " ")
		path = strings.ReplaceAll(path, "{decision_id}", "some-decision")
		scope := ""
		sec, _ := op["security"].([]any)
		for _, req := range sec {
			scopes, _ := req.(map[string]any)["bearer"].([]any)
			if len(scopes) != 1 {
				t.Errorf("%s: security %v should name exactly one scope", key, req)
				continue
			}
			scope = scopes[0].(string)
		}
		req := request{method: method, path: path, body: bodies[path]}
		if method == http.MethodGet && isDataPath(path) {
			// The Data API's GET: the input goes in the query.
			in := strings.TrimSuffix(strings.TrimPrefix(bodies[path], `{"input": `), "}")
			req = request{method: method, path: path, rawQuery: "input=" + url.QueryEscape(in)}
		}
		send := func(ts *testServer, token string) response {
			r := req
			r.token = token
			return ts.do(t, r)
		}
		switch scope {
		case "":
			for _, token := range []string{"", "nope", decide, admin, metrics} {
				if r := send(strict, token); r.status != 200 {
					t.Errorf("%s is documented open; with token %q it answered %s", key, token, r)
				}
			}
		case ScopeDecide, ScopeAdmin, ScopeMetrics:
			if r := send(strict, ""); r.status != 401 {
				t.Errorf("%s needs %s; without a token it answered %s", key, scope, r)
			}
			if r := send(strict, "nope"); r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s: a wrong token answered %s (WWW-Authenticate %q)", key, r, r.header.Get("WWW-Authenticate"))
			}
			// The servers here run without a ledger: admitted requests to
			// the ledger and report endpoints are answered 404.
			ledgerBacked := strings.HasPrefix(path, "/v1/ledger") || strings.HasSuffix(path, "/report")
			admitted := func(r response) bool { return r.status == 200 || (ledgerBacked && r.status == 404) }
			// A decide or a metrics token is good for its own scope only;
			// admin for every one.
			for token, tokenScope := range map[string]string{decide: ScopeDecide, metrics: ScopeMetrics} {
				if r := send(strict, token); scope == tokenScope && !admitted(r) {
					t.Errorf("%s needs %s; a %s token answered %s", key, scope, tokenScope, r)
				} else if scope != tokenScope && r.status != 403 {
					t.Errorf("%s needs %s; a %s token answered %s, want 403", key, scope, tokenScope, r)
				}
			}
			if r := send(strict, admin); !admitted(r) {
				t.Errorf("%s needs %s; an admin token answered %s", key, scope, r)
			}
			// --public-metrics opens /metrics and /v1/status, nothing else.
			wantPublic := 401
			if path == "/metrics" || path == "/v1/status" {
				wantPublic = 200
			}
			if r := send(public, ""); r.status != wantPublic {
				t.Errorf("--public-metrics: %s without a token answered %s, want %d", key, r, wantPublic)
			}
			// --public-report opens /report and /v1/report, nothing else.
			if r := send(publicReport, ""); strings.HasSuffix(path, "/report") != (r.status != 401) {
				t.Errorf("--public-report: %s without a token answered %s", key, r)
			}
		default:
			t.Errorf("%s: unknown scope %q", key, scope)
		}
	}
}

// TestOpenAPIRequestSchemas compares the documented request schemas with
// the server's strict decoding: valid requests (every scenario file) must
// validate and be decided; structurally invalid ones must fail both; the
// few checks a schema cannot express (address syntax, duplicate ids) fail
// the server only.
func TestOpenAPIRequestSchemas(t *testing.T) {
	o := loadOpenAPI(t)
	ts := newTestServer(t, serverSetup{})
	decisionSchema := map[string]any{"$ref": "#/components/schemas/DecisionRequest"}
	admissionSchema := map[string]any{"$ref": "#/components/schemas/AdmissionRequest"}

	// Every scenario request is valid.
	files, err := filepath.Glob("../../tests/scenarios/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files (%v)", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc struct {
			Request map[string]any `yaml:"request"`
		}
		if err := yaml.Unmarshal(data, &sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		body, err := json.Marshal(sc.Request)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := decodeJSON(body)
		for _, e := range o.validate(decisionSchema, v, "") {
			t.Errorf("%s: the scenario request does not match DecisionRequest: %s", filepath.Base(f), e)
		}
		if r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: string(body)}); r.status != 200 {
			t.Errorf("%s: %s", filepath.Base(f), r)
		}
	}

	const (
		both     = "both"     // schema and server accept
		neither  = "neither"  // schema and server reject
		semantic = "semantic" // the schema accepts, the server rejects: not expressible in the schema
	)
	long := strings.Repeat("x", 257)
	cases := []struct {
		name, path, body, want string
	}{
		{"minimal", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}}`, both},
		{"null optionals", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": null}, "joining": null, "order": null}`, both},
		{"preview order", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}, "order": {"id": "o", "authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m"]}, "legal_basis": "x", "received": "2020-06-01"}}`, both},
		{"unknown top-level member", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "extra": 1}`, neither},
		{"unknown host member", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a", "name": "x"}}}`, neither},
		{"unknown participant member", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8", "port": 1}]}}`, neither},
		{"unknown order member", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "urgent": true}}`, neither},
		{"unknown targets member", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "targets": {"users": []}}}`, neither},
		{"no meeting", "/v1/decisions", `{}`, neither},
		{"meeting null", "/v1/decisions", `{"meeting": null}`, neither},
		{"no meeting id", "/v1/decisions", `{"meeting": {"host": {"account_id": "a"}}}`, neither},
		{"empty meeting id", "/v1/decisions", `{"meeting": {"id": "", "host": {"account_id": "a"}}}`, neither},
		{"id too long", "/v1/decisions", `{"meeting": {"id": "` + long + `", "host": {"account_id": "a"}}}`, neither},
		{"no host", "/v1/decisions", `{"meeting": {"id": "m"}}`, neither},
		{"numeric id", "/v1/decisions", `{"meeting": {"id": 7, "host": {"account_id": "a"}}}`, neither},
		{"participants not an array", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": {}}}`, neither},
		{"participant without ip or phone", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p"}]}}`, both},
		{"participant with ip and phone", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8", "phone": "+15551234567"}]}}`, neither},
		{"lower-case country", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "us"}}}`, neither},
		{"no demands", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": []}}`, neither},
		{"unknown demand", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["arrest"]}}`, neither},
		{"repeated demand", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting", "end_meeting"]}}`, neither},
		{"order without authority", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "demands": ["end_meeting"]}}`, neither},
		{"not an object", "/v1/decisions", `[]`, neither},
		{"bad participant IP", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "999.1.1.1"}]}}`, semantic},
		{"bad host IP", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "fe80::1%eth0"}}}`, semantic},
		{"duplicate participant id", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8"}, {"id": "p", "ip": "8.8.8.9"}]}}`, semantic},
		{"joining already connected", "/v1/decisions", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]}, "joining": {"id": "p", "ip": "8.8.8.9"}}`, semantic},
		{"repeated member", "/v1/decisions", `{"meeting": {"id": "m", "id": "n", "host": {"account_id": "a"}}}`, semantic},
		{"control character in id", "/v1/decisions", `{"meeting": {"id": "m\u0007", "host": {"account_id": "a"}}}`, semantic},
		{"admission", "/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "US"}}, "participant": {"id": "p", "ip": "8.8.8.8"}}`, both},
		{"admission with participants", "/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}, "participant": {"id": "p", "ip": "8.8.8.8"}}`, neither},
		{"admission host ip", "/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "8.8.8.8"}}, "participant": {"id": "p", "ip": "8.8.8.8"}}`, neither},
		{"admission joining", "/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "p", "ip": "8.8.8.8"}}`, neither},
		{"admission without participant", "/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a"}}}`, neither},
		{"admission bad IP", "/v1/admission", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "localhost"}}`, semantic},
	}
	// Member names differ from the documented ones only in case: the
	// schema rejects them (additionalProperties: false), and so should
	// strict decoding. encoding/json matches names case-insensitively and
	// lets the last of "ip" and "IP" win, so a body can show one address
	// to a reader that honours the documented names and have geoscope
	// locate another.
	t.Run("member names differing in case", func(t *testing.T) {
		body := `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
			"participants": [{"id": "p", "ip": "8.8.8.8", "IP": "1.0.16.5"}]}}`
		v, _ := decodeJSON([]byte(body))
		if len(o.validate(decisionSchema, v, "")) == 0 {
			t.Error("the schema accepts a member named IP")
		}
		r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: body})
		if r.status != 400 {
			t.Errorf("got %s, want 400 invalid_input", r)
		}
	})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			schema := decisionSchema
			if tc.path == "/v1/admission" {
				schema = admissionSchema
			}
			v, err := decodeJSON([]byte(tc.body))
			if err != nil {
				t.Fatalf("test body is not JSON: %v", err)
			}
			schemaOK := len(o.validate(schema, v, "")) == 0
			r := ts.do(t, request{method: http.MethodPost, path: tc.path, body: tc.body})
			serverOK := r.status == 200
			if !serverOK && r.status != 400 {
				t.Errorf("server answered %s, want 200 or 400", r)
			}
			wantSchema, wantServer := tc.want == both, tc.want == both
			if tc.want == semantic {
				wantSchema = true
			}
			if schemaOK != wantSchema {
				t.Errorf("schema accepts = %v, want %v: %v", schemaOK, wantSchema, o.validate(schema, v, ""))
			}
			if serverOK != wantServer {
				t.Errorf("server accepts = %v, want %v: %s", serverOK, wantServer, r)
			}
		})
	}
}

// An action in an answer names what it acts on: the document requires it
// as the Go client does, so that a client generated from the document
// does not read those members as optional.
func TestOpenAPIActionNamesWhatItActsOn(t *testing.T) {
	o := loadOpenAPI(t)
	schema, err := o.pointer("#/components/schemas/Action")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, serverSetup{})
	r := ts.do(t, request{method: http.MethodPost, path: "/v1/decisions", body: decisionBody})
	var answer struct {
		Actions []map[string]any `json:"actions"`
	}
	if err := json.Unmarshal(r.body, &answer); err != nil || len(answer.Actions) == 0 {
		t.Fatalf("decision %s: %v, want an action", r, err)
	}
	removal := answer.Actions[0]
	if errs := o.validate(schema, removal, ""); len(errs) != 0 {
		t.Fatalf("the server's action %v does not match the document: %v", removal, errs)
	}
	without := func(member string, changes map[string]any) map[string]any {
		a := maps.Clone(removal)
		delete(a, member)
		maps.Copy(a, changes)
		return a
	}
	for name, a := range map[string]map[string]any{
		"no meeting_id":                      without("meeting_id", nil),
		"remove_participant, no participant": without("participant_id", nil),
		"deny_join, no participant":          without("participant_id", map[string]any{"type": "deny_join"}),
		"suspend_account, no account":        without("participant_id", map[string]any{"type": "suspend_account"}),
	} {
		if len(o.validate(schema, a, "")) == 0 {
			t.Errorf("%s: the document accepts %v", name, a)
		}
	}
	if a := without("participant_id", map[string]any{"type": "end_meeting"}); len(o.validate(schema, a, "")) != 0 {
		t.Errorf("end_meeting names no participant: the document refuses %v: %v", a, o.validate(schema, a, ""))
	}
}

// previewBody previews an order of an authority the registry does not
// know, under id: each of its two demands is refused, citing id.
func previewBody(id string) string {
	return `{"meeting": {"id": "june4-b", "host": {"account_id": "acct-us-b", "account_country": "US"},
		"participants": [{"id": "p1", "ip": "1.0.16.1"}, {"id": "p2", "ip": "8.8.8.8"}]},
		"order": {"id": "` + id + `", "authority": "xx.unknown", "demands": ["end_meeting", "suspend_account"], "targets": {"meetings": ["june4-b"]}}}`
}
