package tests

// OpenTelemetry tracing configured as OPA configures it (the
// distributed_tracing block of --config): spans for the request and each
// pipeline stage, exported over OTLP to an in-process receiver (HTTP and
// gRPC), continuing the caller's W3C traceparent.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

// otlpReceiver collects the spans exported to it.
type otlpReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (r *otlpReceiver) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				r.services = append(r.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

// Export is the gRPC OTLP trace service.
func (r *otlpReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	r.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// ServeHTTP is the OTLP/HTTP trace endpoint (binary protobuf).
func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &msg)
	}
	if req.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// trace returns the spans of one trace, by name.
func (r *otlpReceiver) trace(id string) map[string]*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]*tracepb.Span{}
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out[s.GetName()] = s
		}
	}
	return out
}

// traceOf returns the id of the trace whose root span is named name.
func (r *otlpReceiver) traceOf(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.spans {
		if s.GetName() == name && len(s.GetParentSpanId()) == 0 {
			return hex.EncodeToString(s.GetTraceId())
		}
	}
	return ""
}

var stageSpans = []string{"decode", "locate", "evaluate", "guard", "record"}

func TestTracing(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	for _, kind := range []string{"http", "grpc"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			recv := &otlpReceiver{}
			var address string
			if kind == "http" {
				hs := httptest.NewServer(recv)
				t.Cleanup(hs.Close)
				address = strings.TrimPrefix(hs.URL, "http://")
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				gs := grpc.NewServer()
				coltracepb.RegisterTraceServiceServer(gs, recv)
				go func() { _ = gs.Serve(ln) }()
				t.Cleanup(gs.Stop)
				address = ln.Addr().String()
			}
			srv := startTraced(t, key, map[string]any{"type": kind, "address": address, "service_name": "geoscope-test"})

			send := func(path, traceparent string, body []byte) {
				t.Helper()
				sendTraced(t, srv, http.MethodPost, path, traceparent, body)
			}
			const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			const unsampled = "5bf92f3577b34da6a3ce929d0e0e4736"
			send("/v1/decisions", "00-"+traceID+"-"+parentID+"-01", june4b)
			send("/v1/decisions", "00-"+unsampled+"-"+parentID+"-00", june4b)
			send("/v1/data/geoscope/decision", "", []byte(`{"input": `+string(june4b)+`}`))

			var spans map[string]*tracepb.Span
			poll(t, 20*time.Second, "the spans of the traced request", func() bool {
				spans = recv.trace(traceID)
				return len(spans) == 1+len(stageSpans)
			})
			root := spans["POST /v1/decisions"]
			if root == nil || hex.EncodeToString(root.GetParentSpanId()) != parentID || root.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
				t.Fatalf("request span %v: want POST /v1/decisions, a server span, child of the caller's %s", root, parentID)
			}
			for _, name := range stageSpans {
				s := spans[name]
				if s == nil || string(s.GetParentSpanId()) != string(root.GetSpanId()) {
					t.Errorf("stage span %q: %v; want a child of the request span", name, s)
				}
			}
			attrs := map[string]string{}
			for _, a := range root.GetAttributes() {
				attrs[a.GetKey()] = a.GetValue().String()
			}
			if !strings.Contains(attrs["http.route"], "/v1/decisions") || !strings.Contains(attrs["http.response.status_code"], "200") || attrs["geoscope.decision_id"] == "" {
				t.Errorf("request span attributes %v", attrs)
			}

			var dataTrace string
			poll(t, 20*time.Second, "the spans of the Data API request", func() bool {
				dataTrace = recv.traceOf("POST /v1/data/geoscope/decision")
				return dataTrace != "" && len(recv.trace(dataTrace)) == 1+len(stageSpans)
			})

			if got := recv.trace(unsampled); len(got) != 0 {
				t.Errorf("a request whose traceparent says not sampled was exported: %v", got)
			}
			recv.mu.Lock()
			defer recv.mu.Unlock()
			for _, svc := range recv.services {
				if svc != "geoscope-test" {
					t.Errorf("service.name %q, want geoscope-test", svc)
				}
			}
			// Spans identify nobody.
			dump, _ := json.Marshal(recv.spans)
			for _, secret := range []string{"p-cn", "p-hk", "acct-us-b", "1.0.16.5", "147.8.1.1", "8.8.8.8", "127.0.0.1"} {
				if strings.Contains(string(dump), secret) {
					t.Errorf("exported spans contain %q", secret)
				}
			}
		})
	}
}

