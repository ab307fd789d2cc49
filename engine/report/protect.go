package report

import (
	"slices"

	"github.com/geoscope/geoscope/engine/registry"
)

// Secondary suppression.
//
// A count from 1 to MinCount-1 is suppressed where it is shown (primary
// suppression). Alone, that did not hide it: most counts are parts of a
// published sum, and a sum with one hidden part gives it away by
// subtraction. In one report, "meetings ended <5" was the action records
// (59) minus the participant-level actions (56), and "end_meeting granted
// <5" the demands evaluated (106) minus the other outcomes (47 + 56).
//
// So every sum the report publishes is stated as a relation, total =
// parts, and wherever exactly one member of a relation is hidden, one more
// is withheld (shown as "5+"): of the members shown that are not 0, the
// one in the fewest sums, and of those the smallest. Withholding may leave
// another relation with one hidden member, so this runs until no relation
// has exactly one. It only ever hides more, so it ends. A count that is 0
// is never hidden: a 0 cannot be singled out, and withholding it would
// tell that it is not 0.
//
// Fewest sums first, because each sum a withheld cell is in may need one
// more withheld: one meeting ended beside 22 participants removed withheld
// the 22 (the smallest part of the action records, 23), then with it the
// one country's 22 of the by-country table; the action records, in no
// other sum of their group, are withheld instead.
//
// The trade-off, as for the statistical tables this follows: a relation
// with two hidden members still bounds them (a suppressed count is at
// most MinCount-1, a withheld one at least MinCount), and several
// relations solved together can narrow a count further. Auditing every
// combination takes linear programming over the whole report; the notes
// say what is protected, and the threshold is for reports published in
// fixed periods (README).
//
// Rows of countries and codes are ordered by what is shown (report.go,
// byShown): ordered by their true counts, a withheld 5+ placed after a 5
// shown was 5.
//
// Not protected: in a report with a violation, the users affected outside
// a jurisdiction are published exactly (hiding a small violation would
// defeat the report), and so, through them, are the counts of the
// countries outside the jurisdiction and the users reached by the
// meeting-wide actions they come from. The notes say so.
//
// A relation is included only when it holds in the counts at hand: some
// sums hold by construction (a row's outcomes add up to what it
// evaluated), others usually do (each entry cites the orders of one
// authority, so the authorities' decisions add up to all decisions), and
// one that does not hold gives nothing away by subtraction.

// relation is a published sum: the sum of totals = the sum of parts
// (totals is one cell but for sums of two columns, such as the refusal
// reasons, which add up to the narrowed and the refused).
type relation struct {
	totals []*Cell
	parts  []*Cell
}

// members is every cell of the relation, the parts first.
func (r relation) members() []*Cell { return append(slices.Clip(r.parts), r.totals...) }

// holds reports whether the counts add up.
func (r relation) holds() bool {
	sum := 0
	for _, p := range r.parts {
		sum += p.n
	}
	for _, t := range r.totals {
		sum -= t.n
	}
	return sum == 0
}

// bound is a published inequality: the sum of le ≤ the sum of ge (an
// order in force at the end of the period was in force during it; every
// meeting ended reached someone).
type bound struct {
	le, ge []*Cell
}

func (b bound) holds() bool {
	return total(b.le) <= total(b.ge)
}

func (b bound) members() []*Cell { return append(slices.Clip(b.le), b.ge...) }

func total(cells []*Cell) int {
	n := 0
	for _, c := range cells {
		n += c.n
	}
	return n
}

// protect hides cells until no hidden count can be worked out: first until
// no relation has exactly one hidden member, then until bounding each
// hidden count through every sum and bound in turn (interval propagation,
// from what the markers say: "<5" is 1 to 4, "5+" is 5 or more) leaves
// none of them a single value.
//
// A hidden count pinned that way (at the default threshold, for
// instance: 7 = 5 + <5 + <5, so both are 1; 6 = 5+ + <5, so 5 and 1; a
// 5+ bounded above by a 5 it cannot exceed) gets another member of a sum
// or bound it is in withheld: a total before a part, since a withheld
// total is open above.
//
// Where every member is hidden already nothing more can be done: four
// counts each <5 under a total <5 (four orders, one in each status at the
// end of the period) are each 1. Showing zeros there as <5 too would hide
// it, at the cost of every 0 beside a small total, and of the rule that
// <5 is 1 to 4; the notes say so instead.
func protect(relations []relation, bounds []bound) {
	live, liveBounds := holding(relations, bounds)
	sums := map[*Cell]int{}
	for _, r := range live {
		for _, c := range r.members() {
			sums[c]++
		}
	}
	for _, b := range liveBounds {
		for _, c := range b.members() {
			sums[c]++
		}
	}
	for {
		withholdSingles(live, sums)
		iv := propagate(live, liveBounds)
		if !withholdPinned(iv, live, liveBounds, sums) {
			return
		}
	}
}

