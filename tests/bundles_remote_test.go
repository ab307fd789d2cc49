package tests

// Remote bundles: geoscope serve --config runs OPA's bundle plugin against
// a bundle server (here an httptest server requiring a bearer token), with
// signatures required.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	remoteMeeting = "bundle-remote-meeting"
	remoteAccount = "acct-bundle-remote"
	remoteToken   = "bundle-server-token"
)

// bundleServer serves bundles to clients presenting its bearer token, with
// ETag support.
type bundleServer struct {
	*httptest.Server
	token string

	mu           sync.Mutex
	files        map[string][]byte
	served       map[string]int // 200 answers by path
	notModified  int
	unauthorized int
}

func newBundleServer(t *testing.T) *bundleServer {
	t.Helper()
	bs := &bundleServer{token: remoteToken, files: map[string][]byte{}, served: map[string]int{}}
	bs.Server = httptest.NewServer(bs)
	t.Cleanup(bs.Close)
	return bs
}

func (bs *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+bs.token {
		bs.unauthorized++
		w.Header().Set("WWW-Authenticate", `Bearer realm="bundles"`)
		http.Error(w, "a bearer token is required", http.StatusUnauthorized)
		return
	}
	body, ok := bs.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		bs.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	bs.served[r.URL.Path]++
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(body)
}

func (bs *bundleServer) set(name string, body []byte) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.files["/bundles/"+name] = body
}

func (bs *bundleServer) counts() (served int, unauthorized int) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for _, n := range bs.served {
		served += n
	}
	return served, bs.unauthorized
}

// opaConfig writes an OPA configuration naming the policies and registry
// bundles on bs. keys maps key ids to keys (their public halves go into
// the configuration); signingKeyID, when
// set, gives each bundle a signing block naming it.
func opaConfig(t *testing.T, url, token string, keys map[string]bndKey, signingKeyID string) string {
	t.Helper()
	return opaConfigPolling(t, url, token, keys, signingKeyID, 1, 2)
}

// opaConfigPolling is opaConfig with the bundles' polling delays.
func opaConfigPolling(t *testing.T, url, token string, keys map[string]bndKey, signingKeyID string, minDelay, maxDelay int) string {
	t.Helper()
	bundles := map[string]any{}
	for _, name := range []string{"policies", "registry"} {
		b := map[string]any{
			"service":  "bundles",
			"resource": "bundles/" + name + ".tar.gz",
			"polling":  map[string]any{"min_delay_seconds": minDelay, "max_delay_seconds": maxDelay},
		}
		if signingKeyID != "" {
			b["signing"] = map[string]any{"keyid": signingKeyID}
		}
		bundles[name] = b
	}
	cfg := map[string]any{
		"services": map[string]any{"bundles": map[string]any{
			"url":         url,
			"credentials": map[string]any{"bearer": map[string]any{"token": token}},
		}},
		"bundles": bundles,
	}
	if len(keys) > 0 {
		k := map[string]any{}
		for id, key := range keys {
			pem, err := os.ReadFile(key.pubPath)
			if err != nil {
				t.Fatal(err)
			}
			k[id] = map[string]any{"key": string(pem), "algorithm": key.alg}
		}
		cfg["keys"] = k
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "opa-config.json", raw)
}

func remoteRegistry(t *testing.T, rev string, key *bndKey) []byte {
	t.Helper()
	return bndRegistryBundle(t, rev, bndRegistryData("ORD-"+rev, remoteMeeting, remoteAccount), key)
}

func wantAnswer(t *testing.T, srv *bndServer, rev string) {
	t.Helper()
	a := srv.admit(t, "", remoteMeeting, remoteAccount)
	if a.Bundles["registry"] != rev || strings.Join(a.OrderIDs, ",") != "ORD-"+rev || a.Bundles["policies"] != "pol-v1" {
		t.Errorf("answer %+v, want registry %s (order ORD-%s), policies pol-v1", a, rev, rev)
	}
}