// TestTracingExcludePaths: distributed_tracing.exclude_paths, as OPA
// documents it for probes and scrapes, leaves the requests whose path
// matches untraced (no request span, no stage span, even when the
// caller's traceparent asks for one); other requests are traced as
// before.
func TestTracingExcludePaths(t *testing.T) {
	t.Parallel()
	key := bndDevKey(t, "dev-es256", "ES256")
	recv := &otlpReceiver{}
	hs := httptest.NewServer(recv)
	t.Cleanup(hs.Close)
	srv := startTraced(t, key, map[string]any{"type": "http", "address": strings.TrimPrefix(hs.URL, "http://"),
		"exclude_paths": []string{"/health**", "/metrics", "/v1/admission"}})

	send := func(method, path, traceparent string, body []byte) {
		t.Helper()
		sendTraced(t, srv, method, path, traceparent, body)
	}
	const parentID = "00f067aa0ba902b7"
	excludedTrace := map[string]string{
		"/health":         "6bf92f3577b34da6a3ce929d0e0e4736",
		"/health?bundles": "6bf92f3577b34da6a3ce929d0e0e4737",
		"/metrics":        "6bf92f3577b34da6a3ce929d0e0e4738",
		"/v1/admission":   "6bf92f3577b34da6a3ce929d0e0e4739",
	}
	for path, id := range excludedTrace {
		method, body := http.MethodGet, []byte(nil)
		if path == "/v1/admission" {
			method, body = http.MethodPost, admissionCN
		}
		send(method, path, "00-"+id+"-"+parentID+"-01", body)
		send(method, path, "", body)
	}
	// Not excluded: /ready, and a decision with its stages.
	const readyTrace, decisionTrace = "7bf92f3577b34da6a3ce929d0e0e4736", "7bf92f3577b34da6a3ce929d0e0e4737"
	send(http.MethodGet, "/ready", "00-"+readyTrace+"-"+parentID+"-01", nil)
	send(http.MethodPost, "/v1/decisions", "00-"+decisionTrace+"-"+parentID+"-01", june4b)

	// The traced requests came last: once their spans are in, any span
	// of the excluded ones would be too.
	poll(t, 20*time.Second, "the spans of the traced requests", func() bool {
		return recv.trace(readyTrace)["GET /ready"] != nil && len(recv.trace(decisionTrace)) == 1+len(stageSpans)
	})
	for path, id := range excludedTrace {
		if got := recv.trace(id); len(got) != 0 {
			t.Errorf("%s is excluded, yet its trace has spans: %v", path, slices.Collect(maps.Keys(got)))
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, s := range recv.spans {
		name := s.GetName()
		if name == "GET /health" || name == "GET /metrics" || name == "POST /v1/admission" {
			t.Errorf("a span for an excluded path: %s", name)
		}
		// A stage of an excluded decision would start a trace of its own.
		if len(s.GetParentSpanId()) == 0 && slices.Contains(stageSpans, name) {
			t.Errorf("a stage span with no request span: %s", name)
		}
	}
}

// A distributed_tracing block with a bad value is a configuration error
// naming the key.
func TestTracingConfigErrors(t *testing.T) {
	for block, want := range map[string]string{
		`{"type": "zipkin"}`:                              `distributed_tracing.type: "zipkin"`,
		`{"type": "grpc", "sample_percentage": 101}`:      "distributed_tracing.sample_percentage",
		`{"type": "http", "encryption": "ssl"}`:           "distributed_tracing.encryption",
		`{"type": "http", "adress": "x:1"}`:               "distributed_tracing.adress",
		`{"type": "http", "exclude_paths": ["/health["]}`: "distributed_tracing.exclude_paths[0]",
	} {
		cfg := writeTemp(t, "opa.json", []byte(`{"services": {"s": {"url": "http://127.0.0.1:1"}}, "bundles": {"b": {"service": "s"}}, "distributed_tracing": `+block+`}`))
		r := runBounded(t, time.Minute, "serve", "--addr", "127.0.0.1:0", "--config", cfg)
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, want 2 naming %s\n%s", block, r.code, want, r.stderr)
		}
	}
}

// startTraced starts geoscope, ready, on signed bundles from a bundle
// service, with the distributed_tracing block tracing (spans batched for
// 100 ms).
func startTraced(t *testing.T, key bndKey, tracing map[string]any) *bndServer {
	t.Helper()
	bs := newBundleServer(t)
	bs.set("policies.tar.gz", bndPolicyBundle(t, "pol-1", &key))
	bs.set("registry.tar.gz", bndRegistryBundle(t, "reg-1", bndRegistryData("ORD-TRACE", "june4-b", "acct-us-d"), &key))
	bundles := map[string]any{}
	for _, name := range []string{"policies", "registry"} {
		bundles[name] = map[string]any{"service": "bundles", "resource": "bundles/" + name + ".tar.gz"}
	}
	tracing["batch_span_processor_options"] = map[string]any{"batch_timeout_ms": 100}
	cfg, _ := json.Marshal(map[string]any{
		"services":            map[string]any{"bundles": map[string]any{"url": bs.URL, "credentials": map[string]any{"bearer": map[string]any{"token": remoteToken}}}},
		"bundles":             bundles,
		"distributed_tracing": tracing,
	})
	srv := bndStart(t, "--config", writeTemp(t, "opa.json", cfg), "--verification-key", key.pubPath, "--geoip-db", geotest.Standard(t))
	srv.waitStatus(t, "ready", 30*time.Second, func(st bndStatus) bool { return st.Ready })
	return srv
}

// TestTracingCollectorDown: with the collector unreachable, decisions are
// answered, and the failed exports are logged as JSON warnings, at most
// one per 10 s, not as a plain-text line per export from Go's standard
// logger.
func TestTracingCollectorDown(t *testing.T) {
	key := bndDevKey(t, "dev-es256", "ES256")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := ln.Addr().String()
	ln.Close() // nothing listens there
	srv := startTraced(t, key, map[string]any{"type": "http", "address": address})
	for range 10 {
		if r := srv.post("/v1/decisions", "", june4b); r.status != http.StatusOK {
			t.Fatalf("a decision while the collector is down: %s", r)
		}
		time.Sleep(200 * time.Millisecond)
	}
	poll(t, 20*time.Second, "an export failure to be logged", func() bool {
		return strings.Contains(srv.logs.String(), "spans could not be exported")
	})
	warnings := 0
	for line := range strings.Lines(srv.logs.String()) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("a log line that is not JSON: %q", line)
			continue
		}
		if strings.Contains(line, "spans could not be exported") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Errorf("%d export failures logged in about 2 s, want 1 (at most one per 10 s)", warnings)
	}
}

// sendTraced sends a request to srv, with a W3C traceparent when one is
// given (and a JSON body when one is), and fails the test unless it is
// answered 200.
func sendTraced(t *testing.T, srv *bndServer, method, path, traceparent string, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.base+path, bytes.NewReader(body))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := srv.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}