// holding keeps the relations and bounds that hold in the counts at hand
// (see above), and whose cells all exist (a row one group lacks is nil).
// A sum of no parts (a column over no rows) stays: it says its total is
// 0, which a reader knows whatever it shows.
func holding(relations []relation, bounds []bound) ([]relation, []bound) {
	var live []relation
	for _, r := range relations {
		if len(r.totals) > 0 && !slices.Contains(r.totals, nil) && !slices.Contains(r.parts, nil) && r.holds() {
			live = append(live, r)
		}
	}
	var liveBounds []bound
	for _, b := range bounds {
		if len(b.le) > 0 && len(b.ge) > 0 && !slices.Contains(b.le, nil) && !slices.Contains(b.ge, nil) && b.holds() {
			liveBounds = append(liveBounds, b)
		}
	}
	return live, liveBounds
}

// withholdSingles withholds cells until no relation has exactly one
// hidden member.
func withholdSingles(live []relation, sums map[*Cell]int) {
	for changed := true; changed; {
		changed = false
		for _, r := range live {
			hidden := 0
			for _, c := range r.members() {
				if c.Suppressed() {
					hidden++
				}
			}
			if hidden != 1 {
				continue
			}
			// Of the members shown that are not 0, the one in the fewest
			// sums, then the smallest, then the first (parts before totals).
			if c := pickShown(r.members(), sums); c != nil {
				c.withheld = true
				changed = true
			}
		}
	}
}

// unbounded stands for no upper bound; sums of a few thousand of them
// stay within int64.
const unbounded = int64(1) << 40

// interval is what a reader can tell of a count: lo ≤ n ≤ hi.
type interval struct{ lo, hi int64 }

// known is what the published text says of c before any sum.
func known(c *Cell) interval {
	switch {
	case !c.Suppressed():
		return interval{int64(c.n), int64(c.n)}
	case c.small():
		return interval{1, int64(c.min - 1)}
	}
	return interval{int64(c.min), unbounded} // withheld
}

// span is the least and the most a sum of cells can be.
type span struct {
	lo, hi int64
	open   int // members without an upper bound
}

func spanOf(cells []*Cell, iv func(*Cell) interval) span {
	var s span
	for _, c := range cells {
		v := iv(c)
		s.lo += v.lo
		if v.hi >= unbounded {
			s.open++
		} else {
			s.hi += v.hi
		}
	}
	return s
}

// without is s less one of its members, v.
func (s span) without(v interval) span {
	s.lo -= v.lo
	if v.hi >= unbounded {
		s.open--
	} else {
		s.hi -= v.hi
	}
	return s
}

func (s span) max() int64 {
	if s.open > 0 {
		return unbounded
	}
	return s.hi
}

// propagate bounds every cell through the relations and bounds until
// nothing tightens (or a fixed number of rounds).
func propagate(live []relation, bounds []bound) map[*Cell]interval {
	ivs := map[*Cell]interval{}
	iv := func(c *Cell) interval {
		v, ok := ivs[c]
		if !ok {
			v = known(c)
			ivs[c] = v
		}
		return v
	}
	changed := false
	tighten := func(c *Cell, lo, hi int64) {
		v := iv(c)
		if lo > v.lo {
			v.lo, changed = lo, true
		}
		if hi < v.hi {
			v.hi, changed = hi, true
		}
		ivs[c] = v
	}
	// side tightens each member of one side of sum(side) = (or ≤, ≥) a
	// sum the other side spans.
	for range 200 {
		changed = false
		for _, r := range live {
			parts, totals := spanOf(r.parts, iv), spanOf(r.totals, iv)
			for _, p := range r.parts {
				others := parts.without(iv(p))
				tighten(p, totals.lo-others.max(), subMax(totals.max(), others.lo))
			}
			for _, t := range r.totals {
				others := totals.without(iv(t))
				tighten(t, parts.lo-others.max(), subMax(parts.max(), others.lo))
			}
		}
		for _, b := range bounds {
			le, ge := spanOf(b.le, iv), spanOf(b.ge, iv)
			for _, c := range b.le {
				tighten(c, 0, subMax(ge.max(), le.without(iv(c)).lo))
			}
			for _, c := range b.ge {
				tighten(c, le.lo-ge.without(iv(c)).max(), unbounded)
			}
		}
		if !changed {
			break
		}
	}
	return ivs
}

