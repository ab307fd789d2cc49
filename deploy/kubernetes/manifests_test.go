// Package kubernetes_test checks the manifests in this directory: each one
// decodes strictly (unknown fields rejected) into its k8s.io/api type, the
// kustomization names exactly these files, and what the Deployment asks of
// the binary is what the binary does: the flags exist in `geoscope serve
// --help`, the listening port is the container port the Service and the
// probes use, the probe paths are real endpoints answering 200, every file
// a flag names is mounted from a volume that provides it, and the security
// context runs the image's own unprivileged user on a read-only root. The
// NetworkPolicy lets in exactly the ports the container exposes, from
// chosen peers only, and lets out only DNS, the ledger and the services the
// OPA configuration names; the replicas spread over nodes (a hard rule)
// and zones (a preference). The kustomization is also rendered, with
// kustomize's own library, into these resources carrying its labels and
// an image reference that pulls what it names (a well-formed digest or
// tag).
package kubernetes_test

import (
	"bufio"
	"bytes"
	"cmp"
	// The digest algorithms go-digest validates, linked in as its
	// documentation asks: without them every digest is "unsupported".
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomize's Kustomization this directory
// uses; decoding it strictly keeps it to that.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Resources []string    `json:"resources"`
	Images    []kustImage `json:"images,omitempty"`
}

// kustImage is an entry of the kustomization's images.
type kustImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// manifests are the decoded resources, one of each kind.
type manifests struct {
	sa   *corev1.ServiceAccount
	cm   *corev1.ConfigMap
	dep  *appsv1.Deployment
	svc  *corev1.Service
	pdb  *policyv1.PodDisruptionBudget
	hpa  *autoscalingv2.HorizontalPodAutoscaler
	np   *networkingv1.NetworkPolicy
	kust kustomization
}

// decodeStrict decodes one YAML document into out, rejecting unknown and
// duplicate fields, and field names in the wrong case.
func decodeStrict(t *testing.T, name string, raw []byte, out any) {
	t.Helper()
	if docs := splitDocs(raw); len(docs) != 1 {
		t.Fatalf("%s holds %d YAML documents, want 1", name, len(docs))
	}
	if err := unmarshalStrict(raw, out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// unmarshalStrict decodes YAML as the API server does with strict field
// validation: YAML to JSON rejecting duplicate keys, then
// sigs.k8s.io/json, which (unlike encoding/json, and so unlike
// yaml.UnmarshalStrict) matches field names case-sensitively.
func unmarshalStrict(raw []byte, out any) error {
	j, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return err
	}
	strict, err := k8sjson.UnmarshalStrict(j, out)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func splitDocs(raw []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// decodeResource decodes a resource by its apiVersion and kind into the
// matching k8s.io/api type and files it into m.
func decodeResource(t *testing.T, m *manifests, name string, raw []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	set := func(dst any, seen bool) {
		if seen {
			t.Fatalf("%s: a second %s %s", name, tm.APIVersion, tm.Kind)
		}
		decodeStrict(t, name, raw, dst)
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ServiceAccount":
		set(&m.sa, m.sa != nil)
	case "v1 ConfigMap":
		set(&m.cm, m.cm != nil)
	case "apps/v1 Deployment":
		set(&m.dep, m.dep != nil)
	case "v1 Service":
		set(&m.svc, m.svc != nil)
	case "policy/v1 PodDisruptionBudget":
		set(&m.pdb, m.pdb != nil)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		set(&m.hpa, m.hpa != nil)
	case "networking.k8s.io/v1 NetworkPolicy":
		set(&m.np, m.np != nil)
	default:
		t.Fatalf("%s: %s %s is not a kind this test knows; add it here", name, tm.APIVersion, tm.Kind)
	}
}

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{}
	raw, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	decodeStrict(t, "kustomization.yaml", raw, &m.kust)
	if m.kust.APIVersion != "kustomize.config.k8s.io/v1beta1" || m.kust.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", m.kust.APIVersion, m.kust.Kind)
	}
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == "kustomization.yaml" })
	if got, want := slices.Sorted(slices.Values(m.kust.Resources)), files; !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want exactly the manifests here %v", got, want)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		decodeResource(t, m, f, raw)
	}
	if m.sa == nil || m.cm == nil || m.dep == nil || m.svc == nil || m.pdb == nil || m.hpa == nil || m.np == nil {
		t.Fatalf("missing a manifest: %+v", m)
	}
	return m
}

// Unknown fields are refused: the strict decoding is what catches a
// misspelt or misplaced field.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	raw, err := os.ReadFile("deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range []struct{ from, to string }{
		{"readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"},
		{"  revisionHistoryLimit: 5\n", "  revisionHistoryLimit: 5\n  replica: 3\n"},
		{"periodSeconds: 5\n", "periodSeconds: 5\n            periodSeconds: 6\n"},
	} {
		bad := bytes.Replace(raw, []byte(edit.from), []byte(edit.to), 1)
		if bytes.Equal(bad, raw) {
			t.Fatalf("edit %q not applicable", edit.from)
		}
		var d appsv1.Deployment
		if err := unmarshalStrict(bad, &d); err == nil {
			t.Errorf("deployment with %q decoded without error", edit.to)
		}
	}
}

