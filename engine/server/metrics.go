package server

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/geoscope/geoscope/engine/apierror"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/sources"
)

// metrics are registered on a registry of the server's own, so several
// servers (tests) never share or collide.
type metrics struct {
	// byRequest, byEndpoint and byError hold the children of requests
	// and latency already looked up: the label values of a request are
	// the same few every time, and looking them up hashes them again.
	byRequest  sync.Map // requestLabels → requestMetrics
	byEndpoint sync.Map // endpoint → prometheus.Observer
	byError    sync.Map // requestLabels with the error code → prometheus.Counter

	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	actions  *prometheus.CounterVec
	refusals *prometheus.CounterVec
	blocks   *prometheus.CounterVec
	shed     *prometheus.CounterVec
	// refusedConns counts connections closed as they were accepted,
	// past the cap the open-file limit leaves (connlimit.go).
	refusedConns prometheus.Counter
	// closedIdleConns counts connections idle between requests closed
	// at that cap, each to make room for a new one with a request.
	closedIdleConns prometheus.Counter
}

func newMetrics(src *sources.Sources, f *inflight, active *atomic.Int64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_http_requests_total",
			Help: "HTTP requests by endpoint (the route's template, also for a method it does not allow; \"unmatched\" for a path no route has) and status code.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "geoscope_http_request_duration_seconds",
			Help: "Time from a request's head to its answer (reading the body, waiting for room in the in-flight budget, deciding, recording), by endpoint and status code, as geoscope_http_requests_total labels them.",
			// 0.5 ms .. 12 s: admissions take about a millisecond, a
			// request that waits --queue-timeout one second, a body sent
			// at --min-body-rate up to 30.
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"endpoint", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_http_errors_total",
			Help: "Requests answered with an error, by endpoint and the error's code (the answer's \"code\": policy_error, eval_timeout, ledger_unavailable, overloaded, not_ready, invalid_input, ...), which tells apart what one status code covers (503 is any of four).",
		}, []string{"endpoint", "error_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "geoscope_decision_duration_seconds",
			Help: "Time to decide, from decoded request to answer (locate, evaluate, guard, record).",
			// 25 µs .. 3.7 s: admissions sit at the low end, 100k rosters at the high end.
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
		refusedConns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "geoscope_connections_refused_total",
			Help: "Connections closed unanswered as they were accepted: as many were open as the open-file limit allows beside the reserve kept for the ledger, reloads and OPA's plugins, and no connection idle between requests could make room.",
		}),
		closedIdleConns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "geoscope_idle_connections_closed_total",
			Help: "Connections idle between requests (HTTP/1.1 keep-alive, or HTTP/2 with no stream open) closed to make room for a new connection's request: as many were open as the open-file limit allows beside the reserve kept for the ledger, reloads and OPA's plugins.",
		}),
	}
	inflightBytes := func(lane string, used *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "geoscope_inflight_request_bytes",
			Help:        "Request body bytes admitted and not yet answered, by lane (small: bodies up to 64 KiB; large: the rest, bounded by --max-inflight), and what bodies of up to 64 KiB hold while they arrive, before they are admitted (arriving: past their first 4 KiB, within a budget as large as the small lane).",
			ConstLabels: prometheus.Labels{"lane": lane},
		}, func() float64 { return float64(used.Load()) })
	}
	waiting := func(lane string, n *atomic.Int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "geoscope_inflight_waiting_requests",
			Help:        "Requests waiting for room in the in-flight budget, by lane (small, large): each is admitted when room is given back, or answered 503 overloaded after --queue-timeout.",
			ConstLabels: prometheus.Labels{"lane": lane},
		}, func() float64 { return float64(n.Load()) })
	}
	// Every lane from 0, so that rate() and increase() see the first
	// request shed.
	m.shed.WithLabelValues("small")
	m.shed.WithLabelValues("large")
	m.shed.WithLabelValues("arriving")
	m.shed.WithLabelValues("report")
	// The errors an alert waits for, on the endpoints that decide, from 0
	// likewise: a series that appears with its first error shows no
	// increase until its second.
	for _, endpoint := range []string{"/v1/decisions", "/v1/admission", DataDecisionPath, DataAdmissionPath} {
		for _, code := range []string{apierror.PolicyError, apierror.EvalTimeout, apierror.LedgerUnavailable, apierror.Internal, apierror.NotReady} {
			m.errors.WithLabelValues(endpoint, code)
		}
	}
	m.registry.MustRegister(m.requests, m.duration, m.errors, m.latency, m.actions, m.refusals, m.blocks, m.shed, m.refusedConns, m.closedIdleConns,
		inflightBytes("small", &f.smallUsed), inflightBytes("large", &f.largeUsed), inflightBytes("arriving", &f.arrivingUsed),
		waiting("small", &f.smallWaiting), waiting("large", &f.largeWaiting),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "geoscope_http_requests_in_flight",
			Help: "Requests being handled now (read, waiting for room, deciding or recording), this scrape included.",
		}, func() float64 { return float64(active.Load()) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&sourcesCollector{src: src})
	return m
}

