package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/proctest"
)

// registryBundle writes a registry bundle with n standing orders, each
// targeting its own meeting and account, and returns its directory.
func registryBundle(b testing.TB, n int) string { return registryBundleWith(b, n, registryShape{}) }

// registryShape varies the generated registry.
type registryShape struct {
	// serviceWide adds that many service-wide orders (remove_participants
	// in every meeting, by the CN authority).
	serviceWide int
	// validity gives every order a period of validity and a revocation
	// (in force now), the most the validation rules parse per order.
	validity bool
}

func registryBundleWith(b testing.TB, n int, shape registryShape) string {
	b.Helper()
	dir := b.TempDir()
	orders := make(map[string]registry.Order, n+shape.serviceWide)
	for i := range n {
		o := registry.Order{
			Authority:  "cn.cac",
			Demands:    []string{registry.DemandEndMeeting, registry.DemandSuspendAccount},
			Targets:    registry.Targets{Meetings: []string{fmt.Sprintf("m-%d", i)}, Accounts: []string{fmt.Sprintf("acct-%d", i)}},
			LegalBasis: "benchmark",
		}
		if shape.validity {
			o.Effective, o.Expires = "2020-01-01", "2199-12-31T23:59:59+02:00"
			o.Revoked = &registry.Revocation{Date: "2199-12-31", Reason: "benchmark"}
		}
		orders[fmt.Sprintf("ORD-%d", i)] = o
	}
	for i := range shape.serviceWide {
		orders[fmt.Sprintf("ALL-%d", i)] = registry.Order{
			Authority:  "cn.cac",
			Demands:    []string{registry.DemandRemoveParticipants},
			Targets:    registry.Targets{AllMeetings: true},
			LegalBasis: "benchmark",
		}
	}
	write := func(name string, v any) {
		raw, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write(".manifest", map[string]any{"roots": []string{"authorities", "orders"}})
	write("authorities/data.json", map[string]registry.Authority{"cn.cac": {Name: "CAC", Jurisdiction: []string{"CN"}}})
	write("orders/data.json", orders)
	return dir
}

// BenchmarkAdmission is the join-time hot path: one participant asking to
// join, against registries of growing size. "targeted" meetings have a
// standing order and evaluate the policy; "untargeted" ones do not. With a
// service-wide order in force ("service-wide=1"), every meeting is
// targeted: the meeting no order names evaluates the policy too, and a
// meeting with its own order evaluates two.
func BenchmarkAdmission(b *testing.B) {
	for _, tc := range []struct {
		n           int
		serviceWide int
	}{{10, 0}, {10_000, 0}, {100_000, 0}, {100_000, 1}} {
		e := newEngine(b, "../policies", registryBundleWith(b, tc.n, registryShape{serviceWide: tc.serviceWide}))
		prefix := fmt.Sprintf("orders=%d", tc.n)
		if tc.serviceWide > 0 {
			prefix += fmt.Sprintf("/service-wide=%d", tc.serviceWide)
		}
		for _, q := range []struct{ name, meeting, ip string }{
			{"targeted/deny", "m-7", "1.0.16.9"},
			{"targeted/allow", "m-7", "147.8.1.1"},
			{"untargeted", "m-none", "1.0.16.9"},
			{"untargeted/allow", "m-none", "147.8.1.1"},
		} {
			body := fmt.Sprintf(`{"meeting": {"id": %q, "host": {"account_id": "acct-x", "account_country": "US"}}, "participant": {"id": "p", "ip": %q}}`, q.meeting, q.ip)
			req, err := input.DecodeAdmission([]byte(body))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(prefix+"/"+q.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					if _, err := e.Admit(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// rosterRequest is a targeted meeting of n participants, a third of them in
// CN and the rest spread over the US, HK, TW and DE.
func rosterRequest(n int) []byte { return rotatedRosterRequest(n, 0) }

// rotatedRosterRequest is rosterRequest with the addresses' pattern
// rotated by rot: other positions are in mainland China.
func rotatedRosterRequest(n, rot int) []byte {
	ips := []string{"1.0.16.%d", "8.8.8.%d", "147.8.2.%d", "1.0.17.%d", "168.95.3.%d", "85.214.4.%d"}
	ps := make([]input.Participant, n)
	for i := range ps {
		ps[i] = input.Participant{ID: fmt.Sprintf("p-%d", i), IP: fmt.Sprintf(ips[(i+rot)%len(ips)], i%250+1)}
	}
	raw, _ := json.Marshal(map[string]any{"meeting": map[string]any{
		"id": "m-7", "host": map[string]any{"account_id": "acct-7", "account_country": "US"}, "participants": ps,
	}})
	return raw
}

// BenchmarkRoster decides a demand against a live meeting of growing size,
// with two policies: the default one, which works on participants grouped
// by located country (input.meeting.by_country), and the default one with
// the hosts-never-acted-on extension installed, which reads every
// participant's role (input.meeting.participants, built only for a policy
// that reads it). "decide" is the pipeline after decoding; "decode+decide"
// adds JSON decoding and validation, as the HTTP server does.
func BenchmarkRoster(b *testing.B) {
	reg := registryBundle(b, 10)
	withExtension := b.TempDir()
	for _, dir := range []string{"../policies", "../docs/extensions/hosts-never-acted-on"} {
		if err := os.CopyFS(withExtension, os.DirFS(dir)); err != nil {
			b.Fatal(err)
		}
	}
	for _, pol := range []struct{ name, dir string }{{"default", "../policies"}, {"reads-participants", withExtension}} {
		e := newEngine(b, pol.dir, reg)
		if reads := e.Policy().ReadsParticipants(); reads != (pol.name != "default") {
			b.Fatalf("policy %s: ReadsParticipants() = %v", pol.name, reads)
		}
		for _, n := range []int{10, 1_000, 10_000, 100_000} {
			raw := rosterRequest(n)
			req, err := input.Decode(raw, input.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.Run(fmt.Sprintf("policy=%s/participants=%d/decide", pol.name, n), func(b *testing.B) {
				b.ReportAllocs()
				defer proctest.ReportCPU(b)()
				for b.Loop() {
					benchDecide(b, e, ctx, req, n)
				}
			})
			b.Run(fmt.Sprintf("policy=%s/participants=%d/decode+decide", pol.name, n), func(b *testing.B) {
				b.ReportAllocs()
				defer proctest.ReportCPU(b)()
				for b.Loop() {
					req, err := input.Decode(raw, input.Limits{})
					if err != nil {
						b.Fatal(err)
					}
					benchDecide(b, e, ctx, req, n)
					req.Release() // as the server does once it has answered
				}
			})
		}
	}
}

func benchDecide(b *testing.B, e *engine.Engine, ctx context.Context, req *input.Request, n int) {
	d, err := e.Decide(ctx, req)
	if err != nil {
		b.Fatal(err)
	}
	if want := (n + 2) / 3; len(d.Actions) != want {
		b.Fatalf("%d actions, want %d", len(d.Actions), want)
	}
	e.Release(d) // as the server does once it has answered
}

// BenchmarkActivation builds a snapshot from the default policy and a
// registry of growing size: reading and parsing the bundles, compiling,
// the registry validation rules (which dominate) and the typed registry.
// Activation runs once per bundle version, off the decision path.
//
// "validity": every order states effective, expires and a revocation, so
// every one of them goes through the date checks (at most one per order).
func BenchmarkActivation(b *testing.B) {
	for _, tc := range []struct {
		n     int
		shape registryShape
		name  string
	}{
		{10_000, registryShape{}, ""},
		{100_000, registryShape{}, ""},
		{100_000, registryShape{validity: true, serviceWide: 1}, "/validity"},
	} {
		reg := registryBundleWith(b, tc.n, tc.shape)
		b.Run(fmt.Sprintf("orders=%d%s", tc.n, tc.name), func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				if _, err := policy.LoadSnapshot(ctx, []string{"../policies", reg}, policy.LoadOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
