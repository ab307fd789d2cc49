package report

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/geoscope/geoscope/engine/geo/dbip"
	"github.com/geoscope/geoscope/engine/input"
)

// title is the report's title.
const title = "Transparency report on government demands"

// attribution credits the embedded geolocation data (CC BY 4.0).
const attribution = dbip.Attribution

// Report is a transparency report. Every count is a Cell, already
// suppressed; only the users affected outside a jurisdiction (and the
// unproven actions) are plain numbers, because they are never suppressed.
type Report struct {
	Title      string    `json:"title"`
	Period     PeriodOut `json:"period"`
	MinCount   int       `json:"min_count"`
	Suppressed string    `json:"suppressed_marker"` // "<5": the text of a suppressed cell
	// Withheld is the text of a cell withheld so that a suppressed one
	// cannot be worked out from it ("5+": 5 or more).
	Withheld string `json:"withheld_marker"`
	// Violation is true when any user outside a jurisdiction was affected,
	// or a meeting-wide action cannot be shown to have affected only users
	// inside. ViolationText then says so in words.
	Violation     bool   `json:"violation"`
	ViolationText string `json:"violation_text,omitempty"`
	// Incomplete, when set, says that entries recorded in the data
	// directory's journal were not in the database, and so not counted
	// (a reader of a crashed SQLite ledger; see ledger.Ledger.Unseen).
	Incomplete string `json:"incomplete,omitempty"`
	// LedgerHead is the link of the ledger's last chained entry after the
	// report's entries were read (ledger.Head): every chained entry it
	// counted, and every other one recorded before it, is under it. Whoever keeps a published report
	// can check later that none of them was altered or removed since
	// (`geoscope ledger verify --head LINK`). Only the link is printed,
	// not its number: two reports' numbers would give the exact count of
	// entries recorded between them, which the suppression hides. Absent
	// for a ledger without a chain, or with no entry in it yet, and left
	// out by a server answering a report without an admin token (see
	// engine/server, serveReport).
	LedgerHead string `json:"ledger_head,omitempty"`
	// Unpinned, when set, says why there is no LedgerHead though the
	// ledger has entries: some had no link yet, or the ledger no chain
	// yet (unpinnedText).
	Unpinned string `json:"unpinned,omitempty"`
	// PeriodPicker puts, in the HTML page, a form asking the page's own
	// URL for another period: set by a server, which reads it (GET
	// /report). A page written to a file (geoscope report) has none: its
	// form would load the same file, the same period, and a reader who
	// asked for another would take it for one without decisions.
	PeriodPicker bool `json:"-"`
	// periodEnded: the period had ended (and settled) when the report was
	// built, so the head's check may include it (ledgerHeadNote).
	periodEnded bool
	// OutsideAffected is the totals' figure, repeated at the top.
	OutsideAffected OutsideAffected `json:"outside_affected"`
	Summary         Summary         `json:"summary"`
	Totals          Group           `json:"totals"`
	Authorities     []Group         `json:"authorities"`
	GeoIPDatabases  []Seen          `json:"geoip_databases"`
	BundleRevisions []Seen          `json:"bundle_revisions"`
	Attribution     string          `json:"attribution"`
	Notes           []string        `json:"notes"`
}

// PeriodOut is the period as reported.
type PeriodOut struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"` // exclusive
}

// Summary counts the decisions of the period.
type Summary struct {
	// Decisions and Admissions are the entries recorded one by one: every
	// decision and admission that carried out, refused or blocked
	// something, or denied an admission.
	Decisions  Cell `json:"decisions_recorded"`
	Admissions Cell `json:"admissions_recorded"`
	// PlainAdmissions are admissions allowed with nothing to do, counted in
	// the ledger's aggregate rows; PlainUnderOrder of them were to a
	// meeting under an order (the participant was located outside its
	// jurisdiction, or the order demands nothing at join time).
	PlainAdmissions Cell `json:"plain_admissions"`
	PlainUnderOrder Cell `json:"plain_admissions_under_order"`
	// QuietDecisions are decisions with nothing to do, counted in the
	// aggregate rows.
	QuietDecisions Cell `json:"quiet_decisions"`
}

