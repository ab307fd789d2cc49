package ledger

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/decision"
	"github.com/geoscope/geoscope/engine/geo"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/policy"
	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/jsonarray"
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
	Preview bool `json:"preview,omitempty"`
	// Orders are the orders evaluated: in force at Time.
	Orders []Order `json:"orders"`
	// OrdersNotInForce are the orders that targeted the meeting but were
	// not in force at Time (each with its Status): not evaluated, and no
	// action could cite one. Absent when there were none (and in entries
	// recorded before orders had a period of validity).
	OrdersNotInForce []Order           `json:"orders_not_in_force,omitempty"`
	Actions          []Action          `json:"actions"`
	Refused          []Refusal         `json:"refused"`
	GuardBlocked     []Blocked         `json:"guard_blocked"`
	Bundles          map[string]string `json:"bundles"`
	Geo              decision.Geo      `json:"geo"`
	EngineVersion    string            `json:"engine_version"`
	// Replica names the geoscope process that decided (Config.Replica).
	// Entries recorded before replicas were named have none.
	Replica string `json:"replica,omitempty"`
	// Request identifies the request when its client named it
	// (X-Request-Id): a keyed digest of that id, the kind and the SHA-256
	// of the body as sent (Pseudonymizer.Question). The same request sent
	// again (a client or a load balancer retrying after an answer was
	// lost) has the same one; a client reusing one id for different
	// questions sends different bodies. Absent when the client gave no
	// id.
	Request string `json:"request,omitempty"`
}

// Kinds of entries.
const (
	KindDecision  = "decision"
	KindAdmission = "admission"
)

// Order is an order that targeted the meeting, as the registry stated it
// then.
type Order struct {
	OrderID       string   `json:"order_id"`
	Authority     string   `json:"authority"`
	AuthorityName string   `json:"authority_name,omitempty"`
	Jurisdiction  []string `json:"jurisdiction"`
	Demands       []string `json:"demands"`
	LegalBasis    string   `json:"legal_basis"`
	Received      string   `json:"received,omitempty"`
	// ServiceWide marks an order that applies to every meeting.
	ServiceWide bool `json:"service_wide,omitempty"`
	// Effective, Expires and Revoked are the order's period of validity
	// and revocation as stated (absent when it states none).
	Effective string               `json:"effective,omitempty"`
	Expires   string               `json:"expires,omitempty"`
	Revoked   *registry.Revocation `json:"revoked,omitempty"`
	// Status is the order's status at the decision's time: "in_force"
	// for the orders evaluated, "not_yet_effective", "expired" or
	// "revoked" for the others (registry.Statuses). Entries recorded
	// before orders had a period of validity have none: every order was
	// in force.
	Status string `json:"status,omitempty"`
}

// InForce reports whether the order was in force at the decision's time.
func (o Order) InForce() bool { return o.Status == "" || o.Status == registry.StatusInForce }