// stays asserts that the active registry stays rev for d (a few polling
// rounds), then that decisions still name it.
func stays(t *testing.T, srv *bndServer, rev string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := srv.status(t).revision("registry"); got != rev {
			t.Fatalf("active registry became %q, want %s kept", got, rev)
		}
	}
	wantAnswer(t, srv, rev)
}

func TestBundlesRemote(t *testing.T) {
	started := time.Now()
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
	bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))
	cfg := opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, "release")
	srv := bndStart(t, "--config", cfg, "--verification-key", key.pubPath)

	srv.waitStatus(t, "ready with v1", 30*time.Second, func(st bndStatus) bool {
		return st.Ready && st.revision("registry") == "v1" && st.revision("policies") == "pol-v1"
	})
	wantAnswer(t, srv, "v1")
	t.Logf("ready with v1 after %s", time.Since(started).Round(time.Millisecond))

	step := func(name string, body []byte, until func(bndStatus) bool) bndStatus {
		t.Helper()
		t0 := time.Now()
		bs.set("registry.tar.gz", body)
		st := srv.waitStatus(t, name, 20*time.Second, until)
		t.Logf("%s after %s", name, time.Since(t0).Round(time.Millisecond))
		return st
	}

	v2 := remoteRegistry(t, "v2", &key)
	step("v2 picked up by polling", v2, func(st bndStatus) bool {
		return st.revision("registry") == "v2" && st.BundleError == nil
	})
	wantAnswer(t, srv, "v2")

	st := step("unsigned v3 rejected", remoteRegistry(t, "v3", nil), func(st bndStatus) bool { return st.BundleError != nil })
	if e := st.BundleError.Error; !strings.Contains(e, `"registry"`) || !strings.Contains(e, "missing .signatures.json") {
		t.Errorf("bundle_error %q: want it to name the registry bundle and the missing signature", e)
	}
	stays(t, srv, "v2", 2500*time.Millisecond)

	tampered := bndRetar(t, remoteRegistry(t, "v4", &key), func(name string, body []byte) []byte {
		if name == "data.json" {
			return []byte(strings.Replace(string(body), `"jurisdiction":["CN"]`, `"jurisdiction":["CN","US"]`, 1))
		}
		return body
	})
	st = step("tampered v4 rejected", tampered, func(st bndStatus) bool {
		return st.BundleError != nil && strings.Contains(st.BundleError.Error, "digest mismatch")
	})
	if !strings.Contains(st.BundleError.Error, `"registry"`) {
		t.Errorf("bundle_error %q does not name the registry bundle", st.BundleError.Error)
	}
	stays(t, srv, "v2", 2500*time.Millisecond)

	// The same v2 served again: OPA's poll gets 304 Not Modified for the
	// version it has, and the failure is over.
	step("failure cleared once v2 is served again", v2, func(st bndStatus) bool {
		return st.BundleError == nil && st.revision("registry") == "v2"
	})

	// Signed, but the registry validation rules reject it: OPA activates
	// it, geoscope refuses to build a snapshot from it.
	invalid := bndRegistryData("ORD-v5", remoteMeeting, remoteAccount)
	invalid["orders"].(map[string]any)["ORD-v5"].(map[string]any)["authority"] = "xx.unregistered"
	st = step("signed but invalid v5 rejected", bndRegistryBundle(t, "v5", invalid, &key), func(st bndStatus) bool {
		return st.BundleError != nil && strings.Contains(st.BundleError.Error, "xx.unregistered")
	})
	if st.revision("registry") != "v2" {
		t.Errorf("active registry %q, want v2", st.revision("registry"))
	}
	wantAnswer(t, srv, "v2")

	step("v6 activated after the rejections", remoteRegistry(t, "v6", &key), func(st bndStatus) bool {
		return st.revision("registry") == "v6" && st.BundleError == nil
	})
	wantAnswer(t, srv, "v6")

	// A signed policy whose extension misspells an input member: OPA
	// compiles it (it has no schemas), geoscope type-checks it against
	// the input schema and keeps the policy it has.
	bs.set("policies.tar.gz", bndPolicyBundleWith(t, "pol-typo", &key, map[string]string{
		"geoscope/extensions/hosts.rego": "package geoscope.extensions\n\nexempt contains input.joining.id if input.joining.rol == \"host\"\n",
	}))
	st = srv.waitStatus(t, "misspelt policy rejected", 20*time.Second, func(st bndStatus) bool {
		return st.BundleError != nil && strings.Contains(st.BundleError.Error, "input.joining.rol")
	})
	if st.revision("policies") != "pol-v1" || !strings.Contains(st.BundleError.Error, "rego_type_error") {
		t.Errorf("policies %q, bundle_error %q; want pol-v1 kept and a type error naming input.joining.rol", st.revision("policies"), st.BundleError.Error)
	}
	wantAnswer(t, srv, "v6")

	served, unauthorized := bs.counts()
	if unauthorized != 0 {
		t.Errorf("geoscope made %d requests without the right token", unauthorized)
	}
	bs.mu.Lock()
	t.Logf("bundle server: %d bundles served, %d not modified (ETag)", served, bs.notModified)
	bs.mu.Unlock()
	m := srv.metrics(t)
	if !strings.Contains(m, `geoscope_bundle_info{name="registry",revision="v6"} 1`) {
		t.Errorf("geoscope_bundle_info does not name v6:\n%s", strings.Join(bndMetric(m, "geoscope_bundle_info"), "\n"))
	}
	t.Logf("remote run in %s", time.Since(started).Round(time.Millisecond))
}

