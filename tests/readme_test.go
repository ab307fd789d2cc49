package tests

// The README says what the binary does: its example decision is the one
// the binary gives for the example request (same fields, same outcome),
// and it names every error code and every endpoint.

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/apierror"
)

func readme(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func TestReadmeExampleDecision(t *testing.T) {
	text := readme(t)
	section := text[strings.Index(text, "## An example decision"):]
	section = section[:strings.Index(section, "\n## ")]
	request := regexp.MustCompile(`(?s)-d '(\{.*?\})'`).FindStringSubmatch(section)
	answer := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(section)
	if request == nil || answer == nil {
		t.Fatal("the README's example request or answer was not found")
	}
	var documented map[string]any
	if err := json.Unmarshal([]byte(answer[1]), &documented); err != nil {
		t.Fatalf("the README's example answer is not JSON: %v", err)
	}
	// The embedded defaults, as the README's run command uses.
	res := runCLI(t, []byte(request[1]), "decide")
	if res.code != 0 {
		t.Fatalf("decide with the README's request: %v", res)
	}
	var actual map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &actual); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(documented)), slices.Sorted(maps.Keys(actual)); !slices.Equal(got, want) {
		t.Errorf("the README's example decision has fields %v; the binary answers %v", got, want)
	}
	outcome := func(d map[string]any) string {
		var parts []string
		for _, a := range d["actions"].([]any) {
			m := a.(map[string]any)
			parts = append(parts, m["type"].(string)+" "+m["participant_id"].(string)+" "+m["country"].(string))
		}
		for _, r := range d["refused"].([]any) {
			m := r.(map[string]any)
			parts = append(parts, m["demand"].(string)+" "+m["code"].(string))
		}
		b, _ := json.Marshal(d["order_ids"])
		return strings.Join(parts, "; ") + " " + string(b)
	}
	if got, want := outcome(documented), outcome(actual); got != want {
		t.Errorf("the README's example decides %q; the binary decides %q", got, want)
	}
}

func TestReadmeNamesErrorCodesAndEndpoints(t *testing.T) {
	text := readme(t)
	rawOPADoc, err := os.ReadFile("../docs/opa.md")
	if err != nil {
		t.Fatal(err)
	}
	opaDoc := string(rawOPADoc)
	for _, code := range errorCodes(t) {
		// Never an answer: the code of a request whose client left, in the
		// log and the decision-log event (docs/opa.md), not for clients.
		if code == apierror.ClientClosed {
			if !strings.Contains(opaDoc, "`"+code+"`") {
				t.Errorf("docs/opa.md does not name the error code %s of decision-log events", code)
			}
			continue
		}
		if !strings.Contains(text, "`"+code+"`") {
			t.Errorf("the README does not name the error code %s", code)
		}
		if !strings.Contains(opaDoc, "`"+code+"`") {
			t.Errorf("docs/opa.md does not say which OPA code the error code %s becomes", code)
		}
	}
	raw, err := os.ReadFile("../engine/server/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !strings.Contains(text, "`"+strings.ToUpper(method)+" "+path+"`") {
				t.Errorf("the README's endpoint table does not list %s %s", strings.ToUpper(method), path)
			}
		}
	}
}

// errorCodes are the string constants of engine/apierror, read from its
// source so that a code added there must be documented.
func errorCodes(t *testing.T) []string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "../engine/apierror/apierror.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					code, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					codes = append(codes, code)
				}
			}
		}
	}
	if len(codes) < 10 {
		t.Fatalf("only %d error codes read from engine/apierror: %v", len(codes), codes)
	}
	return codes
}
