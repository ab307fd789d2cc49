// Package report builds geoscope's transparency report on government
// demands from the enforcement ledger, and nothing else: every figure is
// counted from the entries the ledger committed (and its aggregate count
// rows), so the report states the enforcement that actually happened, not
// what a policy or a counter claims.
//
// A report is aggregates only. It names no participant, account, meeting,
// network or decision; counts from 1 to MinCount-1 are suppressed (shown as
// "<5" for the default MinCount of 5) in every format, so that a small cell
// cannot single anyone out. Two figures are never suppressed: the number of
// users outside a jurisdiction who were affected, and any violation, since
// hiding a small violation would defeat the report's purpose.
//
// The users affected outside the jurisdiction are computed from the action
// records themselves, never read from a stored counter:
//
//   - a participant-level action (remove_participant, deny_join) whose
//     located country is not in its jurisdiction counts 1;
//   - an end_meeting or suspend_account action counts everyone it reached
//     (the action's Reached record) located outside its jurisdiction,
//     "unknown" included;
//   - a suspend_account action counts 1 more when the account's country is
//     outside.
//
// An end_meeting action without a Reached record cannot be shown to have
// affected only users inside, and is reported as a violation too.
//
// Each (decision, order, demand) has one outcome: granted as asked (the
// end_meeting or suspend_account action for the order exists; for
// remove_participants, participant actions exist), nothing carried out
// (remove_participants not refused, and no participant removed for the
// order: nobody it could reach was inside, or the policy exempted them, or
// the guard dropped its actions; the ledger keeps no roster to tell
// which), narrowed to participant level (refused, but the order's
// participant-level actions exist in the decision), refused (refused,
// nothing carried out for the order), or not decided (neither: a join-time
// decision decides only admissions).
//
// A report renders as Markdown, JSON, HTML (one self-contained page: inline
// CSS and SVG, no script, no external resource) and CSV. The CSV is one
// long-format table, "section,authority,jurisdiction,key,value", one row
// per figure, so that every section fits the same five columns and a
// spreadsheet can pivot it; see [Report.CSV].
//
// Suppression is primary and secondary: a count that would give a
// suppressed one away by subtraction from a published sum is withheld too,
// shown as "5+" (protect.go, which says what it does not protect against).
package report

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/ledger"
	"github.com/geoscope/geoscope/engine/registry"
)

// DefaultMinCount is the suppression threshold when Options.MinCount is 0:
// counts from 1 to 4 are shown as "<5".
const DefaultMinCount = 5

// Labels of the pseudo-authorities of a report.
const (
	// AllAuthorities labels the totals over every authority.
	AllAuthorities = "(all)"
	// Unattributed labels actions and guard blocks that cite an order the
	// entry does not state (a guard block of an unknown order, typically).
	Unattributed = "(unattributed)"
)

// Outcomes of a demand in one decision.
const (
	OutcomeGranted = "granted" // carried out as asked
	// OutcomeNothingCarriedOut: remove_participants not refused, and no
	// participant removed for the order (see above). Counted as granted, a
	// service-wide order evaluated for every meeting read as carried out
	// thousands of times while it removed nobody.
	OutcomeNothingCarriedOut = "nothing_carried_out"
	OutcomeNarrowed          = "narrowed"    // refused as asked, carried out at participant level
	OutcomeRefused           = "refused"     // refused, nothing carried out for the order
	OutcomeNotDecided        = "not_decided" // neither granted nor refused (a join-time decision decides only admissions)
)

// ErrPeriod is matched by errors for an unusable period.
var ErrPeriod = errors.New("invalid report period")

// Period is the half-open interval [Since, Until) a report covers.
type Period struct {
	Since, Until time.Time
}

// WithDefaults fills what is missing of a requested period with the year
// to date: Until defaults to the start of the UTC day after now (so today
// is included), Since to 1 January (UTC) of the year Until falls in.
func (p Period) WithDefaults(now time.Time) Period {
	if p.Until.IsZero() {
		p.Until = now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	}
	if p.Since.IsZero() {
		last := p.Until.UTC().Add(-time.Nanosecond) // the last instant in the period
		p.Since = time.Date(last.Year(), time.January, 1, 0, 0, 0, 0, time.UTC)
	}
	return p
}

// Options tune a report.
type Options struct {
	// MinCount is the suppression threshold: counts from 1 to MinCount-1
	// are shown as "<MinCount". 0 means DefaultMinCount; 1 suppresses
	// nothing.
	MinCount int
}

