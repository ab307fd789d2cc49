package tests

// The cluster test: geoscope deployed as it is at scale, on real parts.
// Three `geoscope serve` replicas sit behind HAProxy, share one PostgreSQL
// ledger (a private server, internal/pgtest) and pull signed policy and
// registry bundles from nginx (OPA's bundle protocol: plain files with
// ETags). Meeting-server clients (engine/client) send decisions and
// admissions through HAProxy while, one after the other, a replica is
// killed with SIGKILL and restarted, PostgreSQL is restarted, and a new
// registry revision is published. The test then reads the shared ledger
// back with `geoscope ledger export` and `geoscope report` and checks:
//
//   - no acknowledged decision is missing from the ledger, and every
//     entry there was either acknowledged or decided inside a fault
//     window (by the killed replica before it died, or while PostgreSQL
//     was down);
//   - the only errors clients saw are 503 ledger_unavailable while
//     PostgreSQL was down (clients fail open on them); no other 5xx, and
//     none at all during the replica kill or the rollout;
//   - every replica serves the new revision within two polling intervals
//     of its publication, and no answer or entry mixes two revisions;
//   - the transparency report built from the shared ledger counts each
//     replica's entries exactly once; every entry names its replica;
//   - the replicas' entries form one chain: `geoscope ledger verify`
//     passes with the head the report printed.
//
// It logs the figures docs/operations.md quotes: requests/s in total and
// per replica, errors per fault, convergence times, PostgreSQL commits/s.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/geoscope/geoscope/engine/client"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/internal/pgtest"
)

const (
	clusterMeeting = "cluster-meeting"
	clusterAccount = "acct-cluster"
	// OPA polls each bundle after a random delay in [min, max] seconds.
	// Small, to keep the test short; max is the polling interval the
	// convergence bound (two intervals) is counted in, and leaves a whole
	// interval for the download and the activation on a busy machine.
	clusterPollMin = 2
	clusterPollMax = 4
	// clusterWorkers is the number of concurrent clients.
	clusterWorkers = 8
	// clusterMaxRequests bounds the load whatever happens.
	clusterMaxRequests = 400_000
	// clusterFlush is the ledger's aggregate-count flush interval
	// (ledger.Config.FlushInterval's default): a killed replica loses at
	// most the plain admissions it counted in the last interval.
	clusterFlush = time.Second
)

// clusterOrders are the orders each registry revision holds: r2 adds one.
var clusterOrders = map[string][]string{"r1": {"ORD-A"}, "r2": {"ORD-A", "ORD-B"}}

// clusterRegistry is registry revision rev: its orders target the test's
// meeting, and each order's legal basis names the revision, so that an
// entry shows which revision it was decided under.
func clusterRegistry(t *testing.T, rev string, key *bndKey) []byte {
	t.Helper()
	orders := map[string]any{}
	for _, id := range clusterOrders[rev] {
		orders[id] = map[string]any{
			"authority":   "cn.cac",
			"demands":     []any{"end_meeting", "suspend_account"},
			"targets":     map[string]any{"meetings": []any{clusterMeeting}, "accounts": []any{clusterAccount}},
			"legal_basis": "cluster test order " + id + ", revision " + rev,
			"received":    "2026-01-02",
		}
	}
	data := map[string]any{
		"authorities": map[string]any{"cn.cac": map[string]any{"name": "Cyberspace Administration of China", "jurisdiction": []any{"CN"}}},
		"orders":      orders,
	}
	return bndRegistryBundle(t, rev, data, key)
}

// Kinds of requests the clients send.
const (
	reqDeny   = "deny"   // admission of a participant located in CN: denied, recorded
	reqRemove = "remove" // roster with one participant in CN and one in the US: removal recorded
	reqAllow  = "allow"  // admission of a participant in the US: allowed, only counted
)

// clusterResult is one client call.
type clusterResult struct {
	kind       string
	start, end time.Time
	status     int // 200, the error status, or 0 when no answer came
	code       string
	err        string
	decisionID string
	registry   string
	policies   string
	orderIDs   []string
	durable    bool // the answer must be in the ledger
}

// window is a fault's time window.
type window struct {
	name     string
	from, to time.Time
}

func (w window) overlaps(r clusterResult) bool { return r.start.Before(w.to) && r.end.After(w.from) }
func (w window) holds(t time.Time) bool        { return !t.Before(w.from) && !t.After(w.to) }
func (w window) String() string {
	return fmt.Sprintf("%s (%.1f s)", w.name, w.to.Sub(w.from).Seconds())
}

