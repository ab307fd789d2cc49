package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests run the policy authoring checks the way `make test` and a
// policy author run them: stock `go tool opa` on the policy directories.

// opaResult is one run of `go tool opa`.
type opaResult struct {
	code           int
	stdout, stderr string
}

// runOPA runs `go tool opa args...` in the module root, so relative paths
// are those of the Makefile.
func runOPA(t *testing.T, args ...string) opaResult {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", append([]string{"tool", "opa"}, args...)...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("go tool opa %s: %v", strings.Join(args, " "), err)
	}
	return opaResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// extensionExamples are the worked examples under docs/extensions.
var extensionExamples = []string{
	"docs/extensions/accredited-press",
	"docs/extensions/hosts-never-acted-on",
	"docs/extensions/verified-callers",
}

func TestPolicyAndExtensionsPassTheSchemaCheck(t *testing.T) {
	t.Parallel()
	args := append([]string{"check", "--strict", "--schema", "docs/schemas", "policies"}, extensionExamples...)
	if r := runOPA(t, args...); r.code != 0 {
		t.Fatalf("opa %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
}

// A policy or an extension that reads a field the input does not have
// fails `opa check --strict --schema docs/schemas`, naming the reference:
// the misspelling is caught in CI instead of becoming a rule that silently
// never holds.
func TestSchemaCheckRejectsMisspeltInputFields(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		file     string // relative to the module root
		from, to string // the first occurrence of from becomes to
		want     string // in opa's error output
	}{
		{"joining country", "policies/geoscope/decision.rego",
			"input.joining.country in data.authorities", "input.joining.contry in data.authorities",
			"undefined ref: input.joining.contry"},
		{"participant count", "policies/geoscope/decision.rego",
			"input.meeting.participant_count > 0", "input.meeting.participant_cuont > 0",
			"undefined ref: input.meeting.participant_cuont"},
		{"host account", "policies/geoscope/decision.rego",
			"input.meeting.host.account_id in o.targets.accounts", "input.meeting.host.acount_id in o.targets.accounts",
			"undefined ref: input.meeting.host.acount_id"},
		{"grouped participants", "policies/geoscope/decision.rego",
			"input.meeting.by_country[country]", "input.meeting.by_contry[country]",
			"undefined ref: input.meeting.by_contry"},
		{"grouped by subdivision", "policies/geoscope/decision.rego",
			"input.meeting.by_subdivision[code]", "input.meeting.by_subdivison[code]",
			"undefined ref: input.meeting.by_subdivison"},
		{"joining subdivisions", "policies/geoscope/decision.rego",
			"some s in input.joining.subdivisions", "some s in input.joining.subdivision",
			"undefined ref: input.joining.subdivision"},
		{"participants array", "policies/geoscope/people/people.rego",
			"participants := input.meeting.participants", "participants := input.meeting.particpants",
			"undefined ref: input.meeting.particpants"},
		{"extension reads a person's role", "docs/extensions/hosts-never-acted-on/geoscope/extensions/hosts_never_acted_on.rego",
			"person.role in", "person.rol in",
			"undefined ref: person.rol"},
		{"extension reads how a person was located", "docs/extensions/verified-callers/geoscope/extensions/verified_callers.rego",
			`person.located_by == "phone"`, `person.locatedby == "phone"`,
			"undefined ref: person.locatedby"},
		{"extension reads an account", "docs/extensions/accredited-press/geoscope/extensions/accredited_press.rego",
			"accredited[person.account_id]", "accredited[person.acount_id]",
			"undefined ref: person.acount_id"},
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			copyTree(t, filepath.Join(root, "policies"), filepath.Join(dir, "policies"))
			for _, ex := range extensionExamples {
				copyTree(t, filepath.Join(root, ex), filepath.Join(dir, ex))
			}
			path := filepath.Join(dir, tc.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(src, []byte(tc.from)) {
				t.Fatalf("%s no longer contains %q: update the case", tc.file, tc.from)
			}
			mutated := bytes.Replace(src, []byte(tc.from), []byte(tc.to), 1)
			if err := os.WriteFile(path, mutated, 0o600); err != nil {
				t.Fatal(err)
			}

			paths := []string{filepath.Join(dir, "policies")}
			if ex, ok := strings.CutPrefix(tc.file, "docs/extensions/"); ok {
				paths = append(paths, filepath.Join(dir, "docs/extensions", strings.SplitN(ex, "/", 2)[0]))
			}
			// The misspelling compiles without the schema: the type check
			// is what catches it.
			if r := runOPA(t, append([]string{"check", "--strict"}, paths...)...); r.code != 0 {
				t.Fatalf("without --schema the mutated policy should compile: exit %d\n%s", r.code, r.stderr)
			}
			r := runOPA(t, append([]string{"check", "--strict", "--schema", filepath.Join(root, "docs/schemas")}, paths...)...)
			if r.code == 0 {
				t.Fatalf("opa check --schema accepted %s reading %q", tc.file, tc.to)
			}
			if !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Fatalf("opa check --schema: want %q in the output, got exit %d\n%s%s", tc.want, r.code, r.stdout, r.stderr)
			}
		})
	}
}