// Build reads the ledger's entries and aggregate counts for the period and
// aggregates them into a report.
func Build(ctx context.Context, l *ledger.Ledger, p Period, o Options) (*Report, error) {
	if p.Since.IsZero() || p.Until.IsZero() {
		return nil, fmt.Errorf("%w: since and until are both required", ErrPeriod)
	}
	if !p.Since.Before(p.Until) {
		return nil, fmt.Errorf("%w: since (%s) must be before until (%s)", ErrPeriod, p.Since.Format(time.RFC3339), p.Until.Format(time.RFC3339))
	}
	if o.MinCount == 0 {
		o.MinCount = DefaultMinCount
	}
	if o.MinCount < 1 {
		return nil, fmt.Errorf("min count %d: want 1 or more", o.MinCount)
	}
	a := newAggregator(p)
	var rd reader
	// The requests decided in the retryWindow before the period, so that
	// one sent again across its start is counted in the period before
	// only: a quarter's figures are then the sum of its months'.
	if err := rd.scan(ctx, l, ledger.Query{Since: p.Since.Add(-retryWindow), Until: p.Since}, a.priorEntry); err != nil {
		return nil, err
	}
	if err := rd.scan(ctx, l, ledger.Query{Since: p.Since, Until: p.Until}, a.entry); err != nil {
		return nil, err
	}
	// An order received in the period may first be enforced after it.
	if err := laterOrders(ctx, l, a); err != nil {
		return nil, err
	}
	rows, err := l.Counts(ctx, p.Since, p.Until)
	if err != nil {
		return nil, err
	}
	// The head last: an entry read above with a link had it when it was
	// read (from the commit, or the copy, that put it in the tables), so
	// it is under this head. A head read first would not cover those
	// committed between it and the reads. An entry without a link yet
	// (see ledger.Ledger.Unlinked) is under no head, and is linked after
	// it: a report prints none while any remains, in its period or not,
	// since `ledger verify --head` takes an entry chained after the head
	// and dated before its entries for one added to the ledger's past.
	unlinked, err := l.Unlinked(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	// After the count: an entry linked in between is then under the head.
	head, err := l.Head(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		a.countRow(r)
	}
	r := a.report(o.MinCount)
	if n := l.Unseen(); n > 0 {
		r.Incomplete = incompleteText(n)
	}
	r.LedgerHead = head.Link
	// The period can be checked for entries added to it only once it has
	// ended: until then, and for a little while after (an entry decided
	// before the end may be committed after), entries are still coming.
	r.periodEnded = !p.Until.After(time.Now().Add(-periodSettled))
	switch {
	case unlinked > 0:
		r.LedgerHead, r.Unpinned = "", unpinnedText
	case r.Incomplete != "":
		// The journal's entries are counted by nothing yet, and will be
		// chained after this head: a check of the period would take them
		// for entries added to it.
		r.LedgerHead = ""
	}
	return r, nil
}

// periodSettled is how long after a period's end its entries are taken
// as all recorded: a decision's commit is bounded by 10 s, a journaled
// entry is in the tables within a second, and a reader waits for it.
const periodSettled = time.Minute

// groupKey is one authority with the jurisdiction the registry gave it.
type groupKey struct {
	authority    string
	jurisdiction string // sorted, comma-joined
}

// tally holds the raw counts of one group. Raw counts never leave the
// package: report turns them into Cells.
type tally struct {
	key          groupKey
	name         string
	jurisdiction []string

	decisions     int
	ordersCited   map[string]bool
	demandOrders  map[string]map[string]bool // demand → order ids
	outcomes      map[string]map[string]int  // demand → outcome → n
	refusalCodes  map[string]int
	partActions   map[string]int            // remove_participant, deny_join
	byCountry     map[string]map[string]int // country → type → n
	ended         int
	suspended     int
	reachedTotal  int // users affected by end_meeting and suspend_account actions
	reachedOutOf  int // of which outside the jurisdiction
	actionRecords int
	outside       int
	unproven      int
	blocks        map[string]int
}

func newTally(k groupKey, jurisdiction []string) *tally {
	return &tally{
		key: k, jurisdiction: jurisdiction,
		ordersCited: map[string]bool{}, demandOrders: map[string]map[string]bool{},
		outcomes: map[string]map[string]int{}, refusalCodes: map[string]int{},
		partActions: map[string]int{}, byCountry: map[string]map[string]int{},
		blocks: map[string]int{},
	}
}

// orderInfo is what the report keeps of an order: its group and the date it
// was received.
type orderInfo struct {
	key      groupKey
	received string // YYYY-MM-DD, "" when unknown
}

// statedOrder is an order's group and its validity as last stated.
type statedOrder struct {
	key      groupKey
	validity registry.Validity
}

// seen is a value first and last seen in the period.
type seen struct {
	first, last time.Time
	n           int
}

type aggregator struct {
	period   Period
	sinceDay string
	untilDay string

	total  *tally
	groups map[groupKey]*tally
	orders map[string]orderInfo // every order cited, in the period or after
	// stated are the orders the period's entries state (evaluated or not
	// in force), with the validity the latest of them gave.
	stated map[string]statedOrder

	entries, admissionEntries int
	plainAdmissions           int64
	plainUnderOrder           int64
	quietDecisions            int64

	geo     map[[2]string]*seen // database, build
	bundles map[[2]string]*seen // bundle, revision

	// asked holds, for the requests decided in the last retryWindow
	// (sentAgain), when each was last decided (Unix nanoseconds); swept
	// when it has doubled since the last sweep.
	asked      map[[16]byte]int64
	askedSwept int

	// What entry works out again and again, kept, and its working memory,
	// reused: a report reads every entry of its period, and these were
	// half of the allocations of its reading once the entries were
	// decoded into reused memory (stored.go).
	receivedDays map[string]string                 // receivedDay of a stated date
	validities   map[validityKey]registry.Validity // RecordedValidity of stated dates
	geoBuild     time.Time                         // the last entry's GeoIP build,
	geoBuildText string                            // as RFC 3339, "" before the first
	digest       []byte                            // decidedAs's input
	sorted       []string                          // decidedAs's keys, entry's demands
	scratch      entryScratch
}

// entryScratch is entry's working memory, cleared for each entry.
type entryScratch struct {
	orders       map[string]ledger.Order
	touched      []*tally
	partByOrder  map[string]int
	typesByOrder map[[2]string]bool // (order, action type)
	refused      map[[2]string]bool
	counted      map[[3]string]bool
}

// validityKey is what RecordedValidity reads of an order.
type validityKey struct {
	effective, expires   string
	revoked              bool
	revokedOn, revokedBy string // the revocation's date and reason
}

// retryWindow is how long after a request was last decided the same
// request, sent again and decided alike, is counted with it rather than
// on its own. A client or a load balancer sends a request again when its
// answer is lost, within its own timeout and backoff: seconds, a minute
// at most for geoscope's Go client (it waits out a Retry-After of up to
// 60 s). The report remembers every request of the last retryWindow while
// it reads, about 40 bytes each.
const retryWindow = 2 * time.Minute

// sentAgain reports whether e answers a request already counted: the
// same request (Entry.Request: the same id, kind and body) decided alike
// (the same actions, refusals and guard blocks, on the same people)
// within retryWindow before it. A request decided differently the second
// time (the registry changed in between) is counted each time: the report
// cannot know which answer was acted on, and leaves out neither.
//
// The window runs from the attempt before, not from the first: whether an
// entry is counted then depends only on the entries of the retryWindow
// before it, which Build reads for the start of a period too. Counted
// from the first attempt, a third attempt would depend on entries any
// time before, and two adjacent periods could count it otherwise than
// one period covering both.
func (a *aggregator) sentAgain(e *ledger.Entry) bool {
	if e.Request == "" {
		return false
	}
	key := a.decidedAs(e)
	at := e.Time.UnixNano()
	last, ok := a.asked[key]
	again := ok && at-last >= 0 && at-last <= int64(retryWindow)
	if len(a.asked) >= 2*max(a.askedSwept, 1024) {
		for k, t := range a.asked {
			if at-t > int64(retryWindow) {
				delete(a.asked, k)
			}
		}
		a.askedSwept = len(a.asked)
	}
	a.asked[key] = at
	return again
}

// priorEntry notes an entry decided in the retryWindow before the
// period, counting nothing: the same request sent again in the period
// was counted in the period before.
func (a *aggregator) priorEntry(e *ledger.Entry) error {
	if !e.Preview {
		a.sentAgain(e)
	}
	return nil
}

// decidedAs is a digest of e's request and of everything the report counts
// of it: its kind, whether it admitted, the orders it evaluated or found
// not in force, the revisions it was decided with, and each action,
// refusal and guard block with whom and what it concerned.
//
// Its input is written into one buffer, reused from entry to entry, and
// digested at once: the same bytes as written to a hash one field at a
// time, without the hash, the copies and the sorted key lists each entry
// allocated.
func (a *aggregator) decidedAs(e *ledger.Entry) [16]byte {
	b := a.digest[:0]
	num := func(v int64) { b = binary.AppendVarint(b, v) }
	field := func(v string) {
		num(int64(len(v)))
		b = append(b, v...)
	}
	flag := func(f bool) {
		if f {
			num(1)
		} else {
			num(0)
		}
	}
	field(e.Request)
	field(e.Kind)
	flag(e.AllowJoin != nil)
	flag(e.AllowJoin != nil && *e.AllowJoin)
	for _, orders := range [2][]ledger.Order{e.Orders, e.OrdersNotInForce} {
		num(int64(len(orders)))
		for _, o := range orders {
			field(o.OrderID)
			field(o.Status)
		}
	}
	num(int64(len(e.Bundles)))
	for _, name := range sortedKeys(a, e.Bundles) {
		field(name)
		field(e.Bundles[name])
	}
	num(int64(len(e.Actions)))
	for _, x := range e.Actions {
		field(x.Type)
		field(x.OrderID)
		field(x.Subject)
		field(x.Country)
		field(strings.Join(x.Subdivisions, ",")) // allocates only for two or more
		flag(x.Host)
		num(int64(len(x.Reached)))
		for _, c := range sortedKeys(a, x.Reached) {
			field(c)
			num(int64(x.Reached[c]))
		}
	}
	num(int64(len(e.Refused)))
	for _, x := range e.Refused {
		field(x.OrderID)
		field(x.Demand)
		field(x.Code)
		num(int64(x.AffectedOutside))
	}
	num(int64(len(e.GuardBlocked)))
	for _, x := range e.GuardBlocked {
		field(x.Code)
		field(x.Type)
		field(x.OrderID)
		field(x.Subject)
	}
	a.digest = b
	sum := sha256.Sum256(b)
	return [16]byte(sum[:16])
}

// sortedKeys is m's keys in order, in memory reused by the next call.
func sortedKeys[V any](a *aggregator, m map[string]V) []string {
	a.sorted = a.sorted[:0]
	for k := range m {
		a.sorted = append(a.sorted, k)
	}
	slices.Sort(a.sorted)
	return a.sorted
}

func newAggregator(p Period) *aggregator {
	return &aggregator{
		period:   p,
		sinceDay: p.Since.UTC().Format(time.DateOnly),
		untilDay: p.Until.UTC().Format(time.DateOnly),
		total:    newTally(groupKey{authority: AllAuthorities}, nil),
		groups:   map[groupKey]*tally{},
		orders:   map[string]orderInfo{},
		stated:   map[string]statedOrder{},
		geo:      map[[2]string]*seen{},
		bundles:  map[[2]string]*seen{},
		asked:    map[[16]byte]int64{},

		receivedDays: map[string]string{},
		validities:   map[validityKey]registry.Validity{},
		scratch: entryScratch{
			orders: map[string]ledger.Order{}, partByOrder: map[string]int{}, typesByOrder: map[[2]string]bool{},
			refused: map[[2]string]bool{}, counted: map[[3]string]bool{},
		},
	}
}

// keyOf is the group of authority with jurisdiction, and the
// jurisdiction sorted without repeats: jurisdiction itself when it is
// already (as a registry states it, one country most often), which the
// caller then must not keep.
func keyOf(authority string, jurisdiction []string) (groupKey, []string) {
	j := jurisdiction
	if !sortedSet(j) {
		j = slices.Compact(slices.Sorted(slices.Values(j)))
	}
	return groupKey{authority: authority, jurisdiction: strings.Join(j, ",")}, j
}

// sortedSet reports whether s is sorted without repeats.
func sortedSet(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			return false
		}
	}
	return true
}