func TestManifests(t *testing.T) {
	m := load(t)
	bin := buildGeoscope(t)
	help := run(t, bin, "serve", "--help")

	dep := m.dep
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	args := c.Args
	if len(c.Command) != 0 || len(args) == 0 || args[0] != "serve" {
		t.Fatalf("command %q args %q: want the image's entrypoint with args starting with serve", c.Command, args)
	}
	flags := flagValues(t, args[1:])

	t.Run("flags exist in serve --help", func(t *testing.T) {
		known := map[string]bool{}
		for _, f := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(help, -1) {
			known[f[1]] = true
		}
		if len(known) < 10 {
			t.Fatalf("found only %d flags in serve --help:\n%s", len(known), help)
		}
		for name := range flags {
			if !known[name] {
				t.Errorf("--%s is not a flag of geoscope serve", name)
			}
		}
		for _, e := range c.Env {
			if !strings.Contains(help, "env "+e.Name) && !goRuntimeEnv[e.Name] {
				t.Errorf("environment variable %s is neither one serve --help names nor one the Go runtime reads", e.Name)
			}
		}
	})

	t.Run("port", func(t *testing.T) {
		host, port, err := net.SplitHostPort(flags["addr"])
		if err != nil || host != "0.0.0.0" {
			t.Fatalf("--addr %q: want 0.0.0.0:PORT", flags["addr"])
		}
		if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != port || c.Ports[0].Name != "http" {
			t.Fatalf("container ports %+v, want one named http on %s", c.Ports, port)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "http" {
				t.Errorf("probe %+v: want httpGet on port http", p)
			}
		}
		if len(m.svc.Spec.Ports) != 1 || m.svc.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("service ports %+v, want one targeting http", m.svc.Spec.Ports)
		}
	})

	t.Run("probe paths are the real endpoints", func(t *testing.T) {
		if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet == nil {
			t.Fatal("readiness and liveness probes must be httpGet probes")
		}
		if c.ReadinessProbe.HTTPGet.Path != "/ready" || c.LivenessProbe.HTTPGet.Path != "/health" {
			t.Errorf("readiness %s, liveness %s: want /ready and /health", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
		}
		base := serve(t, bin)
		for _, p := range []string{c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path} {
			if st := get(t, base+p); st != http.StatusOK {
				t.Errorf("GET %s on a ready server: %d, want 200", p, st)
			}
		}
		if st := get(t, base+"/healthz"); st != http.StatusNotFound {
			t.Errorf("GET /healthz: %d; the check cannot tell real endpoints from others", st)
		}
	})

	t.Run("security context", func(t *testing.T) {
		user, workdir := imageUser(t)
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || sc == nil {
			t.Fatal("pod and container security contexts are required")
		}
		if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != user ||
			psc.RunAsGroup == nil || *psc.RunAsGroup != user || psc.FSGroup == nil || *psc.FSGroup != user {
			t.Errorf("pod security context %+v: want non-root user, group and fsGroup %d (the image's USER)", psc, user)
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("seccomp profile %+v, want RuntimeDefault", psc.SeccompProfile)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
			sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container security context %+v: want a read-only root, no privilege escalation, every capability dropped", sc)
		}
		// The root is read-only: the image's data directory must be a volume.
		if mountFor(c, workdir) == nil || mountFor(c, workdir).MountPath != workdir {
			t.Errorf("the image's data directory %s is not a volume mount", workdir)
		}
		// And so must the temporary directory, where OPA's OCI downloader
		// keeps its layers (geoscope refuses an OCI bundle source without
		// it or persistence_directory).
		if tmp := mountFor(c, "/tmp"); tmp == nil || tmp.MountPath != "/tmp" || tmp.ReadOnly {
			t.Errorf("/tmp is not a writable volume mount: %+v", tmp)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken || pod.ServiceAccountName != m.sa.Name {
			t.Errorf("service account %q, automount %v: want %q without a token", pod.ServiceAccountName, pod.AutomountServiceAccountToken, m.sa.Name)
		}
	})

	t.Run("files come from volumes", func(t *testing.T) {
		for _, flag := range []string{"tokens-file", "ledger-key-file", "config", "verification-key"} {
			p, ok := flags[flag]
			if !ok {
				t.Errorf("--%s is not set", flag)
				continue
			}
			if !provides(t, pod, c, p) {
				t.Errorf("--%s %s: no volume provides that file", flag, p)
			}
		}
		// The Secret's keys the pod reads, and the ConfigMap's.
		var ledgerFromSecret bool
		for _, e := range c.Env {
			if e.Name == "GEOSCOPE_LEDGER" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == "geoscope" {
				ledgerFromSecret = true
			}
		}
		if !ledgerFromSecret {
			t.Error("the ledger URL does not come from the Secret")
		}
		if _, ok := m.cm.Data["config.yaml"]; !ok {
			t.Errorf("ConfigMap %s has no config.yaml", m.cm.Name)
		}
	})

	t.Run("OPA configuration", func(t *testing.T) {
		var cfg struct {
			Services map[string]struct {
				URL         string `json:"url"`
				Credentials struct {
					Bearer struct {
						TokenPath string `json:"token_path"`
					} `json:"bearer"`
				} `json:"credentials"`
			} `json:"services"`
			Bundles map[string]struct {
				Service  string `json:"service"`
				Resource string `json:"resource"`
				Polling  struct {
					Min int `json:"min_delay_seconds"`
					Max int `json:"max_delay_seconds"`
				} `json:"polling"`
				Signing struct {
					KeyID string `json:"keyid"`
				} `json:"signing"`
			} `json:"bundles"`
		}
		if err := unmarshalStrict([]byte(m.cm.Data["config.yaml"]), &cfg); err != nil {
			t.Fatalf("config.yaml: %v", err)
		}
		if got := slices.Sorted(func(yield func(string) bool) {
			for k := range cfg.Bundles {
				if !yield(k) {
					return
				}
			}
		}); !slices.Equal(got, []string{"policies", "registry"}) {
			t.Errorf("bundles %v, want policies and registry", got)
		}
		for name, b := range cfg.Bundles {
			if _, ok := cfg.Services[b.Service]; !ok {
				t.Errorf("bundle %s: service %q is not configured", name, b.Service)
			}
			if b.Signing.KeyID != flags["verification-key-id"] {
				t.Errorf("bundle %s is signed by key %q, the server verifies %q", name, b.Signing.KeyID, flags["verification-key-id"])
			}
			if b.Polling.Min <= 0 || b.Polling.Max < b.Polling.Min {
				t.Errorf("bundle %s polling %+v", name, b.Polling)
			}
		}
		for name, s := range cfg.Services {
			if p := s.Credentials.Bearer.TokenPath; p == "" || !provides(t, pod, c, p) {
				t.Errorf("service %s: bearer token_path %q is not a mounted file", name, p)
			}
		}
	})

	t.Run("resources", func(t *testing.T) {
		r := c.Resources
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, okr := r.Requests[name]
			lim, okl := r.Limits[name]
			if !okr || !okl || req.Cmp(lim) > 0 {
				t.Errorf("%s: request %v, limit %v: want both, request ≤ limit", name, r.Requests[name], r.Limits[name])
			}
		}
		// The runtime's soft limit sits a little below the container's,
		// so the collector works harder before the kernel kills the pod.
		var soft string
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				soft = e.Value
			}
		}
		limit := r.Limits[corev1.ResourceMemory]
		n, err := goMemLimit(soft)
		if err != nil {
			t.Fatalf("GOMEMLIMIT %q: %v", soft, err)
		}
		if share := float64(n) / float64(limit.Value()); share < 0.8 || share > 0.95 {
			t.Errorf("GOMEMLIMIT %s is %.0f %% of the memory limit %v; want 80–95 %%", soft, 100*share, &limit)
		}
	})

	t.Run("service, disruption budget and autoscaler select the pods", func(t *testing.T) {
		labels := dep.Spec.Template.Labels
		sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil || !sel.Matches(k8slabels.Set(labels)) {
			t.Fatalf("the Deployment's selector does not match its pods: %v", err)
		}
		for k, v := range m.svc.Spec.Selector {
			if labels[k] != v {
				t.Errorf("service selector %v does not match pod labels %v", m.svc.Spec.Selector, labels)
			}
		}
		ps, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector)
		if err != nil || !ps.Matches(k8slabels.Set(labels)) {
			t.Errorf("the disruption budget does not select the pods: %v", err)
		}
		// The autoscaler owns the count: a Deployment's own would be
		// reapplied over it by every kubectl apply.
		if dep.Spec.Replicas != nil {
			t.Errorf("the Deployment sets replicas (%d) beside its autoscaler", *dep.Spec.Replicas)
		}
		replicas := int32(1)
		if m.hpa.Spec.MinReplicas != nil {
			replicas = *m.hpa.Spec.MinReplicas
		}
		if m.pdb.Spec.MaxUnavailable == nil || m.pdb.Spec.MaxUnavailable.IntValue() < 1 || int32(m.pdb.Spec.MaxUnavailable.IntValue()) >= replicas {
			t.Errorf("disruption budget maxUnavailable %v with %d replicas: want some but not all", m.pdb.Spec.MaxUnavailable, replicas)
		}
		ref := m.hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != dep.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("autoscaler targets %+v, want Deployment %s", ref, dep.Name)
		}
		if m.hpa.Spec.MinReplicas == nil || replicas < 2 || m.hpa.Spec.MaxReplicas <= replicas {
			t.Errorf("autoscaler %v..%d with %d replicas", m.hpa.Spec.MinReplicas, m.hpa.Spec.MaxReplicas, replicas)
		}
		if len(m.hpa.Spec.Metrics) == 0 {
			t.Error("the autoscaler has no metric")
		}
	})

	t.Run("network policy", func(t *testing.T) {
		for _, p := range networkPolicyProblems(m.np, dep, egressNeeded(t, m.cm)) {
			t.Error(p)
		}
	})

	t.Run("topology spread", func(t *testing.T) {
		for _, p := range topologyProblems(dep) {
			t.Error(p)
		}
	})

	t.Run("image", func(t *testing.T) {
		// A bare name: the kustomization's images entry is the one place
		// the reference is set, and what it renders is all there is.
		if strings.ContainsAny(c.Image, ":@") {
			t.Errorf("image %q carries a tag or digest; set it in the kustomization's images instead", c.Image)
		}
		named := 0
		for _, img := range m.kust.Images {
			if img.Name != c.Image {
				continue
			}
			named++
			if _, err := imageRef(c.Image, img); err != nil {
				t.Error(err)
			}
		}
		if named != 1 {
			t.Errorf("image %q is named %d times in the kustomization's images, want once, so that it is set there", c.Image, named)
		}
	})

	// Rendered with kustomize's own library (what `kubectl apply -k`
	// embeds), so the check runs wherever the tests do, kubectl or not.
	t.Run("kustomize build", func(t *testing.T) {
		rendered, docs := render(t, filesys.MakeFsOnDisk(), ".")
		if len(docs) != len(m.kust.Resources) {
			t.Fatalf("kustomize rendered %d documents, want %d", len(docs), len(m.kust.Resources))
		}
		// What the kustomization says (an operator sets the image there,
		// see docs/operations.md) is what comes out.
		for _, img := range m.kust.Images {
			if img.Name != c.Image {
				continue
			}
			want, err := imageRef(c.Image, img)
			if err != nil {
				t.Fatal(err)
			}
			if got := rendered.dep.Spec.Template.Spec.Containers[0].Image; got != want {
				t.Errorf("rendered image %q, want the kustomization's %q", got, want)
			}
		}
		for i, d := range docs {
			var meta struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal(d, &meta); err != nil {
				t.Fatal(err)
			}
			for _, l := range m.kust.Labels {
				for k, v := range l.Pairs {
					if meta.Metadata.Labels[k] != v {
						t.Errorf("rendered document %d (%s) lacks the kustomization's label %s=%s", i, meta.Metadata.Name, k, v)
					}
				}
			}
		}
		// The pods carry them too.
		for _, l := range m.kust.Labels {
			for k, v := range l.Pairs {
				if rendered.dep.Spec.Template.Labels[k] != v {
					t.Errorf("the rendered pods lack the kustomization's label %s=%s: %v", k, v, rendered.dep.Spec.Template.Labels)
				}
			}
		}
		// The selectors still pick the pods as rendered, labels added.
		for _, p := range networkPolicyProblems(rendered.np, rendered.dep, egressNeeded(t, rendered.cm)) {
			t.Errorf("rendered: %s", p)
		}
		for _, p := range topologyProblems(rendered.dep) {
			t.Errorf("rendered: %s", p)
		}
		// And the peers are the ones written: kustomize adds its labels to
		// the peers' podSelectors too where told to include selectors
		// (or with commonLabels), and no peer carries geoscope's labels.
		if !equality.Semantic.DeepEqual(rendered.np.Spec.Ingress, m.np.Spec.Ingress) || !equality.Semantic.DeepEqual(rendered.np.Spec.Egress, m.np.Spec.Egress) {
			t.Errorf("kustomize changed the network policy's peers:\ningress %+v\negress %+v", rendered.np.Spec.Ingress, rendered.np.Spec.Egress)
		}
	})
}

