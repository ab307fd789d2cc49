package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/geoscope/geoscope/policies"
)

func TestReadsInput(t *testing.T) {
	entries := []ast.Ref{queryRef, admissionQueryRef}
	for _, tc := range []struct {
		name    string
		modules map[string]string
		want    bool
	}{
		{"by_country only", map[string]string{"p.rego": `package geoscope
decision := {"actions": [x | some x in input.meeting.by_country.CN], "refused": []}`}, false},
		{"reads participants", map[string]string{"p.rego": `package geoscope
decision := {"actions": [p.id | some p in input.meeting.participants], "refused": []}`}, true},
		{"reads one participant's field", map[string]string{"p.rego": `package geoscope
decision := {"actions": [input.meeting.participants[0].role], "refused": []}`}, true},
		{"unreachable rule reads participants", map[string]string{"p.rego": `package geoscope
decision := {"actions": [], "refused": []}
unused := count(input.meeting.participants)`}, false},
		{"the whole input", map[string]string{"p.rego": `package geoscope
decision := {"actions": [], "refused": [], "echo": input}`}, true},
		{"the whole meeting", map[string]string{"p.rego": `package geoscope
m := input.meeting
decision := {"actions": [m], "refused": []}`}, true},
		{"a dynamic key", map[string]string{"p.rego": `package geoscope
decision := {"actions": [v | some k; v := input.meeting[k]], "refused": []}`}, true},
		{"a function given input", map[string]string{"p.rego": `package geoscope
f(x) := x.meeting.id
decision := {"actions": [f(input)], "refused": []}`}, true},
		{"an else branch", map[string]string{"p.rego": `package geoscope
x := 1 if { input.meeting.id == "a" } else := count(input.meeting.participants)
decision := {"actions": [x], "refused": []}`}, true},
		{"a key computed from the input", map[string]string{"p.rego": `package geoscope
decision := {"actions": [input.meeting.by_country[input.meeting.participants[0].country]], "refused": []}`}, true},
		{"another package, reached through data", map[string]string{
			"p.rego": `package geoscope
decision := {"actions": [x | some x in data.geoscope.extensions.exempt], "refused": []}`,
			"ext.rego": `package geoscope.extensions
exempt contains p.id if { some p in input.meeting.participants; p.role == "host" }`}, true},
		{"admission entry point", map[string]string{"p.rego": `package geoscope
decision := {"actions": [], "refused": []}
admission := {"actions": [x | some x in input.meeting.participants], "refused": []}`}, true},
		{"other input paths", map[string]string{"p.rego": `package geoscope
decision := {"actions": [input.joining.role, input.meeting.host.attributes, input.meeting.participant_count], "refused": []}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ast.CompileModules(tc.modules)
			if err != nil {
				t.Fatal(err)
			}
			if got := readsInput(c, entries, participantsPath); got != tc.want {
				t.Errorf("readsInput = %v, want %v", got, tc.want)
			}
		})
	}
}

// The default policy works on by_country: it must not make the engine
// build one object per participant.
func TestDefaultPolicyDoesNotReadParticipants(t *testing.T) {
	src, err := loadFS(policies.Bundle, EmbeddedPolicyName, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, m := range src.Bundle.Modules {
		modules[m.Path] = m.Parsed
	}
	c := ast.NewCompiler()
	if c.Compile(modules); c.Failed() {
		t.Fatal(c.Errors)
	}
	if readsInput(c, []ast.Ref{queryRef, admissionQueryRef}, participantsPath) {
		t.Error("the default policy reads input.meeting.participants")
	}
}