// SubmittedLegalBasis is how a decision records the legal basis of an
// order submitted with the request for preview: its SHA-256, as
// "sha256:<hex>" ("" when it has none). A registry order's legal basis is
// the operator's text and is recorded as it is; a submitted order's is
// free text from the client, which may name people, their addresses or
// numbers, none of which the ledger or the decision logs may hold. The
// digest still ties the preview to the document it was made for: whoever
// holds the text can check it.
func SubmittedLegalBasis(text string) string {
	if text == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(text))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ledgerOrder is o as an entry states it, under id and of authority (a
// preview's are given as the ledger records them: Pseudonymizer.OrderID
// and AuthorityID).
func ledgerOrder(id, authority string, o registry.Order, auth registry.Authority, status string, submitted bool) Order {
	if submitted {
		o.LegalBasis = SubmittedLegalBasis(o.LegalBasis)
		// A revocation's reason is the client's free text too.
		if o.Revoked != nil {
			revoked := *o.Revoked
			revoked.Reason = SubmittedLegalBasis(revoked.Reason)
			o.Revoked = &revoked
		}
	}
	return Order{
		OrderID: id, Authority: authority, AuthorityName: auth.Name, Jurisdiction: auth.Jurisdiction,
		Demands: o.Demands, LegalBasis: o.LegalBasis, Received: o.Received, ServiceWide: o.Targets.AllMeetings,
		Effective: o.Effective, Expires: o.Expires, Revoked: o.Revoked, Status: status,
	}
}

// Action is an action decided, for the meeting platform to carry out.
type Action struct {
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	Subject string `json:"subject,omitempty"` // pseudonym of the participant or account acted on
	Host    bool   `json:"host,omitempty"`
	Country string `json:"country,omitempty"` // located country (account country for suspend_account)
	// LocatedBy says how Country was established for an action on a
	// person: "ip", or "phone" for a dial-in caller located by the
	// country of the calling number (never the number itself).
	LocatedBy string `json:"located_by,omitempty"`
	// Subdivisions are the ISO 3166-2 subdivisions of Country the person
	// was located in (a GeoIP City database only).
	Subdivisions []string `json:"subdivisions,omitempty"`
	Network      string   `json:"network,omitempty"` // /24 or /48 of the participant's address
	Jurisdiction []string `json:"jurisdiction"`
	Reason       string   `json:"reason"`
	// Reached counts everyone a meeting-wide or account action reached, by
	// located country ("unknown" when unknown): the evidence that nobody
	// outside the jurisdiction was affected. For an order whose
	// jurisdiction lists subdivisions, a person inside is counted under the
	// subdivision (or country) of the jurisdiction that covers them, and a
	// person outside under their country.
	Reached map[string]int `json:"reached,omitempty"`
}

// Refusal is a demand not granted as asked.
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
type Pseudonymizer struct {
	key []byte
	// macs holds keyed HMACs for reuse: a roster of 100,000 participants
	// needs tens of thousands of pseudonyms, and a fresh HMAC costs two
	// hash states and the key schedule each time.
	macs sync.Pool
}

// pseudonymMAC is a keyed HMAC with scratch space for its input and sum.
type pseudonymMAC struct {
	mac     hash.Hash
	scratch []byte
}

// NewPseudonymizer returns a Pseudonymizer with key.
func NewPseudonymizer(key []byte) *Pseudonymizer { return &Pseudonymizer{key: key} }

// Participant returns the pseudonym of a participant id.
func (p *Pseudonymizer) Participant(id string) string { return p.of("participant", id) }

// Account returns the pseudonym of an account id.
func (p *Pseudonymizer) Account(id string) string { return p.of("account", id) }

// Order returns the pseudonym of the id of an order submitted for preview.
func (p *Pseudonymizer) Order(id string) string { return p.of("order", id) }

// OrderID is id, an order id of r's decision, as the ledger and the
// decision log record it: the pseudonym of the order r submitted for
// preview, any other (the registry's, the operator's text) as it is. A
// preview's id is the client's text, which may be anything, a
// participant's id or number included ("remove +8613800000000"); keyed,
// it is still found by whoever holds the key and the id (Query.Order
// matches it), and it cannot be worked back from the ledger by trying
// every number, as an unkeyed digest could.
func (p *Pseudonymizer) OrderID(r *engine.Record, id string) string {
	if id != "" && id == r.PreviewOrder {
		return p.Order(id)
	}
	return id
}

// Authority returns the pseudonym of an authority a previewed order names
// that the registry does not list.
func (p *Pseudonymizer) Authority(id string) string { return p.of("authority", id) }

// AuthorityID is id, the authority of an order of r's decision, as the
// ledger and the decision log record it: as it is when the registry lists
// it; the pseudonym of one only a previewed order names, which is the
// client's text as much as the order's id is (the policy refuses the
// order's demands, and the refusals are recorded).
func (p *Pseudonymizer) AuthorityID(r *engine.Record, id string) string {
	if _, listed := r.Authorities[id]; id != "" && !listed && r.PreviewOrder != "" {
		return p.Authority(id)
	}
	return id
}

// previewTexts maps what the client wrote into the order r previews, and
// the ledger records in place of it, to its pseudonym: the order's id,
// and an authority the registry does not list. nil for a decision about
// the registry's orders.
func (p *Pseudonymizer) previewTexts(r *engine.Record) map[string]string {
	if r.PreviewOrder == "" {
		return nil
	}
	texts := map[string]string{r.PreviewOrder: p.Order(r.PreviewOrder)}
	for _, orders := range []map[string]registry.Order{r.Orders, r.OrdersNotInForce} {
		if o, ok := orders[r.PreviewOrder]; ok {
			if a := p.AuthorityID(r, o.Authority); a != o.Authority {
				texts[o.Authority] = a
			}
		}
	}
	return texts
}

// Question is the keyed digest that tells a request sent again from
// another one (Entry.Request): HMAC-SHA256 under the ledger key of the
// request's id, its kind and its body's SHA-256, truncated to 128 bits.
// Keyed, it identifies nobody, and a body's digest cannot be tried
// against guessed rosters without the key.
func (p *Pseudonymizer) Question(r *engine.Record) string {
	if r.Request == nil {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	kind := KindDecision
	if r.Admission {
		kind = KindAdmission
	}
	var n [binary.MaxVarintLen64]byte
	for _, f := range []string{"question", kind, r.Request.ID} {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(f)))])
		m.Write([]byte(f))
	}
	m.Write(r.Request.Body[:])
	var out [3 + 32]byte
	copy(out[:], "rq:")
	hex.Encode(out[3:], m.Sum(nil)[:16])
	return string(out[:])
}