// Group is the report for one authority and the jurisdiction the registry
// gave it (or the totals, or what cannot be attributed to an order).
type Group struct {
	Authority      string   `json:"authority"`
	AuthorityName  string   `json:"authority_name,omitempty"`
	Jurisdiction   []string `json:"jurisdiction"`
	Decisions      Cell     `json:"decisions"` // entries citing an order of the authority
	OrdersCited    Cell     `json:"orders_cited"`
	OrdersReceived Cell     `json:"orders_received"`
	// OrdersByStatus breaks down the authority's orders the period's
	// entries state, in force or not, by status over the period.
	OrdersByStatus OrderStatuses `json:"orders_by_status"`
	// Demands has one row per demand type, with the outcome of every
	// (decision, order, demand).
	Demands []DemandRow `json:"demands"`
	// DemandsTotal sums the rows of Demands (Demand is "(all)").
	DemandsTotal       DemandRow          `json:"demands_total"`
	RefusalReasons     []CodeCount        `json:"refusal_reasons"`
	ParticipantActions ParticipantActions `json:"participant_actions"`
	ByCountry          []CountryRow       `json:"participant_actions_by_country"`
	MeetingWide        MeetingWide        `json:"meeting_wide"`
	GuardBlocks        []CodeCount        `json:"guard_blocks"`
	GuardBlocksTotal   Cell               `json:"guard_blocks_total"`
	OutsideAffected    OutsideAffected    `json:"outside_affected"`
}

// Label is the group's authority for display.
func (g Group) Label() string {
	switch g.Authority {
	case AllAuthorities:
		return "All authorities"
	case Unattributed:
		return "Not attributable to an order the decision evaluated"
	}
	if g.AuthorityName != "" {
		return g.AuthorityName + " (" + g.Authority + ")"
	}
	return g.Authority
}

// IsUnattributed reports whether the group holds what cites an order the
// decision did not evaluate.
func (g Group) IsUnattributed() bool { return g.Authority == Unattributed }

// JurisdictionText is the jurisdiction for display.
func (g Group) JurisdictionText() string {
	if g.Authority == AllAuthorities {
		return "(all)"
	}
	if len(g.Jurisdiction) == 0 {
		return "(none)"
	}
	return strings.Join(g.Jurisdiction, ", ")
}

// DemandRow is the outcomes of one demand type.
type DemandRow struct {
	Demand    string `json:"demand"`
	Orders    Cell   `json:"orders"`    // distinct orders making this demand
	Evaluated Cell   `json:"evaluated"` // (decision, order) pairs
	Granted   Cell   `json:"granted"`
	// NothingCarriedOut: remove_participants evaluated, not refused, and
	// no participant removed for the order.
	NothingCarriedOut Cell `json:"nothing_carried_out"`
	Narrowed          Cell `json:"narrowed"`
	Refused           Cell `json:"refused"`
	NotDecided        Cell `json:"not_decided"`
}

// OrderStatuses counts the orders the period's entries state (the orders
// evaluated and those reported not in force), each once, by status over
// the period, from the period of validity and revocation the ledger
// stated last in the period. An order listed by no entry (one targeting a
// meeting nobody asked about) is not counted: the report holds what the
// ledger holds.
type OrderStatuses struct {
	// Orders is every order counted.
	Orders Cell `json:"orders"`
	// InForceDuringPeriod are those in force at some time in the period.
	InForceDuringPeriod Cell `json:"in_force_during_period"`
	// RevokedInPeriod and ExpiredInPeriod are those whose revocation, or
	// whose end, fell in the period: the first instant no longer in force
	// (for a date-only expires, the start of the next day). An order is
	// thus never both in force at the period's end and expired in it; one
	// that expires with the period's last day is expired in the next.
	RevokedInPeriod Cell `json:"revoked_in_period"`
	ExpiredInPeriod Cell `json:"expired_in_period"`
	// AtEnd is each order's status at the end of the period (its last
	// instant): a row per status (in_force, not_yet_effective, expired,
	// revoked), in that order, always all four; they add up to Orders.
	AtEnd []StatusCount `json:"at_end"`
}

