package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Formats a report renders to.
const (
	FormatMarkdown = "md"
	FormatCSV      = "csv"
	FormatJSON     = "json"
	FormatHTML     = "html"
)

// Formats lists the formats.
var Formats = []string{FormatMarkdown, FormatCSV, FormatJSON, FormatHTML}

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case FormatMarkdown:
		return "text/markdown; charset=utf-8"
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatJSON:
		return "application/json"
	case FormatHTML:
		return "text/html; charset=utf-8"
	}
	return "application/octet-stream"
}

// Render writes the report in format (one of Formats).
func (r *Report) Render(w io.Writer, format string) error {
	switch format {
	case FormatMarkdown:
		return r.Markdown(w)
	case FormatCSV:
		return r.CSV(w)
	case FormatJSON:
		return r.JSON(w)
	case FormatHTML:
		return r.HTML(w)
	}
	return fmt.Errorf("unknown report format %q (want %s)", format, strings.Join(Formats, ", "))
}

// JSON writes the report as one indented JSON object. Counts are numbers,
// or the suppression marker ("<5") as a string.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<5", not "\u003c5"
	return enc.Encode(r)
}

// inert is a CSV cell that no spreadsheet reads as a formula (see CSV):
// each part of it between semicolons that starts with "=", "+", "-", "@",
// a tab or a carriage return, after any spaces, is written after a "'". A
// spreadsheet whose locale separates lists with ";" (German, French,
// Dutch...) splits a line of this file at its semicolons as well as its
// commas, and the writer quotes a cell for a comma, not a semicolon: a
// name "Ministry;=cmd|..." was there a cell "=cmd|..." of its own.
func inert(cell string) string {
	parts := strings.Split(cell, ";")
	for i, p := range parts {
		if t := strings.TrimLeft(p, " "); t != "" && strings.ContainsRune("=+-@\t\r", rune(t[0])) {
			parts[i] = "'" + p
		}
	}
	return strings.Join(parts, ";")
}

// PeriodText is the period in words, dates in UTC.
func (r *Report) PeriodText() string {
	return fmt.Sprintf("from %s up to, not including, %s (UTC)", timeText(r.Period.Since), timeText(r.Period.Until))
}

// timeText is a date when t is midnight UTC, else an RFC 3339 time with
// as many fractional digits as it has: a period of sub-second bounds
// must read as the period it is.
func timeText(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}

