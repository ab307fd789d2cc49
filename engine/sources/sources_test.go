package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/util"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/bundletest"
)

// policyDir is the repository's policy bundle, loaded in place (read only).
const policyDir = "../../policies"

// logFile is a log sink in the test's temporary directory. The watcher's
// goroutine writes it through the handler (a file needs no lock of ours
// for that) while the test reads back what has been written.
type logFile struct{ *os.File }

func newLogFile(t *testing.T) logFile {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return logFile{f}
}

func (l logFile) String() string {
	raw, _ := os.ReadFile(l.Name())
	return string(raw)
}

// registryFiles is a valid registry bundle at revision rev: one authority
// and one order targeting meeting m-1.
func registryFiles(rev string) map[string]string {
	return map[string]string{
		".manifest":             fmt.Sprintf(`{"revision": %q, "roots": ["authorities", "orders"]}`, rev),
		"authorities/data.json": `{"cn.cac": {"name": "Cyberspace Administration of China", "jurisdiction": ["CN"]}}`,
		"orders/data.json": fmt.Sprintf(`{"ORD-%s": {"authority": "cn.cac", "demands": ["end_meeting"], "targets": {"meetings": ["m-1"]},
			"legal_basis": "test order", "received": "2026-01-02"}}`, rev),
	}
}

// writeTree replaces dir's content with files.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func with(files map[string]string, name, body string) map[string]string {
	out := make(map[string]string, len(files)+1)
	for k, v := range files {
		out[k] = v
	}
	out[name] = body
	return out
}

// newSources returns Sources over the repository's policy and a registry
// directory, with logs captured.
func newSources(t *testing.T, registry string, geoDB string) (*Sources, *engine.Engine, logFile) {
	t.Helper()
	logs := newLogFile(t)
	eng := engine.New()
	src := New(Config{
		Bundles:  []string{policyDir, registry},
		GeoIPDB:  geoDB,
		Debounce: 20 * time.Millisecond,
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, eng)
	return src, eng, logs
}

func revisionOf(st Status, name string) string {
	for _, b := range st.Bundles {
		if b.Name == name {
			return b.Revision
		}
	}
	return ""
}

func TestLastKnownGoodBundles(t *testing.T) {
	ctx := context.Background()
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, registryFiles("reg-1"))
	src, eng, logs := newSources(t, regDir, "")
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, why := src.Ready(); !ok {
		t.Fatalf("not ready: %s", why)
	}
	if got := revisionOf(src.Status(), "registry"); got != "reg-1" {
		t.Fatalf("registry revision %q, want reg-1", got)
	}

	good := registryFiles("reg-1")
	bad := []struct {
		name  string
		files map[string]string
		err   error
		text  string
	}{
		{"malformed JSON", with(good, "orders/data.json", `{"ORD-x": {"authority": "cn.cac",`), policy.ErrBundle, "orders/data.json"},
		{"malformed manifest", with(good, ".manifest", `{"revision": "bad-2", "roots": [`), policy.ErrBundle, "manifest"},
		{"wrong-type field", with(good, "authorities/data.json", `{"cn.cac": {"name": "CAC", "jurisdiction": "CN"}}`), policy.ErrRegistry, "authorities.cn.cac.jurisdiction: jurisdiction must be an array"},
		{"wrong-type document", with(good, "orders/data.json", `{"ORD-x": ["not", "an", "order"]}`), policy.ErrRegistry, "orders.ORD-x: an order must be an object"},
		{"roots overlapping the policy", with(good, ".manifest", `{"revision": "bad-5", "roots": ["authorities", "orders", "geoscope"]}`), policy.ErrBundle, "overlap"},
		{"order of an unregistered authority", with(with(good, ".manifest", `{"revision": "bad-6", "roots": ["authorities", "orders"]}`),
			"orders/data.json", `{"ORD-x": {"authority": "xx.unknown", "demands": ["end_meeting"], "targets": {"meetings": ["m-1"]},
			"legal_basis": "test", "received": "2026-01-02"}}`), policy.ErrRegistry, `authority "xx.unknown" is not registered`},
	}
	for i, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before := eng.Policy()
			beforeStatus := src.Status()
			writeTree(t, regDir, tc.files)
			err := src.ReloadBundles(ctx)
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("ReloadBundles = %v, want %v mentioning %q", err, tc.err, tc.text)
			}
			if eng.Policy() != before {
				t.Error("the engine's snapshot changed")
			}
			st := src.Status()
			if st.BundleError == nil || st.BundleError.Error != err.Error() || st.BundleError.At.IsZero() {
				t.Errorf("BundleError = %+v, want %q", st.BundleError, err)
			}
			if fmt.Sprint(st.Bundles) != fmt.Sprint(beforeStatus.Bundles) || st.Reloads != beforeStatus.Reloads {
				t.Errorf("active bundles changed: %v (%d reloads) → %v (%d reloads)", beforeStatus.Bundles, beforeStatus.Reloads, st.Bundles, st.Reloads)
			}
			if ok, why := src.Ready(); !ok {
				t.Errorf("not ready after a rejected version: %s", why)
			}
			if !strings.Contains(logs.String(), "bundles rejected; keeping the active snapshot") {
				t.Error("no log line for the rejection")
			}

			// Fixed: activated, error cleared.
			rev := fmt.Sprintf("reg-fixed-%d", i)
			writeTree(t, regDir, registryFiles(rev))
			if err := src.ReloadBundles(ctx); err != nil {
				t.Fatal(err)
			}
			st = src.Status()
			if st.BundleError != nil {
				t.Errorf("BundleError = %+v after a good version", st.BundleError)
			}
			if got := revisionOf(st, "registry"); got != rev {
				t.Errorf("registry revision %q, want %s", got, rev)
			}
			if got := eng.Policy().Revisions()["registry"]; got != rev {
				t.Errorf("engine registry revision %q, want %s", got, rev)
			}
			if _, ok := eng.Policy().Registry().Orders["ORD-"+rev]; !ok {
				t.Errorf("the new registry's order ORD-%s is not active", rev)
			}
			if st.Reloads != beforeStatus.Reloads+1 {
				t.Errorf("Reloads = %d, want %d", st.Reloads, beforeStatus.Reloads+1)
			}
		})
	}
}