// subMax is a - b for an upper bound a that may be unbounded.
func subMax(a, b int64) int64 {
	if a >= unbounded {
		return unbounded
	}
	return a - b
}

// withholdPinned withholds, for each relation (else each bound) holding a
// hidden count the intervals pin to one value, a member shown. It reports
// whether it withheld anything.
func withholdPinned(ivs map[*Cell]interval, live []relation, bounds []bound, sums map[*Cell]int) bool {
	pinned := func(c *Cell) bool {
		v, ok := ivs[c]
		// A count its marker already gives (a "<2" is 1) has nothing to
		// protect.
		k := known(c)
		return ok && c.Suppressed() && v.lo == v.hi && k.lo != k.hi
	}
	// One cell for each relation holding a pinned count, in one pass: the
	// bounds are worked out again after it.
	withheld := false
	for _, r := range live {
		if !slices.ContainsFunc(r.members(), pinned) {
			continue
		}
		// A total first: withheld, it is open above, which frees the
		// parts under it.
		c := pickShown(r.totals, sums)
		if c == nil {
			c = pickShown(r.parts, sums)
		}
		if c != nil {
			c.withheld, withheld = true, true
		}
	}
	if withheld {
		return true
	}
	for _, b := range bounds {
		if !slices.ContainsFunc(b.members(), pinned) {
			continue
		}
		if c := pickShown(b.members(), sums); c != nil {
			c.withheld, withheld = true, true
		}
	}
	return withheld
}

// pickShown is, of cells shown that are not 0, the one in the fewest sums,
// then the smallest, then the first.
func pickShown(cells []*Cell, sums map[*Cell]int) *Cell {
	var pick *Cell
	for _, c := range cells {
		if c.Suppressed() || c.n == 0 {
			continue
		}
		if pick == nil || sums[c] < sums[pick] || sums[c] == sums[pick] && c.n < pick.n {
			pick = c
		}
	}
	return pick
}

// relations lists the sums the report publishes, over cells of r (which
// must not move afterwards: they are pointed at).
func (r *Report) relations() []relation {
	var rels []relation
	add := func(total *Cell, parts ...*Cell) { rels = append(rels, relation{[]*Cell{total}, parts}) }
	groups := r.groupRefs()

	for _, g := range groups {
		rels = append(rels, g.relations()...)
	}

	// Across authorities: the totals are the sum of the authorities' for
	// every count that belongs to one order, and so to one authority (and
	// usually for decisions too).
	auth := groups[1:]
	across := func(cell func(*Group) *Cell) {
		parts := make([]*Cell, 0, len(auth))
		for _, g := range auth {
			if c := cell(g); c != nil {
				parts = append(parts, c)
			}
		}
		add(cell(&r.Totals), parts...)
	}
	for _, cell := range []func(*Group) *Cell{
		func(g *Group) *Cell { return &g.Decisions },
		func(g *Group) *Cell { return &g.OrdersCited },
		func(g *Group) *Cell { return &g.OrdersReceived },
		func(g *Group) *Cell { return &g.OrdersByStatus.Orders },
		func(g *Group) *Cell { return &g.OrdersByStatus.InForceDuringPeriod },
		func(g *Group) *Cell { return &g.OrdersByStatus.RevokedInPeriod },
		func(g *Group) *Cell { return &g.OrdersByStatus.ExpiredInPeriod },
		func(g *Group) *Cell { return &g.ParticipantActions.RemoveParticipant },
		func(g *Group) *Cell { return &g.ParticipantActions.DenyJoin },
		func(g *Group) *Cell { return &g.ParticipantActions.Total },
		func(g *Group) *Cell { return &g.MeetingWide.MeetingsEnded },
		func(g *Group) *Cell { return &g.MeetingWide.AccountsSuspended },
		func(g *Group) *Cell { return &g.MeetingWide.AffectedUsers },
		func(g *Group) *Cell { return &g.OutsideAffected.ActionRecords },
		func(g *Group) *Cell { return &g.GuardBlocksTotal },
	} {
		across(cell)
	}
	for _, col := range demandColumns {
		across(func(g *Group) *Cell { return col(&g.DemandsTotal) })
		for _, d := range r.Totals.Demands {
			across(func(g *Group) *Cell {
				if row := g.demand(d.Demand); row != nil {
					return col(row)
				}
				return nil
			})
		}
	}
	for i := range r.Totals.OrdersByStatus.AtEnd {
		across(func(g *Group) *Cell {
			if i < len(g.OrdersByStatus.AtEnd) {
				return &g.OrdersByStatus.AtEnd[i].Orders
			}
			return nil
		})
	}
	for _, codes := range []func(*Group) []CodeCount{
		func(g *Group) []CodeCount { return g.RefusalReasons },
		func(g *Group) []CodeCount { return g.GuardBlocks },
	} {
		for _, cc := range codes(&r.Totals) {
			across(func(g *Group) *Cell { return codeCell(codes(g), cc.Code) })
		}
	}
	for _, row := range r.Totals.ByCountry {
		for _, col := range countryColumns {
			across(func(g *Group) *Cell {
				if i := slices.IndexFunc(g.ByCountry, func(c CountryRow) bool { return c.Country == row.Country }); i >= 0 {
					return col(&g.ByCountry[i])
				}
				return nil
			})
		}
	}

	// The summary: decisions and admissions recorded are the totals'
	// decisions; each GeoIP database, and each bundle's revisions, add
	// up to them too.
	add(&r.Totals.Decisions, &r.Summary.Decisions, &r.Summary.Admissions)
	var geo []*Cell
	for i := range r.GeoIPDatabases {
		geo = append(geo, &r.GeoIPDatabases[i].Decisions)
	}
	add(&r.Totals.Decisions, geo...)
	byBundle := map[string][]*Cell{}
	var names []string
	for i := range r.BundleRevisions {
		b := &r.BundleRevisions[i]
		if byBundle[b.Name] == nil {
			names = append(names, b.Name)
		}
		byBundle[b.Name] = append(byBundle[b.Name], &b.Decisions)
	}
	for _, name := range names {
		add(&r.Totals.Decisions, byBundle[name]...)
	}
	return rels
}