// CSV writes the report as one long-format table with the header
//
//	section,authority,jurisdiction,key,value
//
// one row per figure. authority and jurisdiction are "(all)" for figures
// over every authority; a jurisdiction of several countries is
// space-separated. key names the figure within its section, with a dot
// between a breakdown and the measure ("end_meeting.refused",
// "CN.remove_participant", "DBIP-Country-Lite@2026-06-01T20:32:58Z.decisions").
// value is a number, the suppression marker ("<5"), true/false, or text
// (report metadata and first/last seen dates).
//
// A cell that a spreadsheet would read as a formula (starting with "=",
// "+", "-", "@", a tab or a carriage return, or any part of it after a
// ";", which separates cells in some locales) is written after a "'":
// authority ids and names come from the registry, refusal codes and order
// ids from the policy and from submitted orders, and a report is opened
// by people who trust it.
func (r *Report) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	all := [2]string{AllAuthorities, AllAuthorities}
	row := func(section string, who [2]string, key string, value any) {
		_ = cw.Write([]string{section, inert(who[0]), inert(who[1]), inert(key), inert(fmt.Sprint(value))})
	}
	_ = cw.Write([]string{"section", "authority", "jurisdiction", "key", "value"})
	row("report", all, "title", r.Title)
	row("report", all, "since", r.Period.Since.Format(time.RFC3339Nano))
	row("report", all, "until", r.Period.Until.Format(time.RFC3339Nano))
	row("report", all, "min_count", r.MinCount)
	row("report", all, "suppressed_marker", r.Suppressed)
	row("report", all, "withheld_marker", r.Withheld)
	row("report", all, "violation", r.Violation)
	if r.Violation {
		row("report", all, "violation_text", r.ViolationText)
	}
	if r.Incomplete != "" {
		row("report", all, "incomplete", r.Incomplete)
	}
	if r.LedgerHead != "" {
		row("report", all, "ledger_head", r.LedgerHead)
	}
	if r.Unpinned != "" {
		row("report", all, "unpinned", r.Unpinned)
	}
	row("report", all, "attribution", r.Attribution)
	row("summary", all, "decisions_recorded", r.Summary.Decisions)
	row("summary", all, "admissions_recorded", r.Summary.Admissions)
	row("summary", all, "plain_admissions", r.Summary.PlainAdmissions)
	row("summary", all, "plain_admissions_under_order", r.Summary.PlainUnderOrder)
	row("summary", all, "quiet_decisions", r.Summary.QuietDecisions)
	for _, g := range r.groups() {
		who := [2]string{g.Authority, strings.Join(g.Jurisdiction, " ")}
		if g.Authority == AllAuthorities {
			who = all
		}
		row("outside_affected", who, "value", g.OutsideAffected.Value)
		row("outside_affected", who, "action_records", g.OutsideAffected.ActionRecords)
		row("outside_affected", who, "unproven_meeting_actions", g.OutsideAffected.Unproven)
		row("outside_affected", who, "proved_zero", g.OutsideAffected.Proved)
		if g.AuthorityName != "" {
			row("orders", who, "authority_name", g.AuthorityName)
		}
		row("orders", who, "decisions", g.Decisions)
		row("orders", who, "cited", g.OrdersCited)
		row("orders", who, "received", g.OrdersReceived)
		st := g.OrdersByStatus
		row("orders_by_status", who, "orders", st.Orders)
		row("orders_by_status", who, "in_force_during_period", st.InForceDuringPeriod)
		row("orders_by_status", who, "revoked_in_period", st.RevokedInPeriod)
		row("orders_by_status", who, "expired_in_period", st.ExpiredInPeriod)
		for _, sc := range st.AtEnd {
			row("orders_by_status", who, "at_end."+sc.Status, sc.Orders)
		}
		for _, d := range append(slices.Clone(g.Demands), g.DemandsTotal) {
			row("demands", who, d.Demand+".orders", d.Orders)
			row("demands", who, d.Demand+".evaluated", d.Evaluated)
			row("demands", who, d.Demand+".granted", d.Granted)
			row("demands", who, d.Demand+".nothing_carried_out", d.NothingCarriedOut)
			row("demands", who, d.Demand+".narrowed", d.Narrowed)
			row("demands", who, d.Demand+".refused", d.Refused)
			row("demands", who, d.Demand+".not_decided", d.NotDecided)
		}
		for _, c := range g.RefusalReasons {
			row("refusal_reasons", who, c.Code, c.Count)
		}
		row("participant_actions", who, "remove_participant", g.ParticipantActions.RemoveParticipant)
		row("participant_actions", who, "deny_join", g.ParticipantActions.DenyJoin)
		row("participant_actions", who, "total", g.ParticipantActions.Total)
		for _, c := range g.ByCountry {
			row("participant_actions_by_country", who, c.Country+".remove_participant", c.RemoveParticipant)
			row("participant_actions_by_country", who, c.Country+".deny_join", c.DenyJoin)
			row("participant_actions_by_country", who, c.Country+".total", c.Total)
		}
		row("meeting_wide", who, "meetings_ended", g.MeetingWide.MeetingsEnded)
		row("meeting_wide", who, "accounts_suspended", g.MeetingWide.AccountsSuspended)
		row("meeting_wide", who, "affected_users", g.MeetingWide.AffectedUsers)
		row("meeting_wide", who, "affected_outside", g.MeetingWide.AffectedOutside)
		for _, c := range g.GuardBlocks {
			row("guard_blocks", who, c.Code, c.Count)
		}
		row("guard_blocks", who, "total", g.GuardBlocksTotal)
	}
	for _, s := range r.GeoIPDatabases {
		k := s.Name + "@" + s.Version
		row("geoip_databases", all, k+".decisions", s.Decisions)
		row("geoip_databases", all, k+".first_seen", s.FirstSeen)
		row("geoip_databases", all, k+".last_seen", s.LastSeen)
	}
	for _, s := range r.BundleRevisions {
		k := s.Name + "@" + s.Version
		row("bundle_revisions", all, k+".decisions", s.Decisions)
		row("bundle_revisions", all, k+".first_seen", s.FirstSeen)
		row("bundle_revisions", all, k+".last_seen", s.LastSeen)
	}
	cw.Flush()
	return cw.Error()
}

// groups is the totals followed by each authority.
func (r *Report) groups() []Group {
	return append([]Group{r.Totals}, r.Authorities...)
}

