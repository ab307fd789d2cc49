package report

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
)

//go:embed templates/report.html.tmpl
var templates embed.FS

var htmlTemplate = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	// args passes named values to a sub-template: "head", "guard block",
	// "rows", ...
	"args": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("args: want name, value pairs")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			name, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("args: name %v is not a string", kv[i])
			}
			m[name] = kv[i+1]
		}
		return m, nil
	},
	"sub":    func(a, b int) int { return a - b },
	"list":   func(s ...string) []string { return s },
	"upper":  upperFirst,
	"status": statusText,
	"named":  namedHTML,
	"headNote": func(r *Report) template.HTML {
		return template.HTML(r.ledgerHeadNote(func(s string) string { return "<code>" + template.HTMLEscapeString(s) + "</code>" })) //nolint:gosec // every part escaped
	},
}).ParseFS(templates, "templates/report.html.tmpl"))

// namedHTML is g's Label with the authority's name, which the registry
// may give in any script, in a <bdi>: a right-to-left name would otherwise
// take the text after it (the id in parentheses, "— jurisdiction DE") into
// its own direction and print it reordered.
func namedHTML(g Group) template.HTML {
	if g.AuthorityName == "" || g.Authority == AllAuthorities || g.Authority == Unattributed {
		return template.HTML(template.HTMLEscapeString(g.Label())) //nolint:gosec // escaped
	}
	return template.HTML("<bdi>" + template.HTMLEscapeString(g.AuthorityName) + "</bdi> (" + template.HTMLEscapeString(g.Authority) + ")") //nolint:gosec // every part escaped
}

// htmlData is what the template renders.
type htmlData struct {
	*Report
	PeriodSince, PeriodUntil string // YYYY-MM-DD for the date inputs
	SuppressionNote          string
	DemandChart              chart
	CountryChart             chart
}

// HTML writes the report as one self-contained HTML page: inline CSS and
// inline SVG charts, no script, no external resource. With PeriodPicker,
// a GET form submits since and until to the page's own URL, which is what
// GET /report of geoscope serve reads.
func (r *Report) HTML(w io.Writer) error {
	d := htmlData{
		Report:          r,
		PeriodSince:     r.Period.Since.UTC().Format(time.DateOnly),
		PeriodUntil:     untilDay(r.Period.Until),
		SuppressionNote: suppressionText(r.MinCount) + withheldNote(r.MinCount),
		DemandChart:     r.demandChart(),
		CountryChart:    r.countryChart(),
	}
	return htmlTemplate.Execute(w, d)
}

// untilDay is the date the period form proposes for until (not
// included): the day of until when it is a day's start, and otherwise the
// next, so that the form proposes the whole days that cover the period. The
// day of an until within a day would leave that day's part out, and a
// period of hours would be proposed as an empty one.
func untilDay(until time.Time) string {
	u := until.UTC()
	if d := u.Truncate(24 * time.Hour); !d.Equal(u) {
		u = d.AddDate(0, 0, 1)
	}
	return u.Format(time.DateOnly)
}

// withheldNote is withheldText after a space, when cells can be withheld.
func withheldNote(minCount int) string {
	if minCount <= 1 {
		return ""
	}
	return " " + withheldText(minCount)
}

// chart is a horizontal bar chart, laid out here so the template only
// places elements.
type chart struct {
	ID, Title, Desc string
	Width, Height   int
	BarX            int
	Rows            []chartRow
	Legend          []legendItem
	Empty           string // set when there is nothing to draw
}

type chartRow struct {
	Label      string
	Value      string // the published text: a number or "<5"
	Class      string
	Suppressed bool
	Y, TextY   int
	W, H       int
	ValueX     int
	Gap        bool // first row of a new group
}

type legendItem struct{ Label, Class string }

const (
	chartRowH = 26
	chartBarH = 18
	chartGap  = 10
)

// geometry is a chart's horizontal layout: the whole width, where the bars
// start (labels are right-aligned before it) and the longest bar.
type geometry struct{ width, barX, barMax int }

type chartInput struct {
	label, class string
	cell         Cell
	gap          bool
}

func layout(id, title string, g geometry, in []chartInput, minCount int) chart {
	c := chart{ID: id, Title: title, Width: g.width, BarX: g.barX}
	scale := 0
	for _, x := range in {
		scale = max(scale, plotted(x.cell, minCount))
	}
	var desc []string
	y := 4
	for i, x := range in {
		if x.gap && i > 0 {
			y += chartGap
		}
		w := 0
		if v := plotted(x.cell, minCount); v > 0 && scale > 0 {
			w = max(2, v*g.barMax/scale)
		}
		c.Rows = append(c.Rows, chartRow{
			Label: x.label, Value: x.cell.String(), Class: x.class, Suppressed: x.cell.Suppressed(),
			Y: y + (chartRowH-chartBarH)/2, TextY: y + chartRowH/2 + 5, W: w, H: chartBarH,
			ValueX: g.barX + w + 6, Gap: x.gap && i > 0,
		})
		desc = append(desc, x.label+": "+x.cell.String())
		y += chartRowH
	}
	c.Height = y + 4
	c.Desc = strings.Join(desc, "; ") + "."
	if scale == 0 {
		c.Empty = "Nothing to chart: every count is 0."
	}
	return c
}

// plotted is the length a cell is drawn with: its count, or for a
// suppressed cell the threshold minus one and for a withheld one the
// threshold (it is drawn hatched and labelled "<5" or "5+", so it shows
// only what the label says).
func plotted(c Cell, minCount int) int {
	switch {
	case c.Withheld():
		return minCount
	case c.Suppressed():
		return minCount - 1
	}
	return c.n
}

func (r *Report) demandChart() chart {
	var in []chartInput
	for _, d := range r.Totals.Demands {
		in = append(in,
			chartInput{label: d.Demand + " · granted", class: "granted", cell: d.Granted, gap: true},
			chartInput{label: d.Demand + " · narrowed", class: "narrowed", cell: d.Narrowed},
			chartInput{label: d.Demand + " · refused", class: "refused", cell: d.Refused},
		)
	}
	c := layout("chart-demands", "Demands by outcome, all authorities", geometry{width: 680, barX: 240, barMax: 360}, in, r.MinCount)
	c.Legend = []legendItem{{"granted as asked", "granted"}, {"narrowed to participants inside", "narrowed"}, {"refused", "refused"}}
	if len(in) == 0 {
		c.Empty = "No demand was evaluated in the period."
	}
	return c
}

func (r *Report) countryChart() chart {
	var in []chartInput
	for _, row := range r.Totals.ByCountry {
		in = append(in, chartInput{label: row.Country, class: "country", cell: row.Total})
	}
	c := layout("chart-countries", "Participant-level actions by located country, all authorities", geometry{width: 440, barX: 80, barMax: 300}, in, r.MinCount)
	if len(in) == 0 {
		c.Empty = "No participant-level action was carried out in the period."
	}
	return c
}
