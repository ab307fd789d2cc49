// Package kubernetes_test checks the manifests in this directory: each one
// decodes strictly (unknown fields rejected) into its k8s.io/api type, the
// kustomization names exactly these files, and what the Deployment asks of
// the binary is what the binary does: the flags exist in `geoscope serve
// --help`, the listening port is the container port the Service and the
// probes use, the probe paths are real endpoints answering 200, every file
// a flag names is mounted from a volume that provides it, and the security
// context runs the image's own unprivileged user on a read-only root. The
// kustomization is also rendered, with kustomize's own library, into these
// resources carrying its labels and image.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
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

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
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
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// manifests are the decoded resources, one of each kind.
type manifests struct {
	sa   *corev1.ServiceAccount
	cm   *corev1.ConfigMap
	dep  *appsv1.Deployment
	svc  *corev1.Service
	pdb  *policyv1.PodDisruptionBudget
	hpa  *autoscalingv2.HorizontalPodAutoscaler
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
	if m.sa == nil || m.cm == nil || m.dep == nil || m.svc == nil || m.pdb == nil || m.hpa == nil {
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

	t.Run("image", func(t *testing.T) {
		named := false
		for _, img := range m.kust.Images {
			named = named || img.Name == c.Image
		}
		if !named {
			t.Errorf("image %q is not named in the kustomization's images, so it cannot be set there", c.Image)
		}
	})

	// Rendered with kustomize's own library (what `kubectl apply -k`
	// embeds), so the check runs wherever the tests do, kubectl or not.
	t.Run("kustomize build", func(t *testing.T) {
		res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), ".")
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
		if len(docs) != len(m.kust.Resources) || rendered.dep == nil {
			t.Fatalf("kustomize rendered %d documents, want %d", len(docs), len(m.kust.Resources))
		}
		// What the kustomization says (an operator sets the image there,
		// see docs/operations.md) is what comes out.
		for _, img := range m.kust.Images {
			if img.Name != c.Image {
				continue
			}
			want := cmp.Or(img.NewName, img.Name) + ":" + img.NewTag
			if img.Digest != "" {
				want = cmp.Or(img.NewName, img.Name) + "@" + img.Digest
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
	})
}

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