// TestBundlesRemoteLastSuccessfulPoll follows each bundle's last poll the
// service answered: it moves on with a 304 for the version held, without
// a new download; it stops while the service answers nothing usable, so
// a replica whose polls all fail shows as one whose last success grows
// old, in /v1/status and /metrics.
func TestBundlesRemoteLastSuccessfulPoll(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
	bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))
	srv := bndStart(t, "--config", opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, "release"),
		"--verification-key", key.pubPath)
	registryPoll := func(st bndStatus) (request, download time.Time) {
		for _, d := range st.Downloads {
			if d.Name == "registry" {
				return d.LastSuccessfulRequest, d.LastSuccessfulDownload
			}
		}
		return time.Time{}, time.Time{}
	}
	st := srv.waitStatus(t, "ready with both bundles polled", 30*time.Second, func(st bndStatus) bool {
		return st.Ready && len(st.Downloads) == 2
	})
	if st.Downloads[0].Name != "policies" || st.Downloads[1].Name != "registry" {
		t.Fatalf("downloads %s: want policies and registry, in that order", st)
	}
	_, firstDownload := registryPoll(st)
	if firstDownload.IsZero() {
		t.Fatalf("registry: no last_successful_download after it was activated: %s", st)
	}

	// Polled again (every 1-2 s) and answered 304: the request moves on,
	// the download does not.
	st = srv.waitStatus(t, "a 304 answered", 10*time.Second, func(st bndStatus) bool {
		req, _ := registryPoll(st)
		return req.After(firstDownload)
	})
	if _, dl := registryPoll(st); !dl.Equal(firstDownload) {
		t.Errorf("last_successful_download moved from %s to %s without a new version", firstDownload, dl)
	}

	// The service loses the bundle: every poll now fails, and the last
	// success stays where it was.
	bs.mu.Lock()
	delete(bs.files, "/bundles/registry.tar.gz")
	bs.mu.Unlock()
	st = srv.waitStatus(t, "the failing poll seen", 10*time.Second, func(st bndStatus) bool { return st.BundleError != nil })
	lastOK, _ := registryPoll(st)
	time.Sleep(3 * time.Second) // past the longest polling interval, 2 s
	st = srv.status(t)
	if st.BundleError == nil {
		t.Fatalf("bundle_error cleared while the bundle is missing: %s", st)
	}
	if req, _ := registryPoll(st); !req.Equal(lastOK) {
		t.Errorf("last_successful_request moved from %s to %s while every poll failed", lastOK, req)
	}
	const series = `geoscope_bundle_last_successful_request_timestamp_seconds{name="registry"} `
	m := bndMetric(srv.metrics(t), "geoscope_bundle_last_successful_request_timestamp_seconds")
	i := slices.IndexFunc(m, func(line string) bool { return strings.HasPrefix(line, series) })
	if i < 0 {
		t.Fatalf("metrics: no %s: got\n%s", series, strings.Join(m, "\n"))
	}
	if v, err := strconv.ParseFloat(strings.TrimPrefix(m[i], series), 64); err != nil || int64(v) != lastOK.Unix() {
		t.Errorf("metrics: %s, want the time of the last successful poll, %d", m[i], lastOK.Unix())
	}
}