// The documented way to pin the image, a digest in the kustomization's
// images, renders name@digest, and a digest that is not one is caught.
func TestImageDigest(t *testing.T) {
	m := load(t)
	image := m.dep.Spec.Template.Spec.Containers[0].Image
	// Any well-formed digest will do: it is only rendered, never pulled.
	pinned := digest.FromString("a geoscope image").String()
	fs := filesys.MakeFsInMemory()
	for _, f := range m.kust.Resources {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.WriteFile(path.Join("/k", f), raw); err != nil {
			t.Fatal(err)
		}
	}
	kust := m.kust
	// What `kustomize edit set image geoscope=registry.example.org/geoscope@sha256:…`
	// writes: the tag goes, the digest comes.
	kust.Images = []kustImage{{Name: image, NewName: "registry.example.org/geoscope", Digest: pinned}}
	raw, err := yaml.Marshal(kust)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.WriteFile("/k/kustomization.yaml", raw); err != nil {
		t.Fatal(err)
	}
	rendered, _ := render(t, fs, "/k")
	want := "registry.example.org/geoscope@" + pinned
	if got := rendered.dep.Spec.Template.Spec.Containers[0].Image; got != want {
		t.Errorf("rendered image %q, want %q", got, want)
	}
	if ref, err := imageRef(image, kust.Images[0]); err != nil || ref != want {
		t.Errorf("imageRef: %q, %v; want %q", ref, err, want)
	}

	for _, bad := range []kustImage{
		{Name: image, NewName: "registry.example.org/geoscope", Digest: "sha256:" + strings.Repeat("a", 63)},
		{Name: image, NewName: "registry.example.org/geoscope", Digest: strings.ToUpper(pinned)},
		{Name: image, NewName: "registry.example.org/geoscope", Digest: "md5:" + strings.Repeat("a", 32)},
		{Name: image, NewName: "registry.example.org/geoscope", Digest: strings.TrimPrefix(pinned, "sha256:")},
		{Name: image, NewName: "registry.example.org/geoscope", NewTag: "1.0@" + pinned},
		{Name: image, NewName: "Registry.example.org/GeoScope", Digest: pinned},
		// No tag and no digest: whatever :latest is at the time.
		{Name: image, NewName: "registry.example.org/geoscope"},
	} {
		if ref, err := imageRef(image, bad); err == nil {
			t.Errorf("%+v accepted as %q", bad, ref)
		}
	}
}

