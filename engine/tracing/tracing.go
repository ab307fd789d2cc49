// Package tracing exports OpenTelemetry spans over OTLP as OPA does: it
// reads the distributed_tracing block of the OPA configuration file given
// with --config, with OPA's keys and defaults (type grpc or http, address,
// service_name, sample_percentage, encryption off/tls/mtls with its
// certificate files, resource, batch_span_processor_options, exclude_paths).
// A block without a type, or no block, exports nothing.
//
// Spans name routes and pipeline stages; they carry no participant id, no
// account id and no address (no client address either, which is why the
// HTTP span is geoscope's own rather than otelhttp's).
package tracing

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/credentials"

	"github.com/gobwas/glob"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/internal/secretfile"
)

// ErrConfig is matched by errors in the distributed_tracing block.
var ErrConfig = errors.New("invalid distributed_tracing configuration")

// Config is OPA's distributed_tracing block.
type Config struct {
	// Type is grpc or http; empty disables tracing.
	Type string `json:"type,omitempty"`
	// Address is the OTLP receiver's HOST:PORT (default localhost:4317 for
	// grpc, localhost:4318 for http).
	Address     string `json:"address,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
	// SamplePercentage of traces started here (0 to 100, default 100); a
	// request with a W3C traceparent follows its caller's decision.
	SamplePercentage *float64 `json:"sample_percentage,omitempty"`
	// Encryption is off, tls or mtls (default off).
	Encryption        string              `json:"encryption,omitempty"`
	AllowInsecureTLS  bool                `json:"allow_insecure_tls,omitempty"`
	TLSCertFile       string              `json:"tls_cert_file,omitempty"`
	TLSPrivateKeyFile string              `json:"tls_private_key_file,omitempty"`
	TLSCACertFile     string              `json:"tls_ca_cert_file,omitempty"`
	Resource          ResourceConfig      `json:"resource"`
	BatchSpanOptions  BatchSpanProcessing `json:"batch_span_processor_options"`
	// ExcludePaths are globs of request paths left untraced, OPA's
	// recommendation for /health** and /metrics: kubelet probes and
	// Prometheus scrapes otherwise outnumber the decisions' traces.
	ExcludePaths []string `json:"exclude_paths,omitempty"`

	// excluded is ExcludePaths compiled, by Validate.
	excluded []*glob.Pattern
}

// ResourceConfig are resource attributes of the spans.
type ResourceConfig struct {
	ServiceVersion        string `json:"service_version,omitempty"`
	ServiceInstanceID     string `json:"service_instance_id,omitempty"`
	ServiceNamespace      string `json:"service_namespace,omitempty"`
	DeploymentEnvironment string `json:"deployment_environment,omitempty"`
}

// BatchSpanProcessing tunes the batching of exports.
type BatchSpanProcessing struct {
	Blocking           bool `json:"blocking,omitempty"`
	BatchTimeoutMs     *int `json:"batch_timeout_ms,omitempty"`
	ExportTimeoutMs    *int `json:"export_timeout_ms,omitempty"`
	MaxExportBatchSize *int `json:"max_export_batch_size,omitempty"`
	MaxQueueSize       *int `json:"max_queue_size,omitempty"`
}

// Defaults, as OPA's.
const (
	DefaultGRPCAddress = "localhost:4317"
	DefaultHTTPAddress = "localhost:4318"
	DefaultServiceName = "geoscope"
)

// FromOPAConfig reads the distributed_tracing block of an OPA
// configuration (JSON or YAML). Unknown keys in the block are refused, as
// a misspelt key would otherwise silently leave tracing off.
func FromOPAConfig(raw []byte) (*Config, error) {
	var doc struct {
		Tracing map[string]any `json:"distributed_tracing"`
	}
	if err := unmarshalYAMLorJSON(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if doc.Tracing == nil {
		return &Config{}, nil
	}
	block, err := jsonOf(doc.Tracing)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	var c Config
	if err := input.DecodeStrict(block, &c); err != nil {
		return nil, fmt.Errorf("%w: distributed_tracing.%v", ErrConfig, err)
	}
	return &c, c.Validate()
}

// Enabled reports whether spans are exported.
func (c *Config) Enabled() bool { return c.Type != "" }

// Validate checks the block, naming the bad key.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: distributed_tracing.%s: %s", ErrConfig, key, fmt.Sprintf(format, args...))
	}
	switch strings.ToLower(c.Type) {
	case "", "grpc", "http":
	default:
		return bad("type", "%q: want grpc or http", c.Type)
	}
	if p := c.SamplePercentage; p != nil && (*p < 0 || *p > 100) {
		return bad("sample_percentage", "%v: want 0 to 100", *p)
	}
	switch c.Encryption {
	case "", "off", "tls":
	case "mtls":
		if c.TLSCertFile == "" || c.TLSPrivateKeyFile == "" {
			return bad("encryption", "mtls needs tls_cert_file and tls_private_key_file")
		}
	default:
		return bad("encryption", "%q: want off, tls or mtls", c.Encryption)
	}
	for key, v := range map[string]*int{"batch_span_processor_options.batch_timeout_ms": c.BatchSpanOptions.BatchTimeoutMs,
		"batch_span_processor_options.export_timeout_ms":     c.BatchSpanOptions.ExportTimeoutMs,
		"batch_span_processor_options.max_export_batch_size": c.BatchSpanOptions.MaxExportBatchSize,
		"batch_span_processor_options.max_queue_size":        c.BatchSpanOptions.MaxQueueSize} {
		if v != nil && *v <= 0 {
			return bad(key, "%d: want a positive number", *v)
		}
	}
	// Compiled as OPA compiles them (the same library, '/' as the
	// separator): '*' stays within one path segment and '**' spans
	// segments, so "/health**" covers /health and /health/live, and a
	// pattern means here what it means to OPA.
	c.excluded = make([]*glob.Pattern, 0, len(c.ExcludePaths))
	for i, p := range c.ExcludePaths {
		g, err := glob.Compile(p, '/')
		if err != nil {
			return bad(fmt.Sprintf("exclude_paths[%d]", i), "%q: %v", p, err)
		}
		c.excluded = append(c.excluded, g)
	}
	return nil
}

// Excludes reports whether a request for path (its URL path, as OPA
// matches it) is left untraced by exclude_paths. It needs Validate.
func (c *Config) Excludes(path string) bool {
	for _, g := range c.excluded {
		if g.Match(path) {
			return true
		}
	}
	return false
}

// Provider is a tracer provider and its shutdown, which flushes spans.
type Provider struct {
	trace.TracerProvider
	Shutdown func(context.Context) error
}

// Noop traces nothing.
func Noop() Provider {
	return Provider{TracerProvider: noop.NewTracerProvider(), Shutdown: func(context.Context) error { return nil }}
}

// Start builds the exporter and the tracer provider the block describes;
// a disabled block gives Noop. version is reported as service.version
// unless the block sets one.
func Start(ctx context.Context, c *Config, version string) (Provider, error) {
	if c == nil || !c.Enabled() {
		return Noop(), nil
	}
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return Provider{}, err
	}
	var client otlptrace.Client
	if strings.EqualFold(c.Type, "grpc") {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(c.address(DefaultGRPCAddress))}
		if tlsConfig == nil {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsConfig)))
		}
		client = otlptracegrpc.NewClient(opts...)
	} else {
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(c.address(DefaultHTTPAddress))}
		if tlsConfig == nil {
			opts = append(opts, otlptracehttp.WithInsecure())
		} else {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsConfig))
		}
		client = otlptracehttp.NewClient(opts...)
	}
	// The exporter connects lazily: a receiver that is down at start is
	// retried, and never delays or fails a decision.
	exporter := otlptrace.NewUnstarted(client)
	if err := exporter.Start(ctx); err != nil {
		return Provider{}, fmt.Errorf("%w: starting the OTLP exporter: %v", ErrConfig, err)
	}
	name := c.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	if v := c.Resource.ServiceVersion; v != "" {
		version = v
	}
	if version != "" {
		attrs = append(attrs, attribute.String("service.version", version))
	}
	for key, v := range map[string]string{"service.instance.id": c.Resource.ServiceInstanceID, "service.namespace": c.Resource.ServiceNamespace,
		"deployment.environment": c.Resource.DeploymentEnvironment} {
		if v != "" {
			attrs = append(attrs, attribute.String(key, v))
		}
	}
	var batch []sdktrace.BatchSpanProcessorOption
	b := c.BatchSpanOptions
	if b.Blocking {
		batch = append(batch, sdktrace.WithBlocking())
	}
	if b.BatchTimeoutMs != nil {
		batch = append(batch, sdktrace.WithBatchTimeout(time.Duration(*b.BatchTimeoutMs)*time.Millisecond))
	}
	if b.ExportTimeoutMs != nil {
		batch = append(batch, sdktrace.WithExportTimeout(time.Duration(*b.ExportTimeoutMs)*time.Millisecond))
	}
	if b.MaxExportBatchSize != nil {
		batch = append(batch, sdktrace.WithMaxExportBatchSize(*b.MaxExportBatchSize))
	}
	if b.MaxQueueSize != nil {
		batch = append(batch, sdktrace.WithMaxQueueSize(*b.MaxQueueSize))
	}
	percentage := 100.0
	if c.SamplePercentage != nil {
		percentage = *c.SamplePercentage
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(percentage/100))),
		sdktrace.WithBatcher(exporter, batch...),
	)
	return Provider{TracerProvider: tp, Shutdown: tp.Shutdown}, nil
}

func (c *Config) address(def string) string {
	if c.Address != "" {
		return c.Address
	}
	return def
}

// tlsConfig is nil for encryption off.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.Encryption == "" || c.Encryption == "off" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.AllowInsecureTLS} //nolint:gosec // the operator's explicit allow_insecure_tls
	if c.TLSCACertFile != "" {
		pem, err := os.ReadFile(c.TLSCACertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: distributed_tracing.tls_ca_cert_file: %v", ErrConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: distributed_tracing.tls_ca_cert_file %s holds no PEM certificate", ErrConfig, c.TLSCACertFile)
		}
		cfg.RootCAs = pool
	}
	if c.Encryption == "mtls" {
		// The key is refused when other users of the system may read it,
		// as the server's own TLS key is: with it they could pose as this
		// server to the collector.
		certPEM, err := os.ReadFile(c.TLSCertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: distributed_tracing.tls_cert_file: %v", ErrConfig, err)
		}
		keyPEM, err := secretfile.ReadPrivate(c.TLSPrivateKeyFile, "distributed_tracing.tls_private_key_file "+c.TLSPrivateKeyFile,
			"whoever reads the key can pose as this server to the trace collector")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("%w: distributed_tracing.tls_cert_file/tls_private_key_file: %v", ErrConfig, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// unmarshalYAMLorJSON reads an OPA configuration file, which may be YAML
// or JSON, as OPA does.
func unmarshalYAMLorJSON(raw []byte, v any) error { return util.Unmarshal(raw, v) }

func jsonOf(v any) ([]byte, error) { return json.Marshal(v) }

// errorLogInterval is the least time between two logged export errors.
const errorLogInterval = 10 * time.Second

// LogErrors sends OpenTelemetry's own errors (a collector that cannot be
// reached, spans dropped) to log as warnings, at most one per
// errorLogInterval with a count of those left out, instead of to Go's
// standard logger: those came out as plain-text lines among the JSON
// ones, one per failed export, as long as the collector was down.
func LogErrors(log *slog.Logger) {
	var (
		mu      sync.Mutex
		last    time.Time
		skipped int
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if now := time.Now(); now.Sub(last) >= errorLogInterval {
			log.Warn("tracing: spans could not be exported; decisions are not affected", "error", err.Error(), "errors_not_logged", skipped)
			last, skipped = now, 0
			return
		}
		skipped++
	}))
}
