package server

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/sources"
)

// metrics are registered on a registry of the server's own, so several
// servers (tests) never share or collide.
type metrics struct {
	// byRequest and byEndpoint hold the children of requests and latency
	// already looked up: the label values of a request are the same few
	// every time, and looking them up hashes them again.
	byRequest  sync.Map // requestLabels → prometheus.Counter
	byEndpoint sync.Map // endpoint → prometheus.Observer

	registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	actions  *prometheus.CounterVec
	refusals *prometheus.CounterVec
	blocks   *prometheus.CounterVec
	shed     *prometheus.CounterVec
}

func newMetrics(src *sources.Sources, f *inflight) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_http_requests_total",
			Help: "HTTP requests by endpoint (the route's template, also for a method it does not allow; \"unmatched\" for a path no route has) and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "geoscope_decision_duration_seconds",
			Help: "Time to decide, from decoded request to answer (locate, evaluate, guard, record).",
			// 25µs .. ~3.3s: admissions sit at the low end, 100k rosters at the high end.
			Buckets: prometheus.ExponentialBuckets(25e-6, 2.5, 14),
		}, []string{"endpoint"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_actions_total",
			Help: "Actions answered for enforcement, by type (not those of previews: an order submitted with the request for review is not enforced).",
		}, []string{"type"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_refusals_total",
			Help: "Demands refused, by demand (not those of previews).",
		}, []string{"demand"}),
		blocks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_guard_blocks_total",
			Help: "Policy actions dropped by the guard, by code (not those of previews).",
		}, []string{"code"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_overloaded_total",
			Help: "Requests answered 503 overloaded, by lane: small and large, decision requests not admitted within --queue-timeout; arriving, bodies of up to 64 KiB refused at once because bodies still arriving held all the memory allowed them; report, report requests that did not get the one report slot in time.",
		}, []string{"lane"}),
	}
	inflightBytes := func(lane string, used *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "geoscope_inflight_request_bytes",
			Help:        "Request body bytes admitted and not yet answered, by lane (small: bodies up to 64 KiB; large: the rest, bounded by --max-inflight), and what bodies of up to 64 KiB hold while they arrive, before they are admitted (arriving: past their first 4 KiB, within a budget as large as the small lane).",
			ConstLabels: prometheus.Labels{"lane": lane},
		}, func() float64 { return float64(used.Load()) })
	}
	// Every lane from 0, so that rate() and increase() see the first
	// request shed.
	m.shed.WithLabelValues("small")
	m.shed.WithLabelValues("large")
	m.shed.WithLabelValues("arriving")
	m.shed.WithLabelValues("report")
	m.registry.MustRegister(m.requests, m.latency, m.actions, m.refusals, m.blocks, m.shed,
		inflightBytes("small", &f.smallUsed), inflightBytes("large", &f.largeUsed), inflightBytes("arriving", &f.arrivingUsed),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sourcesCollector{src: src})
	return m
}

type requestLabels struct {
	endpoint string
	status   int
}

// request is the requests counter of an endpoint and status code.
func (m *metrics) request(endpoint string, status int) prometheus.Counter {
	k := requestLabels{endpoint, status}
	if c, ok := m.byRequest.Load(k); ok {
		return c.(prometheus.Counter)
	}
	c := m.requests.WithLabelValues(endpoint, strconv.Itoa(status))
	m.byRequest.Store(k, c)
	return c
}

// decided is the decision latency histogram of an endpoint.
func (m *metrics) decided(endpoint string) prometheus.Observer {
	if o, ok := m.byEndpoint.Load(endpoint); ok {
		return o.(prometheus.Observer)
	}
	o := m.latency.WithLabelValues(endpoint)
	m.byEndpoint.Store(endpoint, o)
	return o
}

func (m *metrics) observe(d *decision.Decision) {
	// A preview's actions, refusals and guard blocks are what an order
	// under review would do, not enforcement; the transparency report
	// leaves them out too.
	if d.Preview {
		return
	}
	// A roster's decision has an action per participant: counted by type
	// first, each counter is looked up once.
	for i := 0; i < len(d.Actions); {
		typ, n := d.Actions[i].Type, 1
		for i+n < len(d.Actions) && d.Actions[i+n].Type == typ {
			n++
		}
		m.actions.WithLabelValues(typ).Add(float64(n))
		i += n
	}
	for _, r := range d.Refused {
		m.refusals.WithLabelValues(r.Demand).Inc()
	}
	for _, b := range d.GuardBlocked {
		m.blocks.WithLabelValues(b.Code).Inc()
	}
}

// sourcesCollector reports the active bundles and GeoIP database at scrape
// time, so the numbers can never drift from what is actually active.
type sourcesCollector struct{ src *sources.Sources }

var (
	bundleInfoDesc = prometheus.NewDesc("geoscope_bundle_info",
		"Active bundles (value 1), labelled with their revision.", []string{"name", "revision"}, nil)
	bundleActivatedDesc = prometheus.NewDesc("geoscope_bundle_activation_timestamp_seconds",
		"When the active bundles were activated.", []string{"name"}, nil)
	bundleFailureDesc = prometheus.NewDesc("geoscope_bundle_last_failure_timestamp_seconds",
		"When a bundle version was last rejected (absent if never).", nil, nil)
	bundleRejectionsDesc = prometheus.NewDesc("geoscope_bundle_rejections_total",
		"Bundle loads that failed since start: downloads that failed (with --config, every failed poll counts), and bundles rejected (parse, compile, signature or registry validation failures).", nil, nil)
	geoRejectionsDesc = prometheus.NewDesc("geoscope_geoip_rejections_total",
		"GeoIP databases rejected since start.", nil, nil)
	geoBuildDesc = prometheus.NewDesc("geoscope_geoip_build_timestamp_seconds",
		"Build time of the active GeoIP database.", []string{"database"}, nil)
	geoFailureDesc = prometheus.NewDesc("geoscope_geoip_last_failure_timestamp_seconds",
		"When a GeoIP database was last rejected (absent if never).", nil, nil)
	reloadsDesc = prometheus.NewDesc("geoscope_bundle_activations_total",
		"Bundle activations since start.", nil, nil)
)

func (c *sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{bundleInfoDesc, bundleActivatedDesc, bundleFailureDesc, bundleRejectionsDesc, geoBuildDesc, geoFailureDesc, geoRejectionsDesc, reloadsDesc} {
		ch <- d
	}
}

func (c *sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	for _, b := range st.Bundles {
		ch <- prometheus.MustNewConstMetric(bundleInfoDesc, prometheus.GaugeValue, 1, b.Name, b.Revision)
		ch <- prometheus.MustNewConstMetric(bundleActivatedDesc, prometheus.GaugeValue, float64(b.ActivatedAt.Unix()), b.Name)
	}
	if st.LastBundleFailure != nil {
		ch <- prometheus.MustNewConstMetric(bundleFailureDesc, prometheus.GaugeValue, float64(st.LastBundleFailure.At.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(bundleRejectionsDesc, prometheus.CounterValue, float64(st.BundleRejections))
	ch <- prometheus.MustNewConstMetric(geoRejectionsDesc, prometheus.CounterValue, float64(st.GeoIPRejections))
	if st.GeoIP != nil {
		ch <- prometheus.MustNewConstMetric(geoBuildDesc, prometheus.GaugeValue, float64(st.GeoIP.Build.Unix()), st.GeoIP.Database)
	}
	if st.LastGeoIPFailure != nil {
		ch <- prometheus.MustNewConstMetric(geoFailureDesc, prometheus.GaugeValue, float64(st.LastGeoIPFailure.At.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(st.Reloads))
}