// What the schema check cannot catch, as docs/policy.md says: an
// attribute's name is the meeting server's (attributes takes any), and a
// value compared with one a field never holds is not a reference. Beside
// them, a misspelt member of the person itself is caught, so the schema
// is in force in this very file.
func TestSchemaCheckDoesNotKnowAttributeNamesOrValues(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	const ext = `package geoscope.extensions

import data.geoscope.people

exempt contains person.id if {
	some person in people.everyone
	person.attributes.legal_counsle == true
}

exempt contains person.id if {
	some person in people.everyone
	person.role == "cohost"
}
`
	check := func(src string) opaResult {
		dir := t.TempDir()
		copyTree(t, filepath.Join(root, "policies"), filepath.Join(dir, "policies"))
		file := filepath.Join(dir, "ext", "geoscope", "extensions", "counsel.rego")
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return runOPA(t, "check", "--strict", "--schema", filepath.Join(root, "docs/schemas"), filepath.Join(dir, "policies"), filepath.Join(dir, "ext"))
	}
	if r := check(ext); r.code != 0 {
		t.Errorf("opa check --schema reported a misspelt attribute name or role value; docs/policy.md says it does not: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := check(strings.Replace(ext, "person.attributes.", "person.atributes.", 1))
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "undefined ref: person.atributes") {
		t.Errorf("opa check --schema accepted person.atributes: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// The engine builds input.meeting.participants (one object per participant)
// only when a rule reachable from an entry point reads it. The default
// policy must not, so that a policy reading only by_country keeps its
// cost; an extension that reads people makes it reachable.
func TestDefaultPolicyDoesNotReadTheParticipantsArray(t *testing.T) {
	t.Parallel()
	for _, query := range []string{"data.geoscope.decision", "data.geoscope.admission"} {
		if refs := participantReads(t, query, "policies"); len(refs) > 0 {
			t.Errorf("%s reads %v", query, refs)
		}
	}
	for _, ex := range extensionExamples {
		for _, query := range []string{"data.geoscope.decision", "data.geoscope.admission"} {
			if refs := participantReads(t, query, "policies", ex); len(refs) == 0 {
				t.Errorf("with %s, %s should read input.meeting.participants (through geoscope.people)", ex, query)
			}
		}
	}
}

// participantReads lists the input references of query's dependencies that
// may select input.meeting.participants: it, something below it, one of
// its ancestors as a whole, or a reference with a variable where it could
// select it.
func participantReads(t *testing.T, query string, paths ...string) []string {
	t.Helper()
	args := []string{"deps", "--format", "json"}
	for _, p := range paths {
		args = append(args, "-d", p)
	}
	r := runOPA(t, append(args, query)...)
	if r.code != 0 {
		t.Fatalf("opa deps %s: exit %d\n%s", query, r.code, r.stderr)
	}
	var deps struct {
		Base [][]struct {
			Type  string `json:"type"`
			Value any    `json:"value"`
		} `json:"base"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &deps); err != nil {
		t.Fatalf("opa deps output: %v\n%s", err, r.stdout)
	}
	target := []string{"meeting", "participants"}
	var found []string
	for _, ref := range deps.Base {
		if len(ref) == 0 || ref[0].Value != "input" {
			continue
		}
		parts := []string{"input"}
		overlaps := true
		for i, term := range ref[1:] {
			s, isString := term.Value.(string)
			if term.Type != "string" || !isString {
				parts = append(parts, "[var]")
				break // a variable could select anything below here
			}
			parts = append(parts, s)
			if i < len(target) && s != target[i] {
				overlaps = false
				break
			}
		}
		if overlaps {
			found = append(found, strings.Join(parts, "."))
		}
	}
	return found
}

// copyTree copies the directory src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}