// The snapshot a failed reload leaves in place still decides with the
// registry it was built with.
func TestRejectedVersionNeverDecides(t *testing.T) {
	ctx := context.Background()
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, registryFiles("reg-1"))
	src, eng, _ := newSources(t, regDir, "")
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	writeTree(t, regDir, with(registryFiles("reg-2"), "authorities/data.json", `{"cn.cac": {"name": "CAC", "jurisdiction": "CN"}}`))
	if err := src.ReloadBundles(ctx); err == nil {
		t.Fatal("a wrong-type registry was accepted")
	}
	snap := eng.Policy()
	if got := snap.Revisions(); got["registry"] != "reg-1" {
		t.Errorf("revisions %v, want registry reg-1", got)
	}
	if _, ok := snap.Registry().Orders["ORD-reg-1"]; !ok {
		t.Error("the active registry lost ORD-reg-1")
	}
	if _, ok := snap.Registry().Orders["ORD-reg-2"]; ok {
		t.Error("the rejected registry's order is active")
	}
}

func TestFirstLoadFailureIsNotReady(t *testing.T) {
	ctx := context.Background()
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, with(registryFiles("reg-1"), "orders/data.json", `{`))
	src, eng, _ := newSources(t, regDir, "")
	err := src.Load(ctx)
	if !errors.Is(err, policy.ErrBundle) {
		t.Fatalf("Load = %v, want ErrBundle", err)
	}
	if eng.Policy() != nil {
		t.Fatal("a snapshot is active")
	}
	ok, why := src.Ready()
	if ok || !strings.HasPrefix(why, "no policy and registry bundles are active: ") || !strings.Contains(why, "orders/data.json") {
		t.Errorf("Ready() = %v, %q; want not ready, naming the rejected file", ok, why)
	}
	if src.Status().BundleError == nil {
		t.Error("no BundleError")
	}
	// The GeoIP database loaded regardless.
	if src.Status().GeoIP == nil || eng.Geo() == nil {
		t.Error("the GeoIP database was not loaded")
	}

	writeTree(t, regDir, registryFiles("reg-2"))
	if err := src.ReloadBundles(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, why := src.Ready(); !ok {
		t.Errorf("not ready after the fix: %s", why)
	}
}