// The checks of the network policy and the topology spread fail on what
// they are there to catch: each edit below breaks the manifests as read.
func TestPolicyChecksCatchBreakage(t *testing.T) {
	m := load(t)
	needed := egressNeeded(t, m.cm)
	if p := networkPolicyProblems(m.np, m.dep, needed); len(p) != 0 {
		t.Fatalf("the manifests as shipped: %v", p)
	}
	if p := topologyProblems(m.dep); len(p) != 0 {
		t.Fatalf("the manifests as shipped: %v", p)
	}
	portRule := func(np *networkingv1.NetworkPolicy, port int32, proto corev1.Protocol) *networkingv1.NetworkPolicyEgressRule {
		for i, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				if p.Port != nil && p.Port.IntVal == port && protocolOf(p.Protocol) == proto {
					return &np.Spec.Egress[i]
				}
			}
		}
		t.Fatalf("no egress rule for %d/%s", port, proto)
		return nil
	}
	for name, edit := range map[string]func(*networkingv1.NetworkPolicy, *appsv1.Deployment){
		"podSelector selects other pods": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.PodSelector.MatchLabels = map[string]string{"app.kubernetes.io/name": "other"}
		},
		"podSelector selects every pod": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.PodSelector = metav1.LabelSelector{}
		},
		"egress not isolated": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		},
		"ingress on a port nothing listens on": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[0].Ports[0].Port = ptr(intstr.FromInt32(8080))
		},
		"ingress on a port name no container has": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[0].Ports[0].Port = ptr(intstr.FromString("metrics"))
		},
		"ingress on the right port, wrong protocol": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[0].Ports[0].Protocol = ptr(corev1.ProtocolUDP)
			np.Spec.Ingress[1].Ports[0].Protocol = ptr(corev1.ProtocolUDP)
		},
		"a container port not let in": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			c := &dep.Spec.Template.Spec.Containers[0]
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP})
		},
		"ingress on every port": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[1].Ports = nil
		},
		"ingress from anywhere": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[0].From = nil
		},
		"ingress from every pod of every namespace": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[0].From[0].PodSelector = nil
		},
		"ingress from every address": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Ingress[1].From = append(np.Spec.Ingress[1].From, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})
		},
		"egress everywhere": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{})
		},
		"egress anywhere on the ledger's port": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			portRule(np, 5432, corev1.ProtocolTCP).To = nil
		},
		"egress to every IPv6 address": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			r := portRule(np, 443, corev1.ProtocolTCP)
			r.To = append(r.To, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "::/0"}})
		},
		"egress to the pods of this namespace on every port": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}})
		},
		"no DNS over UDP": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			r := portRule(np, 53, corev1.ProtocolUDP)
			r.Ports = slices.DeleteFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return protocolOf(p.Protocol) == corev1.ProtocolUDP })
		},
		"no DNS over TCP": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			r := portRule(np, 53, corev1.ProtocolTCP)
			r.Ports = slices.DeleteFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool { return protocolOf(p.Protocol) == corev1.ProtocolTCP })
		},
		"no way to the ledger": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			portRule(np, 5432, corev1.ProtocolTCP).Ports[0].Port = ptr(intstr.FromInt32(5433))
		},
		"no way to the bundle service": func(np *networkingv1.NetworkPolicy, _ *appsv1.Deployment) {
			portRule(np, 443, corev1.ProtocolTCP).Ports[0].Port = ptr(intstr.FromInt32(80))
		},
		"spread selector misses the pods": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			dep.Spec.Template.Spec.TopologySpreadConstraints[1].LabelSelector.MatchLabels = map[string]string{"app": "geoscope"}
		},
		"spread without a selector": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			dep.Spec.Template.Spec.TopologySpreadConstraints[0].LabelSelector = nil
		},
		"nodes only preferred": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			for i := range dep.Spec.Template.Spec.TopologySpreadConstraints {
				dep.Spec.Template.Spec.TopologySpreadConstraints[i].WhenUnsatisfiable = corev1.ScheduleAnyway
			}
		},
		"zones required": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			for i := range dep.Spec.Template.Spec.TopologySpreadConstraints {
				dep.Spec.Template.Spec.TopologySpreadConstraints[i].WhenUnsatisfiable = corev1.DoNotSchedule
			}
		},
		"no zone spread": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			tsc := &dep.Spec.Template.Spec.TopologySpreadConstraints
			*tsc = slices.DeleteFunc(*tsc, func(c corev1.TopologySpreadConstraint) bool { return c.TopologyKey == corev1.LabelTopologyZone })
		},
		"two replicas may share a node": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			for i := range dep.Spec.Template.Spec.TopologySpreadConstraints {
				dep.Spec.Template.Spec.TopologySpreadConstraints[i].MaxSkew = 2
			}
		},
		"cordoned nodes counted": func(_ *networkingv1.NetworkPolicy, dep *appsv1.Deployment) {
			for i := range dep.Spec.Template.Spec.TopologySpreadConstraints {
				dep.Spec.Template.Spec.TopologySpreadConstraints[i].NodeTaintsPolicy = nil
			}
		},
	} {
		np, dep := m.np.DeepCopy(), m.dep.DeepCopy()
		edit(np, dep)
		if p := append(networkPolicyProblems(np, dep, needed), topologyProblems(dep)...); len(p) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

// The overlays docs/operations.md gives for adapting the network policy
// build against this directory, and the rules they patch by number are
// the ones the text says they are.
func TestDocumentedOverlays(t *testing.T) {
	m := load(t)
	np := m.np.Spec
	peerLabel := func(r networkingv1.NetworkPolicyIngressRule) string {
		if len(r.From) == 0 || r.From[0].PodSelector == nil {
			return ""
		}
		return metav1.FormatLabelSelector(r.From[0].PodSelector)
	}
	firstPort := func(r networkingv1.NetworkPolicyEgressRule) int32 {
		if len(r.Ports) == 0 || r.Ports[0].Port == nil {
			return 0
		}
		return r.Ports[0].Port.IntVal
	}
	// "ingress 0 meeting servers, 1 Prometheus; egress 0 DNS, 1 ledger,
	// 2 bundle service, 3 trace collector"
	var in []string
	for _, r := range np.Ingress {
		in = append(in, peerLabel(r))
	}
	if want := []string{"geoscope-client=true", "geoscope-metrics=true"}; !slices.Equal(in, want) {
		t.Errorf("ingress rules from %q, documented as %q", in, want)
	}
	var out []int32
	for _, r := range np.Egress {
		out = append(out, firstPort(r))
	}
	if want := []int32{53, postgresPort, 443, 4317}; !slices.Equal(out, want) {
		t.Errorf("egress rules to ports %v, documented as %v", out, want)
	}

	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	overlays := 0
	for _, b := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if !strings.Contains(b[1], "kind: NetworkPolicy") {
			continue
		}
		overlays++
		fs := filesys.MakeFsInMemory()
		for _, f := range append(slices.Clone(m.kust.Resources), "kustomization.yaml") {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := fs.WriteFile(path.Join("/base", f), raw); err != nil {
				t.Fatal(err)
			}
		}
		// The examples name this directory by a path of the reader's, or
		// show only their patches.
		overlay := regexp.MustCompile(`(?m)^  - \S*deploy/kubernetes\b.*$`).ReplaceAllString(b[1], "  - ../base")
		if !strings.Contains(overlay, "resources:") {
			overlay = "resources:\n  - ../base\n" + overlay
		}
		if err := fs.WriteFile("/overlay/kustomization.yaml", []byte(overlay)); err != nil {
			t.Fatal(err)
		}
		if _, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/overlay"); err != nil {
			t.Errorf("the overlay\n%s\ndoes not build: %v", b[1], err)
		}
	}
	if overlays < 2 {
		t.Errorf("found %d overlays of the network policy in docs/operations.md, want the narrowing one and the deleting one", overlays)
	}
}