// TestBundlesRemoteStopIsNoRejection stops a server while its bundle
// downloads hang (a service that accepts and never answers): the stop
// cuts them short, which is no rejection of a bundle, and was logged as
// one, at error, after "stopped".
func TestBundlesRemoteStopIsNoRejection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	})
	srv := bndStart(t, "--config", opaConfig(t, "http://"+ln.Addr().String(), remoteToken, nil, ""))
	select {
	case c := <-accepted: // a download is under way
		accepted <- c
	case <-time.After(10 * time.Second):
		t.Fatal("no bundle download started")
	}
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
	for _, line := range strings.Split(srv.logs.String(), "\n") {
		if strings.Contains(line, "rejected") {
			t.Errorf("the stop logged a rejection: %s", line)
		}
	}
}

// Without the bundle server's token geoscope gets nothing: it never
// becomes ready, and /ready says why.
func TestBundlesRemoteWrongToken(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
	bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))

	for _, auth := range []string{"", "Bearer wrong"} {
		req, _ := http.NewRequest(http.MethodGet, bs.URL+"/bundles/registry.tar.gz", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: HTTP %d, want 401", auth, resp.StatusCode)
		}
	}

	bs.mu.Lock()
	bs.unauthorized = 0
	bs.mu.Unlock()

	cfg := opaConfig(t, bs.URL, "wrong-token", map[string]bndKey{"release": key}, "release")
	srv := bndStart(t, "--config", cfg, "--verification-key", key.pubPath)
	// /ready explains once the bundle plugin has been refused.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := srv.request(t, http.MethodGet, "/ready", "", "", nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("/ready = %d %s, want 503", r.status, r.body)
		}
		if strings.Contains(string(r.body), "server replied with Unauthorized") {
			t.Logf("/ready: %s", r.body)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/ready never explained the refusal: %s", r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A few more polling rounds: still nothing.
	time.Sleep(2500 * time.Millisecond)
	if _, unauthorized := bs.counts(); unauthorized < 4 {
		t.Errorf("the bundle server refused geoscope %d times; want both bundles refused more than once", unauthorized)
	}
	st := srv.status(t)
	if st.Ready || len(st.Bundles) != 0 {
		t.Errorf("status %s: want not ready, no bundles", st)
	}
	if served, _ := bs.counts(); served != 0 {
		t.Errorf("the bundle server served %d bundles", served)
	}
	r := srv.request(t, http.MethodPost, "/v1/admission", "", "application/json", admissionBodies(remoteMeeting, remoteAccount)[0])
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("admission while not ready: HTTP %d %s, want 503", r.status, r.body)
	}
}

func TestBundlesRemoteConfigExcludesBundle(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	cfg := opaConfig(t, "http://127.0.0.1:1", remoteToken, nil, "")
	dataDir := filepath.Join(t.TempDir(), "data")
	r := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--config", cfg, "--bundle", "../policies", "--verification-key", key.pubPath)
	if r.code != 2 || !strings.Contains(r.stderr, "--config (or --set, --set-file) and --bundle exclude each other") {
		t.Errorf("want exit 2 naming the conflict; got %s", r)
	}
	if _, err := os.Stat(dataDir); err == nil {
		t.Logf("note: the refused command created the ledger data directory %s (the ledger is opened before the sources are checked)", dataDir)
	}
}