// relations lists the sums within one group.
func (g *Group) relations() []relation {
	var rels []relation
	add := func(total *Cell, parts ...*Cell) { rels = append(rels, relation{[]*Cell{total}, parts}) }
	rows := make([]*DemandRow, 0, 1+len(g.Demands))
	rows = append(rows, &g.DemandsTotal)
	for i := range g.Demands {
		rows = append(rows, &g.Demands[i])
	}
	// Each row's outcomes add up to what it evaluated; each outcome's
	// rows add up to the row of all demands (orders do not: one order
	// may make several demands).
	for _, row := range rows {
		add(&row.Evaluated, &row.Granted, &row.NothingCarriedOut, &row.Narrowed, &row.Refused, &row.NotDecided)
	}
	for _, col := range demandColumns[1:] {
		parts := make([]*Cell, 0, len(g.Demands))
		for i := range g.Demands {
			parts = append(parts, col(&g.Demands[i]))
		}
		add(col(&g.DemandsTotal), parts...)
	}

	pa := &g.ParticipantActions
	add(&pa.Total, &pa.RemoveParticipant, &pa.DenyJoin)
	for i := range g.ByCountry {
		c := &g.ByCountry[i]
		add(&c.Total, &c.RemoveParticipant, &c.DenyJoin)
	}
	for j, col := range countryColumns {
		parts := make([]*Cell, 0, len(g.ByCountry))
		for i := range g.ByCountry {
			parts = append(parts, col(&g.ByCountry[i]))
		}
		add([]*Cell{&pa.RemoveParticipant, &pa.DenyJoin, &pa.Total}[j], parts...)
	}
	add(&g.OutsideAffected.ActionRecords, &pa.Total, &g.MeetingWide.MeetingsEnded, &g.MeetingWide.AccountsSuspended)

	blocks := make([]*Cell, 0, len(g.GuardBlocks))
	for i := range g.GuardBlocks {
		blocks = append(blocks, &g.GuardBlocks[i].Count)
	}
	add(&g.GuardBlocksTotal, blocks...)

	// Each refused (decision, order, demand) is narrowed or refused, and
	// states its reasons' codes: with one code each (as the default
	// policy states them), the reasons add up to those two columns.
	reasons := make([]*Cell, 0, len(g.RefusalReasons))
	for i := range g.RefusalReasons {
		reasons = append(reasons, &g.RefusalReasons[i].Count)
	}
	rels = append(rels, relation{totals: []*Cell{&g.DemandsTotal.Narrowed, &g.DemandsTotal.Refused}, parts: reasons})

	// Counts that are equal whenever they are (the meetings ended are the
	// end_meeting demands granted; an authority with one order evaluates
	// each demand once per decision), hidden together.
	if d := g.demand("end_meeting"); d != nil {
		add(&g.MeetingWide.MeetingsEnded, &d.Granted)
	}
	if d := g.demand("suspend_account"); d != nil {
		add(&g.MeetingWide.AccountsSuspended, &d.Granted)
	}
	add(&g.OrdersCited, &g.DemandsTotal.Orders)
	for i := range g.Demands {
		add(&g.Decisions, &g.Demands[i].Evaluated)
	}

	st := &g.OrdersByStatus
	atEnd := make([]*Cell, 0, len(st.AtEnd))
	for i := range st.AtEnd {
		atEnd = append(atEnd, &st.AtEnd[i].Orders)
	}
	add(&st.Orders, atEnd...)
	return rels
}

