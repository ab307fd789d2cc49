package tests

// Local bundle reloads against the real binary: bundle files replaced
// under load (watched with fsnotify), rejected versions that never answer,
// signatures, and POST /v1/admin/reload.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	reloadMeeting = "bundle-reload-meeting"
	reloadAccount = "acct-bundle-reload"
)

// bndLoad drives admissions for the reload meeting in the background until
// the returned function is called, which stops the load and returns its
// result (it may be called more than once).
func bndLoad(t *testing.T, srv *bndServer, token string) func() loadResult {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan loadResult, 1)
	go func() {
		done <- runLoad(t, loadSpec{
			URL:         srv.base + "/v1/admission",
			Token:       token,
			Bodies:      admissionBodies(reloadMeeting, reloadAccount),
			Concurrency: 8,
			Duration:    3 * time.Minute, // a backstop; the test stops the load
			Max:         50_000_000,
			Stop:        stop,
			Key:         bndAnswerKey,
		})
	}()
	var (
		once sync.Once
		res  loadResult
	)
	return func() loadResult {
		once.Do(func() {
			close(stop)
			select {
			case res = <-done:
			case <-time.After(time.Minute):
				t.Error("the load did not stop within a minute")
			}
		})
		return res
	}
}

var answerKeyRE = regexp.MustCompile(`^([^|]*)\|([^|]*)\|(.*)$`)

// checkAnswers asserts that every answer's registry revision and order ids
// agree (revision reg-N ⇔ order_ids [ORD-N]), that the policy revision
// never changed, and that no revision outside valid ever answered. It
// returns the registry revisions seen.
func checkAnswers(t *testing.T, answers map[string]int, valid map[string]bool) map[string]int {
	t.Helper()
	seen := map[string]int{}
	policies := map[string]bool{}
	for key, n := range answers {
		m := answerKeyRE.FindStringSubmatch(key)
		if m == nil {
			t.Errorf("%d answers with an unexpected shape: %q", n, key)
			continue
		}
		pol, reg, orders := m[1], m[2], m[3]
		policies[pol] = true
		seen[reg] += n
		if !valid[reg] {
			t.Errorf("%d answers came from registry revision %q, which must never answer", n, reg)
			continue
		}
		if want := "ORD-" + strings.TrimPrefix(reg, "reg-"); orders != want {
			t.Errorf("%d answers mix registry revision %s with order_ids [%s] (want [%s])", n, reg, orders, want)
		}
	}
	if len(policies) != 1 {
		t.Errorf("policy revisions answering: %v, want exactly one", policies)
	}
	return seen
}

func validRegistry(t *testing.T, n int, key *bndKey) []byte {
	t.Helper()
	return bndRegistryBundle(t, fmt.Sprintf("reg-%d", n), bndRegistryData(fmt.Sprintf("ORD-%d", n), reloadMeeting, reloadAccount), key)
}

// invalidRegistry is one of three ways a registry version goes wrong, each
// at revision bad-n (when the manifest can be read at all), and a text the
// rejection names.
func invalidRegistry(t *testing.T, n int) (raw []byte, kind, text string) {
	t.Helper()
	manifest := fmt.Sprintf(`{"revision": "bad-%d", "roots": ["authorities", "orders"]}`, n)
	authorities := `{"cn.cac": {"name": "Cyberspace Administration of China", "jurisdiction": ["CN"]}}`
	switch n / 2 % 3 {
	case 0:
		return bndTar(t, map[string]string{
			".manifest":             manifest,
			"authorities/data.json": authorities,
			"orders/data.json":      fmt.Sprintf(`{"ORD-%d": {"authority": "cn.cac", "demands": [`, n),
		}), "malformed JSON", "registry.tar.gz"
	case 1:
		data := bndRegistryData(fmt.Sprintf("BAD-%d", n), reloadMeeting, reloadAccount)
		data["orders"].(map[string]any)[fmt.Sprintf("BAD-%d", n)].(map[string]any)["authority"] = "xx.unregistered"
		return bndRegistryBundle(t, fmt.Sprintf("bad-%d", n), data, nil), "order of an unregistered authority",
			fmt.Sprintf(`orders.BAD-%d.authority: authority "xx.unregistered" is not registered`, n)
	default:
		data := bndRegistryData(fmt.Sprintf("BAD-%d", n), reloadMeeting, reloadAccount)
		data["authorities"].(map[string]any)["cn.cac"].(map[string]any)["jurisdiction"] = "CN"
		return bndRegistryBundle(t, fmt.Sprintf("bad-%d", n), data, nil), "wrong-type field", "authorities.cn.cac.jurisdiction: jurisdiction must be an array"
	}
}