// Markdown writes the report as a Markdown document.
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# %s\n\n", md(r.Title))
	p("Period: %s.\n\n", r.PeriodText())
	p("%s\n\n", md(suppressionText(r.MinCount)))
	if r.MinCount > 1 {
		p("%s\n\n", md(withheldText(r.MinCount)))
	}
	if r.Violation {
		p("> **⚠ %s**\n\n", md(r.ViolationText))
	}
	if r.Incomplete != "" {
		p("> **⚠ %s**\n\n", md(r.Incomplete))
	}
	if r.Unpinned != "" {
		p("> **⚠ %s**\n\n", md(r.Unpinned))
	}

	p("## Users outside the jurisdiction affected\n\n")
	o := r.OutsideAffected
	if o.Proved {
		p("**%s.** Proved from the ledger: no action recorded in the period reached anyone located outside the jurisdiction of the authority whose order it carried out.\n\n", md(o.Statement))
	} else {
		p("**%s.**\n\n", md(o.Statement))
	}
	p("The guard blocks that kept it so:\n\n")
	codeTable(p, "guard block", o.GuardBlocks)

	p("## Summary\n\n")
	p("| figure | count |\n|---|---:|\n")
	p("| decisions recorded | %s |\n", r.Summary.Decisions)
	p("| admissions recorded (denied, or with something refused or blocked) | %s |\n", r.Summary.Admissions)
	p("| plain admissions (allowed, nothing to do) | %s |\n", r.Summary.PlainAdmissions)
	p("| of which to a meeting under an order | %s |\n", r.Summary.PlainUnderOrder)
	p("| decisions with nothing to do | %s |\n", r.Summary.QuietDecisions)
	p("| orders cited | %s |\n", r.Totals.OrdersCited)
	p("| orders received in the period | %s |\n", r.Totals.OrdersReceived)
	p("| participant-level actions | %s |\n", r.Totals.ParticipantActions.Total)
	p("| meetings ended | %s |\n", r.Totals.MeetingWide.MeetingsEnded)
	p("| accounts suspended | %s |\n", r.Totals.MeetingWide.AccountsSuspended)
	p("| guard blocks | %s |\n\n", r.Totals.GuardBlocksTotal)

	p("## Per authority\n\n")
	if len(r.Authorities) == 0 {
		p("No order was cited in the period.\n\n")
	} else {
		p("| authority | jurisdiction | decisions | orders cited | orders received | granted | narrowed | refused | participant actions | meetings ended | accounts suspended | guard blocks | users outside affected |\n")
		p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, g := range r.Authorities {
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n",
				md(g.Label()), md(g.JurisdictionText()), g.Decisions, g.OrdersCited, g.OrdersReceived,
				g.DemandsTotal.Granted, g.DemandsTotal.Narrowed, g.DemandsTotal.Refused,
				g.ParticipantActions.Total, g.MeetingWide.MeetingsEnded, g.MeetingWide.AccountsSuspended,
				g.GuardBlocksTotal, g.OutsideAffected.Value)
		}
		p("\n")
	}

	for _, g := range r.groups() {
		switch g.Authority {
		case AllAuthorities:
			p("## All authorities\n\n")
			p("Decisions and admissions recorded: %s. Orders cited: %s. Orders received in the period: %s.\n\n", g.Decisions, g.OrdersCited, g.OrdersReceived)
		case Unattributed:
			p("## %s\n\n", md(g.Label()))
			p("Actions and guard blocks that cite an order the decision did not evaluate.\n\n")
		default:
			p("## %s — jurisdiction %s\n\n", md(g.Label()), md(g.JurisdictionText()))
			p("Decisions citing its orders: %s. Orders cited: %s. Orders received in the period: %s.\n\n", g.Decisions, g.OrdersCited, g.OrdersReceived)
		}
		if g.Authority != Unattributed {
			statusTable(p, g.OrdersByStatus)
		}
		p("### Demands and outcomes\n\n")
		if len(g.Demands) == 0 {
			p("No demand.\n\n")
		} else {
			p("| demand | orders | evaluated | granted as asked | nothing carried out | narrowed to participants | refused | not decided |\n")
			p("|---|---:|---:|---:|---:|---:|---:|---:|\n")
			for _, d := range g.Demands {
				p("| %s | %s | %s | %s | %s | %s | %s | %s |\n", md(d.Demand), d.Orders, d.Evaluated, d.Granted, d.NothingCarriedOut, d.Narrowed, d.Refused, d.NotDecided)
			}
			p("\n")
		}
		p("### Refusal reasons\n\n")
		codeTable(p, "refusal code", g.RefusalReasons)
		p("### Participant-level actions\n\n")
		p("| action | count |\n|---|---:|\n")
		p("| remove_participant | %s |\n| deny_join | %s |\n| total | %s |\n\n",
			g.ParticipantActions.RemoveParticipant, g.ParticipantActions.DenyJoin, g.ParticipantActions.Total)
		if len(g.ByCountry) > 0 {
			p("| located country | remove_participant | deny_join | total |\n|---|---:|---:|---:|\n")
			for _, c := range g.ByCountry {
				p("| %s | %s | %s | %s |\n", md(c.Country), c.RemoveParticipant, c.DenyJoin, c.Total)
			}
			p("\n")
		}
		p("### Meeting terminations and account suspensions\n\n")
		p("Meetings ended: %s. Accounts suspended: %s. %s.\n\n", g.MeetingWide.MeetingsEnded, g.MeetingWide.AccountsSuspended, upperFirst(md(g.MeetingWide.Statement)))
		p("### Guard blocks\n\n")
		codeTable(p, "guard block", g.GuardBlocks)
		p("### Users outside the jurisdiction affected\n\n")
		p("**%s.**\n\n", md(g.OutsideAffected.Statement))
	}

	p("## GeoIP databases and policy bundles in use\n\n")
	seenTable(p, "GeoIP database", "build", r.GeoIPDatabases)
	seenTable(p, "bundle", "revision", r.BundleRevisions)

	p("## Method\n\n")
	for _, n := range r.Notes {
		p("- %s\n", md(n))
	}
	if r.LedgerHead != "" {
		p("- %s\n", r.ledgerHeadNote(func(s string) string { return "`" + s + "`" }))
	}
	p("\nGeolocation: [IP Geolocation by DB-IP](https://db-ip.com), licensed under [CC BY 4.0](https://creativecommons.org/licenses/by/4.0/).\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// statusText is a status as the report words it.
func statusText(status string) string {
	switch status {
	case "in_force":
		return "in force"
	case "not_yet_effective":
		return "not yet effective"
	}
	return strings.ReplaceAll(status, "_", " ")
}

func statusTable(p func(string, ...any), st OrderStatuses) {
	p("### Orders by status\n\n")
	if st.Orders.Zero() {
		p("No order.\n\n")
		return
	}
	p("| orders stated in the period | count |\n|---|---:|\n")
	p("| all | %s |\n", st.Orders)
	p("| in force at some time in the period | %s |\n", st.InForceDuringPeriod)
	p("| revoked in the period | %s |\n", st.RevokedInPeriod)
	p("| expired in the period | %s |\n", st.ExpiredInPeriod)
	for _, sc := range st.AtEnd {
		p("| at the end of the period: %s | %s |\n", statusText(sc.Status), sc.Orders)
	}
	p("\n")
}

func codeTable(p func(string, ...any), what string, rows []CodeCount) {
	if len(rows) == 0 {
		p("None.\n\n")
		return
	}
	p("| %s | count |\n|---|---:|\n", what)
	for _, c := range rows {
		p("| %s | %s |\n", md(c.Code), c.Count)
	}
	p("\n")
}

func seenTable(p func(string, ...any), what, version string, rows []Seen) {
	if len(rows) == 0 {
		p("No %s in use in the period.\n\n", what)
		return
	}
	p("| %s | %s | decisions | first seen | last seen |\n|---|---|---:|---|---|\n", what, version)
	for _, s := range rows {
		p("| %s | %s | %s | %s | %s |\n", md(s.Name), md(s.Version), s.Decisions, s.FirstSeen, s.LastSeen)
	}
	p("\n")
}

// md escapes text for a Markdown table cell or paragraph: the characters
// that could end a cell, start emphasis, code or a link, or open an HTML
// tag ("<5" stays as it is).
func md(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch r {
		case '|', '\\', '*', '`', '[', ']':
			b.WriteByte('\\')
		case '<':
			if i+1 < len(rs) && (unicode.IsLetter(rs[i+1]) || rs[i+1] == '/' || rs[i+1] == '!' || rs[i+1] == '?') {
				b.WriteByte('\\')
			}
		case '_':
			// Only a word boundary underscore can start or end emphasis.
			if i == 0 || i == len(rs)-1 || !isWord(rs[i-1]) || !isWord(rs[i+1]) {
				b.WriteByte('\\')
			}
		case '\n', '\r':
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