// OPA's optional-signature trap: top-level "keys" and no "signing" block on
// a bundle make OPA accept that bundle unsigned. geoscope adds the signing
// block (requireSignatures), so an unsigned bundle is rejected even with
// no --verification-key flag.
func TestBundlesRemoteOptionalSignatureTrap(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")

	t.Run("unsigned update rejected", func(t *testing.T) {
		bs := newBundleServer(t)
		bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
		bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))
		srv := bndStart(t, "--config", opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, ""))
		srv.waitStatus(t, "ready with v1", 30*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("registry") == "v1" })

		bs.set("registry.tar.gz", remoteRegistry(t, "v2", nil))
		st := srv.waitStatus(t, "unsigned v2 rejected", 20*time.Second, func(st bndStatus) bool { return st.BundleError != nil })
		if !strings.Contains(st.BundleError.Error, "missing .signatures.json") {
			t.Errorf("bundle_error %q does not name the missing signature", st.BundleError.Error)
		}
		stays(t, srv, "v1", 2500*time.Millisecond)
	})

	t.Run("unsigned from the start: never ready", func(t *testing.T) {
		bs := newBundleServer(t)
		bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
		bs.set("registry.tar.gz", remoteRegistry(t, "v1", nil))
		srv := bndStart(t, "--config", opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, ""))
		st := srv.waitStatus(t, "the unsigned registry rejected", 20*time.Second, func(st bndStatus) bool {
			return st.BundleError != nil && strings.Contains(st.BundleError.Error, `"registry"`)
		})
		if st.Ready || st.revision("registry") != "" || !strings.Contains(st.BundleError.Error, "missing .signatures.json") {
			t.Errorf("status %s: want not ready, registry rejected for its missing signature", st)
		}
		r := srv.request(t, http.MethodGet, "/ready", "", "", nil)
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("/ready = %d %s", r.status, r.body)
		}
	})

	t.Run("several keys and no signing block: refused at start", func(t *testing.T) {
		other := bndDevKey(t, "dev-rs256", "RS256")
		cfg := opaConfig(t, "http://127.0.0.1:1", remoteToken, map[string]bndKey{"release": key, "old": other}, "")
		r := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--config", cfg)
		if r.code != 2 || !strings.Contains(r.stderr, `has no "signing" block and several keys are configured (old, release)`) {
			t.Errorf("want exit 2 naming the bundle; got %s", r)
		}
		for _, name := range []string{`"policies"`, `"registry"`} {
			if strings.Contains(r.stderr, name) {
				return
			}
		}
		t.Errorf("the refusal names no bundle: %s", r.stderr)
	})
}