// render builds the kustomization in dir with kustomize's library and
// decodes what comes out, strictly, one resource of each kind.
func render(t *testing.T, fs filesys.FileSystem, dir string) (*manifests, [][]byte) {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	rendered := &manifests{}
	docs := splitDocs(out)
	for i, d := range docs {
		decodeResource(t, rendered, fmt.Sprintf("rendered document %d", i), d)
	}
	if rendered.dep == nil || rendered.np == nil || rendered.cm == nil {
		t.Fatalf("kustomize rendered no Deployment, NetworkPolicy or ConfigMap: %d documents", len(docs))
	}
	return rendered, docs
}

// imageRef is the reference kustomize renders from an images entry for a
// container image named name (a bare name): newName, then a tag, a
// digest or both (kustomize's image filter writes name:tag@digest when
// given both, and the digest is what is pulled). It is an error when the
// result would not pull what it seems to: no tag nor digest (that is
// whatever :latest is when a node pulls), a digest that is not one (the
// kubelet refuses it, InvalidImageName, and only at rollout), or a name or
// tag outside the reference grammar.
func imageRef(name string, img kustImage) (string, error) {
	ref := cmp.Or(img.NewName, name)
	if !imageName.MatchString(ref) {
		return "", fmt.Errorf("image %s: %q is not an image name (lower-case path components, an optional registry host first)", img.Name, ref)
	}
	if img.NewTag == "" && img.Digest == "" {
		return "", fmt.Errorf("image %s: neither a digest nor a tag; pin it by digest (docs/operations.md)", img.Name)
	}
	if img.NewTag != "" {
		if !imageTag.MatchString(img.NewTag) {
			return "", fmt.Errorf("image %s: %q is not a tag", img.Name, img.NewTag)
		}
		ref += ":" + img.NewTag
	}
	if img.Digest != "" {
		// go-digest is the OCI digest grammar: sha256 with 64 lower-case
		// hex digits, sha384 with 96, sha512 with 128.
		if _, err := digest.Parse(img.Digest); err != nil {
			return "", fmt.Errorf("image %s: digest %q: %v", img.Name, img.Digest, err)
		}
		ref += "@" + img.Digest
	}
	return ref, nil
}

