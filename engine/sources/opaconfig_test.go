package sources

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// An OPA configuration is checked, before anything starts, for what OPA
// itself lets through: unknown options (OPA warns), the deprecated single
// bundle block and discovery (neither can be held to signatures), and keys
// a verifying server must not hold.
func TestOPAConfigChecks(t *testing.T) {
	pub := readKey(t, "dev-es256.pub.pem")
	priv := readKey(t, "dev-es256.pem")
	t.Setenv("GEOSCOPE_TEST_PORT", "18999")
	t.Setenv("GEOSCOPE_TEST_EMPTY", "")
	const service = "services:\n  s:\n    url: http://127.0.0.1:1\n"
	const bundles = "bundles:\n  policies:\n    service: s\n"
	cases := []struct {
		name, config string
		err          string // empty: accepted
	}{
		{name: "plain", config: service + bundles},
		{name: "one public key", config: service + bundles + "keys:\n  k:\n    algorithm: ES256\n    key: |\n" + indent(pub)},
		{name: "misspelt decision_logs", config: service + bundles + "decison_logs:\n  console: true\n", err: `unknown configuration option "decison_logs"`},
		{name: "misspelt bundle option", config: service + bundles + "    resourse: x\n", err: `"bundles.policies.resourse"`},
		{name: "deprecated bundle block", config: service + "bundle:\n  name: policies\n  service: s\n", err: `the deprecated "bundle" block is not supported`},
		{name: "discovery", config: service + "discovery:\n  service: s\n  resource: d\n", err: `"discovery" is not supported`},
		{name: "status with prometheus", config: service + bundles + "status:\n  service: s\n  prometheus: true\n", err: `"status.prometheus" has no effect here`},
		{name: "status", config: service + bundles + "status:\n  service: s\n  prometheus: false\n"},
		{name: "tracing with excluded paths", config: service + bundles + "distributed_tracing:\n  type: grpc\n  exclude_paths: [/health**, /metrics]\n"},
		{name: "misspelt tracing option", config: service + bundles + "distributed_tracing:\n  type: grpc\n  exclude_path: [/health**]\n", err: `"distributed_tracing.exclude_path"`},
		{name: "shared secret", config: service + bundles + "keys:\n  k:\n    algorithm: HS256\n    key: secret\n", err: "keys.k: not a PEM file"},
		{name: "shared-secret algorithm on a public key", config: service + bundles + "keys:\n  k:\n    algorithm: HS256\n    key: |\n" + indent(pub), err: `keys.k: algorithm "HS256" is not one of`},
		{name: "private key as the key", config: service + bundles + "keys:\n  k:\n    key: |\n" + indent(priv), err: "keys.k: a \"EC PRIVATE KEY\" block is not a public key"},
		{name: "private_key field", config: service + bundles + "keys:\n  k:\n    private_key: x\n", err: "keys.k.private_key: a signing key does not belong on a verifying server"},
		{name: "EC key without an algorithm (OPA takes RS256)", config: service + bundles + "keys:\n  k:\n    key: |\n" + indent(pub), err: "keys.k: no algorithm is given, so OPA takes RS256"},
		{name: "no bundles", config: service + "bundles: {}\n", err: "no bundles are configured"},
		{name: "no bundles block", config: service + "decision_logs:\n  console: true\n", err: "no bundles are configured"},
		{name: "server options", config: service + bundles + "server:\n  encoding:\n    gzip:\n      min_length: 1024\n", err: `"server" has no effect here`},
		{name: "disk storage", config: service + bundles + "storage:\n  disk:\n    directory: /tmp/x\n", err: `"storage" has no effect here`},
		{name: "default decision", config: service + bundles + "default_decision: /geoscope/decision\n", err: `"default_decision" has no effect here`},
		{name: "builtin cache", config: service + bundles + "nd_builtin_cache: true\n", err: `"nd_builtin_cache" has no effect here`},
		{name: "logged request headers", config: service + bundles + "decision_logs:\n  console: true\n  request_context:\n    http:\n      headers: [Authorization]\n", err: `"decision_logs.request_context" has no effect here`},
		{name: "files left out of the signature", config: service + bundles + "    signing:\n      keyid: k\n      exclude_files: [data.json]\n" + "keys:\n  k:\n    algorithm: ES256\n    key: |\n" + indent(pub), err: "bundles.policies.signing.exclude_files: a file left out of the signature could be changed without it"},
		{name: "no file left out of the signature", config: service + bundles + "    signing:\n      keyid: k\n      exclude_files: []\n" + "keys:\n  k:\n    algorithm: ES256\n    key: |\n" + indent(pub)},
		{name: "polling without pause", config: service + bundles + "    polling:\n      min_delay_seconds: 0\n      max_delay_seconds: 0\n", err: "bundles.policies.polling.min_delay_seconds is 0: give a number of seconds, at least 1"},
		{name: "negative polling delay", config: service + bundles + "    polling:\n      min_delay_seconds: 5\n      max_delay_seconds: -1\n", err: "bundles.policies.polling.max_delay_seconds is -1"},
		{name: "polling delay not a number", config: service + bundles + "    polling:\n      min_delay_seconds: soon\n", err: "bundles.policies.polling.min_delay_seconds is soon"},
		{name: "polling", config: service + bundles + "    polling:\n      min_delay_seconds: 1\n      max_delay_seconds: 120\n"},
		{name: "undefined service", config: service + "bundles:\n  policies:\n    service: nowhere\n", err: "nowhere"},
		{name: "not YAML", config: "services: [\n", err: "not YAML or JSON"},
		{name: "not a mapping", config: "- a\n- b\n", err: "expected a mapping at the top level"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "opa.yaml")
			if err := os.WriteFile(path, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Config{OPAConfig: path}.opaConfig()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--config "+path) {
				t.Fatalf("err = %v, want ErrConfig naming --config %s and mentioning %q", err, path, tc.err)
			}
			if err := (Config{OPAConfig: path}).Validate(); !errors.Is(err, ErrConfig) {
				t.Errorf("Validate() = %v, want the same refusal", err)
			}
		})
	}

	// ${NAME} is the environment variable's value where it is set, as in
	// OPA; a name that is not set stays as written.
	path := filepath.Join(t.TempDir(), "opa.yaml")
	config := "services:\n  s:\n    url: http://127.0.0.1:${GEOSCOPE_TEST_PORT}/b${GEOSCOPE_TEST_EMPTY}\n" +
		"    headers:\n      X-Unset: ${GEOSCOPE_TEST_UNSET}\n" + bundles
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := Config{OPAConfig: path}.opaConfig()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Services map[string]struct {
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if s := got.Services["s"]; s.URL != "http://127.0.0.1:18999/b" || s.Headers["X-Unset"] != "${GEOSCOPE_TEST_UNSET}" {
		t.Errorf("after substitution: url %q, X-Unset %q", s.URL, s.Headers["X-Unset"])
	}
}