// StatusCount is a count of orders with one status.
type StatusCount struct {
	Status string `json:"status"`
	Orders Cell   `json:"orders"`
}

// CodeCount is a count by refusal or guard block code.
type CodeCount struct {
	Code  string `json:"code"`
	Count Cell   `json:"count"`
}

// ParticipantActions counts the participant-level actions carried out.
type ParticipantActions struct {
	RemoveParticipant Cell `json:"remove_participant"`
	DenyJoin          Cell `json:"deny_join"`
	Total             Cell `json:"total"`
}

// CountryRow counts participant-level actions by located country.
type CountryRow struct {
	Country string `json:"country"`
	// Inside is whether the country is in the group's jurisdiction; nil
	// (absent) in the totals over all authorities, which have none.
	Inside            *bool `json:"inside_jurisdiction,omitempty"`
	RemoveParticipant Cell  `json:"remove_participant"`
	DenyJoin          Cell  `json:"deny_join"`
	Total             Cell  `json:"total"`
}

// MeetingWide counts the meeting terminations and account suspensions
// carried out, and the users they reached.
type MeetingWide struct {
	MeetingsEnded     Cell   `json:"meetings_ended"`
	AccountsSuspended Cell   `json:"accounts_suspended"`
	AffectedUsers     Cell   `json:"affected_users"`   // per action: a user reached by two actions counts twice
	AffectedOutside   int    `json:"affected_outside"` // never suppressed
	Statement         string `json:"statement"`
}

// OutsideAffected is the proved figure: users outside the jurisdiction
// affected, computed from the action records.
type OutsideAffected struct {
	Value         int         `json:"value"`
	ActionRecords Cell        `json:"action_records"`
	Unproven      int         `json:"unproven_meeting_actions"`
	Proved        bool        `json:"proved_zero"`
	Statement     string      `json:"statement"`
	GuardBlocks   []CodeCount `json:"guard_blocks"`
}

// Seen is a GeoIP database build or a bundle revision in use in the
// period, with the days it was first and last used.
type Seen struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Decisions Cell   `json:"decisions"`
	FirstSeen string `json:"first_seen"`
	// LastSeen is empty when Decisions is hidden: two days of use would
	// tell there were two decisions at least.
	LastSeen string `json:"last_seen"`
}

// Cell is a count as published: the number, the suppression marker ("<5")
// when it is from 1 to the threshold minus one, or the withheld marker
// ("5+") when it is at least the threshold but would give a suppressed
// count away by subtraction (see protect.go). The number itself is not
// exported, so nothing outside this package can print a hidden count by
// mistake.
type Cell struct {
	n   int
	min int
	// withheld: hidden to protect a suppressed count (protect.go).
	withheld bool
}

// small reports whether the count is suppressed for itself: from 1 to the
// threshold minus one.
func (c Cell) small() bool { return c.n >= 1 && c.n < c.min }

// Suppressed reports whether the cell is hidden: shown as the suppression
// marker ("<5") or the withheld marker ("5+").
func (c Cell) Suppressed() bool { return c.small() || c.withheld }

// Withheld reports whether the cell is shown as the withheld marker: at
// least the threshold, hidden so that a suppressed count cannot be worked
// out from it.
func (c Cell) Withheld() bool { return c.withheld && !c.small() }

// Zero reports whether the count is 0 (never hidden).
func (c Cell) Zero() bool { return c.n == 0 }

// String is the published text: the number, "<5" or "5+".
func (c Cell) String() string {
	switch {
	case c.small():
		return "<" + strconv.Itoa(c.min)
	case c.withheld:
		return withheldMarker(c.min)
	}
	return strconv.Itoa(c.n)
}

