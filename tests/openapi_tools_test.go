package tests

// The OpenAPI document against the tools people run on it: Redocly's
// linter (no warning) and oapi-codegen v2 (a Go client that compiles and
// talks to a running server).

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	// The generated client's one dependency, required here so that go.mod
	// pins it and the module cache holds it: the client's temporary
	// module builds offline from this module's requirements.
	_ "github.com/oapi-codegen/runtime"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// TestOpenAPIRedoclyLint runs `redocly lint` (the recommended rules, with
// the one exception engine/server/redocly.yaml states) and fails on any
// error or warning.
func TestOpenAPIRedoclyLint(t *testing.T) {
	modules := npmTools(t, "@redocly/cli")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(modules, ".bin", "redocly"), "lint", "--format=summary",
		"--config", filepath.Join("..", "engine", "server", "redocly.yaml"), filepath.Join("..", "engine", "server", "openapi.json"))
	// No telemetry and no update check: CI has no network but the
	// package registries.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`(?m)^(warning|error) `).FindAll(out, -1); len(m) > 0 || bytes.Contains(out, []byte("You have ")) {
		t.Errorf("redocly lint reports problems:\n%s", out)
	}
	if !bytes.Contains(out, []byte("Your API description is valid")) {
		t.Errorf("redocly lint did not validate the document:\n%s", out)
	}
}

// clientProgram calls a running server through the generated client. It
// reads only response fields that are part of the stable contract, and
// sends bodies as JSON text, so request schema changes do not break it.
const clientProgram = `package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"os"

	"example.com/gsclient/gsclient"
)

func main() {
	url, token := os.Args[1], os.Args[2]
	bearer := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	c, err := gsclient.NewClientWithResponses(url, gsclient.WithRequestEditorFn(bearer))
	check(err)
	ctx := context.Background()
	out := map[string]any{}

	// The embedded document, as the generated code loads it.
	spec, err := gsclient.GetSwagger()
	check(err)
	out["spec_paths"] = len(spec.Paths.Map())

	st, err := c.StatusWithResponse(ctx)
	check(err)
	out["status"] = st.StatusCode()
	if st.JSON200 != nil {
		out["version"] = st.JSON200.Version
	}

	var zipped bytes.Buffer
	zw := gzip.NewWriter(&zipped)
	zw.Write([]byte(os.Getenv("DECISION")))
	zw.Close()
	gz := gsclient.DecideParamsContentEncoding("gzip")
	d, err := c.DecideWithBodyWithResponse(ctx, &gsclient.DecideParams{ContentEncoding: &gz}, "application/json", &zipped)
	check(err)
	out["decide"] = d.StatusCode()
	var removed []string
	if d.JSON200 != nil {
		for _, a := range d.JSON200.Actions {
			if a.Type == "remove_participant" && a.ParticipantId != nil {
				removed = append(removed, *a.ParticipantId)
			}
		}
		out["refused"] = len(d.JSON200.Refused)
	}
	out["removed"] = removed

	a, err := c.AdmitWithBodyWithResponse(ctx, nil, "application/json", bytes.NewReader([]byte(os.Getenv("ADMISSION"))))
	check(err)
	out["admit"] = a.StatusCode()
	if a.JSON200 != nil {
		out["allow"] = a.JSON200.Allow
	}

	dd, err := c.DataDecisionWithBodyWithResponse(ctx, nil, "application/json", bytes.NewReader([]byte(` + "`" + `{"input": ` + "`" + `+os.Getenv("DECISION")+` + "`" + `}` + "`" + `)))
	check(err)
	out["data_decision"] = dd.StatusCode()
	if dd.JSON200 != nil {
		out["data_decision_id"] = dd.JSON200.DecisionId
		out["data_result_id"] = dd.JSON200.Result.DecisionId
	}

	bad, err := c.DecideWithBodyWithResponse(ctx, nil, "application/json", bytes.NewReader([]byte(os.Getenv("BAD"))))
	check(err)
	out["bad"] = bad.StatusCode()
	if bad.JSON400 != nil && bad.JSON400.Field != nil {
		out["bad_field"] = *bad.JSON400.Field
	}
	check(json.NewEncoder(os.Stdout).Encode(out))
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
`