func (p *Pseudonymizer) of(kind, id string) string {
	if id == "" {
		return ""
	}
	m, _ := p.macs.Get().(*pseudonymMAC)
	if m == nil {
		m = &pseudonymMAC{mac: hmac.New(sha256.New, p.key)}
	} else {
		m.mac.Reset()
	}
	// kind, a zero byte, id: one Write, from a buffer that is reused.
	m.scratch = append(append(append(m.scratch[:0], kind...), 0), id...)
	m.mac.Write(m.scratch)
	m.scratch = m.mac.Sum(m.scratch[:0])
	var out [3 + 32]byte
	copy(out[:], "ps:")
	hex.Encode(out[3:], m.scratch[:16])
	if cap(m.scratch) <= 1024 {
		p.macs.Put(m)
	}
	return string(out[:])
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
	e.Request = p.Question(r)
	for _, id := range d.OrderIDs {
		o := r.Orders[id]
		e.Orders = append(e.Orders, ledgerOrder(p.OrderID(r, id), p.AuthorityID(r, o.Authority), o, r.Authorities[o.Authority], registry.StatusInForce, d.Preview))
	}
	for _, s := range d.OrdersNotInForce {
		o := r.OrdersNotInForce[s.OrderID]
		e.OrdersNotInForce = append(e.OrdersNotInForce, ledgerOrder(p.OrderID(r, s.OrderID), p.AuthorityID(r, o.Authority), o, r.Authorities[o.Authority], s.Status, d.Preview))
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
		act := Action{Type: a.Type, OrderID: p.OrderID(r, a.OrderID), Subject: subject(a), Host: a.Host, Country: a.Country, LocatedBy: a.LocatedBy,
			Subdivisions: a.Subdivisions, Jurisdiction: a.Jurisdiction}
		if i < len(r.Networks) && r.Networks[i].IsValid() {
			act.Network = coarse(r.Networks[i]).String()
		}
		if a.Type == decision.EndMeeting || a.Type == decision.SuspendAccount {
			act.Reached = r.Reached
			if by, ok := r.ReachedByOrder[a.OrderID]; ok {
				act.Reached = by
			}
		}
		e.Actions = append(e.Actions, act)
	}
	for _, b := range d.GuardBlocked {
		e.GuardBlocked = append(e.GuardBlocked, Blocked{Code: b.Code, Subject: subject(b.Action)})
	}
	// Free text and claims last, once every id is known to the scrubber.
	for i, b := range d.GuardBlocked {
		a := scrub.claims(b.Action)
		e.GuardBlocked[i].Type, e.GuardBlocked[i].OrderID, e.GuardBlocked[i].Country = a.Type, a.OrderID, a.Country
	}
	for i, a := range d.Actions {
		e.Actions[i].Reason = scrub.apply(a.Reason)
	}
	for i, b := range d.GuardBlocked {
		e.GuardBlocked[i].Reason = scrub.applyQuoted(b.Reason)
	}
	for _, rf := range d.Refused {
		e.Refused = append(e.Refused, Refusal{OrderID: p.OrderID(r, rf.OrderID), Demand: rf.Demand, Code: scrub.code(rf.Code), Reason: scrub.apply(rf.Reason), AffectedOutside: rf.AffectedOutside})
	}
	return e
}

