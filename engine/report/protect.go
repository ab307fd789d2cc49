package report

import "slices"

// Secondary suppression.
//
// A count from 1 to MinCount-1 is suppressed where it is shown (primary
// suppression). Alone, that did not hide it: most counts are parts of a
// published sum, and a sum with one hidden part gives it away by
// subtraction. In a review, "meetings ended <5" was the action records
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

// protect withholds cells until no relation has exactly one hidden member.
func protect(relations []relation) {
	var live []relation
	for _, r := range relations {
		if len(r.parts) > 0 && len(r.totals) > 0 && !slices.Contains(r.totals, nil) && r.holds() {
			live = append(live, r)
		}
	}
	sums := map[*Cell]int{}
	for _, r := range live {
		for _, c := range r.members() {
			sums[c]++
		}
	}
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
			if c := toWithhold(r, sums); c != nil {
				c.withheld = true
				changed = true
			}
		}
	}
}

// toWithhold picks the member of r to withhold: of those shown that are
// not 0, the one in the fewest sums, then the smallest, then the first
// (the parts before the total).
func toWithhold(r relation, sums map[*Cell]int) *Cell {
	var pick *Cell
	for _, c := range r.members() {
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
	groups := make([]*Group, 0, 1+len(r.Authorities))
	groups = append(groups, &r.Totals)
	for i := range r.Authorities {
		groups = append(groups, &r.Authorities[i])
	}

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