// TestOpenAPIGoClient generates a Go client from the server's
// /openapi.json with oapi-codegen v2 (the go.mod tool, with its default
// options except that the Echo server stub, which is no client and needs
// Echo, is left out: -generate types,client,spec) into a temporary module,
// compiles it, and calls a running server with it.
func TestOpenAPIGoClient(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	decide, admin := randomToken(t), randomToken(t)
	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t), "--tokens-file", writeTokensFile(t, decide, admin)}})
	doc := p.get("/openapi.json", "")
	if doc.status != 200 {
		t.Fatalf("GET /openapi.json: %s", doc)
	}

	mod := t.TempDir()
	spec := filepath.Join(mod, "openapi.json")
	if err := os.WriteFile(spec, doc.body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(mod, "gsclient"), 0o755); err != nil {
		t.Fatal(err)
	}
	gen := exec.Command("go", "tool", "oapi-codegen", "-package", "gsclient", "-generate", "types,client,spec",
		"-o", filepath.Join(mod, "gsclient", "client.gen.go"), spec)
	gen.Dir = root
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("oapi-codegen: %v\n%s", err, out)
	}

	// The temporary module takes this module's requirements (and go.sum),
	// so it builds from the module cache with no network.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gomod = regexp.MustCompile(`(?m)^module .*$`).ReplaceAll(gomod, []byte("module example.com/gsclient"))
	gomod = regexp.MustCompile(`(?ms)^tool \(.*?^\)\n|^tool .*\n`).ReplaceAll(gomod, nil)
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": gomod, "go.sum": gosum, "main.go": []byte(clientProgram)} {
		if err := os.WriteFile(filepath.Join(mod, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(mod, "client")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = mod
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOPROXY=off", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the generated client does not compile: %v\n%s", err, out)
	}

	run := exec.Command(bin, p.base, decide)
	run.Env = append(os.Environ(),
		"DECISION="+string(june4b), "ADMISSION="+string(admissionCN),
		"BAD="+strings.Replace(string(june4b), `"147.8.1.1"`, `"147.8.1"`, 1))
	var stderr bytes.Buffer
	run.Stderr = &stderr
	raw, err := run.Output()
	if err != nil {
		t.Fatalf("the generated client failed: %v\n%s", err, stderr.String())
	}
	var got struct {
		SpecPaths      int      `json:"spec_paths"`
		Status         int      `json:"status"`
		Version        string   `json:"version"`
		Decide         int      `json:"decide"`
		Removed        []string `json:"removed"`
		Refused        int      `json:"refused"`
		Admit          int      `json:"admit"`
		Allow          *bool    `json:"allow"`
		DataDecision   int      `json:"data_decision"`
		DataDecisionID string   `json:"data_decision_id"`
		DataResultID   string   `json:"data_result_id"`
		Bad            int      `json:"bad"`
		BadField       string   `json:"bad_field"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("client output %q: %v", raw, err)
	}
	t.Logf("generated client: %s", bytes.TrimSpace(raw))
	var served struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(doc.body, &served); err != nil || got.SpecPaths != len(served.Paths) {
		t.Errorf("the generated client's embedded document has %d paths, /openapi.json %d (%v)", got.SpecPaths, len(served.Paths), err)
	}
	// The decide token may not read the status (metrics or admin scope).
	if got.Status != 403 {
		t.Errorf("status with a decide token: %d, want 403", got.Status)
	}
	if got.Decide != 200 || strings.Join(got.Removed, ",") != "p-cn" || got.Refused != 2 {
		t.Errorf("decide (gzip body): %d, removed %v, %d refused; want 200, p-cn, 2", got.Decide, got.Removed, got.Refused)
	}
	if got.Admit != 200 || got.Allow == nil || *got.Allow {
		t.Errorf("admit: %d allow %v; want 200 false", got.Admit, got.Allow)
	}
	if got.DataDecision != 200 || got.DataDecisionID == "" || got.DataDecisionID != got.DataResultID {
		t.Errorf("data decision: %d, decision_id %q, result's %q", got.DataDecision, got.DataDecisionID, got.DataResultID)
	}
	if got.Bad != 400 || got.BadField != "meeting.participants[1].ip" {
		t.Errorf("bad request: %d field %q", got.Bad, got.BadField)
	}
}