func (a *aggregator) group(authority string, jurisdiction []string) *tally {
	k, j := keyOf(authority, jurisdiction)
	t := a.groups[k]
	if t == nil {
		t = newTally(k, slices.Clone(j))
		a.groups[k] = t
	}
	return t
}

// both applies fn to the group's tally and to the totals.
func (a *aggregator) both(t *tally, fn func(*tally)) {
	fn(t)
	fn(a.total)
}

// laterOrder adds o, stated in force by an entry after the period, unless
// the period or an entry before this one stated it already.
func (a *aggregator) laterOrder(o ledger.Order) {
	if _, ok := a.orders[o.OrderID]; ok {
		return
	}
	k, _ := keyOf(o.Authority, o.Jurisdiction)
	a.orders[o.OrderID] = orderInfo{key: k, received: a.receivedDay(o.Received)}
	if g := a.group(o.Authority, o.Jurisdiction); g.name == "" {
		g.name = o.AuthorityName
	}
}

func (a *aggregator) entry(e *ledger.Entry) error {
	// A preview answered "what would happen" for an order under review;
	// nothing was enforced on its account, so it is no part of the report.
	if e.Preview || a.sentAgain(e) {
		return nil
	}
	a.entries++
	if e.Kind == ledger.KindAdmission {
		a.admissionEntries++
	}
	if a.geoBuildText == "" || !e.Geo.Build.Equal(a.geoBuild) {
		a.geoBuild, a.geoBuildText = e.Geo.Build, e.Geo.Build.UTC().Format(time.RFC3339)
	}
	a.note(a.geo, [2]string{e.Geo.Database, a.geoBuildText}, e.Time)
	for name, rev := range e.Bundles {
		a.note(a.bundles, [2]string{name, rev}, e.Time)
	}

	sc := &a.scratch
	orders := sc.orders
	clear(orders)
	touched := sc.touched[:0]
	for _, o := range e.Orders {
		orders[o.OrderID] = o
		g := a.group(o.Authority, o.Jurisdiction)
		if o.AuthorityName != "" {
			g.name = o.AuthorityName
		}
		a.orders[o.OrderID] = orderInfo{key: g.key, received: a.receivedDay(o.Received)}
		if !slices.Contains(touched, g) {
			touched = append(touched, g)
		}
		a.both(g, func(t *tally) { t.ordersCited[o.OrderID] = true })
	}
	for _, g := range touched {
		g.decisions++
	}
	clear(touched) // holds no tally past the entry
	sc.touched = touched
	a.total.decisions++
	for _, orders := range [2][]ledger.Order{e.Orders, e.OrdersNotInForce} {
		for _, o := range orders {
			a.state(o)
		}
	}

	// groupOf attributes an action or a guard block to the group of the
	// order it cites, also one the entry reports not in force (a guard
	// block citing it belongs to its authority).
	for _, o := range e.OrdersNotInForce {
		if _, ok := orders[o.OrderID]; !ok {
			orders[o.OrderID] = o
		}
	}
	groupOf := func(orderID string, jurisdiction []string) *tally {
		if o, ok := orders[orderID]; ok {
			return a.group(o.Authority, o.Jurisdiction)
		}
		return a.group(Unattributed, jurisdiction)
	}

	// Actions: what was carried out, and whom it reached.
	partByOrder, typesByOrder := sc.partByOrder, sc.typesByOrder
	clear(partByOrder)
	clear(typesByOrder)
	for _, act := range e.Actions {
		typesByOrder[[2]string{act.OrderID, act.Type}] = true
		o, known := orders[act.OrderID]
		inside := func(country string) bool {
			if country == "" || country == engine.UnknownCountry || !slices.Contains(act.Jurisdiction, country) {
				return false
			}
			// The order's jurisdiction as the entry states it bounds the
			// action's too: an action claiming a wider one is not believed.
			return !known || slices.Contains(o.Jurisdiction, country)
		}
		g := groupOf(act.OrderID, act.Jurisdiction)
		outside, reached, reachedOut := 0, 0, 0
		switch act.Type {
		case decision.RemoveParticipant, decision.DenyJoin:
			partByOrder[act.OrderID]++
			if !inside(act.Country) {
				outside = 1
			}
		case decision.EndMeeting, decision.SuspendAccount:
			for country, n := range act.Reached {
				reached += n
				if !inside(country) {
					reachedOut += n
				}
			}
			if act.Type == decision.SuspendAccount {
				reached++ // the account holder
				if !inside(act.Country) {
					reachedOut++
				}
			}
			outside = reachedOut
		default:
			// An action type the guard does not know cannot have passed it;
			// it is counted as reaching one user outside.
			outside = 1
		}
		country := cmp.Or(act.Country, engine.UnknownCountry)
		a.both(g, func(t *tally) {
			t.actionRecords++
			t.outside += outside
			switch act.Type {
			case decision.RemoveParticipant, decision.DenyJoin:
				t.partActions[act.Type]++
				if t.byCountry[country] == nil {
					t.byCountry[country] = map[string]int{}
				}
				t.byCountry[country][act.Type]++
			case decision.EndMeeting:
				t.ended++
				if len(act.Reached) == 0 {
					t.unproven++
				}
			case decision.SuspendAccount:
				t.suspended++
			}
			if act.Type == decision.EndMeeting || act.Type == decision.SuspendAccount {
				t.reachedTotal += reached
				t.reachedOutOf += reachedOut
			}
		})
	}

	// Demands: one outcome for each (decision, order, demand).
	// A refusal's code counts once for each (decision, order, demand,
	// code): a policy may state the same refusal several times (two
	// extension files withholding one order, with different reasons).
	refused, counted := sc.refused, sc.counted
	clear(refused)
	clear(counted)
	for _, r := range e.Refused {
		refused[[2]string{r.OrderID, r.Demand}] = true
		code := cmp.Or(r.Code, "(none)")
		if key := [3]string{r.OrderID, r.Demand, code}; !counted[key] {
			counted[key] = true
			g := groupOf(r.OrderID, nil)
			a.both(g, func(t *tally) { t.refusalCodes[code]++ })
		}
	}
	for _, o := range e.Orders {
		g := a.group(o.Authority, o.Jurisdiction)
		a.sorted = append(a.sorted[:0], o.Demands...)
		slices.Sort(a.sorted)
		for _, d := range slices.Compact(a.sorted) {
			ended, suspended := typesByOrder[[2]string{o.OrderID, decision.EndMeeting}], typesByOrder[[2]string{o.OrderID, decision.SuspendAccount}]
			out := outcome(d, refused[[2]string{o.OrderID, d}], ended, suspended, partByOrder[o.OrderID])
			a.both(g, func(t *tally) {
				if t.demandOrders[d] == nil {
					t.demandOrders[d] = map[string]bool{}
					t.outcomes[d] = map[string]int{}
				}
				t.demandOrders[d][o.OrderID] = true
				t.outcomes[d][out]++
			})
		}
	}

	// Guard blocks: what the guard kept from happening.
	for _, b := range e.GuardBlocked {
		g := groupOf(b.OrderID, nil)
		a.both(g, func(t *tally) { t.blocks[cmp.Or(b.Code, "(none)")]++ })
	}
	return nil
}