func TestReadyBeforeAnyLoad(t *testing.T) {
	src, _, _ := newSources(t, t.TempDir(), "")
	if ok, why := src.Ready(); ok || why != "no policy and registry bundles are active yet" {
		t.Errorf("Ready() = %v, %q", ok, why)
	}
}

func TestLastKnownGoodGeoIP(t *testing.T) {
	ctx := context.Background()
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, registryFiles("reg-1"))
	dbPath := filepath.Join(t.TempDir(), "GeoIP2-Country.mmdb")
	good, err := os.ReadFile(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dbPath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	src, eng, _ := newSources(t, regDir, dbPath)
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	active := eng.Geo()
	st := src.Status()
	if st.GeoIP == nil || st.GeoIP.Source != dbPath || st.GeoIP.Database != geotest.StandardType || !st.GeoIP.Build.Equal(geotest.BuildTime) {
		t.Fatalf("GeoIP status %+v", st.GeoIP)
	}

	for _, tc := range []struct {
		name string
		body []byte
		err  error
	}{
		{"corrupt", []byte("this is not an mmdb file"), geo.ErrUnreadable},
		{"truncated", good[:len(good)/2], geo.ErrUnreadable},
		{"empty", nil, geo.ErrUnreadable},
		{"wrong type (ASN)", geotest.Build(t, "GeoLite2-ASN", geotest.StandardEntries[:2]), geo.ErrWrongType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(dbPath, tc.body, 0o600); err != nil {
				t.Fatal(err)
			}
			err := src.ReloadGeo()
			if !errors.Is(err, tc.err) {
				t.Fatalf("ReloadGeo = %v, want %v", err, tc.err)
			}
			if eng.Geo() != active {
				t.Error("the active database was replaced")
			}
			st := src.Status()
			if st.GeoIPError == nil || st.GeoIPError.Error != err.Error() {
				t.Errorf("GeoIPError = %+v", st.GeoIPError)
			}
			if st.GeoIP == nil || st.GeoIP.Database != geotest.StandardType {
				t.Errorf("GeoIP status %+v, want the old database", st.GeoIP)
			}
			if ok, why := src.Ready(); !ok {
				t.Errorf("not ready: %s", why)
			}
		})
	}

	other := geotest.WriteFile(t, "GeoLite2-City", geotest.StandardEntries)
	raw, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dbPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.ReloadGeo(); err != nil {
		t.Fatal(err)
	}
	st = src.Status()
	if eng.Geo() == active || st.GeoIPError != nil || st.GeoIP.Database != "GeoLite2-City" {
		t.Errorf("after the fix: replaced %v, status %+v, error %+v", eng.Geo() != active, st.GeoIP, st.GeoIPError)
	}
}

func TestFirstGeoIPFailureIsNotReady(t *testing.T) {
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, registryFiles("reg-1"))
	dbPath := filepath.Join(t.TempDir(), "broken.mmdb")
	if err := os.WriteFile(dbPath, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	src, _, _ := newSources(t, regDir, dbPath)
	if err := src.Load(context.Background()); !errors.Is(err, geo.ErrUnreadable) {
		t.Fatalf("Load = %v, want ErrUnreadable", err)
	}
	ok, why := src.Ready()
	if ok || !strings.HasPrefix(why, "no GeoIP database is loaded: ") || !strings.Contains(why, "broken.mmdb") {
		t.Errorf("Ready() = %v, %q", ok, why)
	}
	// The bundles loaded regardless.
	if got := revisionOf(src.Status(), "registry"); got != "reg-1" {
		t.Errorf("registry revision %q", got)
	}
}