// clusterEntry is what the test reads of an exported ledger entry.
type clusterEntry struct {
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	Replica    string    `json:"replica"`
	// Request identifies the request as its client sent it (the same on
	// every attempt of the Go client's, and on HAProxy's retries).
	Request string            `json:"request"`
	Bundles map[string]string `json:"bundles"`
	Orders  []struct {
		OrderID    string `json:"order_id"`
		LegalBasis string `json:"legal_basis"`
	} `json:"orders"`
}

// replicaStatus is what the test reads of a replica's GET /v1/status.
type replicaStatus struct {
	bndStatus
	Ledger struct {
		OK         bool      `json:"ok"`
		LastCommit time.Time `json:"last_commit"`
	} `json:"ledger"`
}

func TestCluster(t *testing.T) {
	pg := pgtest.New(t)
	const bundleToken = "cluster-bundle-service-token"
	bs := startNginx(t, bundleToken)
	key := bndDevKey(t, "dev-es256", "ES256")
	bs.publish(t, "policies.tar.gz", bndPolicyBundle(t, "pol-1", &key))
	bs.publish(t, "registry.tar.gz", clusterRegistry(t, "r1", &key))
	checkBundleService(t, bs, bundleToken)

	tokens, admin, decide := bndTokens(t)
	keyFile := lgKeyFile(t)
	opaCfg := opaConfigPolling(t, bs.url, bundleToken, map[string]bndKey{"release": key}, "release", clusterPollMin, clusterPollMax)
	names := []string{"replica-1", "replica-2", "replica-3"}
	replicas := map[string]*bndServer{}
	addrs := map[string]string{}
	for _, name := range names {
		// The ledger URL comes from the environment, as the Kubernetes
		// manifests pass it (from a Secret).
		p := startServe(t, serveOpts{ready: true, env: []string{"GEOSCOPE_LEDGER=" + pg.URL()}, args: []string{
			"--log-level", "warn", "--replica-id", name, "--ledger-key-file", keyFile, "--tokens-file", tokens,
			"--config", opaCfg, "--verification-key", key.pubPath,
		}})
		replicas[name] = &bndServer{serverProc: p, token: admin}
		addrs[name] = p.addr
	}
	lb := startHAProxy(t, addrs, names)
	for _, name := range names {
		if st := replicas[name].status(t); st.revision("registry") != "r1" || st.revision("policies") != "pol-1" {
			t.Fatalf("%s: %s, want registry r1 and policies pol-1", name, st)
		}
		lb.waitServerUp(t, name)
	}
	db, err := sql.Open("pgx", pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	// The load: clients through HAProxy until stop is closed.
	cl, err := client.New(lb.url, client.WithToken(decide), client.WithTimeout(30*time.Second),
		client.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clusterWorkers}}))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var (
		issued  atomic.Int64
		wg      sync.WaitGroup
		results = make([][]clusterResult, clusterWorkers)
	)
	commitsAtStart := pgCommits(t, db)
	loadStart := time.Now()
	for w := range clusterWorkers {
		wg.Go(func() { results[w] = clusterClient(cl, w, stop, &issued) })
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	phase := time.Sleep

	phase(4 * time.Second) // steady state
	commitsBeforeKill, baselineEnd := pgCommits(t, db), time.Now()

	// Fault 1: SIGKILL a replica, run on two, restart it.
	victim := replicas["replica-2"]
	kill := window{name: "SIGKILL replica-2 and restart it", from: time.Now()}
	victim.stop(syscall.SIGKILL)
	phase(2 * time.Second)
	victim.restart()
	lb.waitServerUp(t, "replica-2")
	kill.to = time.Now()
	phase(3 * time.Second)

	// Fault 2: restart PostgreSQL (fast shutdown: sessions are cut).
	pgWin := window{name: "PostgreSQL restart", from: time.Now()}
	pg.Stop()
	phase(2 * time.Second)
	pg.Start()
	pgUp := time.Now()
	for _, name := range names {
		// Back when each replica has committed again since PostgreSQL
		// came back.
		poll(t, 30*time.Second, name+" to commit to the ledger again", func() bool {
			st := clusterStatus(t, replicas[name])
			return st.Ledger.OK && st.Ledger.LastCommit.After(pgUp)
		})
	}
	pgWin.to = time.Now()
	phase(3 * time.Second)

	// Fault 3: publish registry revision r2 to the bundle service.
	rollout := window{name: "publish registry r2", from: time.Now()}
	bs.publish(t, "registry.tar.gz", clusterRegistry(t, "r2", &key))
	converged := map[string]time.Duration{}
	var cmu sync.Mutex
	var cwg sync.WaitGroup
	for _, name := range names {
		cwg.Go(func() {
			for deadline := rollout.from.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(pollInterval) {
				if st, err := statusOf(replicas[name]); err == nil && st.revision("registry") == "r2" {
					cmu.Lock()
					converged[name] = time.Since(rollout.from)
					cmu.Unlock()
					return
				}
			}
		})
	}
	cwg.Wait()
	rollout.to = time.Now()
	phase(3 * time.Second)
	stopLoad()
	loadEnd := time.Now()
	loadSecs := loadEnd.Sub(loadStart).Seconds()

	lbStats := lb.serverStats(t)
	rss := map[string]int64{}
	for _, name := range names {
		rss[name], _ = peakRSS(replicas[name].current().cmd.Process.Pid)
	}
	// Stop the replicas as Kubernetes does (SIGTERM): each commits what it
	// holds and flushes its aggregate counts.
	for _, name := range names {
		if code := replicas[name].stop(syscall.SIGTERM); code != 0 {
			t.Errorf("%s exited with %d after SIGTERM", name, code)
		}
	}

	var all []clusterResult
	for _, r := range results {
		all = append(all, r...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].start.Before(all[j].start) })

	// --- Answers: errors only where the faults allow them; one revision
	// per answer.
	errorsIn := map[string]int{}
	allConverged := rollout.from
	for _, name := range names {
		d, ok := converged[name]
		if !ok {
			t.Errorf("%s never served registry r2 (within 20 s of its publication)", name)
			continue
		}
		if at := rollout.from.Add(d); at.After(allConverged) {
			allConverged = at
		}
		if bound := 2 * clusterPollMax * time.Second; d > bound {
			t.Errorf("%s served registry r2 %v after its publication; want within two polling intervals (%v)", name, d.Round(time.Millisecond), bound)
		}
	}
	acked := map[string]clusterResult{}
	var bad []string
	answered, ackedAllow := 0, 0
	for _, r := range all {
		if r.status != http.StatusOK {
			w := "outside any fault"
			for _, win := range []window{kill, pgWin, rollout} {
				if win.overlaps(r) {
					w = win.name
				}
			}
			errorsIn[w]++
			if !(w == pgWin.name && r.status == http.StatusServiceUnavailable && r.code == client.CodeLedgerUnavailable) {
				bad = append(bad, fmt.Sprintf("%s at +%.2fs (%s): %d %s %s", r.kind, r.start.Sub(loadStart).Seconds(), w, r.status, r.code, r.err))
			}
			continue
		}
		answered++
		if want, ok := clusterOrders[r.registry]; !ok || r.policies != "pol-1" || !slices.Equal(r.orderIDs, want) {
			bad = append(bad, fmt.Sprintf("%s %s answered under registry %q, policies %q with orders %v: not one revision", r.kind, r.decisionID, r.registry, r.policies, r.orderIDs))
		}
		if r.end.Before(rollout.from) && r.registry != "r1" || r.start.After(allConverged) && r.registry != "r2" {
			bad = append(bad, fmt.Sprintf("%s %s at +%.2fs answered under %s", r.kind, r.decisionID, r.start.Sub(loadStart).Seconds(), r.registry))
		}
		switch {
		case r.durable:
			acked[r.decisionID] = r
		case r.kind == reqAllow:
			ackedAllow++
		default:
			bad = append(bad, fmt.Sprintf("%s %s: the answer records nothing", r.kind, r.decisionID))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d unexpected answers, e.g.:\n  %s", len(bad), strings.Join(bad[:min(10, len(bad))], "\n  "))
	}
	if errorsIn[pgWin.name] == 0 {
		t.Logf("note: no decision was refused during the PostgreSQL restart")
	}

	// --- The shared ledger, read back by the binary.
	env := []string{"GEOSCOPE_LEDGER=" + pg.URL()}
	exp := runBoundedEnv(t, 2*time.Minute, env, "ledger", "export", "--format", "jsonl")
	if exp.code != 0 {
		t.Fatalf("geoscope ledger export: %s", exp)
	}
	entries := map[string]clusterEntry{}
	dec := json.NewDecoder(strings.NewReader(exp.stdout))
	for dec.More() {
		var e clusterEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("export: %v", err)
		}
		if _, dup := entries[e.DecisionID]; dup {
			t.Errorf("decision %s exported twice", e.DecisionID)
		}
		entries[e.DecisionID] = e
	}
	var missing []string
	for id := range acked {
		if _, ok := entries[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d acknowledged decisions are missing from the shared ledger, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	perReplica := map[string]int{}
	perKind := map[string]int{}
	// sentAgain counts, per kind, the entries of a request already
	// recorded: HAProxy retries a request whose replica was killed before
	// it answered (retry-on empty-response), and one recorded before the
	// kill is recorded again by the next replica. The report counts such a
	// request once (every replica runs the same policy and registry, so
	// both are decided alike).
	sentAgain := map[string]int{}
	requests := map[string]bool{}
	orphans := map[string]int{}
	afterRestart := 0
	for id, e := range entries {
		perReplica[e.Replica]++
		perKind[e.Kind]++
		if e.Request != "" {
			if requests[e.Kind+" "+e.Request] {
				sentAgain[e.Kind]++
			}
			requests[e.Kind+" "+e.Request] = true
		}
		if !slices.Contains(names, e.Replica) {
			t.Errorf("entry %s names replica %q", id, e.Replica)
		}
		if e.Replica == "replica-2" && e.Time.After(kill.to) {
			afterRestart++
		}
		rev := e.Bundles["registry"]
		var got []string
		for _, o := range e.Orders {
			got = append(got, o.OrderID)
			if !strings.HasSuffix(o.LegalBasis, "revision "+rev) {
				t.Errorf("entry %s under registry %s records order %s as %q: two revisions mixed", id, rev, o.OrderID, o.LegalBasis)
			}
		}
		if !slices.Equal(got, clusterOrders[rev]) {
			t.Errorf("entry %s under registry %q cites %v", id, rev, got)
		}
		if _, ok := acked[id]; ok {
			continue
		}
		// Recorded but never acknowledged: only a replica killed with the
		// decision in flight, or a commit whose outcome PostgreSQL's
		// shutdown hid, may leave one.
		switch {
		case e.Replica == "replica-2" && !e.Time.After(kill.from):
			orphans[kill.name]++
		case window{from: pgWin.from.Add(-time.Second), to: pgWin.to}.holds(e.Time):
			// (decided up to a second before the shutdown began: its
			// commit may have been under way)
			orphans[pgWin.name]++
		default:
			t.Errorf("entry %s (%s at %s) was recorded but never acknowledged, outside any fault window", id, e.Replica, e.Time.Format(time.RFC3339Nano))
		}
	}
	for _, name := range names {
		if perReplica[name] == 0 {
			t.Errorf("no ledger entry names %s: HAProxy did not balance over it", name)
		}
	}
	if afterRestart == 0 {
		t.Error("the restarted replica recorded nothing after its restart")
	}

	// --- The transparency report from the shared ledger.
	rep := runBoundedEnv(t, 2*time.Minute, env, "report", "--format", "json", "--min-count", "1",
		"--since", "2000-01-01", "--until", time.Now().UTC().AddDate(0, 0, 2).Format(time.DateOnly))
	if rep.code != 0 {
		t.Fatalf("geoscope report: %s", rep)
	}
	var report struct {
		Summary struct {
			Decisions  int `json:"decisions_recorded"`
			Admissions int `json:"admissions_recorded"`
			Plain      int `json:"plain_admissions"`
		} `json:"summary"`
		Head string `json:"ledger_head"`
	}
	if err := json.Unmarshal([]byte(rep.stdout), &report); err != nil {
		t.Fatalf("report: %v\n%s", err, rep.stdout)
	}
	// The replicas' commits, a kill and PostgreSQL's restart among them,
	// made one chain, which the report's head pins.
	if v := runBoundedEnv(t, 2*time.Minute, env, "ledger", "verify", "--head", report.Head); report.Head == "" || v.code != 0 {
		t.Errorf("geoscope ledger verify --head %q: %s", report.Head, v)
	}
	if report.Summary.Decisions != perKind["decision"]-sentAgain["decision"] || report.Summary.Admissions != perKind["admission"]-sentAgain["admission"] {
		t.Errorf("report counts %d decisions and %d admissions recorded; the ledger holds %d and %d, of which %d and %d for requests sent again (replicas: %v)",
			report.Summary.Decisions, report.Summary.Admissions, perKind["decision"], perKind["admission"], sentAgain["decision"], sentAgain["admission"], perReplica)
	}
	if sum := perReplica["replica-1"] + perReplica["replica-2"] + perReplica["replica-3"]; sum-sentAgain["decision"]-sentAgain["admission"] != report.Summary.Decisions+report.Summary.Admissions {
		t.Errorf("the replicas' entries add up to %d, %d of them for requests sent again; the report counts %d", sum, sentAgain["decision"]+sentAgain["admission"], report.Summary.Decisions+report.Summary.Admissions)
	}
	if n := sentAgain["decision"] + sentAgain["admission"]; n > 0 {
		t.Logf("%d entries record a request sent again (HAProxy's retry of a request the killed replica had recorded), counted once in the report", n)
	}
	// Plain admissions are counted in memory and flushed every second:
	//   - the killed replica may have lost what it counted in its last
	//     interval (bounded by every plain admission answered then);
	//   - a count flushed just before the kill may belong to an answer
	//     that never left (one per client at most);
	//   - a flush whose commit PostgreSQL's shutdown cut may have
	//     succeeded although it failed for the replica, which counts again
	//     (bounded by every plain admission answered while it was pending).
	allowedIn := func(from, to time.Time) int {
		n := 0
		for _, r := range all {
			if r.kind == reqAllow && r.status == http.StatusOK && !r.end.Before(from) && !r.end.After(to) {
				n++
			}
		}
		return n
	}
	lost := allowedIn(kill.from.Add(-2*clusterFlush), kill.from)
	twice := clusterWorkers + allowedIn(pgWin.from.Add(-2*clusterFlush), pgWin.to)
	if p := report.Summary.Plain; p < ackedAllow-lost || p > ackedAllow+twice {
		t.Errorf("report counts %d plain admissions; %d were answered (%d lost at most with the killed replica, %d counted twice at most)", p, ackedAllow, lost, twice)
	}

	// --- The bundle service: replicas polled with ETags.
	access := bs.accessCounts(t)
	for _, path := range []string{"/bundles/policies.tar.gz", "/bundles/registry.tar.gz"} {
		if access[path][http.StatusNotModified] == 0 || access[path][http.StatusOK] > 10 {
			t.Errorf("nginx answered %s %v: want polls answered 304 Not Modified (ETag), a download only per start and release", path, access[path])
		}
	}

	// --- Figures.
	commits := float64(commitsBeforeKill-commitsAtStart) / baselineEnd.Sub(loadStart).Seconds()
	recordedBaseline := 0
	for _, e := range entries {
		if !e.Time.Before(loadStart) && e.Time.Before(baselineEnd) {
			recordedBaseline++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cluster: 3 replicas behind HAProxy, %d clients, %.1f s of load, 2 cores shared by everything\n", clusterWorkers, loadSecs)
	fmt.Fprintf(&b, "  answered: %d (%.0f/s); recorded one by one: %d; plain admissions counted: %d\n", answered, float64(answered)/loadSecs, len(entries), report.Summary.Plain)
	fmt.Fprintf(&b, "  steady state: %.0f recorded decisions/s, %.0f PostgreSQL commits/s (%.1f decisions per commit)\n",
		float64(recordedBaseline)/baselineEnd.Sub(loadStart).Seconds(), commits, float64(recordedBaseline)/baselineEnd.Sub(loadStart).Seconds()/commits)
	for _, name := range names {
		s := lbStats[name]
		fmt.Fprintf(&b, "  %s: %d answers via HAProxy (%.0f/s), %d ledger entries, %d retries and %d redispatches, peak RSS %.0f MiB\n",
			name, s.responses["2xx"]+s.responses["4xx"]+s.responses["5xx"], float64(s.responses["2xx"]+s.responses["4xx"]+s.responses["5xx"])/loadSecs,
			perReplica[name], s.retries, s.redispatches, float64(rss[name])/(1<<20))
	}
	for _, w := range []window{kill, pgWin, rollout} {
		fmt.Fprintf(&b, "  %s: %d errors seen by clients, %d recorded but unanswered\n", w, errorsIn[w.name], orphans[w.name])
	}
	fmt.Fprintf(&b, "  errors outside the faults: %d\n", errorsIn["outside any fault"])
	fmt.Fprintf(&b, "  registry r2 served after: %s (bound %d s)\n", durations(converged, names), 2*clusterPollMax)
	fmt.Fprintf(&b, "  nginx: %v", access)
	t.Log(b.String())
}

// clusterClient sends requests until stop is closed, cycling through the
// three kinds.
func clusterClient(cl *client.Client, w int, stop <-chan struct{}, issued *atomic.Int64) []clusterResult {
	var out []clusterResult
	kinds := []string{reqDeny, reqRemove, reqAllow, reqDeny, reqRemove, reqAllow, reqDeny}
	for n := 0; ; n++ {
		select {
		case <-stop:
			return out
		default:
		}
		if issued.Add(1) > clusterMaxRequests {
			return out
		}
		r := clusterResult{kind: kinds[n%len(kinds)], start: time.Now()}
		pid := fmt.Sprintf("c%d-%d", w, n)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		switch r.kind {
		case reqDeny, reqAllow:
			ip := lgCN4()
			if r.kind == reqAllow {
				ip = lgUS4()
			}
			var a *client.Admission
			a, err = cl.Admit(ctx, client.AdmissionRequest{
				Meeting:     input.AdmissionMeeting{ID: clusterMeeting, Host: input.AdmissionHost{AccountID: clusterAccount, AccountCountry: "US"}},
				Participant: input.Participant{ID: pid, IP: ip},
			})
			if err == nil {
				r.decisionID, r.registry, r.policies, r.orderIDs = a.DecisionID, a.Bundles["registry"], a.Bundles["policies"], a.OrderIDs
				r.durable = !a.Allow
				if a.Allow != (r.kind == reqAllow) {
					err = fmt.Errorf("admission of %s answered allow=%v", r.kind, a.Allow)
				}
			}
		case reqRemove:
			req := &input.Request{Meeting: input.Meeting{ID: clusterMeeting, Host: input.Host{AccountID: clusterAccount, AccountCountry: "US"},
				Participants: []input.Participant{{ID: pid + "-cn", IP: lgCN4()}, {ID: pid + "-us", IP: lgUS4()}}}}
			d, derr := cl.Decide(ctx, req)
			if err = derr; err == nil {
				r.decisionID, r.registry, r.policies, r.orderIDs = d.DecisionID, d.Bundles["registry"], d.Bundles["policies"], d.OrderIDs
				r.durable = len(d.Actions) > 0
			}
		}
		cancel()
		r.end = time.Now()
		var ae *client.APIError
		switch {
		case err == nil:
			r.status = http.StatusOK
		case errors.As(err, &ae):
			r.status, r.code, r.err = ae.StatusCode, ae.Code, ae.Message
		default:
			r.err = err.Error()
		}
		out = append(out, r)
	}
}

// checkBundleService makes sure nginx behaves as a bundle service: the
// token is required, and a known ETag is answered 304.
func checkBundleService(t *testing.T, bs *bundleService, token string) {
	t.Helper()
	get := func(auth, etag string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, bs.url+"/bundles/registry.tar.gz", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("", ""); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("nginx without the token: %d, want 401", r.StatusCode)
	}
	r := get("Bearer "+token, "")
	if r.StatusCode != http.StatusOK || r.Header.Get("ETag") == "" {
		t.Fatalf("nginx with the token: %d, ETag %q", r.StatusCode, r.Header.Get("ETag"))
	}
	if r := get("Bearer "+token, r.Header.Get("ETag")); r.StatusCode != http.StatusNotModified {
		t.Fatalf("nginx with a current ETag: %d, want 304", r.StatusCode)
	}
}

// statusOf reads a replica's status without failing the test (it may be
// called from other goroutines).
func statusOf(s *bndServer) (bndStatus, error) {
	r, err := s.do(http.MethodGet, "/v1/status", s.token, "", nil)
	if err != nil {
		return bndStatus{}, err
	}
	var st bndStatus
	if r.status != http.StatusOK {
		return st, fmt.Errorf("HTTP %d", r.status)
	}
	return st, json.Unmarshal(r.body, &st)
}

func clusterStatus(t *testing.T, s *bndServer) replicaStatus {
	t.Helper()
	r := s.request(t, http.MethodGet, "/v1/status", s.token, "", nil)
	var st replicaStatus
	if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil {
		t.Fatalf("GET /v1/status: %d %s", r.status, r.body)
	}
	return st
}

// pgCommits is PostgreSQL's count of committed transactions in the
// database.
func pgCommits(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		t.Fatalf("pg_stat_database: %v", err)
	}
	return n
}

func durations(d map[string]time.Duration, names []string) string {
	var parts []string
	for _, n := range names {
		if v, ok := d[n]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f s", n, v.Seconds()))
		} else {
			parts = append(parts, n+" never")
		}
	}
	return strings.Join(parts, ", ")
}
