package tests

// Registry validation is the engine's: the rules are built into the binary
// and run at every activation whatever policy bundle is loaded. A policy
// bundle of the operator's own that leaves them out does not switch them
// off; one that adds violations of its own adds to them.

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// customPolicyRego is an operator's own decision policy: no registry
// validation rules at all.
const customPolicyRego = `package geoscope

decision := {"actions": set(), "refused": set()}
`

// houseRuleRego adds a violation: every order's legal basis must cite a
// letter reference.
const houseRuleRego = `package geoscope.registry

violations contains {"path": sprintf("orders.%s.legal_basis", [id]), "message": "must cite a letter reference (ref. ...)"} if {
	some id, o in data.orders
	not contains(o.legal_basis, "ref.")
}
`

// badJurisdictionData is an authority whose jurisdiction holds a lower-case
// and a reserved code.
func badJurisdictionData() map[string]any {
	data := bndRegistryData("ORD-bad", remoteMeeting, remoteAccount)
	data["authorities"].(map[string]any)["cn.cac"].(map[string]any)["jurisdiction"] = []any{"RU", "ru", "UK"}
	return data
}

// writeDirBundle writes files (slash paths) into a fresh directory named
// name.
func writeDirBundle(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func customPolicyDir(t *testing.T, extra map[string]string) string {
	t.Helper()
	files := map[string]string{".manifest": `{"roots": ["geoscope"]}`, "geoscope/policy.rego": customPolicyRego}
	for k, v := range extra {
		files[k] = v
	}
	return writeDirBundle(t, "policies", files)
}

func validationRegistryDir(t *testing.T, authorities, orders string) string {
	t.Helper()
	return writeDirBundle(t, "registry", map[string]string{
		".manifest":             `{"roots": ["authorities", "orders"]}`,
		"authorities/data.json": authorities,
		"orders/data.json":      orders,
	})
}

func TestRegistryValidationBuiltIn(t *testing.T) {
	db := geotest.Standard(t)
	badRegistry := validationRegistryDir(t, `{"ru.rkn": {"name": "Roskomnadzor", "jurisdiction": ["RU", "ru", "UK"]}}`, `{}`)
	wantRejected := []string{"registry rejected", "2 violations",
		`authorities.ru.rkn.jurisdiction[1]: \"ru\" is not an ISO 3166-1 alpha-2 code`,
		`authorities.ru.rkn.jurisdiction[2]: \"UK\" is not an assigned ISO 3166-1 alpha-2 code`}
	decide := func(t *testing.T, bundles ...string) cliResult {
		t.Helper()
		args := []string{"decide", "--ledger", "off", "--geoip-db", db}
		for _, b := range bundles {
			args = append(args, "--bundle", b)
		}
		return runCLI(t, []byte(validRequest), args...)
	}
	unquote := func(s []string) []string {
		out := make([]string, len(s))
		for i, x := range s {
			out[i] = strings.ReplaceAll(x, `\"`, `"`)
		}
		return out
	}

	t.Run("custom policy without validation rules, decide", func(t *testing.T) {
		wantBadInput(t, decide(t, customPolicyDir(t, nil), badRegistry), "", unquote(wantRejected)...)
	})

	t.Run("custom policy with a valid registry, decide", func(t *testing.T) {
		if res := decide(t, customPolicyDir(t, nil), "../bundles/registry"); res.code != 0 {
			t.Fatalf("rejected:\n%v", res)
		}
	})

	t.Run("custom policy adds a violation, decide", func(t *testing.T) {
		res := decide(t, customPolicyDir(t, map[string]string{"geoscope/registry/house.rego": houseRuleRego}), "../bundles/registry")
		wantBadInput(t, res, "", "registry rejected", "orders.CN-2020-0601.legal_basis: must cite a letter reference")
	})

	t.Run("custom policy without validation rules, serve", func(t *testing.T) {
		srv := bndStart(t, "--bundle", customPolicyDir(t, nil), "--bundle", badRegistry)
		r := srv.request(t, http.MethodGet, "/ready", "", "", nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("/ready: %v, want 503", r)
		}
		for _, want := range wantRejected {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("/ready %s does not mention %s", r.body, want)
			}
		}
	})

	// OPA's bundle plugin activates the bundles; geoscope validates the
	// registry before building a snapshot from them.
	t.Run("custom policy without validation rules, remote", func(t *testing.T) {
		key := bndDevKey(t, "dev-es256", "ES256")
		pol := &bundle.Bundle{Manifest: bundle.Manifest{Revision: "custom-1", Roots: &[]string{"geoscope"}}, Data: map[string]any{},
			Modules: []bundle.ModuleFile{{URL: "/geoscope/policy.rego", Path: "/geoscope/policy.rego", RelativePath: "geoscope/policy.rego", Raw: []byte(customPolicyRego)}}}
		bs := newBundleServer(t)
		bs.set("policies.tar.gz", bndWrite(t, pol, &key))
		bs.set("registry.tar.gz", bndRegistryBundle(t, "bad-1", badJurisdictionData(), &key))
		srv := bndStart(t, "--config", opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, "release"))
		st := srv.waitStatus(t, "the registry rejected", 30*time.Second, func(st bndStatus) bool {
			return st.BundleError != nil && strings.Contains(st.BundleError.Error, "registry rejected")
		})
		for _, want := range []string{`authorities.cn.cac.jurisdiction[1]: "ru"`, `authorities.cn.cac.jurisdiction[2]: "UK"`} {
			if !strings.Contains(st.BundleError.Error, want) {
				t.Errorf("bundle_error %q does not mention %s", st.BundleError.Error, want)
			}
		}
		if st.Ready {
			t.Error("ready with a rejected registry")
		}
	})
}
