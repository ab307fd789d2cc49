package tests

// The worked extensions installed together in one policy bundle, as an
// operator who wants all of them does: each README's install commands run
// one after another in the same directory. Each example's tests assert
// only what that example adds, so stock `opa test` passes on the
// combination; the bundle is also formatted and type-checked, and one
// decision through geoscope shows each extension's effect.

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// togetherRequest is a meeting targeted by the example order CN-2020-0602
// (end_meeting), with everyone in mainland China: without extensions every
// person is removed and the meeting ended. Each extension exempts one of
// them: the co-host and the connected host (hosts-never-acted-on), the
// accredited journalist (accredited-press, an account in its example
// list) and the caller whose caller id is not attested "A"
// (verified-callers).
const togetherRequest = `{
  "meeting": {
    "id": "control-cn",
    "host": {"account_id": "acct-cn-host", "account_country": "CN", "ip": "1.0.16.4"},
    "participants": [
      {"id": "plain", "ip": "1.0.16.1", "role": "attendee"},
      {"id": "co-host", "ip": "1.0.16.2", "role": "co_host"},
      {"id": "press", "ip": "1.0.16.3", "role": "attendee", "account_id": "acct-press-0001"},
      {"id": "caller-verified", "phone": "+861012345678", "attributes": {"caller_id_attestation": "A"}},
      {"id": "caller-unverified", "phone": "+8613812345678", "attributes": {"caller_id_attestation": "B"}}
    ]
  }
}`

func TestExtensionsInstalledTogether(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readmes, err := filepath.Glob(filepath.Join(root, "docs", "extensions", "*", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range readmes {
		names = append(names, filepath.Base(filepath.Dir(r)))
	}
	if want := []string{"accredited-press", "hosts-never-acted-on", "verified-callers"}; !slices.Equal(names, want) {
		t.Fatalf("extension examples %v; this test installs and expects the effects of %v", names, want)
	}
	key, pub, registry := signedRegistry(t, root)
	db := geotest.Standard(t)

	// Each README's commands, in one directory: the second and third run
	// their `opa test` with the extensions installed before them.
	dir := installDir(t, root)
	for _, readme := range readmes {
		runInstall(t, dir, installScript(t, readme, key))
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, "my-policy", "geoscope", "extensions", strings.ReplaceAll(name, "-", "_")+".rego")); err != nil {
			t.Fatalf("%s is not installed: %v", name, err)
		}
	}

	// Stock OPA on the combined bundle: every test (the default policy's
	// and each example's), formatting, and a strict, schema-typed check.
	for _, args := range [][]string{
		{"test", "my-policy"},
		{"fmt", "--list", "--fail", "my-policy"},
		{"check", "--strict", "--schema", "docs/schemas", "my-policy"},
		{"build", "-b", "my-policy", "--ignore", "*_test.rego",
			"--signing-key", key, "--signing-alg", "ES256", "-o", "dist/policies.tar.gz"},
	} {
		cmd := exec.Command("go", append([]string{"tool", "opa"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go tool opa %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	decide := func(t *testing.T, bundles ...string) decision.Decision {
		t.Helper()
		args := []string{"decide", "--geoip-db", db, "--locate-phone-numbers"}
		for _, b := range bundles {
			args = append(args, "--bundle", b)
		}
		if len(bundles) > 0 {
			args = append(args, "--verification-key", pub)
		}
		res := runIn(t, dir, nil, []byte(togetherRequest), args...)
		if res.code != 0 {
			t.Fatalf("geoscope %s: %v", strings.Join(args, " "), res)
		}
		var d decision.Decision
		if err := json.Unmarshal([]byte(res.stdout), &d); err != nil {
			t.Fatalf("decision: %v\n%s", err, res.stdout)
		}
		return d
	}
	removed := func(d decision.Decision) (ids []string, types []string) {
		for _, a := range d.Actions {
			types = append(types, a.Type)
			if a.Type == decision.RemoveParticipant {
				ids = append(ids, a.ParticipantID)
			}
		}
		slices.Sort(ids)
		slices.Sort(types)
		return slices.Compact(ids), slices.Compact(types)
	}
	refused := func(d decision.Decision) []string {
		var codes []string
		for _, r := range d.Refused {
			codes = append(codes, r.OrderID+" "+r.Demand+" "+r.Code)
		}
		slices.Sort(codes)
		return codes
	}

	// The default policy alone (embedded, with the same registry) acts on
	// everyone in the request: each exemption below is an extension's.
	base := decide(t)
	ids, types := removed(base)
	if want := []string{"acct-cn-host", "caller-unverified", "caller-verified", "co-host", "plain", "press"}; !slices.Equal(ids, want) {
		t.Errorf("default policy removes %v; want %v (the request no longer reaches everyone)", ids, want)
	}
	if !slices.Contains(types, decision.EndMeeting) || len(base.Refused) != 0 {
		t.Errorf("default policy: action types %v, refused %v; want end_meeting granted, nothing refused", types, refused(base))
	}

	// All three installed: only the two people none of them exempts are
	// removed, and the meeting is not ended.
	d := decide(t, "dist/policies.tar.gz", registry)
	ids, types = removed(d)
	if want := []string{"caller-verified", "plain"}; !slices.Equal(ids, want) || !slices.Equal(types, []string{decision.RemoveParticipant}) {
		t.Errorf("with the three extensions: removed %v, action types %v; want %v removed and nothing else", ids, types, want)
	}
	if got, want := refused(d), []string{"CN-2020-0602 end_meeting exempt"}; !slices.Equal(got, want) {
		t.Errorf("with the three extensions: refused %v; want %v", got, want)
	}
	if len(d.GuardBlocked) != 0 {
		t.Errorf("with the three extensions: guard blocked %v", d.GuardBlocked)
	}
	for _, a := range d.Actions {
		if a.ParticipantID == "caller-verified" && a.LocatedBy != decision.LocatedByPhone {
			t.Errorf("the verified caller was removed as located by %q; want phone", a.LocatedBy)
		}
	}
}