// --set and --set-file override the file's values as OPA's do: nested
// keys merged into the file's mappings, values typed, ${NAME} substituted,
// a file's content trimmed; without a file they are the configuration.
// Errors name the flag, never the value (it may be a credential).
func TestOPAConfigOverrides(t *testing.T) {
	t.Setenv("GEOSCOPE_TEST_HOST", "127.0.0.1")
	dir := t.TempDir()
	file := filepath.Join(dir, "opa.yaml")
	config := "services:\n  s:\n    url: http://127.0.0.1:1\n    headers: {X-Kept: yes}\nbundles:\n  policies:\n    service: s\n"
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type doc struct {
		Services map[string]struct {
			URL         string            `json:"url"`
			Headers     map[string]string `json:"headers"`
			Credentials struct {
				Bearer struct {
					Token string `json:"token"`
				} `json:"bearer"`
			} `json:"credentials"`
		} `json:"services"`
		Bundles      map[string]map[string]any `json:"bundles"`
		DecisionLogs struct {
			Console any `json:"console"`
		} `json:"decision_logs"`
	}
	read := func(t *testing.T, c Config) doc {
		t.Helper()
		out, err := c.opaConfig()
		if err != nil {
			t.Fatal(err)
		}
		var d doc
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	got := read(t, Config{OPAConfig: file,
		OPASet:     []string{"decision_logs.console=true", "services.s.url=http://${GEOSCOPE_TEST_HOST}:2,bundles.policies.resource=p.tar.gz"},
		OPASetFile: []string{"services.s.credentials.bearer.token=" + token}})
	s := got.Services["s"]
	if got.DecisionLogs.Console != true || s.URL != "http://127.0.0.1:2" || s.Headers["X-Kept"] != "yes" ||
		s.Credentials.Bearer.Token != "s3cret-token" || got.Bundles["policies"]["service"] != "s" || got.Bundles["policies"]["resource"] != "p.tar.gz" {
		t.Errorf("merged configuration = %+v", got)
	}

	// Without --config the overrides are the whole configuration.
	got = read(t, Config{OPASet: []string{"services.s.url=http://127.0.0.1:1", "bundles.policies.service=s"}})
	if got.Services["s"].URL != "http://127.0.0.1:1" || got.Bundles["policies"]["service"] != "s" {
		t.Errorf("configuration from --set alone = %+v", got)
	}

	for _, tc := range []struct {
		name string
		c    Config
		err  string
	}{
		{"a key without a value", Config{OPAConfig: file, OPASet: []string{"decision_logs.console"}}, `--set: key "console" has no value`},
		{"a value that is not there", Config{OPAConfig: file, OPASetFile: []string{"services.s.credentials.bearer.token=" + filepath.Join(dir, "missing")}}, "--set-file: "},
		{"a misspelt option", Config{OPAConfig: file, OPASet: []string{"decison_logs.console=true"}}, `--config ` + file + ` with --set: unknown configuration option "decison_logs"`},
		{"no bundles", Config{OPASet: []string{"decision_logs.console=true"}}, "--set: no bundles are configured"},
		{"with --bundle", Config{OPASet: []string{"bundles.policies.service=s"}, Bundles: []string{dir}}, "--bundle exclude each other"},
		{"a secret in a malformed override", Config{OPAConfig: file, OPASet: []string{"services.s.credentials.bearer.token=s3cret-token,oops"}}, `key "oops" has no value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tc.err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error repeats the value set: %v", err)
			}
		})
	}
}

func readKey(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../bundles/keys", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("      " + line)
	}
	return b.String()
}

// A key the configuration names and --verification-key gives under the
// same id would replace the file's key in silence, and every bundle signed
// with that one would then be rejected.
func TestOPAConfigKeyGivenTwice(t *testing.T) {
	pub := readKey(t, "dev-es256.pub.pem")
	path := filepath.Join(t.TempDir(), "opa.yaml")
	config := "services:\n  s:\n    url: http://127.0.0.1:1\nbundles:\n  policies:\n    service: s\nkeys:\n  k:\n    algorithm: ES256\n    key: |\n" + indent(pub)
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{OPAConfig: path, VerificationKeyPEM: []byte(pub), VerificationKeyID: "k", VerificationAlg: "ES256"}
	if _, err := cfg.opaConfig(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "keys.k is given here and by --verification-key") {
		t.Errorf("the same key id twice: %v", err)
	}
	cfg.VerificationKeyID = "other"
	if _, err := cfg.opaConfig(); err != nil {
		t.Errorf("another key id: %v", err)
	}
}

// The decision-log plugin keeps every event it could not upload, and OPA
// sets no limit to that by default: a collector down for hours grew the
// process by megabytes a minute until it was killed. A configuration that
// bounds the buffer in none of OPA's ways is given decisionLogBufferBytes;
// one that does is left as written (OPA refuses a byte limit beside a
// rate limit). The limits are read back as OPA's plugin parses them.
func TestOPAConfigBoundsTheDecisionLogBuffer(t *testing.T) {
	const head = "services:\n  s:\n    url: http://127.0.0.1:1\nbundles:\n  policies:\n    service: s\n"
	cases := []struct {
		name, logs  string
		bytes       int64   // the size buffer's limit OPA runs with (0: none)
		eventBuffer bool    // the event buffer, bounded by a number of events
		rate        float64 // max_decisions_per_second
	}{
		{name: "uploads, nothing said", logs: "  service: s\n", bytes: decisionLogBufferBytes},
		{name: "uploads with reporting delays", logs: "  service: s\n  reporting:\n    min_delay_seconds: 5\n    max_delay_seconds: 10\n", bytes: decisionLogBufferBytes},
		{name: "the size buffer named", logs: "  service: s\n  reporting:\n    buffer_type: size\n", bytes: decisionLogBufferBytes},
		{name: "console only", logs: "  console: true\n", bytes: decisionLogBufferBytes},
		{name: "a limit of its own", logs: "  service: s\n  reporting:\n    buffer_size_limit_bytes: 1048576\n", bytes: 1 << 20},
		{name: "the event buffer", logs: "  service: s\n  reporting:\n    buffer_type: event\n", eventBuffer: true},
		{name: "a rate limit", logs: "  service: s\n  reporting:\n    max_decisions_per_second: 100\n", rate: 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "opa.yaml")
			if err := os.WriteFile(path, []byte(head+"decision_logs:\n"+tc.logs), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := Config{OPAConfig: path}.opaConfig()
			if err != nil {
				t.Fatal(err)
			}
			// As OPA's discovery builds the plugin's configuration from the
			// one the manager is given.
			m, err := plugins.New(out, "test", inmem.New())
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := logs.NewConfigBuilder().WithBytes(m.Config.DecisionLogs).WithServices(m.Services()).Parse()
			if err != nil {
				t.Fatal(err)
			}
			r := cfg.Reporting
			if tc.eventBuffer {
				if r.BufferType != "event" || r.BufferSizeLimitEvents == nil || *r.BufferSizeLimitEvents <= 0 {
					t.Errorf("event buffer: type %q, limit %v", r.BufferType, r.BufferSizeLimitEvents)
				}
				return
			}
			if r.BufferType != "size" || r.BufferSizeLimitBytes == nil || *r.BufferSizeLimitBytes != tc.bytes {
				t.Errorf("size buffer limit = %v (type %q), want %d", deref(r.BufferSizeLimitBytes), r.BufferType, tc.bytes)
			}
			if got := deref(r.MaxDecisionsPerSecond); got != tc.rate {
				t.Errorf("max_decisions_per_second = %v, want %v", got, tc.rate)
			}
		})
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// A --set-file value that is a credential (under a service's credentials)
// is read from a file other users of the system cannot read, as --tls-key
// is; other values, a public key among them, from any file. The error
// names the key and the file, never the value.
func TestSetFileCredentialsOpenToOthersRefused(t *testing.T) {
	dir := t.TempDir()
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&signer.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	public := filepath.Join(dir, "public-644")
	if err := os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"services.s.url=http://127.0.0.1:1", "bundles.policies.service=s"}
	for _, tc := range []struct {
		name, set string
		refused   bool
	}{
		{"a bearer token readable by all", "services.s.credentials.bearer.token=" + secretIn(t, dir, "token-644", 0o644), true},
		{"a bearer token others may write", "services.s.credentials.bearer.token=" + secretIn(t, dir, "token-602", 0o602), true},
		{"a client secret, second of two", "services.s.headers.X-Tenant=" + secretIn(t, dir, "tenant-first", 0o644) + ",services.s.credentials.oauth2.client_secret=" + secretIn(t, dir, "secret-604", 0o604), true},
		{"a bearer token for the owner and group", "services.s.credentials.bearer.token=" + secretIn(t, dir, "token-640", 0o640), false},
		// Its algorithm is given with --set (below): --set-file reads every
		// value from a file.
		{"a verification key readable by all", "keys.verifier.key=" + public, false},
		{"a value that is no credential", "services.s.headers.X-Tenant=" + secretIn(t, dir, "tenant-644", 0o644), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := base
			if strings.HasPrefix(tc.set, "keys.verifier.") {
				set = append(slices.Clone(base), "keys.verifier.algorithm=ES256")
			}
			_, err := Config{OPASet: set, OPASetFile: []string{tc.set}}.opaConfig()
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			key, file, _ := strings.Cut(tc.set[strings.LastIndex(tc.set, ",")+1:], "=")
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--set-file: "+key+"="+file+" is open to other users") ||
				!strings.Contains(err.Error(), "chmod 600 "+file) {
				t.Fatalf("err = %v, want ErrConfig naming --set-file %s=%s and the chmod that fixes it", err, key, file)
			}
			if strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("the error quotes the credential: %v", err)
			}
		})
	}
}

// A service's credential file that OPA reads itself (a bearer token's
// token_path, a client certificate's private_key) is refused when other
// users of the system can read it, as a --set-file credential is; one
// that is not there yet is left to OPA.
func TestCredentialFilesOpenToOthersRefused(t *testing.T) {
	dir := t.TempDir()
	bundles := "bundles:\n  policies:\n    service: s\n"
	for _, tc := range []struct {
		name, services, refused string
	}{
		{"a token readable by all", "services:\n  s:\n    url: http://127.0.0.1:1\n    credentials:\n      bearer:\n        token_path: " + secretIn(t, dir, "token-644", 0o644) + "\n",
			"services.s.credentials.bearer.token_path " + filepath.Join(dir, "token-644") + " is open to other users of the system (mode 0644)"},
		{"a client key readable by others, services as a list", "services:\n  - name: s\n    url: http://127.0.0.1:1\n    credentials:\n      client_tls:\n        cert: /nonexistent/cert.pem\n        private_key: " + secretIn(t, dir, "key-604", 0o604) + "\n",
			"services.s.credentials.client_tls.private_key " + filepath.Join(dir, "key-604") + " is open to other users of the system (mode 0604)"},
		{"a token for the owner and group", "services:\n  s:\n    url: http://127.0.0.1:1\n    credentials:\n      bearer:\n        token_path: " + secretIn(t, dir, "token-640", 0o640) + "\n", ""},
		{"a token not there yet", "services:\n  s:\n    url: http://127.0.0.1:1\n    credentials:\n      bearer:\n        token_path: " + filepath.Join(dir, "later") + "\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "opa.yaml")
			if err := os.WriteFile(config, []byte(tc.services+bundles), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Config{OPAConfig: config}.opaConfig()
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("err = %v, want ErrConfig with %q and the chmod that fixes it", err, tc.refused)
			}
			if strings.Contains(err.Error(), "s3cret-value") {
				t.Errorf("the error quotes the credential: %v", err)
			}
		})
	}
}

// secretIn writes a credential, "s3cret-value", to the file name in dir
// with the given mode (chmod: the umask does not narrow it), and returns
// its path.
func secretIn(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("s3cret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}
