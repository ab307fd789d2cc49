package tests

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo/geotest"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

// rptPageInspect reads, from the report page in the browser, what a reader
// who cannot see the colours, uses a screen reader, zooms in or prints
// depends on. It returns the problems it finds, one sentence each.
const rptPageInspect = `(() => {
	const problems = [];
	const name = el => (el.textContent || '').replace(/\s+/g, ' ').trim();
	const said = el => name(el).slice(0, 60);

	// The page scrolls only down: a table wider than the page scrolls in
	// its own box, and nothing else is wider.
	const doc = document.documentElement;
	if (doc.scrollWidth > doc.clientWidth) {
		const over = e => e.getBoundingClientRect().right > doc.clientWidth + 0.5;
		const scrolls = e => { for (let a = e.parentElement; a; a = a.parentElement) if (getComputedStyle(a).overflowX !== 'visible') return true; return false; };
		const wide = [...document.body.querySelectorAll('*')].filter(e => over(e) && !over(e.parentElement) && !scrolls(e));
		problems.push('the page is ' + doc.scrollWidth + 'px wide in a ' + doc.clientWidth + 'px window: ' + wide.slice(0, 3).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' "' + said(e).slice(0, 30) + '"').join(', '));
	}

	if (!doc.lang) problems.push('the page has no lang');
	// A screen reader moves to the report past its header by the main
	// landmark.
	if (document.querySelectorAll('main').length !== 1) problems.push(document.querySelectorAll('main').length + ' main landmarks');
	if (!document.title.trim()) problems.push('the page has no title');
	if (document.scripts.length) problems.push('the page has a script');

	// One h1, and no level skipped on the way down.
	let level = 0, h1 = 0;
	for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
		const n = +h.tagName[1];
		if (n === 1) h1++;
		if (n > level + 1) problems.push('heading "' + said(h) + '" is an h' + n + ' after an h' + level);
		level = n;
	}
	if (h1 !== 1) problems.push(h1 + ' h1 headings');

	// Every table is named, its columns headed, and each row headed by its
	// first cell: a screen reader says which table, column and row a
	// count is in.
	for (const t of document.querySelectorAll('table')) {
		const label = t.caption ? name(t.caption) : (t.getAttribute('aria-label') || '');
		const what = 'table "' + (label || said(t).slice(0, 40)) + '"';
		if (!label) problems.push(what + ' has no caption');
		for (const th of t.querySelectorAll('thead th')) {
			if (th.getAttribute('scope') !== 'col') problems.push(what + ': column header "' + said(th) + '" has no scope=col');
		}
		if (!t.tHead) problems.push(what + ' has no header row');
		for (const tr of t.tBodies[0]?.rows ?? []) {
			const first = tr.cells[0];
			if (first.tagName !== 'TH' || first.getAttribute('scope') !== 'row') problems.push(what + ': row "' + said(tr).slice(0, 30) + '" is not headed by its first cell');
		}
	}

	// A box that scrolls sideways is reached from the keyboard and named:
	// a keyboard user scrolls a wide table only once it has the focus,
	// which Chromium gives a scroller by itself but Safari does not.
	for (const e of document.body.querySelectorAll('*')) {
		if (!['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) continue;
		if (e.tabIndex < 0) problems.push('the scroll box of "' + said(e).slice(0, 40) + '" is not reached from the keyboard');
		if (e.getAttribute('role') !== 'region' || !(e.getAttribute('aria-label') || '').trim()) problems.push('the scroll box of "' + said(e).slice(0, 40) + '" is not a named region');
	}

	// The page does not change once loaded, so nothing on it is an alert:
	// a screen reader interrupts whatever it says for an alert, on every
	// load.
	for (const e of document.querySelectorAll('[role=alert], [aria-live]')) problems.push('"' + said(e).slice(0, 40) + '" is announced as a live alert');

	// A name written right to left is isolated (<bdi>, or an element of
	// its own direction), or it takes the text after it (an id in
	// parentheses, a jurisdiction) into its direction and prints it
	// reordered.
	const rtl = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]/;
	const names = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	for (let n = names.nextNode(); n; n = names.nextNode()) {
		const el = n.parentElement;
		if (!rtl.test(n.textContent) || el.closest('svg, .vh, bdi, [dir]')) continue;
		problems.push('right-to-left text "' + n.textContent.trim().slice(0, 30) + '" in <' + el.tagName.toLowerCase() + '> is not isolated');
	}

	// A chart is an image named by its title and described in text: the
	// description says every bar's label and value.
	for (const svg of document.querySelectorAll('svg.chart')) {
		const text = attr => (svg.getAttribute(attr) || '').split(/\s+/).filter(Boolean).map(id => document.getElementById(id)).filter(Boolean).map(name).join(' ');
		const title = text('aria-labelledby'), desc = text('aria-describedby');
		if (svg.getAttribute('role') !== 'img' || !title || !desc) {
			problems.push('chart ' + svg.id + ' has no name (' + title + ') or no description (' + desc + ')');
			continue;
		}
		for (const g of svg.querySelectorAll('g')) {
			const [label, value] = [...g.querySelectorAll('text')].map(name);
			if (!desc.includes(label + ': ' + value)) problems.push('chart ' + svg.id + ': its text does not say "' + label + ': ' + value + '"');
		}
	}
	for (const li of document.querySelectorAll('.legend li')) {
		if (!name(li)) problems.push('a legend key has no words');
	}

	// Contrast: text 4.5:1 (3:1 when large), a bar 3:1 against the page.
	const rgb = c => { const m = c.match(/[\d.]+/g).map(Number); return { v: m.slice(0, 3), a: m.length > 3 ? m[3] : 1 }; };
	const lum = ([r, g, b]) => [r, g, b].map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; }).reduce((s, x, i) => s + x * [0.2126, 0.7152, 0.0722][i], 0);
	const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
	const background = el => {
		for (let e = el; e; e = e.parentElement) {
			const c = rgb(getComputedStyle(e).backgroundColor);
			if (c.a > 0) return c.v;
		}
		return [255, 255, 255];
	};
	const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
	const seen = new Set();
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		const el = n.parentElement;
		if (!n.textContent.trim() || seen.has(el) || el.closest('svg, [aria-hidden=true]')) continue;
		seen.add(el);
		const st = getComputedStyle(el);
		if (st.visibility === 'hidden' || st.display === 'none' || el.getClientRects().length === 0) continue;
		const size = parseFloat(st.fontSize), bold = +st.fontWeight >= 700;
		const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
		const r = ratio(rgb(st.color).v, background(el));
		if (r < need) problems.push('"' + said(el).slice(0, 30) + '" has a contrast of ' + r.toFixed(2) + ':1, under ' + need + ':1');
	}
	for (const svg of document.querySelectorAll('svg.chart')) {
		for (const text of svg.querySelectorAll('text')) {
			const r = ratio(rgb(getComputedStyle(text).fill).v, background(svg));
			if (r < 4.5) problems.push('chart text "' + name(text) + '" has a contrast of ' + r.toFixed(2) + ':1');
		}
		for (const bar of svg.querySelectorAll('rect.bar:not(.suppressed)')) {
			const r = ratio(rgb(getComputedStyle(bar).fill).v, background(svg));
			if (r < 3) problems.push('a ' + bar.getAttribute('class') + ' bar has a contrast of ' + r.toFixed(2) + ':1 against the page');
		}
	}
	return problems;
})()`