var (
	// The reference grammar's name (github.com/distribution/reference,
	// as documented there): an optional host (and port), then path
	// components of lower-case letters and digits joined by ., _, __ or
	// dashes.
	imageName = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	imageTag  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// endpoint is what a replica must reach: a port, a protocol and why.
type endpoint struct {
	port     int32
	protocol corev1.Protocol
	what     string
}

// postgresPort is the ledger's: PostgreSQL's default, the one the ledger
// URL in docs/operations.md names. The URL itself is in the Secret, which
// is not in the repository.
const postgresPort = 5432

// egressNeeded lists what the replicas reach: the cluster's DNS, the
// ledger, and every service and trace collector the OPA configuration
// names (a service's port from its URL, or its scheme's).
func egressNeeded(t *testing.T, cm *corev1.ConfigMap) []endpoint {
	t.Helper()
	need := []endpoint{
		{53, corev1.ProtocolUDP, "DNS"},
		{53, corev1.ProtocolTCP, "DNS"},
		{postgresPort, corev1.ProtocolTCP, "the PostgreSQL ledger"},
	}
	var cfg struct {
		Services map[string]struct {
			URL string `json:"url"`
		} `json:"services"`
		DistributedTracing struct {
			Address string `json:"address"`
		} `json:"distributed_tracing"`
	}
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	for name, s := range cfg.Services {
		u, err := url.Parse(s.URL)
		if err != nil || u.Host == "" {
			t.Fatalf("service %s: URL %q: %v", name, s.URL, err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
		}
		n, err := strconv.ParseInt(port, 10, 32)
		if err != nil {
			t.Fatalf("service %s: URL %q: no port", name, s.URL)
		}
		need = append(need, endpoint{int32(n), corev1.ProtocolTCP, "OPA service " + name})
	}
	if a := cfg.DistributedTracing.Address; a != "" {
		_, port, err := net.SplitHostPort(a)
		n, perr := strconv.ParseInt(port, 10, 32)
		if err != nil || perr != nil {
			t.Fatalf("distributed_tracing address %q: want host:port", a)
		}
		need = append(need, endpoint{int32(n), corev1.ProtocolTCP, "the trace collector"})
	}
	return need
}

// networkPolicyProblems says what is wrong with np as the policy of dep's
// pods: it must select them (and not every pod of the namespace), isolate
// both directions, let in exactly the ports the containers expose (by
// name or number, with their protocol) and nothing else, from chosen
// peers only, and let out only to chosen peers on given ports, among them
// every endpoint in need.
func networkPolicyProblems(np *networkingv1.NetworkPolicy, dep *appsv1.Deployment, need []endpoint) []string {
	var out []string
	bad := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	tmpl := dep.Spec.Template
	if sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil || sel.Empty() || !sel.Matches(k8slabels.Set(tmpl.Labels)) {
		bad("podSelector %q (%v) does not select only the pods, labelled %v", metav1.FormatLabelSelector(&np.Spec.PodSelector), err, tmpl.Labels)
	}
	// Without a type listed, its rules, however strict, are ignored.
	for _, pt := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
		if !slices.Contains(np.Spec.PolicyTypes, pt) {
			bad("policyTypes %v lack %s: the pods are not isolated for it", np.Spec.PolicyTypes, pt)
		}
	}

	type cport struct {
		n     int32
		proto corev1.Protocol
	}
	exposed := map[cport]string{}
	for _, c := range tmpl.Spec.Containers {
		for _, p := range c.Ports {
			exposed[cport{p.ContainerPort, protocolOf(&p.Protocol)}] = c.Name + "/" + p.Name
		}
	}
	// resolve finds the container port an ingress port stands for.
	resolve := func(p networkingv1.NetworkPolicyPort) (cport, bool) {
		for _, c := range tmpl.Spec.Containers {
			for _, cp := range c.Ports {
				if protocolOf(&cp.Protocol) != protocolOf(p.Protocol) {
					continue
				}
				if p.Port.Type == intstr.String && cp.Name == p.Port.StrVal || p.Port.Type == intstr.Int && cp.ContainerPort == p.Port.IntVal {
					return cport{cp.ContainerPort, protocolOf(&cp.Protocol)}, true
				}
			}
		}
		return cport{}, false
	}
	letIn := map[cport]bool{}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 {
			bad("ingress rule %d has no from: it lets in every source", i)
		}
		for j, peer := range r.From {
			if why := peerTooWide(peer); why != "" {
				bad("ingress rule %d, peer %d: %s", i, j, why)
			}
		}
		if len(r.Ports) == 0 {
			bad("ingress rule %d has no ports: it opens every port", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil || p.EndPort != nil {
				bad("ingress rule %d opens every port or a range (%v-%v), not a container's port", i, p.Port, p.EndPort)
				continue
			}
			cp, ok := resolve(p)
			if !ok {
				bad("ingress rule %d: port %s/%s is no container port of the pods", i, p.Port.String(), protocolOf(p.Protocol))
				continue
			}
			letIn[cp] = true
		}
	}
	for cp, name := range exposed {
		if !letIn[cp] {
			bad("container port %s (%d/%s) is not let in", name, cp.n, cp.proto)
		}
	}

	for i, r := range np.Spec.Egress {
		if len(r.To) == 0 {
			bad("egress rule %d has no to: it lets out to every destination", i)
		}
		for j, peer := range r.To {
			if why := peerTooWide(peer); why != "" {
				bad("egress rule %d, peer %d: %s", i, j, why)
			}
		}
		if len(r.Ports) == 0 {
			bad("egress rule %d has no ports: it lets out on every port", i)
		}
		for _, p := range r.Ports {
			if p.Port == nil {
				bad("egress rule %d lets out on every %s port", i, protocolOf(p.Protocol))
			}
		}
	}
	for _, e := range need {
		if !slices.ContainsFunc(np.Spec.Egress, func(r networkingv1.NetworkPolicyEgressRule) bool {
			return slices.ContainsFunc(r.Ports, func(p networkingv1.NetworkPolicyPort) bool {
				return p.Port != nil && p.Port.Type == intstr.Int && protocolOf(p.Protocol) == e.protocol &&
					(p.Port.IntVal == e.port || p.EndPort != nil && p.Port.IntVal <= e.port && e.port <= *p.EndPort)
			})
		}) {
			bad("no egress rule lets out to %s (%d/%s)", e.what, e.port, e.protocol)
		}
	}
	return out
}

// peerTooWide says why a peer stands for more than chosen pods or
// addresses ("" when it does not): an empty pod selector with no or an
// empty namespace selector is every pod of the namespace or of the
// cluster, and a /0 block is every address.
func peerTooWide(p networkingv1.NetworkPolicyPeer) string {
	if p.IPBlock != nil {
		_, n, err := net.ParseCIDR(p.IPBlock.CIDR)
		if err != nil {
			return err.Error()
		}
		if ones, _ := n.Mask.Size(); ones == 0 {
			return fmt.Sprintf("ipBlock %s is every address", p.IPBlock.CIDR)
		}
		return ""
	}
	empty := func(s *metav1.LabelSelector) bool {
		return s == nil || len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
	}
	if empty(p.PodSelector) && empty(p.NamespaceSelector) {
		return "it selects every pod (of the namespace, or of every namespace)"
	}
	return ""
}

// protocolOf is a port's protocol, TCP when unset as the API defaults it.
func protocolOf(p *corev1.Protocol) corev1.Protocol {
	if p == nil || *p == "" {
		return corev1.ProtocolTCP
	}
	return *p
}

// topologyProblems says what is wrong with how dep's pods spread: over
// nodes as a rule (one node's failure, which no disruption budget covers,
// takes at most its share) and over zones as a preference (a rule would
// leave pods Pending where nodes have no zone label, where zones are
// fewer, and while a zone is down), each with a selector that counts
// these pods, a skew of 1, and the hard one counting only nodes the pods
// may run on (not cordoned nodes being drained, nor control planes).
func topologyProblems(dep *appsv1.Deployment) []string {
	var out []string
	bad := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	want := map[string]corev1.UnsatisfiableConstraintAction{
		corev1.LabelHostname:     corev1.DoNotSchedule,
		corev1.LabelTopologyZone: corev1.ScheduleAnyway,
	}
	seen := map[string]bool{}
	for _, c := range dep.Spec.Template.Spec.TopologySpreadConstraints {
		if seen[c.TopologyKey] {
			bad("topology key %s is spread over twice", c.TopologyKey)
		}
		seen[c.TopologyKey] = true
		// A nil selector counts no pod at all: no spread.
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if c.LabelSelector == nil || err != nil || sel.Empty() || !sel.Matches(k8slabels.Set(dep.Spec.Template.Labels)) {
			bad("spread over %s: labelSelector %q (%v) does not count the pods, labelled %v", c.TopologyKey, metav1.FormatLabelSelector(c.LabelSelector), err, dep.Spec.Template.Labels)
		}
		if w, ok := want[c.TopologyKey]; ok && c.WhenUnsatisfiable != w {
			bad("spread over %s is %s, want %s", c.TopologyKey, c.WhenUnsatisfiable, w)
		}
		if c.MaxSkew != 1 {
			bad("spread over %s: maxSkew %d lets two of three replicas share a domain while another has none", c.TopologyKey, c.MaxSkew)
		}
		if c.WhenUnsatisfiable == corev1.DoNotSchedule && (c.NodeTaintsPolicy == nil || *c.NodeTaintsPolicy != corev1.NodeInclusionPolicyHonor) {
			bad("spread over %s: without nodeTaintsPolicy Honor a cordoned node counts as an empty domain and holds an evicted replica Pending", c.TopologyKey)
		}
	}
	for k := range want {
		if !seen[k] {
			bad("no spread over %s", k)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// flagValues reads "--name value" pairs (and "--name=value").
func flagValues(t *testing.T, args []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("argument %q is not a flag", a)
		}
		name, val, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			if i+1 >= len(args) {
				t.Fatalf("--%s has no value", name)
			}
			i++
			val = args[i]
		}
		if _, dup := out[name]; dup {
			t.Fatalf("--%s is given twice", name)
		}
		out[name] = val
	}
	return out
}

// mountFor is the volume mount holding path p (the longest mount path
// that is p or a parent of it).
func mountFor(c corev1.Container, p string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if (p == vm.MountPath || strings.HasPrefix(p, strings.TrimSuffix(vm.MountPath, "/")+"/")) && (best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	return best
}

// provides reports whether a volume mounted in c puts a file at p.
func provides(t *testing.T, pod corev1.PodSpec, c corev1.Container, p string) bool {
	t.Helper()
	vm := mountFor(c, p)
	if vm == nil || vm.SubPath != "" {
		return false
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(p, vm.MountPath), "/")
	for _, v := range pod.Volumes {
		if v.Name != vm.Name {
			continue
		}
		var items []corev1.KeyToPath
		switch {
		case v.Secret != nil:
			items = v.Secret.Items
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		default:
			return false
		}
		for _, it := range items {
			if path.Clean(it.Path) == rel {
				return true
			}
		}
	}
	return false
}

// imageUser reads the Containerfile's USER (uid) and data directory.
func imageUser(t *testing.T) (int64, string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var uid int64 = -1
	var dir string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		switch fields[0] {
		case "USER":
			u, _, _ := strings.Cut(fields[1], ":")
			if uid, err = strconv.ParseInt(u, 10, 64); err != nil {
				t.Fatalf("Containerfile USER %q is not numeric", fields[1])
			}
		case "ENV":
			if v, ok := strings.CutPrefix(fields[1], "GEOSCOPE_DATA_DIR="); ok {
				dir = v
			}
		}
	}
	if uid <= 0 || dir == "" {
		t.Fatalf("Containerfile: USER %d, GEOSCOPE_DATA_DIR %q", uid, dir)
	}
	return uid, dir
}

func buildGeoscope(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "geoscope")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/geoscope")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("geoscope %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serve starts the binary on embedded defaults on a loopback port and
// returns its base URL once /health answers.
func serve(t *testing.T, bin string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve", "--addr", addr, "--ledger", "off")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
	}
	t.Fatalf("the server on %s never became ready", addr)
	return ""
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// goRuntimeEnv are the environment variables the Go runtime itself reads
// (package runtime's documentation), which a Deployment may set too.
var goRuntimeEnv = map[string]bool{"GOGC": true, "GOMEMLIMIT": true, "GOMAXPROCS": true, "GODEBUG": true, "GOTRACEBACK": true}

// goMemLimit reads a GOMEMLIMIT value as the Go runtime does: a number of
// bytes with an optional unit (B, KiB, MiB, GiB, TiB).
func goMemLimit(v string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("want a positive number of bytes with an optional unit (B, KiB, MiB, GiB, TiB)")
	}
	return n << shift, nil
}
