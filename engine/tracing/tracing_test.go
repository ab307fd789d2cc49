package tracing

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/geoscope/geoscope/internal/proctest"
)

func TestFromOPAConfig(t *testing.T) {
	yaml := `
services:
  s: {url: "http://127.0.0.1:1"}
distributed_tracing:
  type: http
  address: collector:4318
  service_name: gs
  sample_percentage: 25
  resource: {service_namespace: meetings}
  batch_span_processor_options: {batch_timeout_ms: 50}
`
	c, err := FromOPAConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || c.Type != "http" || c.address(DefaultHTTPAddress) != "collector:4318" || c.ServiceName != "gs" ||
		*c.SamplePercentage != 25 || c.Resource.ServiceNamespace != "meetings" || *c.BatchSpanOptions.BatchTimeoutMs != 50 {
		t.Errorf("parsed %+v", c)
	}
	p, err := Start(context.Background(), c, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown with nothing exported: %v", err)
	}

	for raw, enabled := range map[string]bool{`{}`: false, `{"distributed_tracing": {}}`: false, `{"distributed_tracing": {"type": "GRPC"}}`: true} {
		c, err := FromOPAConfig([]byte(raw))
		if err != nil || c.Enabled() != enabled {
			t.Errorf("%s: enabled %v, err %v; want enabled %v", raw, c.Enabled(), err, enabled)
		}
	}
	if c, _ := FromOPAConfig([]byte(`{}`)); c.address(DefaultGRPCAddress) != "localhost:4317" {
		t.Errorf("default gRPC address %q", c.address(DefaultGRPCAddress))
	}

	for block, key := range map[string]string{
		`{"type": "jaeger"}`:                                                      "distributed_tracing.type",
		`{"type": "grpc", "sample_percentage": -1}`:                               "distributed_tracing.sample_percentage",
		`{"type": "grpc", "encryption": "mtls"}`:                                  "distributed_tracing.encryption",
		`{"type": "grpc", "servce_name": "x"}`:                                    "distributed_tracing.servce_name",
		`{"type": "grpc", "address": 4317}`:                                       "distributed_tracing.address",
		`{"type": "grpc", "batch_span_processor_options": {"max_queue_size": 0}}`: "distributed_tracing.batch_span_processor_options.max_queue_size",
		`{"type": "grpc", "exclude_paths": ["/metrics", "/health["]}`:             "distributed_tracing.exclude_paths[1]",
		`{"type": "grpc", "exclude_paths": ["/a{b"]}`:                             "distributed_tracing.exclude_paths[0]",
		`{"type": "grpc", "exclude_paths": "/health"}`:                            "distributed_tracing.exclude_paths",
	} {
		_, err := FromOPAConfig([]byte(`{"distributed_tracing": ` + block + `}`))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v; want ErrConfig naming %s", block, err, key)
		}
	}
	if _, err := Start(context.Background(), &Config{Type: "grpc", Encryption: "tls", TLSCACertFile: "/nonexistent"}, ""); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "tls_ca_cert_file") {
		t.Errorf("missing CA file: %v", err)
	}
}

// exclude_paths match as OPA's do: globs against the URL path, with '/'
// separating segments ('*' within one, '**' across them).
func TestExcludePaths(t *testing.T) {
	c, err := FromOPAConfig([]byte(`
distributed_tracing:
  type: grpc
  exclude_paths: ["/health**", "/metrics", "/v1/ledger/*", "/ready"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for path, excluded := range map[string]bool{
		"/health": true, "/health/live": true, "/healthz": true,
		"/metrics": true, "/metrics/": false, "/v1/metrics": false,
		"/v1/ledger/some-id": true, "/v1/ledger": false, "/v1/ledger/a/b": false,
		"/ready": true, "/v1/decisions": false, "/": false, "": false,
	} {
		if got := c.Excludes(path); got != excluded {
			t.Errorf("Excludes(%q) = %v, want %v", path, got, excluded)
		}
	}
	if c, _ := FromOPAConfig([]byte(`{"distributed_tracing": {"type": "grpc"}}`)); c.Excludes("/health") {
		t.Error("without exclude_paths, /health is excluded")
	}
}

// An mTLS key that other users of the system may read is refused, naming
// the setting, the file, its mode and the chmod, as the server's own TLS
// key is; owner and group only, it is used.
func TestMTLSKeyOpenToOthersRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits say nothing of who may read a file on Windows")
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	proctest.WriteTLSPair(t, certFile, keyFile, 1)
	c := &Config{Type: "grpc", Encryption: "mtls", TLSCertFile: certFile, TLSPrivateKeyFile: keyFile}

	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.tlsConfig()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("key of mode 0644: %v; want ErrConfig", err)
	}
	for _, want := range []string{"distributed_tracing.tls_private_key_file " + keyFile, "(mode 0644)", "chmod 600 " + keyFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}

	if err := os.Chmod(keyFile, 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err := c.tlsConfig()
	if err != nil || len(cfg.Certificates) != 1 {
		t.Fatalf("key of mode 0640: %v; want the pair loaded", err)
	}
	if _, err := (&Config{Type: "grpc", Encryption: "mtls", TLSCertFile: filepath.Join(dir, "missing.crt"), TLSPrivateKeyFile: keyFile}).tlsConfig(); !errors.Is(err, ErrConfig) ||
		!strings.Contains(err.Error(), "distributed_tracing.tls_cert_file") {
		t.Errorf("missing certificate: %v; want ErrConfig naming tls_cert_file", err)
	}
}
