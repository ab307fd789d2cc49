package ledger

import (
	"slices"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
)

// Decision returns a copy of r's decision in the form in which it may leave
// the process (OPA's decision logs): every participant and account id is
// its keyed pseudonym, exactly as the ledger stores it, and free text is
// scrubbed of every id the request carried or an action named, as is what
// a policy claimed in an action the guard blocked (scrubber.claims).
// Meeting ids, the registry's order ids and located countries are kept, as
// in the ledger; the id of an order submitted for preview is its pseudonym
// (OrderID).
func (p *Pseudonymizer) Decision(r *engine.Record) *decision.Decision {
	d := *r.Decision
	scrub := newScrubber(r, p)
	pseudonymize := func(a decision.Action) decision.Action {
		scrub.participant(a.ParticipantID)
		scrub.account(a.AccountID)
		switch {
		case a.Host:
			// The host's connection is named by its account id.
			a.ParticipantID = p.Account(a.ParticipantID)
		case a.ParticipantID != "":
			a.ParticipantID = p.Participant(a.ParticipantID)
		}
		a.AccountID = p.Account(a.AccountID)
		return a
	}
	d.Actions = make([]decision.Action, len(r.Decision.Actions))
	for i, a := range r.Decision.Actions {
		d.Actions[i] = pseudonymize(a)
		d.Actions[i].OrderID = p.OrderID(r, a.OrderID)
	}
	if r.PreviewOrder != "" {
		d.OrderIDs = make([]string, len(r.Decision.OrderIDs))
		for i, id := range r.Decision.OrderIDs {
			d.OrderIDs[i] = p.OrderID(r, id)
		}
		d.OrdersNotInForce = slices.Clone(r.Decision.OrdersNotInForce)
		for i := range d.OrdersNotInForce {
			d.OrdersNotInForce[i].OrderID = p.OrderID(r, d.OrdersNotInForce[i].OrderID)
		}
	}
	d.GuardBlocked = make([]decision.Blocked, len(r.Decision.GuardBlocked))
	for i, b := range r.Decision.GuardBlocked {
		b.Action = pseudonymize(b.Action)
		d.GuardBlocked[i] = b
	}
	// Reasons last, once every id is known to the scrubber.
	for i := range d.Actions {
		d.Actions[i].Reason = scrub.apply(d.Actions[i].Reason)
	}
	for i := range d.GuardBlocked {
		d.GuardBlocked[i].Action = scrub.claims(d.GuardBlocked[i].Action)
		d.GuardBlocked[i].Reason = scrub.applyQuoted(d.GuardBlocked[i].Reason)
		d.GuardBlocked[i].Action.Reason = scrub.apply(d.GuardBlocked[i].Action.Reason)
	}
	d.Refused = make([]decision.Refusal, len(r.Decision.Refused))
	for i, rf := range r.Decision.Refused {
		rf.Reason, rf.Code, rf.OrderID = scrub.apply(rf.Reason), scrub.code(rf.Code), p.OrderID(r, rf.OrderID)
		d.Refused[i] = rf
	}
	return &d
}

// Text is free text about r (an evaluation's error) scrubbed of its ids as
// the ledger scrubs reasons: each is replaced by its pseudonym.
func (p *Pseudonymizer) Text(r *engine.Record, text string) string {
	return newScrubber(r, p).apply(text)
}