// state notes the validity an entry gives an order, read as it was when
// the entry was recorded (RecordedValidity). Entries come oldest first,
// so the last one wins. A validity that does not parse (which no geoscope
// recorded) is taken as none: the order then counts as in force, which is
// what an entry from before orders had validity says.
func (a *aggregator) state(o ledger.Order) {
	k := validityKey{effective: o.Effective, expires: o.Expires}
	if o.Revoked != nil {
		k.revoked, k.revokedOn, k.revokedBy = true, o.Revoked.Date, o.Revoked.Reason
	}
	v, ok := a.validities[k]
	if !ok {
		v, _ = registry.Order{Effective: o.Effective, Expires: o.Expires, Revoked: o.Revoked}.RecordedValidity()
		a.validities[k] = v
	}
	g := a.group(o.Authority, o.Jurisdiction)
	if o.AuthorityName != "" && g.name == "" {
		g.name = o.AuthorityName
	}
	a.stated[o.OrderID] = statedOrder{key: g.key, validity: v}
}

// statuses counts the stated orders of a group (all groups for key nil).
func (a *aggregator) statuses(key *groupKey, c func(int) Cell) OrderStatuses {
	since, until := a.period.Since, a.period.Until
	last := until.Add(-time.Nanosecond)
	within := func(t time.Time) bool { return !t.IsZero() && !t.Before(since) && t.Before(until) }
	var n, during, revoked, expired int
	atEnd := map[string]int{}
	for _, s := range a.stated {
		if key != nil && s.key != *key {
			continue
		}
		n++
		v := s.validity
		if v.InForceDuring(since, until) {
			during++
		}
		if within(v.Revoked) {
			revoked++
		}
		if within(v.Expires) {
			expired++
		}
		atEnd[v.Status(last)]++
	}
	out := OrderStatuses{Orders: c(n), InForceDuringPeriod: c(during), RevokedInPeriod: c(revoked), ExpiredInPeriod: c(expired)}
	for _, st := range registry.Statuses {
		out.AtEnd = append(out.AtEnd, StatusCount{Status: st, Orders: c(atEnd[st])})
	}
	return out
}

