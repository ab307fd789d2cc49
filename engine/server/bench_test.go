package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/sources"
)

// BenchmarkAdmissionHTTP is POST /v1/admission over real loopback HTTP, as
// a meeting server sends it: 16 clients on kept-alive connections, the
// server with its log at warn (as `make bench-vs-opa` runs it), on the
// embedded policy and example registry. Profile it with -cpuprofile to see
// where a join-time answer's time goes; the side-by-side figures are
// `make bench-vs-opa` (docs/benchmarks.md).
//
//	go test -run '^$' -bench AdmissionHTTP -benchmem ./engine/server/
func BenchmarkAdmissionHTTP(b *testing.B) {
	for _, w := range []struct {
		name, meeting, account, ip string
		ledger, allow              bool
	}{
		{name: "untargeted", meeting: "weekly", account: "acct-nobody", ip: "1.0.16.9", allow: true},
		{name: "targeted/allowed", meeting: "june4-a", account: "acct-us-a", ip: "8.8.8.8", allow: true},
		{name: "targeted/denied/ledger=off", meeting: "june4-a", account: "acct-us-a", ip: "1.0.16.9"},
		{name: "targeted/denied/ledger=sqlite", meeting: "june4-a", account: "acct-us-a", ip: "1.0.16.9", ledger: true},
	} {
		b.Run(w.name, func(b *testing.B) {
			log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
			var opts []engine.Option
			if w.ledger {
				l, err := ledger.Open(context.Background(), ledger.Config{DataDir: b.TempDir(), EngineVersion: "bench", Logger: log})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { l.Close() })
				opts = append(opts, engine.WithRecorder(l))
			}
			eng := engine.New(opts...)
			src := sources.New(sources.Config{GeoIPDB: geotest.Standard(b), Logger: log}, eng)
			if err := src.Load(context.Background()); err != nil {
				b.Fatal(err)
			}
			s, err := New(Config{}, eng, src, log)
			if err != nil {
				b.Fatal(err)
			}
			url := "http://" + serveLoopback(b, s) + "/v1/admission"
			bodies := make([][]byte, 256)
			for i := range bodies {
				bodies[i] = fmt.Appendf(nil, `{"meeting": {"id": %q, "host": {"account_id": %q, "account_country": "US"}}, "participant": {"id": "joiner-%d", "ip": %q}}`,
					w.meeting, w.account, i, w.ip)
			}
			want := fmt.Appendf(nil, `"allow":%v`, w.allow)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, MaxConnsPerHost: 16, DisableCompression: true}, Timeout: 30 * time.Second}
			defer client.CloseIdleConnections()
			var next atomic.Int64
			b.SetParallelism(8) // 16 clients on 2 CPUs
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body := bodies[next.Add(1)%int64(len(bodies))]
					resp, err := client.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || !bytes.Contains(got, want) {
						b.Errorf("HTTP %d: %s", resp.StatusCode, got)
						return
					}
				}
			})
		})
	}
}
