package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// copyTree copies the directory src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The default policy's join-time answer depends on the meeting, its host
// account, the orders under evaluation and the joiner's located country
// and subdivisions: never on who the joiner is.
func TestAdmissionMemoDefaultPolicy(t *testing.T) {
	snap, err := LoadSnapshot(context.Background(), nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	paths, reused := snap.AdmissionKey()
	want := []string{"input.joining.country", "input.joining.subdivisions", "input.meeting.host.account_id", "input.meeting.id", "input.order", "input.standing_orders"}
	if !reused || !slices.Equal(paths, want) {
		t.Errorf("AdmissionKey() = %v, %v; want %v, true", paths, reused, want)
	}
}

// An extension that exempts people by who they are makes the answer depend
// on the joiner: it is evaluated every time.
func TestAdmissionMemoWithAnExtensionThatExemptsPeople(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, "../../policies", dir)
	copyTree(t, "../../docs/extensions/hosts-never-acted-on", dir)
	snap, err := LoadSnapshot(context.Background(), []string{dir, "../../bundles/registry"}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if paths, reused := snap.AdmissionKey(); reused {
		t.Errorf("answers reused, keyed by %v: the exemption reads the joiner", paths)
	}
}

// What the analysis sees in the rules reachable from the admission entry
// point.
func TestAdmissionMemoAnalysis(t *testing.T) {
	const decision = "package geoscope\n\ndecision := {\"actions\": set(), \"refused\": set()}\n"
	cases := []struct {
		name   string
		rego   string
		data   string // data.json of the policy bundle, if any
		reused bool
		paths  []string
	}{
		{name: "paths read, cut at a variable", rego: `admission := {"actions": {x | some x in input.meeting.by_country[input.joining.country]}, "refused": set()}`,
			reused: true, paths: []string{"input.joining.country", "input.meeting.by_country"}},
		{name: "a path and one under it", rego: `admission := {"actions": {input.order.id | input.order}, "refused": set()}`,
			reused: true, paths: []string{"input.order"}},
		{name: "reads nothing", rego: `admission := {"actions": set(), "refused": set()}`, reused: true},
		{name: "through a function and another package", rego: `admission := {"actions": {x | x := data.lib.f(1)}, "refused": set()}
`, reused: true, paths: []string{"input.meeting.id"}},
		{name: "the joiner's id", rego: `admission := {"actions": {input.joining.id}, "refused": set()}`},
		{name: "the joiner as a whole", rego: `admission := {"actions": {input.joining}, "refused": set()}`},
		{name: "the whole input", rego: `admission := {"actions": {x | x := input}, "refused": set()}`},
		{name: "a dynamic key into the input", rego: `admission := {"actions": {v | some k; v := input[k]}, "refused": set()}`},
		{name: "the clock", rego: `admission := {"actions": {x | x := time.now_ns(); input.meeting.id == "m"}, "refused": set()}`},
		{name: "randomness in a rule it reaches", rego: `admission := {"actions": {x | x := pick}, "refused": set()}
pick := rand.intn("x", 10)`},
		{name: "a time-dependent verification", rego: `admission := {"actions": {x | [x, _, _] := io.jwt.decode_verify(input.meeting.id, {"secret": "s"})}, "refused": set()}`},
		{name: "a body that cannot succeed with this data", rego: `admission := {"actions": {x | some x in denied}, "refused": set()}
switched_on if count(data.switch) > 0
denied contains input.joining.id if switched_on
denied contains input.joining.country`, reused: true, paths: []string{"input.joining.country"}},
		{name: "the same body when the data switches it on", rego: `admission := {"actions": {x | some x in denied}, "refused": set()}
switched_on if count(data.switch) > 0
denied contains input.joining.id if switched_on
denied contains input.joining.country`, data: `{"switch": [1]}`},
		{name: "what comes before the failing expression counts", rego: `admission := {"actions": {x | some x in denied}, "refused": set()}
switched_on if count(data.switch) > 0
denied contains 1 if {
	input.joining.id != ""
	switched_on
}`},
		{name: "a switch that reads the input is not constant", rego: `admission := {"actions": {x | some x in denied}, "refused": set()}
switched_on if input.meeting.id == "x"
denied contains input.joining.id if switched_on`},
		{name: "with: nothing is skipped", rego: `admission := {"actions": {x | some x in denied; other with data.switch as [1]}, "refused": set()}
switched_on if count(data.switch) > 0
other := true
denied contains input.joining.id if switched_on`},
		{name: "an else branch is taken when the body cannot succeed", rego: `admission := {"actions": {v}, "refused": set()}
switched_on if count(data.switch) > 0
v := input.joining.id if switched_on else := input.meeting.id`, reused: true, paths: []string{"input.meeting.id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"geoscope/p.rego": decision + tc.rego + "\n",
				"lib/lib.rego":    "package lib\n\nf(x) := y if y := [x, input.meeting.id]\n",
			}
			if tc.data != "" {
				files["data.json"] = tc.data
			}
			snap, err := LoadSnapshot(context.Background(), []string{writeBundle(t, files)}, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			paths, reused := snap.AdmissionKey()
			if reused != tc.reused || !slices.Equal(paths, tc.paths) {
				t.Errorf("AdmissionKey() = %v, %v; want %v, %v", paths, reused, tc.paths, tc.reused)
			}
		})
	}
}

// Reused answers are the answers: for every combination of meeting,
// account, order and joiner the default policy and the example registry
// can tell apart, EvalAdmission (first evaluated, then reused) answers what
// evaluating the entry point answers.
func TestAdmissionMemoAnswersAsEvaluation(t *testing.T) {
	ctx := context.Background()
	snap, err := LoadSnapshot(ctx, nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if snap.admissionMemo == nil {
		t.Fatal("the default policy's answers are not reused")
	}
	var inputs []ast.Value
	for _, meeting := range []string{"june4-a", "control-cn", "weekly"} {
		for _, account := range []string{"acct-us-a", "acct-other"} {
			for _, orders := range []string{`["CN-2020-0601"]`, `["CN-2020-0602"]`, `["CN-2020-0601", "CN-2020-0602"]`, `[]`} {
				for _, country := range []string{`"country": "CN", "located_by": "ip", `, `"country": "US", "located_by": "ip", `, ``} {
					for _, joiner := range []string{"j1", "j2"} {
						inputs = append(inputs, ast.MustParseTerm(fmt.Sprintf(
							`{"meeting": {"id": %q, "host": {"id": %q, "account_id": %q, "connected": false, "role": "host"}, "participant_count": 0, "by_country": {}, "unlocated": []},
							  "joining": {%s"id": %q}, "standing_orders": %s}`, meeting, account, account, country, joiner, orders)).Value)
					}
				}
			}
		}
	}
	// A preview order, which the join-time path never sends but the entry
	// point reads.
	inputs = append(inputs, ast.MustParseTerm(`{"meeting": {"id": "m", "host": {"id": "a", "account_id": "a", "connected": false, "role": "host"}, "participant_count": 0, "by_country": {}, "unlocated": []},
		"joining": {"id": "j", "country": "CN", "located_by": "ip"},
		"order": {"id": "o", "authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m"], "accounts": []}, "legal_basis": "x", "received": "2020-01-01"}}`).Value)
	denials := 0
	for round := range 2 { // the second round is answered from the memo
		for _, in := range inputs {
			want, err := snap.eval(ctx, snap.admission, AdmissionQuery, in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := snap.EvalAdmission(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, input %v:\n reused %+v\n evaluated %+v", round, in, got, want)
			}
			if round == 0 {
				denials += len(want.Actions)
			}
		}
	}
	if denials == 0 {
		t.Fatal("no input was denied: the comparison proves little")
	}
	if n := len(snap.admissionMemo.cur); n == 0 || n >= len(inputs) {
		t.Errorf("%d answers remembered for %d inputs, half of which differ only in the joiner", n, len(inputs))
	}
}

// The memo is bounded: old answers are forgotten, answers in use stay.
func TestAdmissionMemoIsBounded(t *testing.T) {
	m := &memo{cur: map[string]*Output{}, old: map[string]*Output{}}
	kept := &Output{}
	m.put("kept", kept)
	for i := range 3 * memoGeneration {
		m.put(fmt.Sprint(i), &Output{})
		if _, ok := m.get("kept"); !ok {
			t.Fatalf("an answer in use was forgotten after %d others", i)
		}
	}
	if n := len(m.cur) + len(m.old); n > 2*memoGeneration {
		t.Errorf("%d answers remembered, bound %d", n, 2*memoGeneration)
	}
	if _, ok := m.get("0"); ok {
		t.Error("the oldest answer is still remembered")
	}
}

// The key tells apart inputs that differ at a path read, and only those.
func TestAdmissionMemoKey(t *testing.T) {
	m := &memo{paths: []ast.Ref{ast.MustParseRef("input.a"), ast.MustParseRef("input.b.c")}}
	key := func(s string) string { return m.key(ast.MustParseTerm(s).Value) }
	same := [][2]string{
		{`{"a": 1, "b": {"c": "x"}, "z": 1}`, `{"a": 1, "b": {"c": "x"}, "z": 2}`},
		{`{"a": {"p": 1, "q": [1, "2"]}}`, `{"a": {"q": [1, "2"], "p": 1}}`},
		{`{"a": {"x", "y"}}`, `{"a": {"y", "x"}}`},
	}
	for _, p := range same {
		if key(p[0]) != key(p[1]) {
			t.Errorf("%s and %s have different keys", p[0], p[1])
		}
	}
	different := [][2]string{
		{`{"a": 1}`, `{"a": "1"}`},
		{`{"a": "x"}`, `{"b": {"c": "x"}}`},
		{`{"a": null}`, `{}`},
		{`{"a": ["x,y"]}`, `{"a": ["x", "y"]}`},
		{`{"a": "1", "b": {"c": "2"}}`, `{"a": "12", "b": {}}`},
		{`{"a": [1]}`, `{"a": {1}}`},
		{`{"a": true}`, `{"a": false}`},
		{`{"a": {"k": "v"}}`, `{"a": {"kv": ""}}`},
	}
	for _, p := range different {
		if key(p[0]) == key(p[1]) {
			t.Errorf("%s and %s share the key %q", p[0], p[1], key(p[0]))
		}
	}
}