// hasStated reports whether the period's entries state an order of the
// group.
func (a *aggregator) hasStated(k groupKey) bool {
	for _, s := range a.stated {
		if s.key == k {
			return true
		}
	}
	return false
}

// outcome classifies one demand of one order in one decision.
// ended and suspended say whether the decision has an end_meeting or a
// suspend_account action for the order.
func outcome(demand string, refused, ended, suspended bool, participantActions int) string {
	granted := false
	switch demand {
	case registry.DemandRemoveParticipants:
		if participantActions == 0 && !refused {
			return OutcomeNothingCarriedOut
		}
		granted = participantActions > 0
	case registry.DemandEndMeeting:
		granted = ended
	case registry.DemandSuspendAccount:
		granted = suspended
	}
	switch {
	case granted:
		return OutcomeGranted
	case refused && participantActions > 0:
		return OutcomeNarrowed
	case refused:
		return OutcomeRefused
	}
	return OutcomeNotDecided
}

func (a *aggregator) note(m map[[2]string]*seen, k [2]string, at time.Time) {
	s := m[k]
	if s == nil {
		s = &seen{first: at}
		m[k] = s
	}
	s.last = at
	s.n++
}

func (a *aggregator) countRow(r ledger.CountRow) {
	switch r.Kind {
	case ledger.KindAdmission:
		a.plainAdmissions += r.N
		if r.OrderIDs != "" {
			a.plainUnderOrder += r.N
		}
	default:
		a.quietDecisions += r.N
	}
}