type requestLabels struct {
	endpoint string
	status   int
}

// requestMetrics are the children of an endpoint and status code.
type requestMetrics struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// answered counts a request answered with status after d, and its error
// code if it was answered with an error.
func (m *metrics) answered(endpoint string, status int, errorCode string, d time.Duration) {
	k := requestLabels{endpoint, status}
	r, ok := m.byRequest.Load(k)
	if !ok {
		r = requestMetrics{
			count:    m.requests.WithLabelValues(endpoint, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(endpoint, strconv.Itoa(status)),
		}
		m.byRequest.Store(k, r)
	}
	r.(requestMetrics).count.Inc()
	r.(requestMetrics).duration.Observe(d.Seconds())
	if errorCode == "" {
		return
	}
	type errorLabels struct{ endpoint, code string }
	e, ok := m.byError.Load(errorLabels{endpoint, errorCode})
	if !ok {
		e = m.errors.WithLabelValues(endpoint, errorCode)
		m.byError.Store(errorLabels{endpoint, errorCode}, e)
	}
	e.(prometheus.Counter).Inc()
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
	bundleRequestDesc = prometheus.NewDesc("geoscope_bundle_last_successful_request_timestamp_seconds",
		"With --config: when the bundle service last answered a poll for the bundle with a bundle or 304 Not Modified (absent before the first). Alert when it grows older than a few polling intervals.", []string{"name"}, nil)
	bundleDownloadDesc = prometheus.NewDesc("geoscope_bundle_last_successful_download_timestamp_seconds",
		"With --config: when a poll last brought a new version of the bundle (absent before the first).", []string{"name"}, nil)
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
	readyDesc = prometheus.NewDesc("geoscope_ready",
		"1 while the server is ready (GET /ready answers 200: the policy, registry and GeoIP database are active), 0 otherwise.", nil, nil)
)

func (c *sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{bundleInfoDesc, bundleActivatedDesc, bundleFailureDesc, bundleRequestDesc, bundleDownloadDesc, bundleRejectionsDesc, geoBuildDesc, geoFailureDesc, geoRejectionsDesc, reloadsDesc, readyDesc} {
		ch <- d
	}
}

func (c *sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Status()
	for _, b := range st.Bundles {
		ch <- prometheus.MustNewConstMetric(bundleInfoDesc, prometheus.GaugeValue, 1, b.Name, b.Revision)
		ch <- prometheus.MustNewConstMetric(bundleActivatedDesc, prometheus.GaugeValue, float64(b.ActivatedAt.Unix()), b.Name)
	}
	for _, d := range st.Downloads {
		ch <- prometheus.MustNewConstMetric(bundleRequestDesc, prometheus.GaugeValue, float64(d.LastSuccessfulRequest.Unix()), d.Name)
		if !d.LastSuccessfulDownload.IsZero() {
			ch <- prometheus.MustNewConstMetric(bundleDownloadDesc, prometheus.GaugeValue, float64(d.LastSuccessfulDownload.Unix()), d.Name)
		}
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
	ready := 0.0
	if ok, _ := c.src.Ready(); ok {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready)
}

// ledgerMetrics are the ledger's: its writes as they happen, and its state
// at scrape time.
type ledgerMetrics struct {
	led      *ledger.Ledger
	writes   *prometheus.CounterVec
	failures *prometheus.CounterVec
	commit   prometheus.Histogram
}

var (
	ledgerUpDesc = prometheus.NewDesc("geoscope_ledger_up",
		"1 while the ledger's latest commit succeeded (ledger.ok in GET /v1/status), 0 while decisions that must be recorded are refused with 503 ledger_unavailable.", nil, nil)
	ledgerBacklogDesc = prometheus.NewDesc("geoscope_ledger_backlog_entries",
		"Entries waiting to reach the ledger's database: queued for a commit and, on SQLite, committed to the journal and answered but not yet copied into the database. It grows while the database fails.", nil, nil)
)

// useLedger registers the ledger's metrics, and has the ledger report its
// writes to them.
func (m *metrics) useLedger(l *ledger.Ledger) {
	lm := &ledgerMetrics{
		led: l,
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_ledger_commits_total",
			Help: "Writes to the ledger, failed ones included, by kind: entries (the commits answers wait for: the journal's on SQLite, the database's on PostgreSQL), copy (SQLite: journaled entries copied into the database) and counts (the aggregate counts of plain admissions, once a second).",
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "geoscope_ledger_commit_failures_total",
			Help: "Writes to the ledger that failed, by kind as geoscope_ledger_commits_total. A failed entries commit is answered 503 ledger_unavailable.",
		}, []string{"kind"}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "geoscope_ledger_commit_duration_seconds",
			Help: "How long the commits answers wait for take (kind entries of geoscope_ledger_commits_total): a batch of entries made durable in the journal (SQLite) or committed to the database (PostgreSQL).",
			// 100 µs .. 15 s: a journal's fdatasync on a fast disk, to a
			// commit that hangs until its 10 s bound.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}),
	}
	for _, kind := range []string{ledger.WriteEntries, ledger.WriteCopy, ledger.WriteCounts} {
		lm.writes.WithLabelValues(kind)
		lm.failures.WithLabelValues(kind)
	}
	m.registry.MustRegister(lm)
	l.ObserveWrites(lm.observe)
}

func (lm *ledgerMetrics) observe(w ledger.Write) {
	lm.writes.WithLabelValues(w.Kind).Inc()
	if w.Err != nil {
		lm.failures.WithLabelValues(w.Kind).Inc()
	}
	if w.Kind == ledger.WriteEntries {
		lm.commit.Observe(w.Duration.Seconds())
	}
}

func (lm *ledgerMetrics) Describe(ch chan<- *prometheus.Desc) {
	lm.writes.Describe(ch)
	lm.failures.Describe(ch)
	lm.commit.Describe(ch)
	ch <- ledgerUpDesc
	ch <- ledgerBacklogDesc
}

func (lm *ledgerMetrics) Collect(ch chan<- prometheus.Metric) {
	lm.writes.Collect(ch)
	lm.failures.Collect(ch)
	lm.commit.Collect(ch)
	h := lm.led.Health()
	up := 0.0
	if h.OK {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(ledgerUpDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(ledgerBacklogDesc, prometheus.GaugeValue, float64(lm.led.Backlog()))
	// No time of the last commit: it moves with every recorded decision,
	// which GET /v1/status withholds from those without a token, and
	// --public-metrics serves this to anyone (the commit counters tell
	// as much only to whoever polls them).
}