// demandColumns are the counts of a demand row; Orders first.
var demandColumns = []func(*DemandRow) *Cell{
	func(r *DemandRow) *Cell { return &r.Orders },
	func(r *DemandRow) *Cell { return &r.Evaluated },
	func(r *DemandRow) *Cell { return &r.Granted },
	func(r *DemandRow) *Cell { return &r.NothingCarriedOut },
	func(r *DemandRow) *Cell { return &r.Narrowed },
	func(r *DemandRow) *Cell { return &r.Refused },
	func(r *DemandRow) *Cell { return &r.NotDecided },
}

// countryColumns are the counts of a country row, in the order of the
// participant actions' remove, deny and total.
var countryColumns = []func(*CountryRow) *Cell{
	func(r *CountryRow) *Cell { return &r.RemoveParticipant },
	func(r *CountryRow) *Cell { return &r.DenyJoin },
	func(r *CountryRow) *Cell { return &r.Total },
}

// demand is the group's row for a demand, or nil.
func (g *Group) demand(name string) *DemandRow {
	if i := slices.IndexFunc(g.Demands, func(r DemandRow) bool { return r.Demand == name }); i >= 0 {
		return &g.Demands[i]
	}
	return nil
}

// codeCell is the count of a code, or nil.
func codeCell(codes []CodeCount, code string) *Cell {
	if i := slices.IndexFunc(codes, func(c CodeCount) bool { return c.Code == code }); i >= 0 {
		return &codes[i].Count
	}
	return nil
}

// bounds lists the inequalities a reader can rely on between published
// counts (a relation with parts of at least 0 bounds them already).
func (r *Report) bounds() []bound {
	var out []bound
	le := func(a, b *Cell) { out = append(out, bound{le: []*Cell{a}, ge: []*Cell{b}}) }
	le(&r.Summary.PlainUnderOrder, &r.Summary.PlainAdmissions)
	// A join-time decision denies its one joiner at most.
	le(&r.Totals.ParticipantActions.DenyJoin, &r.Summary.Admissions)
	for _, g := range r.groupRefs() {
		st := &g.OrdersByStatus
		le(&st.InForceDuringPeriod, &st.Orders)
		// Not yet effective at the end: never in force in the period.
		for i := range st.AtEnd {
			if st.AtEnd[i].Status == registry.StatusNotYetEffective {
				out = append(out, bound{le: []*Cell{&st.InForceDuringPeriod, &st.AtEnd[i].Orders}, ge: []*Cell{&st.Orders}})
			}
		}
		// An order cited was stated, and in force when it was evaluated.
		le(&g.OrdersCited, &st.Orders)
		le(&g.OrdersCited, &st.InForceDuringPeriod)
		le(&st.RevokedInPeriod, &st.Orders)
		le(&st.ExpiredInPeriod, &st.Orders)
		for i := range st.AtEnd {
			switch at := &st.AtEnd[i].Orders; st.AtEnd[i].Status {
			case registry.StatusInForce:
				// In force at the end, so in force during the period.
				le(at, &st.InForceDuringPeriod)
			case registry.StatusRevoked:
				le(&st.RevokedInPeriod, at)
			case registry.StatusExpired:
				le(&st.ExpiredInPeriod, at)
			}
		}
		// Every order makes at least one demand, and each order of a
		// demand's row was evaluated at least once.
		rows := make([]*Cell, 0, len(g.Demands))
		for i := range g.Demands {
			d := &g.Demands[i]
			le(&d.Orders, &g.OrdersCited)
			le(&d.Orders, &d.Evaluated)
			rows = append(rows, &d.Orders)
			// A demand granted as removals, or narrowed to participants,
			// carried out at least one participant action.
			le(&d.Narrowed, &g.ParticipantActions.Total)
			if d.Demand == registry.DemandRemoveParticipants {
				le(&d.Granted, &g.ParticipantActions.Total)
			}
		}
		out = append(out, bound{le: []*Cell{&g.DemandsTotal.Orders}, ge: rows})
		// Every meeting ended and every account suspended reached someone.
		mw := &g.MeetingWide
		out = append(out, bound{le: []*Cell{&mw.MeetingsEnded, &mw.AccountsSuspended}, ge: []*Cell{&mw.AffectedUsers}})
	}
	return out
}