// Watch reloads on file changes (fsnotify): a good version is activated,
// a bad one is rejected and the good one keeps deciding.
func TestWatchKeepsLastKnownGood(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := t.TempDir()
	regFile := filepath.Join(root, "registry.tar.gz")
	writeRegistryTarball(t, regFile, registryFiles("reg-1"))
	logs := newLogFile(t)
	eng := engine.New()
	src := New(Config{
		Bundles:  []string{policyDir, regFile},
		Debounce: 20 * time.Millisecond,
		Logger:   slog.New(slog.NewJSONHandler(logs, nil)),
	}, eng)
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func(Status) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond(src.Status()) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; status %+v\nlogs:\n%s", what, src.Status(), logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Replaced by rename, as operators (and the bundle tooling) do.
	replace := func(files map[string]string) {
		t.Helper()
		tmp := filepath.Join(root, ".registry.tar.gz.tmp")
		writeRegistryTarball(t, tmp, files)
		if err := os.Rename(tmp, regFile); err != nil {
			t.Fatal(err)
		}
	}

	replace(registryFiles("reg-2"))
	waitFor("reg-2", func(st Status) bool { return revisionOf(st, "registry") == "reg-2" })

	failedBefore := time.Now().UTC()
	replace(with(registryFiles("reg-3"), "authorities/data.json", `{"cn.cac": {"name": "CAC", "jurisdiction": "CN"}}`))
	waitFor("the rejection", func(st Status) bool { return st.BundleError != nil && !st.BundleError.At.Before(failedBefore) })
	if got := eng.Policy().Revisions()["registry"]; got != "reg-2" {
		t.Errorf("active registry %q after a rejected version, want reg-2", got)
	}

	replace(registryFiles("reg-4"))
	waitFor("reg-4", func(st Status) bool { return revisionOf(st, "registry") == "reg-4" && st.BundleError == nil })
}

