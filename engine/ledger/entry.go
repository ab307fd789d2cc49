package ledger

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
)

// Entry is one recorded decision. It identifies nobody on its own:
// participant and account ids are keyed pseudonyms (see Pseudonymizer),
// and addresses appear only as coarse network prefixes.
type Entry struct {
	DecisionID string    `json:"decision_id"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"` // KindDecision or KindAdmission
	MeetingID  string    `json:"meeting_id"`
	Account    string    `json:"account"` // pseudonym of the host account
	AllowJoin  *bool     `json:"allow_join,omitempty"`
	// Preview marks a decision about an order submitted for review, not
	// taken from the registry: nothing was enforced on its account.
	Preview       bool              `json:"preview,omitempty"`
	Orders        []Order           `json:"orders"`
	Actions       []Action          `json:"actions"`
	Refused       []Refusal         `json:"refused"`
	GuardBlocked  []Blocked         `json:"guard_blocked"`
	Bundles       map[string]string `json:"bundles"`
	Geo           decision.Geo      `json:"geo"`
	EngineVersion string            `json:"engine_version"`
	// Replica names the geoscope process that decided (Config.Replica).
	// Entries recorded before replicas were named have none.
	Replica string `json:"replica,omitempty"`
}

// Kinds of entries.
const (
	KindDecision  = "decision"
	KindAdmission = "admission"
)

// Order is an order under evaluation, as the registry stated it then.
type Order struct {
	OrderID       string   `json:"order_id"`
	Authority     string   `json:"authority"`
	AuthorityName string   `json:"authority_name,omitempty"`
	Jurisdiction  []string `json:"jurisdiction"`
	Demands       []string `json:"demands"`
	LegalBasis    string   `json:"legal_basis"`
	Received      string   `json:"received,omitempty"`
}

// Action is an action carried out.
type Action struct {
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	Subject string `json:"subject,omitempty"` // pseudonym of the participant or account acted on
	Host    bool   `json:"host,omitempty"`
	Country string `json:"country,omitempty"` // located country (account country for suspend_account)
	// LocatedBy says how Country was established for an action on a
	// person: "ip", or "phone" for a dial-in caller located by the
	// country of the calling number (never the number itself).
	LocatedBy    string   `json:"located_by,omitempty"`
	Network      string   `json:"network,omitempty"` // /24 or /48 of the participant's address
	Jurisdiction []string `json:"jurisdiction"`
	Reason       string   `json:"reason"`
	// Reached counts everyone a meeting-wide or account action reached, by
	// located country ("unknown" when unknown): the evidence that nobody
	// outside the jurisdiction was affected.
	Reached map[string]int `json:"reached,omitempty"`
}

// Refusal is a demand not carried out as asked.
type Refusal = decision.Refusal

// Blocked is an action the guard dropped.
type Blocked struct {
	Code    string `json:"code"`
	Reason  string `json:"reason"`
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	Subject string `json:"subject,omitempty"`
	Country string `json:"country,omitempty"` // as the policy claimed it
}

// Pseudonymizer turns ids into keyed pseudonyms: HMAC-SHA256 under the
// ledger key, truncated to 128 bits. The operator, who holds the key, can
// compute the pseudonym of an id in its own records and find it here; the
// ledger alone identifies nobody.
type Pseudonymizer struct{ key []byte }

// NewPseudonymizer returns a Pseudonymizer with key.
func NewPseudonymizer(key []byte) *Pseudonymizer { return &Pseudonymizer{key: key} }

// Participant returns the pseudonym of a participant id.
func (p *Pseudonymizer) Participant(id string) string { return p.of("participant", id) }

// Account returns the pseudonym of an account id.
func (p *Pseudonymizer) Account(id string) string { return p.of("account", id) }

func (p *Pseudonymizer) of(kind, id string) string {
	if id == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return "ps:" + hex.EncodeToString(m.Sum(nil)[:16])
}