// encodeEntry is json.Marshal(e) in one buffer sized up front, with the
// actions encoded one at a time (see jsonarray): for a roster of 100,000
// participants the entry holds tens of thousands of actions.
func encodeEntry(e *Entry) ([]byte, error) {
	if len(e.Actions) < 64 {
		return json.Marshal(e)
	}
	shell := *e
	shell.Actions = []Action{}
	return jsonarray.Encode(&shell, "actions", e.Actions, 0)
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
// once, and a pseudonym is only computed for an id that some text holds:
// computing one for each participant of a big roster up front cost more
// than the rest of the entry.
type scrubber struct {
	p *Pseudonymizer
	r *engine.Record
	// participants are the request's participants; named are the
	// participant ids actions name (usually the same ones; a policy may
	// invent others); accounts are account ids. An id that is both an
	// account and a participant id is replaced by its account pseudonym.
	participants []input.Participant
	joining      string
	// client maps the client's text in a previewed order (its id, an
	// authority the registry does not list) to its pseudonym, which
	// replaces it wherever it stands (Pseudonymizer.previewTexts);
	// clientTexts are its keys, in order.
	client      map[string]string
	clientTexts []string
	named       []string
	accounts    map[string]bool
	cache       map[string]string
	// escaped holds the escaped forms of ids with any (scrubber.forms),
	// runs the participants' unescaped runs (participantRuns); orders the decision's
	// order ids (scrubber.orderIDs).
	escaped   map[string][]string
	runs      []string
	runsKnown bool
	orders    []string
	// texts counts the distinct texts scrubbed. Once there are more than
	// scanAfter (scanLimit when 0), the ids a text may hold are found by
	// ids, a matcher over every id's unescapedRun, rather than by
	// searching the text for one id after another.
	texts     int
	scanAfter int
	ids       *matcher
	// The ids are numbered, in the order scrub looks for them, by keys
	// (of the matcher too): a key below len(participants) is a
	// participant's index, the others index others (otherIDs: the joining
	// id, the named ids, the accounts). always are the keys of the
	// ids whose run is empty (every character escaped), which no run can
	// rule out; keys is scratch space for the keys a text holds.
	others       []string
	always, keys []int32
}

// How many distinct texts a scrubber searches for one id after another
// (strings.Contains each) before it builds its matcher (Aho–Corasick) over
// the runs of every id, which then finds the candidates of each text in
// one pass over it.
//
// Most entries have one or a few distinct texts, and searching those is
// cheaper than building: the matcher has a state for each byte of the ids
// that no other id shares, a search costs a Contains per id. Built over
// 1,000 or 100,000 ids, the matcher cost what searching 11 to 17 texts did
// with ids of 8 bytes (p-000123), 84 with UUIDs (36 bytes), 3 to 7 with
// `CORP\p000123` (runs of 7 bytes, and a dearer search);
// BenchmarkScrubberMatcher. So the scrubber searches id by id as many texts
// as building would cost, reckoned as 2.5 times the ids' mean length in
// bytes (scanLimit), and never fewer than scanTexts; past them it builds.
// Whatever its number of texts, an entry then spends on finding ids no
// more than two or three times what the cheaper of the two ways would
// have; up to five times with ids that strings escape.
//
// An entry with a reason per participant (sprintf("participant %s is
// inside %s")) has as many texts as ids: searched id by id, each costs
// the whole roster, and the entry the square of it; with the matcher, a
// pass over each text (BenchmarkNewEntryReasonPerParticipant, 100,000
// participants: 285 s id by id, 0.33 s).
const scanTexts = 8

// scanLimit is how many distinct texts the scrubber searches id by id
// before it builds its matcher: 2.5 times the mean length of the ids, at
// least scanTexts.
func (s *scrubber) scanLimit() int {
	ids, bytes := 1+len(s.participants)+len(s.named)+len(s.accounts)+len(s.clientTexts), len(s.joining)
	for _, text := range s.clientTexts {
		bytes += len(text)
	}
	for i := range s.participants {
		bytes += len(s.participants[i].ID)
	}
	for _, id := range s.named {
		bytes += len(id)
	}
	for id := range s.accounts {
		bytes += len(id)
	}
	return max(scanTexts, 5*bytes/(2*ids))
}

func newScrubber(r *engine.Record, p *Pseudonymizer) *scrubber {
	s := &scrubber{p: p, r: r, participants: r.Participants, accounts: map[string]bool{}, cache: map[string]string{}}
	s.client = p.previewTexts(r)
	s.clientTexts = slices.Sorted(maps.Keys(s.client))
	// The accounts participants are signed in with are ids too.
	for i := range r.Participants {
		s.account(r.Participants[i].AccountID)
	}
	if r.Joining != nil {
		s.joining = r.Joining.ID
		s.account(r.Joining.AccountID)
	}
	s.account(r.AccountID)
	// The accounts an order targets, a preview's above all (the client's
	// own list, which the decision log pseudonymizes), are ids too.
	for _, orders := range []map[string]registry.Order{r.Orders, r.OrdersNotInForce} {
		for _, o := range orders {
			for _, a := range o.Targets.Accounts {
				s.account(a)
			}
		}
	}
	return s
}

// claims scrubs what a policy wrote into an action the guard blocked,
// besides the people it names (which are pseudonymized): its type, order,
// meeting and the facts it claimed. The guard reports a blocked action as
// the policy stated it, and a policy that put an id there (in error, or
// to see whether it would be stored) must not have it stored. What is
// what the engine knows (an action type, an order evaluated or not in
// force, this meeting, a well-formed country or subdivision code, how
// people are located) is kept as it is, so reports still attribute the
// block to its order; anything else is scrubbed as free text.
func (s *scrubber) claims(a decision.Action) decision.Action {
	keep := func(v string, known bool) string {
		if known || v == "" || v == policy.NotAString {
			return v
		}
		return s.apply(v)
	}
	_, evaluated := s.r.Orders[a.OrderID]
	_, notInForce := s.r.OrdersNotInForce[a.OrderID]
	a.Type = keep(a.Type, decision.KnownActionType(a.Type))
	a.OrderID = s.p.OrderID(s.r, keep(a.OrderID, evaluated || notInForce))
	a.MeetingID = keep(a.MeetingID, a.MeetingID == s.r.Decision.MeetingID)
	a.Country = keep(a.Country, registry.IsCountryCode(a.Country))
	a.LocatedBy = keep(a.LocatedBy, decision.KnownLocatedBy(a.LocatedBy))
	place := func(codes []string) []string {
		if !slices.ContainsFunc(codes, func(c string) bool { return !registry.IsPlaceCode(c) && c != policy.NotAString }) {
			return codes
		}
		out := make([]string, len(codes))
		for i, c := range codes {
			out[i] = keep(c, registry.IsPlaceCode(c))
		}
		return out
	}
	a.Jurisdiction = place(a.Jurisdiction)
	a.Subdivisions = place(a.Subdivisions)
	return a
}

// forms are id's escaped forms (escapedForms), worked out once per id.
func (s *scrubber) forms(id string) []string {
	if plainASCII(id) {
		return nil // the usual case, decided without a lookup
	}
	if f, ok := s.escaped[id]; ok {
		return f
	}
	f := escapedForms(id)
	if s.escaped == nil {
		s.escaped = map[string][]string{}
	}
	s.escaped[id] = f
	return f
}

// participantRuns are the participants' ids' unescapedRun, in their
// order, worked out once; nil when every id is plain ASCII, its own run
// (the usual case, which costs no array).
func (s *scrubber) participantRuns() []string {
	if !s.runsKnown {
		s.runsKnown = true
		if slices.ContainsFunc(s.participants, func(p input.Participant) bool { return !plainASCII(p.ID) }) {
			s.runs = make([]string, len(s.participants))
			for i := range s.participants {
				s.runs[i] = unescapedRun(s.participants[i].ID)
			}
		}
	}
	return s.runs
}

// WithheldCode replaces a refusal code that holds an id (code).
const WithheldCode = "code_withheld"

// code is a refusal's code, or WithheldCode when it holds an id as a
// token ("withheld_user_4471" for the participant "user_4471"): codes
// label the public report's rows, and a policy's code is checked only
// for its shape.
func (s *scrubber) code(c string) string {
	if s.apply(c) != c {
		return WithheldCode
	}
	return c
}

// orderIDs are the ids of the orders the decision named, evaluated or
// not in force, which free text keeps as they are; not a preview's,
// which is replaced like an id (scrubber.client).
func (s *scrubber) orderIDs() []string {
	if s.orders == nil && s.r != nil {
		s.orders = make([]string, 0, len(s.r.Orders)+len(s.r.OrdersNotInForce))
		for _, orders := range []map[string]registry.Order{s.r.Orders, s.r.OrdersNotInForce} {
			for id := range orders {
				if _, clients := s.client[id]; !clients {
					s.orders = append(s.orders, id)
				}
			}
		}
	}
	return s.orders
}

// participant and account add an id to look for. The list of the ids and
// the matcher, built over the ids known then, are built again if one is
// added after them (newEntry adds every id before it scrubs a text).
func (s *scrubber) participant(id string) {
	if id != "" {
		s.named = append(s.named, id)
		s.ids, s.others = nil, nil
	}
}

func (s *scrubber) account(id string) {
	if id != "" && !s.accounts[id] {
		s.accounts[id] = true
		s.ids, s.others = nil, nil
	}
}

// matching counts one more distinct text and reports whether the ids it
// holds are to be found with the matcher, building the matcher when it is
// needed and not built: after the first scanAfter texts.
func (s *scrubber) matching() bool {
	s.texts++
	if s.scanAfter == 0 {
		if s.texts <= scanTexts {
			return false
		}
		s.scanAfter = s.scanLimit()
	}
	if s.texts <= s.scanAfter {
		return false
	}
	if s.ids == nil {
		s.buildMatcher()
	}
	return true
}

// buildMatcher builds the matcher over the runs of every id the
// scrubber knows, keyed in the order scrub looks for them: participants,
// joining, named, accounts.
func (s *scrubber) buildMatcher() {
	others := s.otherIDs()
	runs := make([]string, len(s.participants), len(s.participants)+len(others))
	if r := s.participantRuns(); r != nil {
		copy(runs, r)
	} else {
		for i := range s.participants {
			runs[i] = s.participants[i].ID
		}
	}
	for _, id := range others {
		runs = append(runs, unescapedRun(id))
	}
	s.always = s.always[:0]
	for k, run := range runs {
		if run == "" && s.id(int32(k)) != "" {
			s.always = append(s.always, int32(k))
		}
	}
	s.ids = newMatcher(runs)
}

// otherIDs are the ids scrub looks for after the participants', in its
// order: the joining id, the named ids, the accounts, the client's texts
// in a previewed order. They are listed once, and again after an id is
// added (participant, account).
func (s *scrubber) otherIDs() []string {
	if s.others == nil {
		s.others = append(make([]string, 0, 1+len(s.named)+len(s.accounts)+len(s.clientTexts)), s.joining)
		s.others = append(s.others, s.named...)
		for id := range s.accounts {
			s.others = append(s.others, id)
		}
		s.others = append(s.others, s.clientTexts...)
	}
	return s.others
}

// id is the id of a key: a participant's index, then an index into
// otherIDs.
func (s *scrubber) id(k int32) string {
	if int(k) < len(s.participants) {
		return s.participants[k].ID
	}
	return s.others[int(k)-len(s.participants)]
}

// keyed is what scrub looks for under a key: its id, and its
// unescapedRun (a participant's own id unless runs, where the text is
// quoted or escaped and participantRuns tells it).
func (s *scrubber) keyed(k int32, runs bool) (id, run string) {
	id = s.id(k)
	switch {
	case int(k) >= len(s.participants):
		return id, unescapedRun(id)
	case runs && s.participantRuns() != nil:
		return id, s.runs[k]
	}
	return id, id
}

// candidates are the keys of the ids text may hold, in order: those whose
// run it holds, and those with no run. Every form of an id holds its run.
func (s *scrubber) candidates(text string) []int32 {
	s.keys = append(s.keys[:0], s.always...)
	s.ids.find(text, func(keys []int32) { s.keys = append(s.keys, keys...) })
	slices.Sort(s.keys)
	s.keys = slices.Compact(s.keys)
	return s.keys
}

func (s *scrubber) apply(text string) string { return s.scrub(text, false) }

// applyQuoted scrubs text the engine wrote itself (the guard's reasons),
// which quote every id they name ("%q"): only quoted ids are replaced, so
// an id that happens to be a word or a number ("located", "1") cannot
// garble the rest of the reason.
func (s *scrubber) applyQuoted(text string) string { return s.scrub(text, true) }

// scrub replaces the ids text holds with their pseudonyms. In free text an
// id is replaced where it stands as a whole token (not inside a longer
// word or number: "p1" in "p10" or "ship1ment" stays), which keeps counts
// and words readable while no id survives on its own. The trade-off: an id
// that is an ordinary word or number (a participant called "2") is still
// replaced wherever that word stands alone in free text.
func (s *scrubber) scrub(text string, quoted bool) string {
	if text == "" {
		return text
	}
	key := text
	if quoted {
		key = "\x00q" + text
	}
	if out, ok := s.cache[key]; ok {
		return out
	}
	// found maps each form of an id the text holds (the id, or the id as
	// a quoted string or JSON escapes it inside quotes) to the id; kept
	// forms (the orders' ids) map to "".
	found := map[string]string{}
	// claim maps form to id, the later id taking a form an earlier one
	// took, as the ids are looked for in order; but of two accounts that
	// hold the same form (the account `a\\b`, and `a\b` escaped) the
	// greater keeps it, since the accounts are looked for in the order of
	// a map, which is not the same twice.
	claim := func(form, id string) {
		if prev, ok := found[form]; ok && prev > id && s.accounts[prev] && s.accounts[id] {
			return
		}
		found[form] = id
	}
	// Every escaped form holds a backslash: a text without one holds none.
	escaped := strings.IndexByte(text, '\\') >= 0
	// run is id's unescapedRun: every form of the id holds it, so a text
	// without it holds none of them, which is told without working any
	// out. The participants' runs are worked out once (s.participantRuns).
	look := func(id, run string) {
		if id == "" {
			return
		}
		if quoted {
			if run == "" || strings.Contains(text, run) {
				if q := strconv.Quote(id); strings.Contains(text, q) {
					claim(q, id)
				}
			}
			return
		}
		if strings.Contains(text, id) {
			claim(id, id)
		}
		if escaped && run != id && (run == "" || strings.Contains(text, run)) {
			for _, form := range s.forms(id) {
				if strings.Contains(text, form) {
					claim(form, id)
				}
			}
		}
	}
	if s.matching() {
		// The same ids looked for in the same order, those whose run the
		// text does not hold left out: they hold none of their forms.
		for _, k := range s.candidates(text) {
			look(s.keyed(k, quoted || escaped))
		}
	} else {
		// Every id, in the same order; the participants' loop written out,
		// as it runs over the whole roster for each text.
		var runs []string
		if quoted || escaped {
			runs = s.participantRuns()
		}
		for i := range s.participants {
			if runs != nil {
				look(s.participants[i].ID, runs[i])
			} else {
				look(s.participants[i].ID, s.participants[i].ID)
			}
		}
		for _, id := range s.otherIDs() {
			look(id, unescapedRun(id))
		}
	}
	out := text
	if len(found) > 0 && !quoted {
		// An order's id stays as it is where it stands whole, even when
		// part of it is someone's id ("CN" in "CN-2020-0601"): it is
		// tried, as the longer match, before that id. An id that is an
		// order's id whole is still replaced.
		for _, id := range s.orderIDs() {
			if _, isID := found[id]; !isID && strings.Contains(text, id) {
				found[id] = ""
			}
		}
	}
	if len(found) > 0 {
		// Longest first, so "p1" does not eat into "p10".
		forms := slices.SortedFunc(maps.Keys(found), func(a, b string) int { return cmp.Or(len(b)-len(a), strings.Compare(a, b)) })
		pseudonym := func(form string) string {
			id := found[form]
			switch {
			case id == "":
				return form
			case s.accounts[id]:
				return s.p.Account(id)
			}
			if ps, ok := s.client[id]; ok {
				return ps
			}
			return s.p.Participant(id)
		}
		if quoted {
			pairs := make([]string, 0, 2*len(forms))
			for _, form := range forms {
				pairs = append(pairs, form, strconv.Quote(pseudonym(form)))
			}
			out = strings.NewReplacer(pairs...).Replace(text)
		} else {
			out = replaceTokens(text, forms, pseudonym)
		}
	}
	s.cache[key] = out
	return out
}

// escapedForms are the ways an id with characters that strings escape is
// written inside a quoted string: as Go and OPA's sprintf("%q") quote it,
// as JSON (json.marshal, and "%v" of an object) escapes it, and each of
// those escaped once more (a reason quoting a JSON text). An id of plain
// characters has none: it reads the same everywhere.
func escapedForms(id string) []string {
	if plainASCII(id) {
		return nil
	}
	goInner := func(s string) string { q := strconv.Quote(s); return q[1 : len(q)-1] }
	jsonInner := func(s string) string {
		b, _ := json.Marshal(s) // a string always encodes
		return string(b[1 : len(b)-1])
	}
	var forms []string
	add := func(f string) {
		if f != id && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	for _, once := range []string{goInner(id), jsonInner(id)} {
		add(once)
		add(goInner(once))
		add(jsonInner(once))
	}
	return forms
}

// plainASCII reports whether id is printable ASCII that neither Go's
// quoting nor JSON escapes: it has no escaped forms.
func plainASCII(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// unescapedRun is the longest run of id's characters that neither Go's
// quoting nor JSON escapes, which every escaped form of id holds as it
// is; the whole id when it has none to escape, "" when every character
// is escaped.
func unescapedRun(id string) string {
	if plainASCII(id) {
		return id
	}
	best, start := "", 0
	for i, r := range id {
		if escapedRune(r) {
			if i-start > len(best) {
				best = id[start:i]
			}
			start = i + utf8.RuneLen(r)
			if r == utf8.RuneError {
				start = i + 1
			}
		}
	}
	if len(id)-start > len(best) {
		best = id[start:]
	}
	return best
}

// escapedRune reports whether Go's quoting or JSON (escaping HTML, as
// encoding/json does by default) writes r otherwise than as itself.
func escapedRune(r rune) bool {
	switch r {
	case '"', '\\', '<', '>', '&', '\u2028', '\u2029', utf8.RuneError:
		return true
	}
	return r < 0x20 || r == 0x7f || !unicode.IsPrint(r)
}

// replaceTokens replaces each occurrence of one of ids (tried in order)
// that stands as a whole token: an id starting (ending) with a word
// character (a letter or a digit) is not preceded (followed) by one.
//
// An id with with(id) == id is kept (an order's id): it is matched only
// where no other id starts inside it and runs past its end, so that it
// never shields the end of someone's id ("CN-2020-0601-7" holding the
// participant "0601-7").
func replaceTokens(text string, ids []string, with func(string) string) string {
	var b strings.Builder
	last := 0
	overlapped := func(i int, kept string) bool {
		end := i + len(kept)
		for j := i + 1; j < end; j++ {
			for _, id := range ids {
				if j+len(id) > end && with(id) != id && strings.HasPrefix(text[j:], id) && tokenAt(text, j, j+len(id)) {
					return true
				}
			}
		}
		return false
	}
	for i := 0; i < len(text); {
		matched := ""
		for _, id := range ids {
			if strings.HasPrefix(text[i:], id) && tokenAt(text, i, i+len(id)) && (with(id) != id || !overlapped(i, id)) {
				matched = id
				break
			}
		}
		if matched == "" {
			i++
			continue
		}
		b.WriteString(text[last:i])
		b.WriteString(with(matched))
		i += len(matched)
		last = i
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// tokenAt reports whether text[start:end] is not glued to letters or
// digits on a side where it itself begins or ends with one.
func tokenAt(text string, start, end int) bool {
	first, _ := utf8.DecodeRuneInString(text[start:end])
	lastR, _ := utf8.DecodeLastRuneInString(text[start:end])
	if start > 0 && wordRune(first) {
		if r, _ := utf8.DecodeLastRuneInString(text[:start]); wordRune(r) {
			return false
		}
	}
	if end < len(text) && wordRune(lastR) {
		if r, _ := utf8.DecodeRuneInString(text[end:]); wordRune(r) {
			return false
		}
	}
	return true
}

// wordRune is a character that continues a token: "p1" in "p10" or
// "ship1ment" is part of a longer word, not an id of its own. Punctuation
// ends a token, "-" and "_" too: a policy that glues an id to an order's
// ("CN-2020-0601-p1") or a prefix ("case_p1") must not store it. The
// trade-off: an id that is also part of a hyphenated name ("CN" in
// "CN-11") is replaced there too.
func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// durable reports whether a record must be stored one by one: it returns
// an action, a refusal or a guard block, or denies an admission. The rest
// (plain allowed admissions, decisions with nothing to do) are counted.
func durable(d *decision.Decision) bool {
	return len(d.Actions) > 0 || len(d.Refused) > 0 || len(d.GuardBlocked) > 0 ||
		(d.AllowJoin != nil && !*d.AllowJoin)
}