// writeRegistryTarball writes files as a .tar.gz bundle with opa's layout.
func writeRegistryTarball(t *testing.T, path string, files map[string]string) {
	t.Helper()
	if err := os.WriteFile(path, bundletest.TarballOf(t, files), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRequireSignatures(t *testing.T) {
	const pubPEM = "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n"
	type bundleCfg = map[string]any
	cases := []struct {
		name   string
		config string
		keyPEM []byte // --verification-key
		keyID  string
		alg    string
		// want maps bundle name → the signing block it must end up with
		// (nil: none).
		want     map[string]map[string]any
		wantKeys map[string]map[string]any // keys that must be present, with these fields
		err      string                    // ErrConfig mentioning this
		same     bool                      // the configuration is returned unchanged
	}{
		{
			name:   "no keys, nothing to require",
			config: `{"services": {"s": {"url": "http://x"}}, "bundles": {"policies": {"service": "s"}}}`,
			want:   map[string]map[string]any{"policies": nil},
			same:   true,
		},
		{
			name: "one key, no signing blocks: signing injected into every bundle",
			config: `{"services": {"s": {"url": "http://x"}}, "keys": {"release": {"key": "k", "algorithm": "ES256"}},
				"bundles": {"policies": {"service": "s"}, "registry": {"service": "s"}}}`,
			want: map[string]map[string]any{"policies": {"keyid": "release"}, "registry": {"keyid": "release"}},
		},
		{
			name: "YAML configuration",
			config: "services:\n  s:\n    url: http://x\nkeys:\n  release:\n    key: k\n    algorithm: ES256\n" +
				"bundles:\n  policies:\n    service: s\n",
			want: map[string]map[string]any{"policies": {"keyid": "release"}},
		},
		{
			name: "several keys and no signing: refused, naming the bundle",
			config: `{"services": {"s": {"url": "http://x"}}, "keys": {"a": {"key": "k"}, "b": {"key": "k"}},
				"bundles": {"registry": {"service": "s"}}}`,
			err: `bundle "registry" has no "signing" block and several keys are configured (a, b)`,
		},
		{
			name: "several keys, signing present everywhere: untouched",
			config: `{"services": {"s": {"url": "http://x"}}, "keys": {"a": {"key": "k"}, "b": {"key": "k"}},
				"bundles": {"policies": {"service": "s", "signing": {"keyid": "a", "scope": "write"}}, "registry": {"service": "s", "signing": {"keyid": "b"}}}}`,
			want: map[string]map[string]any{"policies": {"keyid": "a", "scope": "write"}, "registry": {"keyid": "b"}},
		},
		{
			name: "one key, signing present: untouched",
			config: `{"services": {"s": {"url": "http://x"}}, "keys": {"release": {"key": "k"}},
				"bundles": {"policies": {"service": "s", "signing": {"keyid": "release", "scope": "write"}}}}`,
			want: map[string]map[string]any{"policies": {"keyid": "release", "scope": "write"}},
		},
		{
			// An empty block is OPA's optional-signature case again.
			name: "empty signing block is treated as absent",
			config: `{"services": {"s": {"url": "http://x"}}, "keys": {"release": {"key": "k"}},
				"bundles": {"policies": {"service": "s", "signing": {}}}}`,
			want: map[string]map[string]any{"policies": {"keyid": "release"}},
		},
		{
			name:   "--verification-key injected as a key and required of every bundle",
			config: `{"services": {"s": {"url": "http://x"}}, "bundles": {"policies": {"service": "s"}, "registry": {"service": "s"}}}`,
			keyPEM: []byte(pubPEM), keyID: "prod", alg: "ES256",
			want:     map[string]map[string]any{"policies": {"keyid": "prod"}, "registry": {"keyid": "prod"}},
			wantKeys: map[string]map[string]any{"prod": {"key": pubPEM, "algorithm": "ES256"}},
		},
		{
			name:   "--verification-key without a key id uses the default id",
			config: `{"services": {"s": {"url": "http://x"}}, "bundles": {"policies": {"service": "s"}}}`,
			keyPEM: []byte(pubPEM), alg: "RS256",
			want:     map[string]map[string]any{"policies": {"keyid": policy.DefaultKeyID}},
			wantKeys: map[string]map[string]any{policy.DefaultKeyID: {"key": pubPEM, "algorithm": "RS256"}},
		},
		{
			// With --verification-key the flag's key is the one required,
			// even when the file configures others.
			name: "--verification-key next to configured keys",
			config: `{"services": {"s": {"url": "http://x"}}, "keys": {"a": {"key": "k"}, "b": {"key": "k"}},
				"bundles": {"policies": {"service": "s"}, "registry": {"service": "s", "signing": {"keyid": "a"}}}}`,
			keyPEM: []byte(pubPEM), keyID: "prod", alg: "ES256",
			want:     map[string]map[string]any{"policies": {"keyid": "prod"}, "registry": {"keyid": "a"}},
			wantKeys: map[string]map[string]any{"a": {"key": "k"}, "b": {"key": "k"}, "prod": {"key": pubPEM}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			if err := util.Unmarshal([]byte(tc.config), &doc); err != nil {
				t.Fatal(err)
			}
			out, err := requireSignatures(doc, tc.keyPEM, tc.keyID, tc.alg)
			if tc.err != "" || tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.same {
				var before, after any
				_ = util.Unmarshal([]byte(tc.config), &before)
				if err := json.Unmarshal(out, &after); err != nil || !reflect.DeepEqual(before, after) {
					t.Errorf("configuration rewritten:\n%s", out)
				}
			}
			var cfg struct {
				Keys    map[string]map[string]any `json:"keys"`
				Bundles map[string]bundleCfg      `json:"bundles"`
			}
			if err := json.Unmarshal(out, &cfg); err != nil {
				t.Fatalf("result is not JSON: %v\n%s", err, out)
			}
			for name, want := range tc.want {
				b, ok := cfg.Bundles[name]
				if !ok {
					t.Errorf("bundle %s lost", name)
					continue
				}
				if b["service"] != "s" {
					t.Errorf("bundle %s: service lost: %v", name, b)
				}
				got, _ := b["signing"].(map[string]any)
				if fmt.Sprint(got) != fmt.Sprint(want) && !(want == nil && got == nil) {
					t.Errorf("bundle %s: signing = %v, want %v", name, got, want)
				}
			}
			for id, fields := range tc.wantKeys {
				k, ok := cfg.Keys[id]
				if !ok {
					t.Errorf("key %s missing: %v", id, cfg.Keys)
					continue
				}
				for f, v := range fields {
					if k[f] != v {
						t.Errorf("keys.%s.%s = %v, want %v", id, f, k[f], v)
					}
				}
			}
		})
	}
}

// Kubernetes mounts a ConfigMap or Secret as symlinks into a timestamped
// directory (registry.tar.gz → ..data/registry.tar.gz, ..data → ..2026_…)
// and updates it by swapping the ..data symlink. The bundle file's own name
// sees no event; only the swap does.
func TestWatchSymlinkSwap(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mount := t.TempDir()
	version := func(n int) {
		t.Helper()
		dir := fmt.Sprintf("..2026_01_02_v%d", n)
		if err := os.Mkdir(filepath.Join(mount, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		writeRegistryTarball(t, filepath.Join(mount, dir, "registry.tar.gz"), registryFiles(fmt.Sprintf("reg-%d", n)))
		if err := os.Symlink(dir, filepath.Join(mount, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version(1)
	regFile := filepath.Join(mount, "registry.tar.gz")
	if err := os.Symlink(filepath.Join("..data", "registry.tar.gz"), regFile); err != nil {
		t.Fatal(err)
	}
	eng := engine.New()
	src := New(Config{Bundles: []string{policyDir, regFile}, Debounce: 20 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, eng)
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	version(2)
	deadline := time.Now().Add(5 * time.Second)
	for revisionOf(src.Status(), "registry") != "reg-2" {
		if time.Now().After(deadline) {
			// A reload picks the new version up: only the watcher misses it.
			if err := src.ReloadBundles(ctx); err != nil || revisionOf(src.Status(), "registry") != "reg-2" {
				t.Fatalf("even ReloadBundles does not see reg-2: %v", err)
			}
			t.Fatal("a bundle file mounted the Kubernetes ConfigMap/Secret way (a symlink into ..data, updated by swapping " +
				"the ..data symlink) is not reloaded by the watcher (input: --bundle <mount>/registry.tar.gz, ..data swapped to " +
				"reg-2; expected: reg-2 activated; actual: reg-1 stays active until POST /v1/admin/reload), because " +
				"internal/watch only reacts to events naming the watched file itself")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A bundle directory replaced whole (the new tree moved into place, the
// old one moved away), then edited in place.
func TestWatchDirectoryReplaced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := t.TempDir()
	regDir := filepath.Join(root, "registry")
	writeTree(t, regDir, registryFiles("reg-1"))
	eng := engine.New()
	src := New(Config{Bundles: []string{policyDir, regDir}, Debounce: 20 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}, eng)
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	wait := func(rev string) bool {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if revisionOf(src.Status(), "registry") == rev {
				return true
			}
		}
		return false
	}

	staged := filepath.Join(root, "registry.new")
	writeTree(t, staged, registryFiles("reg-2"))
	if err := os.Rename(regDir, filepath.Join(root, "registry.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(staged, regDir); err != nil {
		t.Fatal(err)
	}
	if !wait("reg-2") {
		t.Fatalf("a bundle directory replaced by rename is not reloaded (input: --bundle %s, the tree moved away and a "+
			"new one moved into its place; expected: reg-2; actual: %q; status %+v)", regDir, revisionOf(src.Status(), "registry"), src.Status())
	}

	// Then edited in place: the new tree must be watched too.
	for name, body := range registryFiles("reg-3") {
		if err := os.WriteFile(filepath.Join(regDir, filepath.FromSlash(name)), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !wait("reg-3") {
		t.Fatalf("after a bundle directory is replaced by rename, edits inside the new directory are not seen "+
			"(input: --bundle %s replaced, then its files rewritten as reg-3; expected: reg-3 activated; actual: %q stays), "+
			"because internal/watch keeps watching the old directory's inode and does not watch the parent for the "+
			"path's reappearance", regDir, revisionOf(src.Status(), "registry"))
	}
}

// A bundle given as a symlink to a directory (no trailing slash) is the
// directory's content, and a deployment that swaps the link to another
// directory activates that one. Orders lost from a new version (its
// orders/ directory left out) are refused, not activated.
func TestBundleDirectorySymlink(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := t.TempDir()
	v1, v2, v3 := filepath.Join(root, "registry-v1"), filepath.Join(root, "registry-v2"), filepath.Join(root, "registry-v3")
	writeTree(t, v1, registryFiles("reg-1"))
	writeTree(t, v2, registryFiles("reg-2"))
	noOrders := registryFiles("reg-3")
	delete(noOrders, "orders/data.json")
	writeTree(t, v3, noOrders)
	link := filepath.Join(root, "registry")
	swap := func(target string) {
		t.Helper()
		if err := os.Symlink(target, link+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(link+".tmp", link); err != nil {
			t.Fatal(err)
		}
	}
	swap(v1)
	policyLink := filepath.Join(root, "policies")
	abs, _ := filepath.Abs(policyDir)
	if err := os.Symlink(abs, policyLink); err != nil {
		t.Fatal(err)
	}
	logs := newLogFile(t)
	eng := engine.New()
	src := New(Config{Bundles: []string{policyLink, link}, Debounce: 20 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}, eng)
	if err := src.Load(ctx); err != nil {
		t.Fatalf("symlinked bundle directories: %v", err)
	}
	if ok, why := src.Ready(); !ok || revisionOf(src.Status(), "registry") != "reg-1" {
		t.Fatalf("not ready with the symlinked bundles (%s); status %+v", why, src.Status())
	}
	if got := eng.Policy().Registry().Orders; len(got) != 1 {
		t.Errorf("orders %v, want ORD-reg-1", got)
	}
	if err := src.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func(Status) bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(src.Status()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %+v\nlog:\n%s", what, src.Status(), logs)
			}
		}
	}
	swap(v2)
	waitFor("the swapped link activates reg-2", func(st Status) bool { return revisionOf(st, "registry") == "reg-2" })

	swap(v3)
	waitFor("the version without orders is refused", func(st Status) bool { return st.BundleError != nil })
	if e := src.Status().BundleError.Error; !strings.Contains(e, "data.orders is missing") {
		t.Errorf("bundle_error %q does not name the missing orders", e)
	}
	if revisionOf(src.Status(), "registry") != "reg-2" || len(eng.Policy().Registry().Orders) != 1 {
		t.Errorf("reg-2 and its order must stay active; status %+v", src.Status())
	}
}

// A first load that fails says that nothing is active, not that an active
// version is kept; the next good version makes the engine ready.
func TestFirstLoadFailureLogged(t *testing.T) {
	ctx := context.Background()
	regDir := filepath.Join(t.TempDir(), "registry")
	writeTree(t, regDir, with(registryFiles("reg-1"), "orders/data.json", `{"broken":`))
	badGeo := filepath.Join(t.TempDir(), "geo.mmdb")
	if err := os.WriteFile(badGeo, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := newLogFile(t)
	eng := engine.New()
	src := New(Config{Bundles: []string{policyDir, regDir}, GeoIPDB: badGeo, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, eng)
	if err := src.Load(ctx); err == nil {
		t.Fatal("Load succeeded with a broken registry and database")
	}
	out := logs.String()
	for _, want := range []string{
		"bundles rejected; none is active, so nothing is decided (not ready) until a version loads",
		"GeoIP database rejected; none is active, so nothing is decided (not ready) until one loads",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "keeping the active") {
		t.Errorf("the log claims an active version is kept although none is:\n%s", out)
	}
	if ok, _ := src.Ready(); ok {
		t.Error("ready without a policy or database")
	}
}

// A registry whose jurisdictions list subdivisions with a Country database
// (which locates nobody in a subdivision) is active and valid, but /v1/status
// and the log say its orders act on nobody there; a City database, or a
// registry of countries, clears the warning.
func TestSubdivisionWarning(t *testing.T) {
	ctx := context.Background()
	regDir := filepath.Join(t.TempDir(), "registry")
	crimea := with(registryFiles("reg-1"), "authorities/data.json",
		`{"cn.cac": {"name": "Cyberspace Administration of China", "jurisdiction": ["CN"]}, "ua.crimea": {"name": "Crimea", "jurisdiction": ["UA-43"]}}`)
	writeTree(t, regDir, crimea)
	dbPath := filepath.Join(t.TempDir(), "geo.mmdb")
	country, err := os.ReadFile(geotest.Standard(t))
	if err != nil {
		t.Fatal(err)
	}
	city, err := os.ReadFile(geotest.StandardCity(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dbPath, country, 0o600); err != nil {
		t.Fatal(err)
	}
	src, _, logs := newSources(t, regDir, dbPath)
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	st := src.Status()
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "ua.crimea") || !strings.Contains(st.Warnings[0], geotest.StandardType) ||
		!strings.Contains(st.Warnings[0], "act on nobody") {
		t.Fatalf("warnings = %q", st.Warnings)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "ua.crimea") {
		t.Errorf("the warning was not logged:\n%s", logs)
	}
	raw, _ := json.Marshal(st)
	if !strings.Contains(string(raw), `"warnings":[`) {
		t.Errorf("status JSON %s", raw)
	}

	// A City database: nothing to warn about.
	if err := os.WriteFile(dbPath, city, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.ReloadGeo(); err != nil {
		t.Fatal(err)
	}
	if st := src.Status(); st.Warnings != nil {
		t.Errorf("warnings with a City database: %q", st.Warnings)
	}
	raw, _ = json.Marshal(src.Status())
	if strings.Contains(string(raw), `"warnings"`) {
		t.Errorf("status JSON has warnings: %s", raw)
	}

	// Back to the Country database, then a registry of countries only.
	if err := os.WriteFile(dbPath, country, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := src.ReloadGeo(); err != nil {
		t.Fatal(err)
	}
	if st := src.Status(); len(st.Warnings) != 1 {
		t.Errorf("warnings = %q", st.Warnings)
	}
	writeTree(t, regDir, registryFiles("reg-2"))
	if err := src.ReloadBundles(ctx); err != nil {
		t.Fatal(err)
	}
	if st := src.Status(); st.Warnings != nil {
		t.Errorf("warnings with a registry of countries: %q", st.Warnings)
	}
}

func TestSubdivisionWarningText(t *testing.T) {
	if w := SubdivisionWarning(registryOf(map[string][]string{"a": {"CN"}}), geo.Info{Database: "GeoIP2-Country"}); w != "" {
		t.Errorf("countries only: %q", w)
	}
	if w := SubdivisionWarning(registryOf(map[string][]string{"b": {"GB-LND"}, "a": {"UA-43"}}), geo.Info{Database: "GeoIP2-City", Subdivisions: true}); w != "" {
		t.Errorf("a City database: %q", w)
	}
	w := SubdivisionWarning(registryOf(map[string][]string{"b": {"GB-LND"}, "a": {"UA-43"}, "c": {"CN"}}), geo.Info{Database: "DBIP-Country-Lite"})
	if !strings.Contains(w, "the jurisdictions of a, b list subdivisions") || !strings.Contains(w, "DBIP-Country-Lite") {
		t.Errorf("warning %q", w)
	}
}

func registryOf(jurisdictions map[string][]string) *registry.Registry {
	auths := map[string]registry.Authority{}
	for id, j := range jurisdictions {
		auths[id] = registry.Authority{Name: id, Jurisdiction: j}
	}
	return registry.New(auths, nil)
}
