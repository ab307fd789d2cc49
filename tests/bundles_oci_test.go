package tests

// OCI bundle sources: services.<name>.type: oci. OPA's OCI downloader keeps
// the layers it pulls in a directory of its own (persistence_directory/oci,
// else a new one under TMPDIR), and panics when it cannot create it. The
// container image's root is read-only under the Kubernetes manifests, and
// an image FROM scratch has no /tmp unless it is given one: geoscope must
// refuse such a start with an error naming the remedy, and download from
// an OCI registry wherever one of the two directories is writable.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geoscope/geoscope/internal/proctest"
)

// ociRegistry is an OCI distribution registry (the read side of its HTTP
// API) holding bundles as `oras push` publishes them: a manifest whose one
// layer is the bundle tarball.
type ociRegistry struct {
	*httptest.Server
	mu        sync.Mutex
	manifests map[string][]byte // by "repository:tag" and "repository@digest"
	blobs     map[string][]byte // by digest
	pulled    map[string]int    // blob GETs by digest
}

const ociManifestType = "application/vnd.oci.image.manifest.v1+json"

func newOCIRegistry(t *testing.T) *ociRegistry {
	t.Helper()
	r := &ociRegistry{manifests: map[string][]byte{}, blobs: map[string][]byte{}, pulled: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func ociDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// push publishes tarball as repository:tag and returns the layer's digest.
func (r *ociRegistry) push(t *testing.T, repository, tag string, tarball []byte) string {
	t.Helper()
	config := []byte("{}")
	layer := ociDigest(tarball)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifestType,
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": ociDigest(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": len(tarball)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[ociDigest(config)] = config
	r.blobs[layer] = tarball
	r.manifests[repository+":"+tag] = manifest
	r.manifests[repository+"@"+ociDigest(manifest)] = manifest
	return layer
}

func (r *ociRegistry) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := strings.TrimPrefix(req.URL.Path, "/v2/")
	if repository, ref, ok := strings.Cut(path, "/manifests/"); ok {
		key := repository + ":" + ref
		if strings.HasPrefix(ref, "sha256:") {
			key = repository + "@" + ref
		}
		m, found := r.manifests[key]
		if !found {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", ociManifestType)
		w.Header().Set("Docker-Content-Digest", ociDigest(m))
		w.Header().Set("Content-Length", strconv.Itoa(len(m)))
		if req.Method != http.MethodHead {
			_, _ = w.Write(m)
		}
		return
	}
	if _, digest, ok := strings.Cut(path, "/blobs/"); ok {
		b, found := r.blobs[digest]
		if !found {
			http.NotFound(w, req)
			return
		}
		r.pulled[digest]++
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", digest)
		_, _ = w.Write(b)
		return
	}
	http.NotFound(w, req)
}

// ociConfig writes an OPA configuration with the policy and registry
// bundles on the OCI registry reg, and persistence_directory when
// persistence is not empty.
func ociConfig(t *testing.T, reg *ociRegistry, persistence string) string {
	t.Helper()
	host := strings.TrimPrefix(reg.URL, "http://")
	bundles := map[string]any{}
	for _, name := range []string{"policies", "registry"} {
		bundles[name] = map[string]any{
			"service":  "registry",
			"resource": host + "/geoscope/" + name + ":1",
			"polling":  map[string]any{"min_delay_seconds": 60, "max_delay_seconds": 120},
		}
	}
	cfg := map[string]any{
		"services": map[string]any{"registry": map[string]any{"url": reg.URL, "type": "oci"}},
		"bundles":  bundles,
	}
	if persistence != "" {
		cfg["persistence_directory"] = persistence
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "opa-oci.json", raw)
}

func TestBundlesOCI(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	reg := newOCIRegistry(t)
	reg.push(t, "geoscope/policies", "1", bndPolicyBundle(t, "pol-v1", &key))
	layer := reg.push(t, "geoscope/registry", "1", remoteRegistry(t, "oci-1", &key))
	missing := filepath.Join(t.TempDir(), "no-such-directory")

	// With no temporary directory and no persistence_directory, the start
	// is refused before anything is opened, naming both remedies.
	t.Run("no temporary directory", func(t *testing.T) {
		dataDir := filepath.Join(t.TempDir(), "data")
		r := runBoundedEnv(t, 30*time.Second, []string{"TMPDIR=" + missing, "GEOSCOPE_DATA_DIR=" + dataDir},
			"serve", "--addr", "127.0.0.1:"+proctest.FreePort(t), "--config", ociConfig(t, reg, ""), "--verification-key", key.pubPath)
		if r.code != 2 || strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
			t.Fatalf("serve with TMPDIR=%s and an OCI bundle source: %s\nwant exit 2 with a configuration error, no panic", missing, r)
		}
		line := cliErrorLine(t, r.stderr)
		for _, want := range []string{"--config", `bundles.policies: service "registry" is an OCI registry`, missing, "persistence_directory", "TMPDIR"} {
			if !strings.Contains(line, want) {
				t.Errorf("the error does not say %q: %s", want, line)
			}
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Error("the refused start created the data directory (opened the ledger) first")
		}
	})

	// persistence_directory stands in for the temporary directory: the
	// bundles are pulled into it and activated.
	t.Run("persistence_directory", func(t *testing.T) {
		persist := filepath.Join(t.TempDir(), "opa")
		srv := &bndServer{serverProc: startServe(t, serveOpts{
			args: []string{"--log-level", "info", "--config", ociConfig(t, reg, persist), "--verification-key", key.pubPath},
			env:  []string{"TMPDIR=" + missing},
		})}
		srv.waitStatus(t, "ready with the bundles from the OCI registry", 30*time.Second, func(st bndStatus) bool {
			return st.Ready && st.revision("registry") == "oci-1" && st.revision("policies") == "pol-v1"
		})
		wantAnswer(t, srv, "oci-1")
		if _, err := os.Stat(filepath.Join(persist, "oci", "blobs", "sha256", strings.TrimPrefix(layer, "sha256:"))); err != nil {
			t.Errorf("the registry bundle's layer is not in persistence_directory/oci: %v", err)
		}
	})

	// A store OPA cannot open (here not an OCI layout) makes OPA's
	// downloader panic at start too: geoscope reports it as an error.
	t.Run("unusable store", func(t *testing.T) {
		persist := t.TempDir()
		if err := os.MkdirAll(filepath.Join(persist, "oci"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(persist, "oci", "oci-layout"), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runBoundedEnv(t, 30*time.Second, nil,
			"serve", "--addr", "127.0.0.1:"+proctest.FreePort(t), "--config", ociConfig(t, reg, persist), "--verification-key", key.pubPath)
		if r.code != 2 || strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
			t.Fatalf("serve with a persistence_directory holding a broken OCI store: %s\nwant exit 2 with an error, no panic", r)
		}
		if line := cliErrorLine(t, r.stderr); !strings.Contains(line, "--config") || !strings.Contains(line, "OCI layout") {
			t.Errorf("the error does not name --config and the broken store: %s", line)
		}
	})
}