// TestBundlesReloadUnderLoad swaps the registry bundle file 20 times while
// admissions run at concurrency 8: valid versions are activated, invalid
// ones rejected, and every answer comes from exactly one complete version.
func TestBundlesReloadUnderLoad(t *testing.T) {
	started := time.Now()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	bndCopyDir(t, filepath.Join("..", "policies"), pol)
	reg := filepath.Join(dir, "registry.tar.gz")
	if err := os.WriteFile(reg, validRegistry(t, 0, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := bndStart(t, "--bundle", pol, "--bundle", reg)
	srv.waitStatus(t, "ready with reg-0", 15*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("registry") == "reg-0" })

	stopLoad := bndLoad(t, srv, "")
	defer stopLoad()

	valid := map[string]bool{"reg-0": true}
	lastValid := "reg-0"
	deadline := time.Now().Add(2 * time.Minute)
	for i := 1; i <= 20; i++ {
		wait := min(20*time.Second, time.Until(deadline))
		if wait <= 0 {
			t.Fatalf("swap %d: out of time", i)
		}
		if i%2 == 1 {
			rev := fmt.Sprintf("reg-%d", i)
			valid[rev] = true
			replaceFile(t, reg, validRegistry(t, i, nil))
			srv.waitStatus(t, rev+" active", wait, func(st bndStatus) bool {
				return st.revision("registry") == rev && st.BundleError == nil
			})
			lastValid = rev
			continue
		}
		raw, kind, text := invalidRegistry(t, i)
		swapped := time.Now().UTC()
		replaceFile(t, reg, raw)
		st := srv.waitStatus(t, fmt.Sprintf("bad-%d (%s) rejected", i, kind), wait, func(st bndStatus) bool {
			return st.BundleError != nil
		})
		if !strings.Contains(st.BundleError.Error, text) {
			t.Errorf("bad-%d (%s): bundle_error %q does not mention %q", i, kind, st.BundleError.Error, text)
		}
		if st.BundleError.At.Before(swapped.Add(-time.Second)) {
			t.Errorf("bad-%d: bundle_error at %s predates the swap at %s", i, st.BundleError.At, swapped)
		}
		if got := st.revision("registry"); got != lastValid {
			t.Errorf("bad-%d (%s): active registry %q, want %s kept", i, kind, got, lastValid)
		}
		if !st.Ready {
			t.Errorf("bad-%d: not ready: %s", i, st.NotReady)
		}
	}
	time.Sleep(100 * time.Millisecond) // a few answers from the final state
	res := stopLoad()

	t.Logf("load during the swaps: %s", res)
	if res.Errors > 0 {
		t.Errorf("%d of %d requests failed; first: %s", res.Errors, res.Requests, res.FirstError)
	}
	if res.Requests == 0 {
		t.Fatal("no requests were made")
	}
	seen := checkAnswers(t, res.Answers, valid)
	t.Logf("answers by registry revision: %v", seen)
	if len(seen) < len(valid)/2 {
		t.Errorf("only %d of %d valid revisions answered during the load: %v", len(seen), len(valid), seen)
	}
	for rev := range seen {
		if strings.HasPrefix(rev, "bad-") {
			t.Errorf("revision %s answered", rev)
		}
	}

	final := srv.status(t)
	if got := final.revision("registry"); got != lastValid || lastValid != "reg-19" {
		t.Errorf("final registry revision %q, want the last valid one, %s (reg-19)", got, lastValid)
	}
	if a := srv.admit(t, "", reloadMeeting, reloadAccount); a.Bundles["registry"] != "reg-19" || strings.Join(a.OrderIDs, ",") != "ORD-19" {
		t.Errorf("final answer %+v, want registry reg-19 and order ORD-19", a)
	}
	m := srv.metrics(t)
	if len(bndMetric(m, "geoscope_bundle_last_failure_timestamp_seconds")) != 1 {
		t.Errorf("geoscope_bundle_last_failure_timestamp_seconds missing after a rejected version:\n%s", strings.Join(bndMetric(m, "geoscope_bundle"), "\n"))
	}
	if !strings.Contains(m, `geoscope_bundle_info{name="registry",revision="reg-19"} 1`) {
		t.Errorf("geoscope_bundle_info does not name reg-19:\n%s", strings.Join(bndMetric(m, "geoscope_bundle_info"), "\n"))
	}
	t.Logf("20 swaps under load in %s", time.Since(started).Round(time.Millisecond))

	// The metric's help text: "When a bundle version was last rejected
	// (absent if never)". A rejection followed by a good version is still
	// a rejection that happened, and alerting on it needs the timestamp.
	t.Run("last failure timestamp survives a later good version", func(t *testing.T) {
		replaceFile(t, reg, validRegistry(t, 21, nil))
		srv.waitStatus(t, "reg-21 active", 20*time.Second, func(st bndStatus) bool { return st.revision("registry") == "reg-21" })
		if len(bndMetric(srv.metrics(t), "geoscope_bundle_last_failure_timestamp_seconds")) == 0 {
			t.Fatal("geoscope_bundle_last_failure_timestamp_seconds disappears once a good version is activated " +
				"(input: bad-20 rejected, then reg-21 activated; expected: the metric keeps bad-20's rejection time, as its help " +
				"\"absent if never\" says; actual: absent, because Sources.activate clears Status.BundleError and the collector " +
				"derives the metric from it), so a rejection between two scrapes leaves no trace in the metrics")
		}
	})
}

// TestBundlesReloadSignedRejectsUnsigned: with --verification-key, an
// unsigned (otherwise valid) or tampered registry swapped in is rejected
// and never answers, while signed versions are activated.
func TestBundlesReloadSignedRejectsUnsigned(t *testing.T) {
	started := time.Now()
	key := bndDevKey(t, "dev-es256", "ES256")
	dir := t.TempDir()

	t.Run("unsigned policy at start: not ready", func(t *testing.T) {
		reg := filepath.Join(t.TempDir(), "registry.tar.gz")
		if err := os.WriteFile(reg, validRegistry(t, 0, &key), 0o600); err != nil {
			t.Fatal(err)
		}
		srv := bndStart(t, "--bundle", filepath.Join("..", "policies"), "--bundle", reg, "--verification-key", key.pubPath)
		r := srv.request(t, http.MethodGet, "/ready", "", "", nil)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "missing .signatures.json") {
			t.Errorf("/ready = %d %s, want 503 naming the missing signature", r.status, r.body)
		}
	})

	pol := filepath.Join(dir, "policies.tar.gz")
	if err := os.WriteFile(pol, bndPolicyBundle(t, "pol-1", &key), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := filepath.Join(dir, "registry.tar.gz")
	if err := os.WriteFile(reg, validRegistry(t, 0, &key), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := bndStart(t, "--bundle", pol, "--bundle", reg, "--verification-key", key.pubPath)
	srv.waitStatus(t, "ready with reg-0", 15*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("registry") == "reg-0" })

	stopLoad := bndLoad(t, srv, "")
	defer stopLoad()
	valid := map[string]bool{"reg-0": true}
	lastValid := "reg-0"
	for i := 1; i <= 8; i++ {
		switch i % 4 {
		case 1, 3:
			rev := fmt.Sprintf("reg-%d", i)
			valid[rev] = true
			replaceFile(t, reg, validRegistry(t, i, &key))
			srv.waitStatus(t, rev+" active", 20*time.Second, func(st bndStatus) bool {
				return st.revision("registry") == rev && st.BundleError == nil
			})
			lastValid = rev
		case 2:
			// Valid content at revision reg-i, but unsigned.
			replaceFile(t, reg, validRegistry(t, i, nil))
			st := srv.waitStatus(t, "the unsigned version rejected", 20*time.Second, func(st bndStatus) bool { return st.BundleError != nil })
			if !strings.Contains(st.BundleError.Error, "missing .signatures.json") || st.revision("registry") != lastValid {
				t.Errorf("unsigned reg-%d: status %s", i, st)
			}
		case 0:
			// Signed, then a target added to the data.
			raw := bndRetar(t, validRegistry(t, i, &key), func(name string, body []byte) []byte {
				if name == "data.json" {
					return []byte(strings.Replace(string(body), `"meetings":[`, `"meetings":["another-meeting",`, 1))
				}
				return body
			})
			replaceFile(t, reg, raw)
			st := srv.waitStatus(t, "the tampered version rejected", 20*time.Second, func(st bndStatus) bool { return st.BundleError != nil })
			if !strings.Contains(st.BundleError.Error, "digest mismatch") || st.revision("registry") != lastValid {
				t.Errorf("tampered reg-%d: status %s", i, st)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	res := stopLoad()
	t.Logf("load during the swaps: %s", res)
	if res.Errors > 0 {
		t.Errorf("%d of %d requests failed; first: %s", res.Errors, res.Requests, res.FirstError)
	}
	seen := checkAnswers(t, res.Answers, valid)
	t.Logf("answers by registry revision: %v", seen)
	for _, bad := range []string{"reg-2", "reg-4", "reg-6", "reg-8"} {
		if seen[bad] > 0 {
			t.Errorf("the rejected %s answered %d times", bad, seen[bad])
		}
	}
	if got := srv.status(t).revision("registry"); got != lastValid {
		t.Errorf("final registry revision %q, want %s", got, lastValid)
	}
	t.Logf("signed swaps under load in %s", time.Since(started).Round(time.Millisecond))
}

// TestBundlesAdminReload: POST /v1/admin/reload re-reads the bundles now
// (admin scope only) and reports what happened.
func TestBundlesAdminReload(t *testing.T) {
	tokens, admin, decide := bndTokens(t)
	dir := t.TempDir()
	reg := filepath.Join(dir, "registry.tar.gz")
	if err := os.WriteFile(reg, validRegistry(t, 1, nil), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := bndStart(t, "--tokens-file", tokens, "--bundle", filepath.Join("..", "policies"), "--bundle", reg)
	srv.token = admin
	before := srv.waitStatus(t, "ready", 15*time.Second, func(st bndStatus) bool { return st.Ready })

	type reloadAnswer struct {
		bndStatus
		Reloaded bool   `json:"reloaded"`
		Error    string `json:"error"`
	}
	reload := func(t *testing.T, token string) (int, reloadAnswer, string) {
		t.Helper()
		r := srv.request(t, http.MethodPost, "/v1/admin/reload", token, "", nil)
		var a reloadAnswer
		if r.status == http.StatusOK {
			if err := json.Unmarshal(r.body, &a); err != nil {
				t.Fatalf("reload answer: %v: %s", err, r.body)
			}
		}
		return r.status, a, string(r.body)
	}

	t.Run("no token: 401", func(t *testing.T) {
		if code, _, body := reload(t, ""); code != http.StatusUnauthorized {
			t.Errorf("HTTP %d %s", code, body)
		}
	})
	t.Run("decide token: 403", func(t *testing.T) {
		if code, _, body := reload(t, decide); code != http.StatusForbidden || !strings.Contains(body, "admin") {
			t.Errorf("HTTP %d %s", code, body)
		}
		if st := srv.status(t); st.Reloads != before.Reloads {
			t.Errorf("a refused reload reloaded: %d → %d", before.Reloads, st.Reloads)
		}
	})
	t.Run("admin token: re-reads", func(t *testing.T) {
		code, a, body := reload(t, admin)
		if code != http.StatusOK || !a.Reloaded || a.Reloads != before.Reloads+1 || a.revision("registry") != "reg-1" {
			t.Errorf("HTTP %d %s; want reloaded, reloads %d", code, body, before.Reloads+1)
		}
	})
	t.Run("admin token: new version activated", func(t *testing.T) {
		replaceFile(t, reg, validRegistry(t, 2, nil))
		// The answer reports the version the reload activated (the file
		// watcher may have got there first; either way reg-2 is active
		// when the reload answers).
		code, a, body := reload(t, admin)
		if code != http.StatusOK || !a.Reloaded || a.revision("registry") != "reg-2" {
			t.Errorf("HTTP %d %s; want reg-2 activated", code, body)
		}
		if got := srv.admit(t, decide, reloadMeeting, reloadAccount); got.Bundles["registry"] != "reg-2" {
			t.Errorf("decisions use %v", got.Bundles)
		}
	})
	t.Run("admin token: rejected version reported, old one kept", func(t *testing.T) {
		raw, _, text := invalidRegistry(t, 2) // an order of an unregistered authority
		replaceFile(t, reg, raw)
		code, a, body := reload(t, admin)
		if code != http.StatusOK || a.Reloaded || !strings.Contains(a.Error, text) || a.BundleError == nil ||
			a.revision("registry") != "reg-2" || !a.Ready {
			t.Errorf("HTTP %d %s; want reloaded false, the error, reg-2 kept", code, body)
		}
	})
}

// A private key given as --verification-key is refused at start (exit 2),
// before anything is opened.
func TestBundlesServeRefusesPrivateKey(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	r := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--verification-key", filepath.Join("..", "bundles", "keys", "dev-es256.pem"))
	if r.code != 2 || !strings.Contains(r.stderr, `"EC PRIVATE KEY" block is not a public key`) ||
		!strings.Contains(r.stderr, "a private key does not belong on a verifying server") || strings.Contains(r.stderr, "bundle rejected") {
		t.Errorf("want exit 2 with a clear refusal; got %s", r)
	}
	r = runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--verification-key", filepath.Join("..", "bundles", "keys", "dev-es256.pub.pem"), "--signing-alg", "RS256")
	if r.code != 2 || !strings.Contains(r.stderr, "--signing-alg RS256 does not fit the key") {
		t.Errorf("want exit 2 for an algorithm that does not fit the key; got %s", r)
	}
	if _, err := os.Stat(dataDir); err == nil {
		t.Error("the refused command created the ledger data directory")
	}
}