// POST /v1/admin/reload with remote bundles downloads them now. Polling is
// slowed to minutes here, so only the reload can bring a new version.
func TestBundlesRemoteAdminReload(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	tokens, admin, decide := bndTokens(t)
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
	bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))
	cfg := opaConfigPolling(t, bs.URL, remoteToken, nil, "", 300, 600)
	srv := bndStart(t, "--config", cfg, "--verification-key", key.pubPath, "--tokens-file", tokens)
	srv.token = admin
	srv.waitStatus(t, "ready with v1", 30*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("registry") == "v1" })

	type reloadAnswer struct {
		bndStatus
		Reloaded bool   `json:"reloaded"`
		Error    string `json:"error"`
	}
	reload := func(t *testing.T) reloadAnswer {
		t.Helper()
		r := srv.request(t, http.MethodPost, "/v1/admin/reload", admin, "", nil)
		var a reloadAnswer
		if err := json.Unmarshal(r.body, &a); r.status != http.StatusOK || err != nil {
			t.Fatalf("POST /v1/admin/reload: HTTP %d %s", r.status, r.body)
		}
		return a
	}

	if r := srv.request(t, http.MethodPost, "/v1/admin/reload", decide, "", nil); r.status != http.StatusForbidden {
		t.Errorf("decide token: HTTP %d %s, want 403", r.status, r.body)
	}

	bs.set("registry.tar.gz", remoteRegistry(t, "v2", &key))
	if a := reload(t); !a.Reloaded || a.revision("registry") != "v2" || a.BundleError != nil {
		t.Errorf("reload with v2 served: %s reloaded=%v error=%q; want v2 active", a.bndStatus, a.Reloaded, a.Error)
	}

	bs.set("registry.tar.gz", remoteRegistry(t, "v3", nil))
	a := reload(t)
	if a.revision("registry") != "v2" || a.BundleError == nil || !strings.Contains(a.BundleError.Error, "missing .signatures.json") {
		t.Errorf("reload with unsigned v3 served: %s; want v2 kept and the rejection in bundle_error", a.bndStatus)
	}
	if a.Reloaded || !strings.Contains(a.Error, "missing .signatures.json") {
		t.Errorf("POST /v1/admin/reload with remote (--config) bundles reports \"reloaded\": %v, \"error\": %q although the "+
			"unsigned registry it downloaded was rejected (input: periodic bundles, registry replaced by an unsigned v3, reload; "+
			"expected: reloaded false with the rejection, as for local bundles; actual: reloaded true, the rejection only in "+
			"bundle_error). OPA's bundle Plugin.Trigger returns download errors only for trigger: manual bundles",
			a.Reloaded, a.Error)
	}

	// Signed, but the registry validation rules reject it: no bundle's
	// download failed, the snapshot did, and the reload says so too.
	invalid := bndRegistryData("ORD-v4", remoteMeeting, remoteAccount)
	invalid["orders"].(map[string]any)["ORD-v4"].(map[string]any)["authority"] = "xx.unregistered"
	bs.set("registry.tar.gz", bndRegistryBundle(t, "v4", invalid, &key))
	a = reload(t)
	if a.Reloaded || !strings.Contains(a.Error, "xx.unregistered") || a.revision("registry") != "v2" {
		t.Errorf("reload with a signed v4 that fails validation: reloaded=%v error=%q, %s; want reloaded false naming the violation, v2 kept",
			a.Reloaded, a.Error, a.bndStatus)
	}
}

// SIGHUP reloads as POST /v1/admin/reload does (remote bundles downloaded
// now; polling is slowed to minutes here), logs what it did, and leaves
// the server running.
func TestBundlesSIGHUPReload(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
	bs.set("registry.tar.gz", remoteRegistry(t, "v1", &key))
	cfg := opaConfigPolling(t, bs.URL, remoteToken, nil, "", 300, 600)
	srv := bndStart(t, "--config", cfg, "--verification-key", key.pubPath)
	srv.waitStatus(t, "ready with v1", 30*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("registry") == "v1" })

	bs.set("registry.tar.gz", remoteRegistry(t, "v2", &key))
	srv.signal(syscall.SIGHUP)
	srv.waitStatus(t, "v2 after SIGHUP", 20*time.Second, func(st bndStatus) bool { return st.revision("registry") == "v2" })
	wantAnswer(t, srv, "v2")
	poll(t, pollTimeout, "the SIGHUP reload logged", func() bool {
		return strings.Contains(srv.logs.String(), `"msg":"SIGHUP reload done"`)
	})
	if !strings.Contains(srv.logs.String(), `"msg":"SIGHUP: reloading the bundles and the GeoIP database"`) {
		t.Errorf("no log line for the SIGHUP itself:\n%s", srv.logs)
	}

	// A rejected version is logged as such; v2 keeps answering.
	bs.set("registry.tar.gz", remoteRegistry(t, "v3", nil))
	srv.signal(syscall.SIGHUP)
	poll(t, pollTimeout, "the rejected SIGHUP reload logged", func() bool {
		return strings.Contains(srv.logs.String(), "SIGHUP reload rejected a version")
	})
	if !srv.running() {
		t.Fatal("the server exited after SIGHUP")
	}
	wantAnswer(t, srv, "v2")
}

