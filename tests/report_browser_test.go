package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which .ci/run installs. The test never
// downloads a browser.
const chromiumPath = "/usr/bin/chromium"

// rptNeedChromium skips the test when Debian's chromium is not installed,
// or fails it with GEOSCOPE_REQUIRE_CHROMIUM=1.
func rptNeedChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("GEOSCOPE_REQUIRE_CHROMIUM") == "1" {
			t.Fatalf("GEOSCOPE_REQUIRE_CHROMIUM=1 but %s is missing: %v (apt-get install -y --no-install-recommends chromium)", chromiumPath, err)
		}
		t.Skipf("%s is missing (apt-get install -y --no-install-recommends chromium; GEOSCOPE_REQUIRE_CHROMIUM=1 makes this a failure)", chromiumPath)
	}
}

// rptChromium starts headless Chromium for the test, for 90 seconds at
// most, and returns the context of its first tab. It is stopped, and has
// exited, before the test's temporary directories are removed.
func rptChromium(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser to exit, before t.TempDir is removed
		cancel()
	})
	return bctx
}

// TestReportBrowser seeds a ledger through the real server (a malicious
// policy whose outside actions the guard blocks, then the default policy on
// the 2020 meetings), loads GET /report in headless Chromium and checks what
// a person sees: the figures, the drawn charts, the period picker, the
// attribution, and no console error. It saves a full-page screenshot.
func TestReportBrowser(t *testing.T) {
	rptNeedChromium(t)
	dir := t.TempDir()

	// A malicious policy: everything it tries outside CN is blocked; the
	// participant located in CN is removed.
	mal := rptServe(t, dir, "--bundle", "../engine/testdata/malicious", "--bundle", "../bundles/registry")
	r := mal.post("/v1/decisions", "", []byte(`{"meeting": {"id": "june4-b",
		"host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
		"participants": [{"id": "p-cn", "ip": "1.0.16.1"}, {"id": "p-us", "ip": "8.8.8.9"}, {"id": "p-hk", "ip": "147.8.1.1"}]}}`))
	var d struct {
		Actions      []struct{ Type, Country string } `json:"actions"`
		GuardBlocked []struct{ Code string }          `json:"guard_blocked"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != http.StatusOK || len(d.Actions) != 1 || len(d.GuardBlocked) < 5 {
		t.Fatalf("malicious decision: %s", r)
	}
	rptStop(t, mal)

	// The default policy on the 2020 meetings.
	s := rptServe(t, dir)
	for i := range 6 {
		r := s.post("/v1/decisions", "", fmt.Appendf(nil, `{"meeting": {"id": "june4-b",
			"host": {"account_id": "acct-us-b", "account_country": "US", "ip": "8.8.8.8"},
			"participants": [{"id": "cn-%[1]d-a", "ip": "1.0.16.%[2]d"}, {"id": "cn-%[1]d-b", "ip": "36.110.1.%[2]d"},
			                 {"id": "us-%[1]d", "ip": "8.8.8.%[2]d"}, {"id": "hk-%[1]d", "ip": "147.8.1.%[2]d"}]}}`, i, 10+i))
		if r.status != http.StatusOK || strings.Count(string(r.body), `"remove_participant"`) != 2 || !strings.Contains(string(r.body), `"affects_outside"`) {
			t.Fatalf("june4-b decision %d: %s", i, r)
		}
	}
	r = s.post("/v1/decisions", "", []byte(`{"meeting": {"id": "control-cn",
		"host": {"account_id": "acct-cn-e", "account_country": "CN", "ip": "36.110.50.1"},
		"participants": [{"id": "cn-01", "ip": "1.0.19.1"}, {"id": "cn-02", "ip": "1.0.19.2"}, {"id": "cn-03", "ip": "36.110.50.3"},
		                 {"id": "cn-04", "ip": "36.110.50.4"}, {"id": "cn-05", "ip": "2408:8000::5"}]}}`))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"end_meeting"`) {
		t.Fatalf("control-cn decision: %s", r)
	}
	for i := range 3 {
		r := s.post("/v1/admission", "", fmt.Appendf(nil, `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}},
			"participant": {"id": "joiner-cn-%d", "ip": "36.110.44.%d"}}`, i, 4+i))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"allow":false`) {
			t.Fatalf("CN joiner %d: %s", i, r)
		}
	}
	for i := range 5 {
		r := s.post("/v1/admission", "", fmt.Appendf(nil, `{"meeting": {"id": "june4-d", "host": {"account_id": "acct-us-d", "account_country": "US"}},
			"participant": {"id": "joiner-us-%d", "ip": "8.8.8.%d"}}`, i, 100+i))
		if r.status != http.StatusOK || !strings.Contains(string(r.body), `"allow":true`) {
			t.Fatalf("US joiner %d: %s", i, r)
		}
	}

	today := time.Now().UTC().Truncate(24 * time.Hour)
	since, until := today.AddDate(0, 0, -1).Format(time.DateOnly), today.AddDate(0, 0, 2).Format(time.DateOnly)
	query := "?since=" + since + "&until=" + until

	// Plain admissions are counted, and the counts are written every
	// second: wait for them.
	var rep struct {
		Summary struct {
			PlainAdmissions any `json:"plain_admissions"`
		} `json:"summary"`
		OutsideAffected struct {
			Value     int    `json:"value"`
			Statement string `json:"statement"`
		} `json:"outside_affected"`
		Totals struct {
			ParticipantActions struct {
				RemoveParticipant any `json:"remove_participant"`
				Total             any `json:"total"`
			} `json:"participant_actions"`
			GuardBlocksTotal any `json:"guard_blocks_total"`
			OrdersByStatus   struct {
				Orders any `json:"orders"`
				AtEnd  []struct {
					Status string `json:"status"`
					Orders any    `json:"orders"`
				} `json:"at_end"`
			} `json:"orders_by_status"`
		} `json:"totals"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := s.get("/v1/report"+query, "")
		if err := json.Unmarshal(r.body, &rep); err != nil || r.status != http.StatusOK {
			t.Fatalf("/v1/report: %s", r)
		}
		if rep.Summary.PlainAdmissions == 5.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plain admissions were not counted within 15s: %v", rep.Summary.PlainAdmissions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// 1 (malicious policy) + 6×2 (june4-b) + 6 (control-cn, host
	// included): 19, withheld as 5+, since the deny_join <5 would
	// otherwise be the total less it.
	if rep.Totals.ParticipantActions.RemoveParticipant != "5+" || rep.OutsideAffected.Value != 0 {
		t.Fatalf("/v1/report: remove_participant %v, outside %d; want 5+ and 0", rep.Totals.ParticipantActions.RemoveParticipant, rep.OutsideAffected.Value)
	}

	// The browser.
	bctx := rptChromium(t)

	var mu sync.Mutex
	var problems []string
	if err := chromedp.Listen(bctx, func(ev any) {
		var p string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				p = fmt.Sprintf("console.%s", ev.Type)
			}
		case *runtime.EventExceptionThrown:
			p = "exception: " + ev.ExceptionDetails.Text
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				p = fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if p != "" {
			mu.Lock()
			problems = append(problems, p)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}

	type dom struct {
		Outside     string       `json:"outside"`
		Statement   string       `json:"statement"`
		Remove      string       `json:"remove"`
		Deny        string       `json:"deny"`
		Blocks      string       `json:"blocks"`
		Charts      int          `json:"charts"`
		ChartTitles []string     `json:"chartTitles"`
		ChartDescs  []string     `json:"chartDescs"`
		Bars        [][2]float64 `json:"bars"`
		Since       string       `json:"since"`
		Until       string       `json:"until"`
		Submit      bool         `json:"submit"`
		Attribution []string     `json:"attribution"`
		Scripts     int          `json:"scripts"`
		Violation   bool         `json:"violation"`
		TableHeads  int          `json:"tableHeads"`
		Search      string       `json:"search"`
		InForce     string       `json:"inForce"`
	}
	const inspect = `(() => {
		const text = s => { const e = document.querySelector(s); return e ? e.textContent.trim() : null; };
		const charts = [...document.querySelectorAll('svg.chart')];
		return {
			outside: text('#outside-affected-value'),
			statement: text('#outside-affected-statement'),
			remove: text('td[data-figure="remove_participant"][data-authority="(all)"]'),
			deny: text('td[data-figure="deny_join"][data-authority="(all)"]'),
			blocks: text('#total-guard-blocks'),
			charts: charts.length,
			chartTitles: charts.map(c => c.querySelector(':scope > title')?.textContent ?? ''),
			chartDescs: charts.map(c => c.querySelector(':scope > desc')?.textContent ?? ''),
			bars: [...document.querySelectorAll('svg.chart rect.bar')].map(r => { const b = r.getBoundingClientRect(); return [b.width, b.height]; }),
			since: document.querySelector('form.picker input[type=date][name=since]')?.value ?? null,
			until: document.querySelector('form.picker input[type=date][name=until]')?.value ?? null,
			submit: !!document.querySelector('form.picker[method=get] button[type=submit]'),
			attribution: [...document.querySelectorAll('a[href="https://db-ip.com"]')].map(a => a.textContent.trim()),
			scripts: document.scripts.length,
			violation: !!document.querySelector('#violation'),
			tableHeads: document.querySelectorAll('table th[scope]').length,
			search: location.search,
			inForce: text('td[data-figure="at_end.in_force"][data-authority="(all)"]'),
		};
	})()`

	page := s.base + "/report" + query
	if err := chromedp.Do(bctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS("#outside-affected-value"))); err != nil {
		t.Fatalf("loading %s: %v", page, err)
	}
	got, err := chromedp.Run(bctx, chromedp.Evaluate[dom](inspect))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered: %+v", got)
	// The 23 action records are withheld: less the 22 participant
	// actions, they would be the meetings ended <5.
	if got.Outside != "0" || !strings.HasPrefix(got.Statement, "0, computed from 5+ action records") {
		t.Errorf("outside affected %q (%q), want 0, computed from 5+ action records", got.Outside, got.Statement)
	}
	if got.Remove != "5+" || got.Deny != "<5" {
		t.Errorf("remove_participant %q, deny_join %q; want 5+ and <5", got.Remove, got.Deny)
	}
	if want := fmt.Sprint(rep.Totals.GuardBlocksTotal); got.Blocks != want || got.Blocks == "0" {
		t.Errorf("guard blocks %q, want %s (not 0)", got.Blocks, want)
	}
	if got.Charts != 2 || len(got.Bars) < 4 {
		t.Errorf("%d charts with %d bars, want 2 charts and bars", got.Charts, len(got.Bars))
	}
	for i, b := range got.Bars {
		if b[0] <= 0 || b[1] <= 0 {
			t.Errorf("bar %d is drawn %v×%v", i, b[0], b[1])
		}
	}
	for i := range got.ChartTitles {
		if got.ChartTitles[i] == "" || got.ChartDescs[i] == "" {
			t.Errorf("chart %d has no title or description", i)
		}
	}
	if len(got.ChartDescs) == 2 && !strings.Contains(got.ChartDescs[1], "CN: 22") {
		t.Errorf("country chart description %q, want CN: 22", got.ChartDescs[1])
	}
	if got.Since != since || got.Until != until || !got.Submit {
		t.Errorf("period picker: since %q until %q submit %v; want %s, %s and a submit button", got.Since, got.Until, got.Submit, since, until)
	}
	if len(got.Attribution) == 0 || got.Attribution[0] != "IP Geolocation by DB-IP" {
		t.Errorf("attribution links %q", got.Attribution)
	}
	// The example registry's orders state no period of validity: every
	// order the period's decisions state is in force at its end, as the
	// JSON report says.
	st := rep.Totals.OrdersByStatus
	if len(st.AtEnd) != 4 || st.AtEnd[0].Status != "in_force" || fmt.Sprint(st.AtEnd[0].Orders) != fmt.Sprint(st.Orders) || st.Orders == 0.0 ||
		got.InForce != fmt.Sprint(st.AtEnd[0].Orders) {
		t.Errorf("orders in force at the end of the period: page %q, JSON %+v", got.InForce, st)
	}
	if got.Scripts != 0 || got.Violation || got.TableHeads < 20 {
		t.Errorf("scripts %d, violation %v, table headers %d", got.Scripts, got.Violation, got.TableHeads)
	}

	// The screenshot, for a person to look at.
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("GEOSCOPE_TEST_ARTIFACTS")
	if out == "" {
		out = t.ArtifactDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "report.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// The period picker works without script: a period in 2020 holds
	// nothing.
	if err := chromedp.Do(bctx,
		chromedp.SetValue(chromedp.CSS("#since"), "2020-01-01"),
		chromedp.SetValue(chromedp.CSS("#until"), "2020-02-01"),
		chromedp.Click(chromedp.CSS("form.picker button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#outside-affected-value")),
	); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		got, err = chromedp.Run(bctx, chromedp.Evaluate[dom](inspect))
		// The new location can be read before its page has rendered:
		// wait for the page's content too.
		if err == nil && strings.Contains(got.Search, "since=2020-01-01") && got.Statement != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the picker did not load the 2020 report: %+v, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if q, _ := url.ParseQuery(strings.TrimPrefix(got.Search, "?")); q.Get("until") != "2020-02-01" || got.Statement == "" ||
		!strings.HasPrefix(got.Statement, "0, computed from 0 action records") || got.Remove != "0" {
		t.Errorf("after the picker: %+v", got)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}