// newEntry builds the entry for a record. Free text (reasons written by the
// guard or the policy) may name people; every id the request carried, and
// every id an action named, is replaced there by its pseudonym.
func newEntry(r *engine.Record, p *Pseudonymizer, engineVersion, replica string) *Entry {
	d := r.Decision
	account := p.Account(r.AccountID)
	scrub := newScrubber(r, p)
	e := &Entry{
		DecisionID:    d.DecisionID,
		Time:          d.Time,
		Kind:          KindDecision,
		MeetingID:     d.MeetingID,
		Account:       account,
		AllowJoin:     d.AllowJoin,
		Preview:       d.Preview,
		Orders:        make([]Order, 0, len(d.OrderIDs)),
		Actions:       make([]Action, 0, len(d.Actions)),
		Refused:       make([]Refusal, 0, len(d.Refused)),
		GuardBlocked:  make([]Blocked, 0, len(d.GuardBlocked)),
		Bundles:       d.Bundles,
		Geo:           d.Geo,
		EngineVersion: engineVersion,
		Replica:       replica,
	}
	if r.Admission {
		e.Kind = KindAdmission
	}
	for _, id := range d.OrderIDs {
		o := r.Orders[id]
		auth := r.Authorities[o.Authority]
		e.Orders = append(e.Orders, Order{
			OrderID: id, Authority: o.Authority, AuthorityName: auth.Name, Jurisdiction: auth.Jurisdiction,
			Demands: o.Demands, LegalBasis: o.LegalBasis, Received: o.Received,
		})
	}
	subject := func(a decision.Action) string {
		// Whatever an action names is scrubbed from free text, even an id
		// the request never carried (a policy may invent one).
		scrub.participant(a.ParticipantID)
		scrub.account(a.AccountID)
		switch {
		case a.Type == decision.SuspendAccount:
			return p.Account(a.AccountID)
		case a.Host:
			return account
		case a.ParticipantID != "":
			return p.Participant(a.ParticipantID)
		}
		return ""
	}
	for i, a := range d.Actions {
		act := Action{Type: a.Type, OrderID: a.OrderID, Subject: subject(a), Host: a.Host, Country: a.Country, LocatedBy: a.LocatedBy, Jurisdiction: a.Jurisdiction}
		if i < len(r.Networks) && r.Networks[i].IsValid() {
			act.Network = coarse(r.Networks[i]).String()
		}
		if a.Type == decision.EndMeeting || a.Type == decision.SuspendAccount {
			act.Reached = r.Reached
		}
		e.Actions = append(e.Actions, act)
	}
	for _, b := range d.GuardBlocked {
		e.GuardBlocked = append(e.GuardBlocked, Blocked{Code: b.Code, Type: b.Action.Type, OrderID: b.Action.OrderID, Subject: subject(b.Action), Country: b.Action.Country})
	}
	// Reasons last, once every id is known to the scrubber.
	for i, a := range d.Actions {
		e.Actions[i].Reason = scrub.apply(a.Reason)
	}
	for i, b := range d.GuardBlocked {
		e.GuardBlocked[i].Reason = scrub.apply(b.Reason)
	}
	for _, rf := range d.Refused {
		e.Refused = append(e.Refused, Refusal{OrderID: rf.OrderID, Demand: rf.Demand, Code: rf.Code, Reason: scrub.apply(rf.Reason), AffectedOutside: rf.AffectedOutside})
	}
	return e
}

// coarse makes sure a stored network is no finer than /24 (IPv4) or /48
// (IPv6), whatever the caller passed.
func coarse(p netip.Prefix) netip.Prefix {
	addr, bits := p.Addr(), p.Bits()
	if addr.Is4In6() {
		addr, bits = addr.Unmap(), bits-96
	}
	if c := geo.Coarse(addr); bits < 0 || bits >= c.Bits() {
		return c
	}
	return netip.PrefixFrom(addr, bits).Masked()
}

// scrubber replaces ids in free text with their pseudonyms. Reasons repeat
// (one text for thousands of actions), so each distinct text is scrubbed
// once.
type scrubber struct {
	p     *Pseudonymizer
	ids   map[string]string // id → pseudonym
	cache map[string]string
}

func newScrubber(r *engine.Record, p *Pseudonymizer) *scrubber {
	s := &scrubber{p: p, ids: make(map[string]string, len(r.Participants)+2), cache: map[string]string{}}
	for i := range r.Participants {
		s.participant(r.Participants[i].ID)
		s.account(r.Participants[i].AccountID)
	}
	if r.Joining != nil {
		s.participant(r.Joining.ID)
		s.account(r.Joining.AccountID)
	}
	s.account(r.AccountID)
	return s
}

func (s *scrubber) participant(id string) {
	if _, ok := s.ids[id]; id != "" && !ok {
		s.ids[id] = s.p.Participant(id)
	}
}

func (s *scrubber) account(id string) {
	if id != "" {
		s.ids[id] = s.p.Account(id)
	}
}

func (s *scrubber) apply(text string) string {
	if text == "" {
		return text
	}
	if out, ok := s.cache[text]; ok {
		return out
	}
	var found []string
	for id := range s.ids {
		if strings.Contains(text, id) {
			found = append(found, id)
		}
	}
	out := text
	if len(found) > 0 {
		// Longest first, so "p1" does not eat into "p10".
		slices.SortFunc(found, func(a, b string) int { return len(b) - len(a) })
		pairs := make([]string, 0, 2*len(found))
		for _, id := range found {
			pairs = append(pairs, id, s.ids[id])
		}
		out = strings.NewReplacer(pairs...).Replace(text)
	}
	s.cache[text] = out
	return out
}

// durable reports whether a record must be stored one by one: it returns
// an action, a refusal or a guard block, or denies an admission. The rest
// (plain allowed admissions, decisions with nothing to do) are counted.
func durable(d *decision.Decision) bool {
	return len(d.Actions) > 0 || len(d.Refused) > 0 || len(d.GuardBlocked) > 0 ||
		(d.AllowJoin != nil && !*d.AllowJoin)
}