// receivedDay normalizes an order's received date to YYYY-MM-DD.
func receivedDay(s string) string {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Format(time.DateOnly)
	}
	if t, err := registry.ParseRFC3339(s); err == nil {
		return t.UTC().Format(time.DateOnly)
	}
	return ""
}

// receivedDay is receivedDay(s), worked out once for each s.
func (a *aggregator) receivedDay(s string) string {
	d, ok := a.receivedDays[s]
	if !ok {
		d = receivedDay(s)
		a.receivedDays[s] = d
	}
	return d
}

func (a *aggregator) receivedInPeriod(info orderInfo) bool {
	return info.received != "" && info.received >= a.sinceDay && info.received < a.untilDay
}

// report turns the raw tallies into the suppressed, ordered report.
func (a *aggregator) report(minCount int) *Report {
	r := &Report{
		Title:       title,
		Period:      PeriodOut{Since: a.period.Since.UTC(), Until: a.period.Until.UTC()},
		MinCount:    minCount,
		Suppressed:  fmt.Sprintf("<%d", minCount),
		Attribution: attribution,
	}
	c := func(n int) Cell { return Cell{n: n, min: minCount} }
	c64 := func(n int64) Cell { return Cell{n: int(min(n, 1<<53)), min: minCount} }

	received := map[groupKey]int{}
	receivedAll := 0
	for _, info := range a.orders {
		if a.receivedInPeriod(info) {
			received[info.key]++
			receivedAll++
		}
	}
	r.Totals = a.groupOut(a.total, c, receivedAll)
	r.Totals.OrdersByStatus = a.statuses(nil, c)
	r.Authorities = []Group{}
	keys := slices.SortedFunc(maps.Keys(a.groups), func(x, y groupKey) int {
		// Unattributed last.
		if (x.authority == Unattributed) != (y.authority == Unattributed) {
			if x.authority == Unattributed {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(x.authority, y.authority), cmp.Compare(x.jurisdiction, y.jurisdiction))
	})
	for _, k := range keys {
		g := a.groups[k]
		if g.decisions == 0 && g.actionRecords == 0 && len(g.blocks) == 0 && len(g.refusalCodes) == 0 && received[k] == 0 && !a.hasStated(k) {
			continue // an authority seen only after the period, with nothing received in it
		}
		out := a.groupOut(g, c, received[k])
		out.OrdersByStatus = a.statuses(&k, c)
		r.Authorities = append(r.Authorities, out)
	}
	r.OutsideAffected = r.Totals.OutsideAffected
	r.Violation = r.OutsideAffected.Value > 0 || r.OutsideAffected.Unproven > 0
	if r.Violation {
		r.ViolationText = violationText(r.OutsideAffected)
	}
	r.Summary = Summary{
		Decisions:       c(a.entries - a.admissionEntries),
		Admissions:      c(a.admissionEntries),
		PlainAdmissions: c64(a.plainAdmissions),
		PlainUnderOrder: c64(a.plainUnderOrder),
		QuietDecisions:  c64(a.quietDecisions),
	}
	r.GeoIPDatabases = seenOut(a.geo, c)
	r.BundleRevisions = seenOut(a.bundles, c)
	r.Notes = notes(minCount)
	r.Withheld = withheldMarker(minCount)
	protect(r.relations(), r.bounds())
	for _, g := range r.groupRefs() {
		// The statements quote cells, some of them withheld just now.
		g.MeetingWide.Statement = meetingWideText(g.MeetingWide)
		g.OutsideAffected.Statement = outsideText(g.OutsideAffected)
		// Rows were in the order of their counts; a hidden count's place
		// among them told it apart (withheld after a 5 shown, it was 5).
		// Now by what is shown: the counts shown, largest first, then the
		// hidden ones, by name.
		slices.SortStableFunc(g.ByCountry, func(x, y CountryRow) int { return byShown(x.Total, y.Total, x.Country, y.Country) })
		slices.SortStableFunc(g.RefusalReasons, func(x, y CodeCount) int { return byShown(x.Count, y.Count, x.Code, y.Code) })
		slices.SortStableFunc(g.GuardBlocks, func(x, y CodeCount) int { return byShown(x.Count, y.Count, x.Code, y.Code) })
	}
	// Two days of use mean two decisions at least: a build or revision
	// whose count is hidden is shown with the day it was first used only.
	for _, seen := range [][]Seen{r.GeoIPDatabases, r.BundleRevisions} {
		for i := range seen {
			if seen[i].Decisions.Suppressed() {
				seen[i].LastSeen = ""
			}
		}
	}
	r.OutsideAffected = r.Totals.OutsideAffected
	return r
}

// byShown orders rows by their published count: the counts shown, largest
// first, then the hidden ones; by name among equals.
func byShown(x, y Cell, xName, yName string) int {
	if x.Suppressed() != y.Suppressed() {
		if x.Suppressed() {
			return 1
		}
		return -1
	}
	if !x.Suppressed() && x.n != y.n {
		return cmp.Compare(y.n, x.n)
	}
	return cmp.Compare(xName, yName)
}

// groupRefs points at the totals and at each authority's group, in that
// order (groups, in render.go, copies them).
func (r *Report) groupRefs() []*Group {
	out := make([]*Group, 0, 1+len(r.Authorities))
	out = append(out, &r.Totals)
	for i := range r.Authorities {
		out = append(out, &r.Authorities[i])
	}
	return out
}

func (a *aggregator) groupOut(t *tally, c func(int) Cell, received int) Group {
	g := Group{
		Authority:      shown(t.key.authority),
		AuthorityName:  shown(t.name),
		Jurisdiction:   shownAll(t.jurisdiction),
		Decisions:      c(t.decisions),
		OrdersCited:    c(len(t.ordersCited)),
		OrdersReceived: c(received),
	}
	if g.Jurisdiction == nil {
		g.Jurisdiction = []string{}
	}
	all := map[string]int{}
	allOrders := map[string]bool{}
	for _, d := range demandOrder(t.demandOrders) {
		o := t.outcomes[d]
		evaluated := 0
		for out, n := range o {
			evaluated += n
			all[out] += n
		}
		for id := range t.demandOrders[d] {
			allOrders[id] = true
		}
		g.Demands = append(g.Demands, DemandRow{
			Demand: shown(d), Orders: c(len(t.demandOrders[d])), Evaluated: c(evaluated),
			Granted: c(o[OutcomeGranted]), NothingCarriedOut: c(o[OutcomeNothingCarriedOut]), Narrowed: c(o[OutcomeNarrowed]),
			Refused: c(o[OutcomeRefused]), NotDecided: c(o[OutcomeNotDecided]),
		})
	}
	g.DemandsTotal = DemandRow{
		Demand: "(all)", Orders: c(len(allOrders)),
		Evaluated: c(all[OutcomeGranted] + all[OutcomeNothingCarriedOut] + all[OutcomeNarrowed] + all[OutcomeRefused] + all[OutcomeNotDecided]),
		Granted:   c(all[OutcomeGranted]), NothingCarriedOut: c(all[OutcomeNothingCarriedOut]), Narrowed: c(all[OutcomeNarrowed]),
		Refused: c(all[OutcomeRefused]), NotDecided: c(all[OutcomeNotDecided]),
	}
	if g.Demands == nil {
		g.Demands = []DemandRow{}
	}
	g.RefusalReasons = codeCounts(t.refusalCodes, c)
	g.GuardBlocks = codeCounts(t.blocks, c)
	blocks := 0
	for _, n := range t.blocks {
		blocks += n
	}
	g.GuardBlocksTotal = c(blocks)
	g.ParticipantActions = ParticipantActions{
		RemoveParticipant: c(t.partActions[decision.RemoveParticipant]),
		DenyJoin:          c(t.partActions[decision.DenyJoin]),
		Total:             c(t.partActions[decision.RemoveParticipant] + t.partActions[decision.DenyJoin]),
	}
	countries := slices.SortedFunc(maps.Keys(t.byCountry), func(x, y string) int {
		tx := t.byCountry[x][decision.RemoveParticipant] + t.byCountry[x][decision.DenyJoin]
		ty := t.byCountry[y][decision.RemoveParticipant] + t.byCountry[y][decision.DenyJoin]
		return cmp.Or(cmp.Compare(ty, tx), cmp.Compare(x, y))
	})
	g.ByCountry = []CountryRow{}
	for _, country := range countries {
		m := t.byCountry[country]
		var inside *bool
		if t.key.authority != AllAuthorities {
			in := country != engine.UnknownCountry && slices.Contains(t.jurisdiction, country)
			inside = &in
		}
		g.ByCountry = append(g.ByCountry, CountryRow{
			Country:           shown(country),
			Inside:            inside,
			RemoveParticipant: c(m[decision.RemoveParticipant]),
			DenyJoin:          c(m[decision.DenyJoin]),
			Total:             c(m[decision.RemoveParticipant] + m[decision.DenyJoin]),
		})
	}
	g.MeetingWide = MeetingWide{
		MeetingsEnded:     c(t.ended),
		AccountsSuspended: c(t.suspended),
		AffectedUsers:     c(t.reachedTotal),
		AffectedOutside:   t.reachedOutOf,
	}
	g.OutsideAffected = OutsideAffected{
		Value:         t.outside,
		ActionRecords: c(t.actionRecords),
		Unproven:      t.unproven,
		Proved:        t.outside == 0 && t.unproven == 0,
		GuardBlocks:   g.GuardBlocks,
	}
	return g
}

// demandOrder lists the demands in the registry's vocabulary order, then
// any others alphabetically.
func demandOrder(m map[string]map[string]bool) []string {
	var out []string
	for _, d := range registry.Demands {
		if _, ok := m[d]; ok {
			out = append(out, d)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(m)) {
		if !registry.KnownDemand(d) {
			out = append(out, d)
		}
	}
	return out
}

func codeCounts(m map[string]int, c func(int) Cell) []CodeCount {
	codes := slices.SortedFunc(maps.Keys(m), func(x, y string) int {
		return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y))
	})
	out := make([]CodeCount, 0, len(codes))
	for _, code := range codes {
		out = append(out, CodeCount{Code: shown(code), Count: c(m[code])})
	}
	return out
}

func seenOut(m map[[2]string]*seen, c func(int) Cell) []Seen {
	out := make([]Seen, 0, len(m))
	for _, k := range slices.SortedFunc(maps.Keys(m), func(x, y [2]string) int {
		return cmp.Or(m[x].first.Compare(m[y].first), cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1]))
	}) {
		s := m[k]
		out = append(out, Seen{
			Name: shown(k[0]), Version: shown(k[1]), Decisions: c(s.n),
			FirstSeen: s.first.UTC().Format(time.DateOnly), LastSeen: s.last.UTC().Format(time.DateOnly),
		})
	}
	return out
}
