package tests

import (
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/geoscope/geoscope/engine/geo/geotest"
)

const (
	alertsFile = "../deploy/prometheus/alerts.yaml"
	opsDoc     = "../docs/operations.md"
)

// targetLabels are the labels Prometheus gives every series of a scrape,
// and synthetic the series it makes itself: neither comes from geoscope.
var (
	targetLabels = []string{"job", "instance"}
	synthetic    = []string{"up"}
)

// TestAlertRules parses the shipped alerting rules as Prometheus loads them
// (unknown fields refused, every expression and template checked), and
// holds every rule to what an operator needs of it: a `for` that rides out
// a blip, a severity, a summary, and a runbook naming faults that
// docs/operations.md describes. Every metric an expression selects, and
// every label it matches on, must be one a running server exposes after a
// short load of decisions, admissions and mistakes: an alert on a metric
// that does not exist never fires.
func TestAlertRules(t *testing.T) {
	promql := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.LegacyValidation, promql, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("%s: %v", alertsFile, err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	doc, err := os.ReadFile(opsDoc)
	if err != nil {
		t.Fatal(err)
	}

	p := startServe(t, serveOpts{ready: true, args: []string{"--geoip-db", geotest.Standard(t)}})
	loadMix(t, p, 10)
	exposed := scrapeFamilies(t, p, "")
	labelsOf := func(family string) []string {
		var names []string
		if f := exposed[family]; f != nil {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if !slices.Contains(names, l.GetName()) {
						names = append(names, l.GetName())
					}
				}
			}
		}
		return names
	}

	// docs/operations.md's table of the alerts: each row's name and for.
	documented := map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Geoscope[A-Za-z]+)` \\|.*\\| ([0-9]+[smh]) \\|$").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = m[2]
	}
	rules := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			rules++
			name := r.Alert
			if got, ok := documented[name]; !ok {
				t.Errorf("%s: not in the table of alerts in %s", name, opsDoc)
			} else if got != r.For.String() {
				t.Errorf("%s: for %s in %s's table, %s in the rule", name, got, opsDoc, r.For)
			}
			delete(documented, name)
			if time.Duration(r.For) < time.Minute {
				t.Errorf("%s: for %v; want at least a minute, so that one bad scrape pages nobody", name, r.For)
			}
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" {
				t.Errorf("%s: severity %q, want page or ticket", name, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", name)
			}
			checkRunbook(t, name, r.Annotations["runbook"], string(doc))

			expr, err := promql.ParseExpr(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", name, err) // rulefmt checked it already
				continue
			}
			selectors := 0
			parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
				vs, ok := node.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				selectors++
				if slices.Contains(synthetic, vs.Name) {
					return nil
				}
				family := familyOf(vs.Name)
				if exposed[family] == nil {
					t.Errorf("%s: selects %s, which the server does not expose", name, vs.Name)
					return nil
				}
				for _, m := range vs.LabelMatchers {
					if m.Name == model.MetricNameLabel || slices.Contains(targetLabels, m.Name) {
						continue
					}
					if !slices.Contains(labelsOf(family), m.Name) {
						t.Errorf("%s: matches %s on label %q, which it does not have (%v)", name, vs.Name, m.Name, labelsOf(family))
					}
				}
				return nil
			})
			if selectors == 0 {
				t.Errorf("%s: selects no metric", name)
			}
		}
	}
	if rules == 0 {
		t.Fatalf("%s holds no alert", alertsFile)
	}
	for name := range documented {
		t.Errorf("%s's table of alerts names %s, which %s does not hold", opsDoc, name, alertsFile)
	}
}

// familyOf is the metric family a series name belongs to: a histogram's
// _bucket, _sum and _count series are its family's.
func familyOf(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && strings.HasSuffix(base, "_seconds") {
			return base
		}
	}
	return series
}

// runbookFaults reads "docs/operations.md, Faults: A; B (more)".
var runbookFaults = regexp.MustCompile(`^docs/operations\.md, Faults: (.+)$`)

// checkRunbook holds an alert's runbook to naming faults, or sections,
// that docs/operations.md has.
func checkRunbook(t *testing.T, alert, runbook, doc string) {
	t.Helper()
	m := runbookFaults.FindStringSubmatch(runbook)
	if m == nil {
		t.Errorf("%s: runbook %q does not read \"docs/operations.md, Faults: ...\"", alert, runbook)
		return
	}
	for _, fault := range strings.Split(m[1], ";") {
		fault, _, _ = strings.Cut(strings.TrimSpace(fault), " (")
		if !strings.Contains(doc, "- **"+fault) && !strings.Contains(doc, "## "+fault+"\n") {
			t.Errorf("%s: runbook names %q, which docs/operations.md has neither as a fault nor as a section", alert, fault)
		}
	}
}
