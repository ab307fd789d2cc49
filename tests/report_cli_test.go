package tests

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/internal/pgtest"
)

// rptSeedFigures are the figures of rptSeed's ledger over the first half of
// 2026, as the JSON report states them.
var rptSeedFigures = map[string]any{
	// 6×2 + 5, withheld: with the deny_join shown as <5, the total of 18
	// would give it away.
	"remove_participant": "5+",
	"participant_total":  18.0, // 17 + 1
	"deny_join":          "<5", // 1
	"meetings_ended":     "<5", // 1
	"outside":            0.0,  // never suppressed
	// 18 + 1, withheld: less the 18 participant actions, it would be the
	// meetings ended <5.
	"action_records":   "5+",
	"plain_admissions": 6.0, // counted, not stored
	"statement":        "0, computed from 5+ action records",
	// orders, evaluated, granted, narrowed, refused: 6 narrowed, withheld
	// (the 9 evaluated less it would be the granted <5).
	"end_meeting": []any{"<5", 9.0, "<5", "5+", 0.0},
}

// rptCheckFigures compares a JSON report with rptSeedFigures.
func rptCheckFigures(t *testing.T, raw []byte) {
	t.Helper()
	var r struct {
		Violation       bool `json:"violation"`
		OutsideAffected struct {
			Value         any    `json:"value"`
			ActionRecords any    `json:"action_records"`
			Statement     string `json:"statement"`
		} `json:"outside_affected"`
		Summary struct {
			PlainAdmissions any `json:"plain_admissions"`
		} `json:"summary"`
		Totals struct {
			ParticipantActions struct {
				RemoveParticipant any `json:"remove_participant"`
				DenyJoin          any `json:"deny_join"`
				Total             any `json:"total"`
			} `json:"participant_actions"`
			MeetingWide struct {
				MeetingsEnded any    `json:"meetings_ended"`
				Statement     string `json:"statement"`
			} `json:"meeting_wide"`
			Demands []struct {
				Demand                                        string
				Orders, Evaluated, Granted, Narrowed, Refused any
			} `json:"demands"`
		} `json:"totals"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s", err, raw)
	}
	got := map[string]any{
		"remove_participant": r.Totals.ParticipantActions.RemoveParticipant,
		"deny_join":          r.Totals.ParticipantActions.DenyJoin,
		"participant_total":  r.Totals.ParticipantActions.Total,
		"meetings_ended":     r.Totals.MeetingWide.MeetingsEnded,
		"outside":            r.OutsideAffected.Value,
		"action_records":     r.OutsideAffected.ActionRecords,
		"plain_admissions":   r.Summary.PlainAdmissions,
		"statement":          r.OutsideAffected.Statement,
	}
	for _, d := range r.Totals.Demands {
		if d.Demand == "end_meeting" {
			got["end_meeting"] = []any{d.Orders, d.Evaluated, d.Granted, d.Narrowed, d.Refused}
		}
	}
	for k, want := range rptSeedFigures {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(want) {
			t.Errorf("%s = %s, want %s", k, g, mustJSON(want))
		}
	}
	if r.Violation {
		t.Error("the report states a violation")
	}
	if want := "all 6 affected users were located inside the jurisdiction"; r.Totals.MeetingWide.Statement != want {
		t.Errorf("meeting-wide statement %q, want %q", r.Totals.MeetingWide.Statement, want)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestReportCLI(t *testing.T) {
	dir := t.TempDir()
	rptSeed(t, dir)
	period := []string{"--data-dir", dir, "--since", "2026-01-01", "--until", "2026-07-01"}

	res := runCLI(t, nil, append([]string{"report", "--format", "json"}, period...)...)
	if res.code != 0 {
		t.Fatalf("report --format json: %s", res)
	}
	rptCheckFigures(t, []byte(res.stdout))

	// Markdown by default; the figures and nothing identifying.
	res = runCLI(t, nil, append([]string{"report"}, period...)...)
	if res.code != 0 {
		t.Fatalf("report: %s", res)
	}
	for _, want := range []string{"# Transparency report on government demands", "**0, computed from 5+ action records.**", "| remove_participant | 5+ |", "[IP Geolocation by DB-IP](https://db-ip.com)"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("the Markdown report lacks %q", want)
		}
	}
	for _, never := range []string{"june4-b0", "control-cn", "acct-", "ps:0", "1.0.16.0/24", "00000000-0000-7000"} {
		if strings.Contains(res.stdout, never) {
			t.Errorf("the Markdown report contains %q", never)
		}
	}

	// CSV and HTML to --out files.
	out := filepath.Join(t.TempDir(), "report.csv")
	if res := runCLI(t, nil, append([]string{"report", "--format", "csv", "--out", out}, period...)...); res.code != 0 || res.stdout != "" {
		t.Fatalf("report --format csv --out: %s", res)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "section,authority,jurisdiction,key,value" {
		t.Errorf("CSV header %v", rows[0])
	}
	found := false
	for _, r := range rows {
		if strings.Join(r, ",") == "participant_actions,(all),(all),remove_participant,5+" {
			found = true
		}
	}
	if !found {
		t.Error("the CSV lacks participant_actions,(all),(all),remove_participant,5+")
	}
	html := filepath.Join(t.TempDir(), "report.html")
	if res := runCLI(t, nil, append([]string{"report", "--format", "html", "--out", html}, period...)...); res.code != 0 {
		t.Fatalf("report --format html: %s", res)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `<a href="https://db-ip.com">IP Geolocation by DB-IP</a>`) || !strings.Contains(string(page), "<svg") {
		t.Error("the HTML report lacks the attribution or the charts")
	}

	// Through a symbolic link, the file it points to is replaced and the
	// link kept; a pipe is refused, not replaced by a file; and a link
	// into the data directory is refused like a path in it.
	pub := t.TempDir()
	target, link := filepath.Join(pub, "2026-h1.md"), filepath.Join(t.TempDir(), "latest.md")
	if err := os.WriteFile(target, []byte("last year's\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, nil, append([]string{"report", "--out", link}, period...)...); res.code != 0 {
		t.Fatalf("report --out a link: %s", res)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(target); !strings.Contains(string(got), "# Transparency report") {
		t.Errorf("the link's target holds %.60q", got)
	}
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, nil, append([]string{"report", "--out", fifo}, period...)...); res.code != 2 || !strings.Contains(res.stderr, "is not a regular file") {
		t.Errorf("report --out a pipe: %s", res)
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe was replaced: %v %v", fi.Mode(), err)
	}
	intoLedger := filepath.Join(t.TempDir(), "r.md")
	if err := os.Symlink(filepath.Join(dir, "ledger.db"), intoLedger); err != nil {
		t.Fatal(err)
	}
	if res := runCLI(t, nil, append([]string{"report", "--out", intoLedger}, period...)...); res.code != 2 || !strings.Contains(res.stderr, "inside --data-dir") {
		t.Errorf("report --out a link into the data directory: %s", res)
	}

	// A higher threshold suppresses more.
	res = runCLI(t, nil, append([]string{"report", "--format", "json", "--min-count", "20"}, period...)...)
	if res.code != 0 || !strings.Contains(res.stdout, `"remove_participant": "<20"`) {
		t.Errorf("--min-count 20: %s", res)
	}
}

func TestReportCLIBadFlags(t *testing.T) {
	dir := t.TempDir()
	rptSeed(t, dir)
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--format", "pdf"}, "--format"},
		{[]string{"--since", "yesterday"}, "--since"},
		{[]string{"--until", "2026-13-01"}, "--until"},
		{[]string{"--since", "2026-07-01", "--until", "2026-01-01"}, "--until"},
		{[]string{"--min-count", "0"}, "--min-count"},
		{[]string{"--min-count", "many"}, "--min-count"},
		{[]string{"--data-dir", filepath.Join(dir, "nothing-here")}, "--data-dir"},
		{[]string{"--ledger", "off"}, "--ledger"},
		{[]string{"--ledger", "mysql://x"}, "--ledger"},
		{[]string{"extra-argument"}, ""},
	} {
		args := append([]string{"report", "--data-dir", dir}, tc.args...)
		res := runCLI(t, nil, args...)
		if res.code != 2 || res.stdout != "" {
			t.Errorf("%v: %s; want exit 2 and nothing on stdout", tc.args, res)
			continue
		}
		line := strings.TrimSpace(res.stderr)
		if strings.Contains(line, "\n") || !strings.HasPrefix(line, "geoscope: ") || !strings.Contains(line, tc.flag) {
			t.Errorf("%v: stderr %q does not name %s on one line", tc.args, res.stderr, tc.flag)
		}
	}
	// A read-only command leaves nothing behind in the data directory.
	entries, err := os.ReadDir(filepath.Join(dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "nothing-here" {
			t.Error("report created the --data-dir it was given")
		}
	}
}

// TestReportCLIPostgres reads the same ledger from PostgreSQL.
func TestReportCLIPostgres(t *testing.T) {
	pg := pgtest.New(t)
	rptSeedLedger(t, ledger.Config{URL: pg.URL(), DataDir: t.TempDir(), KeyFile: lgKeyFile(t)})
	res := runCLI(t, nil, "report", "--ledger", pg.URL(), "--since", "2026-01-01", "--until", "2026-07-01", "--format", "json")
	if res.code != 0 {
		t.Fatalf("report --ledger postgres://: %s", res)
	}
	rptCheckFigures(t, []byte(res.stdout))
}