// withheldMarker is the text of a withheld cell: "5+" for a threshold of 5.
func withheldMarker(minCount int) string { return strconv.Itoa(minCount) + "+" }

// MarshalJSON writes a number, or the marker as a string.
func (c Cell) MarshalJSON() ([]byte, error) {
	if c.Suppressed() {
		return []byte(strconv.Quote(c.String())), nil
	}
	return []byte(strconv.Itoa(c.n)), nil
}

func outsideText(o OutsideAffected) string {
	s := fmt.Sprintf("%d, computed from %s action records", o.Value, o.ActionRecords)
	if o.Unproven > 0 {
		s += fmt.Sprintf("; %d meeting terminations recorded without who they reached cannot be shown to have affected only users inside", o.Unproven)
	}
	return s
}

func meetingWideText(m MeetingWide) string {
	if m.MeetingsEnded.Zero() && m.AccountsSuspended.Zero() {
		return "no meeting was ended and no account was suspended"
	}
	if m.AffectedOutside == 0 {
		return fmt.Sprintf("all %s affected users were located inside the jurisdiction", m.AffectedUsers)
	}
	return fmt.Sprintf("%d of the %s affected users were NOT located inside the jurisdiction", m.AffectedOutside, m.AffectedUsers)
}

// ViolationDetail is ViolationText without its "VIOLATION: " prefix, for
// under a heading that says it.
func (r *Report) ViolationDetail() string {
	return strings.TrimPrefix(r.ViolationText, violationPrefix)
}

const violationPrefix = "VIOLATION: "

func violationText(o OutsideAffected) string {
	var parts []string
	if o.Value > 0 {
		parts = append(parts, fmt.Sprintf("%d users located outside the jurisdiction of the demanding authority (or at an unknown location) were affected by actions in the ledger", o.Value))
	}
	if o.Unproven > 0 {
		parts = append(parts, fmt.Sprintf("%d meeting terminations were recorded without who they reached", o.Unproven))
	}
	return violationPrefix + strings.Join(parts, "; ") + ". geoscope's guard must never let this happen: investigate the decisions of this period (geoscope ledger export) and report it."
}

// suppressionText explains the suppression threshold.
func suppressionText(minCount int) string {
	switch {
	case minCount <= 1:
		return "No count is suppressed (minimum count 1)."
	case minCount == 2:
		return "Counts of 1 are shown as <2, so that no single case can be singled out. The number of users affected outside a jurisdiction, and any violation, are never suppressed."
	}
	return fmt.Sprintf("Counts from 1 to %d are shown as <%d, so that no small group can be singled out. The number of users affected outside a jurisdiction, and any violation, are never suppressed.", minCount-1, minCount)
}

// withheldText explains the withheld and masked cells.
func withheldText(minCount int) string {
	return fmt.Sprintf("Where a hidden count could otherwise be worked out from the sums the report publishes (the counts of a row, a column or a total, across outcomes, actions, countries, codes, statuses or authorities, and the bounds between them) together with what the markers say, more counts are withheld and shown as %s: each is %d or more. Rows are listed by the counts shown, then the hidden ones by name, and a build or revision whose count is hidden is shown without the day it was last used. The counts are checked by bounding each hidden one through every sum in turn; someone who solves all the sums together exactly may still narrow a hidden count down, and where every count of a sum is hidden, as many counts of at least 1 as its total can hold at most are each 1 (four counts each <%d under a total <%d). In a report with a violation, the users affected outside a jurisdiction are never hidden, and neither, through them, are the counts of the countries outside it.",
		withheldMarker(minCount), minCount, minCount, minCount)
}