// rptSeedLongNames adds to the SQLite ledger in dir a decision under an
// order of an authority whose name is one long word, decided with a
// bundle of a long revision: a label the page must wrap, not widen the
// page for. It also adds one under an authority with a right-to-left name,
// which must not reorder the text printed after it.
func rptSeedLongNames(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	l, err := ledger.Open(ctx, ledger.Config{DataDir: dir, EngineVersion: "test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range []struct{ id, name, country, order, prefix string }{
		{"de.bundesnetzagentur", "Bundesnetzagenturfürelektrizitätgastelekommunikationpostundeisenbahnen", "DE", "DE-2026-0001", "5.1.2.0/24"},
		{"ae.tdra", "هيئة تنظيم الاتصالات والحكومة الرقمية", "AE", "AE-2026-0001", "5.1.3.0/24"},
	} {
		order := registry.Order{Authority: a.id, Demands: []string{"remove_participants"}, LegalBasis: "seed", Received: "2026-04-01"}
		meeting := "long-names-" + strconv.Itoa(i)
		rec := &engine.Record{
			Decision: &decision.Decision{
				DecisionID: fmt.Sprintf("00000000-0000-7000-8000-0000000a%04d", i+1), Time: time.Date(2026, 4, 2, 12, i, 0, 0, time.UTC), MeetingID: meeting,
				Actions: []decision.Action{{Type: decision.RemoveParticipant, MeetingID: meeting, ParticipantID: "p-" + a.country,
					OrderID: a.order, Jurisdiction: []string{a.country}, Country: a.country, Reason: "inside"}},
				Refused: []decision.Refusal{}, GuardBlocked: []decision.Blocked{}, OrderIDs: []string{a.order},
				Geo:     decision.Geo{Database: "GeoIP2-Country", Build: geotest.BuildTime},
				Bundles: map[string]string{"policies": "sha256:" + strings.Repeat("0123456789abcdef", 4), "registry": "sha256:seed-r"},
			},
			AccountID: "acct-" + meeting, Orders: map[string]registry.Order{a.order: order},
			Authorities: map[string]registry.Authority{a.id: {Name: a.name, Jurisdiction: []string{a.country}}},
			Networks:    []netip.Prefix{netip.MustParsePrefix(a.prefix)},
		}
		if err := l.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReportPageReadsForEveryone writes the HTML report of rptSeed's
// ledger, with an authority and a revision of long names, through
// geoscope report, and reads it in headless Chromium as its readers do: on
// a wide screen, zoomed to 200% and 400% (a window of 640 and 320 CSS
// pixels, WCAG's reflow width), and printed on A4 (703 CSS pixels between
// the 12 mm margins the page asks for). In each, the page must not scroll
// sideways, and what rptPageInspect checks must hold: a language and a
// title, a main landmark, headings in order, tables named and headed by row and column,
// charts with a text alternative that says each bar, and enough contrast.
// The page has no script, so this is also the page without JavaScript.
func TestReportPageReadsForEveryone(t *testing.T) {
	rptNeedChromium(t)
	dir := t.TempDir()
	rptSeed(t, dir)
	rptSeedLongNames(t, dir)
	page := filepath.Join(t.TempDir(), "report.html")
	if res := runCLI(t, nil, "report", "--data-dir", dir, "--since", "2026-01-01", "--until", "2026-07-01", "--format", "html", "--out", page); res.code != 0 {
		t.Fatalf("report --format html: %s", res)
	}
	bctx := rptChromium(t)
	for _, view := range []struct {
		name  string
		width int64
		media string
	}{
		{"a wide screen", 1280, "screen"},
		{"zoomed to 200%", 640, "screen"},
		{"zoomed to 400%", 320, "screen"},
		{"printed on A4", 703, "print"},
	} {
		media := func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: view.media})
			return err
		}
		if err := chromedp.Do(bctx, chromedp.EmulateViewport(view.width, 900), chromedp.Func(media), chromedp.Navigate("file://"+page)); err != nil {
			t.Fatalf("%s: %v", view.name, err)
		}
		problems, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](rptPageInspect))
		if err != nil {
			t.Fatalf("%s: %v", view.name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", view.name, p)
		}
		if t.Failed() {
			png, err := chromedp.Run(bctx, chromedp.FullScreenshot(80))
			if err == nil {
				shot := filepath.Join(t.ArtifactDir(), strings.ReplaceAll(view.name, " ", "-")+".png")
				if os.WriteFile(shot, png, 0o644) == nil {
					t.Logf("%s: screenshot %s", view.name, shot)
				}
			}
		}
	}
}