// revocationRegistry is a registry at revision rev whose one order
// targets remoteMeeting; revoked withdraws it from a date already past.
func revocationRegistry(t *testing.T, rev string, revoked bool, key *bndKey) []byte {
	t.Helper()
	data := bndRegistryData("ORD-R", remoteMeeting, remoteAccount)
	if revoked {
		data["orders"].(map[string]any)["ORD-R"].(map[string]any)["revoked"] = map[string]any{"date": "2026-01-03", "reason": "withdrawn by the authority"}
	}
	return bndRegistryBundle(t, rev, data, key)
}

// TestBundlesRemoteRevocationOnEveryReplica publishes the revocation of
// an order to replicas polling every 1-2 s, one of which cannot download
// (its bundle service refuses its token). Each replica that can download
// stops acting on the order within two polling intervals, and until then
// every decision acting on it, answered and recorded, names the revision
// it was decided under; geoscope_bundle_info shows each replica's. The
// one that cannot download keeps acting on the revoked order, for as long
// as that lasts, and says so (bundle_error, a rejection counted, its
// revision the older one): what the alerts GeoscopeBundleRejected and
// GeoscopeBundleRevisionsDiverge fire on. It stops once it downloads the
// revision.
func TestBundlesRemoteRevocationOnEveryReplica(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	const pollMax = 2 // opaConfig polls every 1-2 s
	var (
		services = map[string]*bundleServer{}
		reps     = map[string]*bndServer{}
		names    = []string{"replica-1", "replica-2", "replica-3"}
	)
	for _, name := range names {
		bs := newBundleServer(t)
		bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-v1", &key))
		bs.set("registry.tar.gz", revocationRegistry(t, "rv1", false, &key))
		services[name] = bs
		reps[name] = bndStart(t, "--replica-id", name, "--config", opaConfig(t, bs.URL, remoteToken, map[string]bndKey{"release": key}, "release"), "--verification-key", key.pubPath)
	}
	admission := func(i int) []byte {
		return fmt.Appendf(nil, `{"meeting": {"id": %q, "host": {"account_id": %q, "account_country": "US"}}, "participant": {"id": "rvk-%d", "ip": %q}}`,
			remoteMeeting, remoteAccount, i, lgCN4())
	}
	type answer struct {
		DecisionID string            `json:"decision_id"`
		Allow      bool              `json:"allow"`
		Bundles    map[string]string `json:"bundles"`
		OrderIDs   []string          `json:"order_ids"` // the orders evaluated
	}
	admit := func(name string, i int) answer {
		t.Helper()
		r := reps[name].request(t, http.MethodPost, "/v1/admission", "", "application/json", admission(i))
		var a answer
		if r.status != http.StatusOK || json.Unmarshal(r.body, &a) != nil {
			t.Fatalf("%s POST /v1/admission: HTTP %d %s", name, r.status, r.body)
		}
		return a
	}
	for _, name := range names {
		reps[name].waitStatus(t, name+" ready with rv1", 30*time.Second, func(st bndStatus) bool { return st.Ready && st.revision("registry") == "rv1" })
		if a := admit(name, 0); a.Allow || a.Bundles["registry"] != "rv1" {
			t.Fatalf("%s before the revocation: %+v, want the participant denied under rv1", name, a)
		}
	}

	// replica-3's bundle service no longer takes its token: it cannot
	// download the revocation.
	services["replica-3"].mu.Lock()
	services["replica-3"].token = "rotated"
	services["replica-3"].mu.Unlock()
	published := time.Now()
	for _, name := range names {
		services[name].set("registry.tar.gz", revocationRegistry(t, "rv2", true, &key))
	}
	// Each replica is asked until it stops acting on the order.
	stopped := map[string]time.Duration{}
	denials := map[string][]string{} // decision ids acted on, per replica
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range names[:2] {
		wg.Go(func() {
			for i := 1; time.Since(published) < 10*time.Second; i++ {
				a := admit(name, i)
				mu.Lock()
				if a.Allow {
					stopped[name] = time.Since(published)
					if a.Bundles["registry"] != "rv2" || slices.Contains(a.OrderIDs, "ORD-R") {
						t.Errorf("%s, no longer acting: %+v; want registry rv2, ORD-R not evaluated", name, a)
					}
					mu.Unlock()
					return
				}
				if a.Bundles["registry"] != "rv1" || !slices.Equal(a.OrderIDs, []string{"ORD-R"}) {
					t.Errorf("%s acted on the revoked order: %+v; want it under registry rv1 only", name, a)
				}
				denials[name] = append(denials[name], a.DecisionID)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, name := range names[:2] {
		d, ok := stopped[name]
		switch {
		case !ok:
			t.Errorf("%s still acts on the revoked order 10 s after the revocation was published", name)
		case d > 2*pollMax*time.Second:
			t.Errorf("%s stopped acting on the revoked order %v after its publication; want within two polling intervals (%d s)", name, d.Round(time.Millisecond), 2*pollMax)
		}
		if m := reps[name].metrics(t); !strings.Contains(m, `geoscope_bundle_info{name="registry",revision="rv2"} 1`) {
			t.Errorf("%s metrics: %v, want registry rv2", name, bndMetric(m, "geoscope_bundle_info"))
		}
		// Every denial it answered meanwhile is recorded under rv1.
		for _, id := range denials[name] {
			r := reps[name].request(t, http.MethodGet, "/v1/ledger/"+id, "", "", nil)
			var e struct {
				Bundles map[string]string `json:"bundles"`
			}
			if r.status != http.StatusOK || json.Unmarshal(r.body, &e) != nil || e.Bundles["registry"] != "rv1" {
				t.Errorf("%s: entry %s: HTTP %d, bundles %v; want it recorded under rv1", name, id, r.status, e.Bundles)
			}
		}
	}
	t.Logf("stopped acting on the revoked order after %v and %v (bound %d s); %d and %d denials meanwhile, all under rv1",
		stopped["replica-1"].Round(time.Millisecond), stopped["replica-2"].Round(time.Millisecond), 2*pollMax, len(denials["replica-1"]), len(denials["replica-2"]))

	// replica-3 could not download: it still acts on the order, and says
	// it is failing.
	st := reps["replica-3"].waitStatus(t, "replica-3 to report its failing downloads", 10*time.Second, func(st bndStatus) bool { return st.BundleError != nil })
	if a := admit("replica-3", 100); a.Allow || a.Bundles["registry"] != "rv1" || st.revision("registry") != "rv1" {
		t.Errorf("replica-3, cut off from its bundle service: %+v, status %s; want it still denying under rv1", a, st)
	}
	m := reps["replica-3"].metrics(t)
	if !strings.Contains(m, `geoscope_bundle_info{name="registry",revision="rv1"} 1`) || slices.Contains(bndMetric(m, "geoscope_bundle_rejections_total"), "geoscope_bundle_rejections_total 0") {
		t.Errorf("replica-3 metrics: %v %v; want registry rv1 and rejections counted", bndMetric(m, "geoscope_bundle_info"), bndMetric(m, "geoscope_bundle_rejections_total"))
	}
	services["replica-3"].mu.Lock()
	services["replica-3"].token = remoteToken
	services["replica-3"].mu.Unlock()
	restored := time.Now()
	reps["replica-3"].waitStatus(t, "replica-3 to activate rv2 once it can download", 30*time.Second, func(st bndStatus) bool {
		return st.revision("registry") == "rv2" && st.BundleError == nil
	})
	if a := admit("replica-3", 101); !a.Allow {
		t.Errorf("replica-3 with rv2: %+v, want the order no longer acted on", a)
	}
	t.Logf("replica-3 stopped acting on it %v after it could download again", time.Since(restored).Round(time.Millisecond))
}
