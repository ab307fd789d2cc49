package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/registry"
)

// hostileLabels is seven decisions under an order of an authority whose
// registry entry, bundle revision and GeoIP database name carry terminal
// escape sequences, a bidirectional override left open, and markup. A
// registry validates an authority's name only as text that is not blank,
// and a bundle's revision is whatever its manifest says.
func hostileLabels() []*engine.Record {
	const auth = "x\"><svg/onload=alert(1)>\u202e"
	name := "Evil\x1b]0;PWNED\x07\x1b[2J\x1bc of China\u202e 21 \u2066</title><script>alert(1)</script>\u200f"
	o := registry.Order{Authority: auth, Demands: []string{"remove_participants"}, LegalBasis: "fixture-legal-basis", Received: "2026-01-05"}
	var out []*engine.Record
	for i := range 7 {
		b := newRec(fmt.Sprintf("00000000-0000-7000-8000-0000000ee%03d", i), day(2, 1+i, 12), "m-hostile", "acct-hostile")
		const id = "=HYPERLINK(\"http://x\")"
		b.rec.Decision.OrderIDs = []string{id}
		b.rec.Orders[id] = o
		b.rec.Authorities[auth] = registry.Authority{Name: name, Jurisdiction: []string{"CN"}}
		b.rec.Decision.Bundles = map[string]string{"=cmd|' /C calc'!A0": "rev\x1b[8m\n| forged | 999 |\u2028\u009b2J"}
		b.rec.Decision.Geo = decision.Geo{Database: "GeoIP\x1bP<img src=x onerror=alert(3)>\x7f", Build: geoJanuary.Build}
		b.rec.Decision.Actions = append(b.rec.Decision.Actions, decision.Action{
			Type: decision.RemoveParticipant, MeetingID: "m-hostile", ParticipantID: fmt.Sprintf("p-%d", i),
			OrderID: id, Jurisdiction: []string{"CN"}, Country: "CN", Reason: "fixture-reason"})
		b.rec.Decision.Refused = append(b.rec.Decision.Refused, decision.Refusal{OrderID: id, Demand: "remove_participants", Code: "x\x1b[31m", Reason: "fixture-reason"})
		out = append(out, b.rec)
	}
	return out
}

// TestReportShowsControlCharactersEscaped: a label from the registry, a
// bundle or the GeoIP database is printed in no format with a control
// character, a line separator or a bidirectional embedding, override or
// isolate in it, but with their escapes, which a reader sees; the page
// and the Markdown keep the markup as text, and the CSV and JSON parse.
func TestReportShowsControlCharactersEscaped(t *testing.T) {
	r := buildOf(t, fixturePeriod, hostileLabels()...)
	r.PeriodPicker = true
	bad := func(c rune) bool {
		return (unicode.IsControl(c) && c != '\n') || c == '\u2028' || c == '\u2029' || ('\u202a' <= c && c <= '\u202e') || ('\u2066' <= c && c <= '\u2069')
	}
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if i := strings.IndexFunc(out, bad); i >= 0 {
			t.Errorf("%s: %q is printed raw: ...%q...", format, []rune(out[i:])[0], out[max(0, i-40):min(len(out), i+40)])
		}
		// What was there is told by its escape.
		for _, want := range []string{`Evil\x1b]0;PWNED\a`, `\u202e`, `\u2066`, `rev\x1b`, `\u2028\u009b2J`, `GeoIP\x1bP`, `\x7f`} {
			if format == FormatMarkdown || format == FormatJSON {
				// Markdown escapes "[" and "\"; JSON its backslashes.
				want = strings.NewReplacer(`\`, `\\`, `[`, `\[`, `]`, `\]`).Replace(want)
				if format == FormatJSON {
					want = strings.NewReplacer(`\[`, `[`, `\]`, `]`).Replace(want)
				}
			}
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q", format, want)
			}
		}
		switch format {
		case FormatHTML:
			if strings.Contains(out, "<script") || strings.Contains(out, "<svg/onload") || strings.Contains(out, "<img") {
				t.Error("the page holds markup from a label")
			}
			// The right-to-left mark of a name in Hebrew or Arabic opens
			// nothing, and is kept.
			if !strings.Contains(out, "\u200f") {
				t.Error("the page lost the right-to-left mark of the authority's name")
			}
		case FormatMarkdown:
			if strings.Contains(out, "| forged | 999 |") {
				t.Error("the Markdown has a table row from a bundle revision")
			}
		case FormatCSV:
			if _, err := csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil {
				t.Errorf("the CSV does not parse: %v", err)
			}
		case FormatJSON:
			var doc struct {
				Authorities []struct {
					Authority     string `json:"authority"`
					AuthorityName string `json:"authority_name"`
				} `json:"authorities"`
			}
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Authorities) != 1 || !strings.HasPrefix(doc.Authorities[0].AuthorityName, `Evil\x1b]0;PWNED\a`) {
				t.Errorf("the JSON: %v, %+v", err, doc)
			}
		}
	}
}