func notes(minCount int) []string {
	n := []string{
		"Every figure is counted from the enforcement ledger: the entries committed for decisions in the period, and the ledger's aggregate counts of decisions with nothing to do. Nothing else is used. The ledger records what geoscope decided and answered: the meeting platform carries the decisions out, and whether it did is not recorded, so a meeting ended, an account suspended or a participant removed here is one decided.",
		suppressionText(minCount),
		"Users affected outside the jurisdiction are computed from the action records: 1 for each participant-level action whose located country is outside the jurisdiction, and for each meeting termination or account suspension everyone it reached who was located outside (or at an unknown location), plus the account itself when registered outside.",
		"Outcomes are counted for each decision, order and demand: granted as asked; nothing carried out (participants' removal not refused, but no participant removed for the order: nobody it could reach was located inside the jurisdiction, or the policy exempted them, or the guard dropped its actions); narrowed to participant level (refused as asked, but the participants located inside were acted on); refused (nothing carried out for the order); not decided (a join-time decision only decides admissions).",
		"Users reached by meeting terminations and account suspensions are counted per action: someone reached by both counts twice.",
		"Orders received are the orders cited in the ledger (in the period or later) whose received date falls in the period.",
		"Orders by status counts each order the period's entries state, evaluated or reported not in force, once, from the period of validity and revocation the ledger stated last in the period: whether it was in force at some time in the period, whether it was revoked or expired in the period, and its status at the end of the period. Dates written as days are UTC days: an order is in force from the start of its effective day and through the end of its expiry day, so one whose expiry day is the period's last day is in force at its end and counted as expired in the next period.",
		"A decision recorded one by one whose request its client sent again (the same X-Request-Id and body, within 2 minutes of the attempt before it: a retry after an answer was lost) and that was decided alike is counted once, in the period of its first attempt; decided differently, each is counted. Aggregate counts count every request.",
		"Aggregate counts are kept per UTC day: they cover the days from the first day of the period up to, not including, the day of its end.",
		"The report identifies nobody: it holds no participant, account, meeting, network or decision.",
	}
	if minCount > 1 {
		n = slices.Insert(n, 2, withheldText(minCount))
	}
	return n
}

// ledgerHeadNote says what the ledger head printed in a report is for;
// code formats the link and the command (Markdown's backticks, HTML's
// code element).
func (r *Report) ledgerHeadNote(code func(string) string) string {
	lead := "Ledger head when this report was built: " + code(r.LedgerHead) + ". Every entry this report counted is chained under it: "
	cmd := "geoscope ledger verify --head " + r.LedgerHead
	if !r.periodEnded {
		return lead + code(cmd) + " on the ledger shows whether any of them was altered or removed since. (The period had not ended when the report was built, so entries added to it since cannot be told from those that came later.)"
	}
	cmd += " --since " + r.Period.Since.Format(time.RFC3339Nano) + " --until " + r.Period.Until.Format(time.RFC3339Nano)
	return lead + code(cmd) + " on the ledger shows whether any of them was altered or removed since, or an entry was added to the period."
}

// unpinnedText says that a report counted entries its head does not
// cover, and so prints none.
const unpinnedText = "NOT PINNED: the ledger holds entries recorded without a link (before the chain, or by an older replica), which a geoscope serve of this version links after the head; this report would read them, or its head would be taken for one they were added under, so it prints no ledger head. Build it again once `geoscope ledger verify` finds none."

// incompleteText says that n recorded entries are not counted.
func incompleteText(n int) string {
	return fmt.Sprintf("INCOMPLETE: %d recorded entries were in the ledger's journal and not yet in its database when this report was built (the server stopped before copying them), and are not counted. Start geoscope serve on the data directory, which copies them first, and build the report again.", n)
}

// shown is a label from outside the report (an authority's id, name and
// jurisdiction, a code, a country, a GeoIP database or a bundle revision)
// as every format prints it: with input.Visible's escapes. A registry may
// name an authority with any text, and a bundle's manifest give any
// revision: printed raw, an escape sequence ran in the terminal of
// whoever reads `geoscope report` (set its title, cleared the screen),
// and an override unclosed in a name reversed the counts after it on the
// line ("| 21 | 7 |" read "| 7 | 12 |").
func shown(s string) string { return input.Visible(s) }

// shownAll is shown applied to each label.
func shownAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = shown(x)
	}
	return out
}
