// Package input decodes and validates the requests geoscope answers. It is
// the first stage of the pipeline: nothing past it sees a malformed request,
// and every rejection names the offending field.
package input

import (
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/geoscope/geoscope/engine/registry"
	"github.com/geoscope/geoscope/internal/idindex"
	"github.com/geoscope/geoscope/internal/reuse"
)

// Request asks for a decision about one meeting. Joining is present for an
// admission question; Order is present to preview a new demand (otherwise the
// registry's standing orders for the meeting and its host account apply).
type Request struct {
	Meeting Meeting      `json:"meeting"`
	Joining *Participant `json:"joining,omitempty"`
	Order   *Order       `json:"order,omitempty"`

	// index maps each participant's id to its position in
	// Meeting.Participants; validation builds it while it checks the
	// ids for duplicates.
	index *idindex.Index
}

// ParticipantIndex maps each participant's id to its position in
// Meeting.Participants. It is the index validation checked the ids with,
// so a large roster is hashed once for the whole pipeline; for a request
// that was not validated a new one is built on each call (and not kept:
// the request may be shared; a repeated id is found at its first position,
// and the index's Unique is false). The caller must not modify it. It
// describes the roster as validated: a user of it checks the id at the
// position it gives (see guard.Facts.ParticipantIndex).
func (r *Request) ParticipantIndex() *idindex.Index {
	if r.index != nil {
		return r.index
	}
	ps := r.Meeting.Participants
	return idindex.Of(len(ps), func(i int) string { return ps[i].ID })
}

// participantArrays keeps the participants' arrays of large rosters for
// later requests (see package reuse).
var participantArrays reuse.Slices[Participant]

// Release hands the request's large arrays (its participants', its id
// index) back for reuse by later requests. Call it once the decision is
// answered and recorded, and at most once: nothing may use the request or
// its participants' slice afterwards. Strings read from the request stay
// valid. A request never released is simply collected.
func (r *Request) Release() {
	ps := r.Meeting.Participants
	r.Meeting.Participants = nil
	if r.index != nil {
		r.index.Release()
		r.index = nil
	}
	participantArrays.Put(ps)
}

// Meeting is the meeting the question is about.
type Meeting struct {
	ID           string        `json:"id"`
	Host         Host          `json:"host"`
	Participants []Participant `json:"participants"`

	// keep is how many participants decoding keeps (Decode sets it from
	// its Limits; 0 keeps as many as the id index holds), and unkept how
	// many it read past them, only to count them: a roster over the limit
	// is refused (validate), and a body of millions of participants of two
	// bytes each must not first cost the memory of each.
	keep, unkept int
}

// Host is the meeting's host account and, when connected, how: an IP
// address or, for a host who dialled in, the calling number.
type Host struct {
	AccountID string `json:"account_id"`
	// AccountCountry is where the account is registered. It is never a
	// location: nobody is acted on because of it.
	AccountCountry string     `json:"account_country,omitempty"`
	IP             string     `json:"ip,omitempty"`
	Phone          string     `json:"phone,omitempty"`
	Role           string     `json:"role,omitempty"`
	Attributes     Attributes `json:"attributes,omitempty"`

	// Addr is IP parsed (and unmapped); valid only when IP was given.
	Addr netip.Addr `json:"-"`

	// emptyMember is the first optional member the request gave as ""
	// (see UnmarshalJSONFrom); checkHost refuses it.
	emptyMember string
}

// UnmarshalJSONFrom decodes the host as the struct's tags say, telling an
// optional member given as "" from one left out: decoded into a string
// both are "", and a host whose "ip" is "" would be a host who is not
// connected, whose location then never counts, instead of a malformed
// request. null still means absent.
func (h *Host) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	type fields Host // the same members, without this method
	var in struct {
		fields         `json:",inline"`
		AccountCountry *string `json:"account_country,omitempty"`
		IP             *string `json:"ip,omitempty"`
		Phone          *string `json:"phone,omitempty"`
		Role           *string `json:"role,omitempty"`
	}
	if err := json.UnmarshalDecode(dec, &in); err != nil {
		return err
	}
	*h = Host(in.fields)
	for _, m := range []struct {
		name string
		in   *string
		out  *string
	}{{"account_country", in.AccountCountry, &h.AccountCountry}, {"ip", in.IP, &h.IP}, {"phone", in.Phone, &h.Phone}, {"role", in.Role, &h.Role}} {
		switch {
		case m.in == nil:
		case *m.in == "" && h.emptyMember == "":
			h.emptyMember = m.name
		default:
			*m.out = *m.in
		}
	}
	return nil
}

// Connected reports whether the host's address or calling number was
// given.
func (h *Host) Connected() bool { return h.Addr.IsValid() || h.Phone != "" }

// Participant is a connected (or joining) user. At most one of IP and
// Phone is given: a dial-in caller has a calling number and no address,
// and a person the meeting server can give neither for is present with
// an unknown location (see checkConnection).
type Participant struct {
	ID    string `json:"id"`
	IP    string `json:"ip,omitempty"`
	Phone string `json:"phone,omitempty"`
	// Role is the participant's role in the meeting (see Roles).
	Role string `json:"role,omitempty"`
	// AccountID and AccountCountry describe the signed-in user's account.
	// AccountCountry is where that account is registered, never where the
	// person is.
	AccountID      string     `json:"account_id,omitempty"`
	AccountCountry string     `json:"account_country,omitempty"`
	Attributes     Attributes `json:"attributes,omitempty"`

	// Addr is IP parsed (and unmapped); valid only when IP was given.
	Addr netip.Addr `json:"-"`

	// empty has bit 1<<member set for each optional string member the
	// request gave as "" (see roster.go's member constants);
	// checkParticipant refuses it. Decoded into a string, "" is the same
	// as a member left out, but the request's schema allows neither an
	// empty address nor an empty role, account or country: a request
	// holding one is malformed, and read as absent it was decided as
	// something its sender did not say (an "ip" of "" beside a phone
	// located the person by the phone). null still means absent.
	empty uint8
}

// Roles a participant may have.
const (
	RoleHost      = "host"
	RoleCoHost    = "co_host"
	RolePanelist  = "panelist"
	RoleAttendee  = "attendee"
	rolesAccepted = "host, co_host, panelist, attendee"
)

// Roles lists the participant roles in a stable order.
var Roles = []string{RoleHost, RoleCoHost, RolePanelist, RoleAttendee}

// Order is a demand submitted with the request for preview. It may state
// when it is in force as a registry order does (effective, expires,
// revoked); one that is not in force at the decision's time is not
// evaluated.
type Order struct {
	ID         string               `json:"id"`
	Authority  string               `json:"authority"`
	Demands    []string             `json:"demands"`
	Targets    registry.Targets     `json:"targets"`
	LegalBasis string               `json:"legal_basis,omitempty"`
	Received   string               `json:"received,omitempty"`
	Effective  string               `json:"effective,omitempty"`
	Expires    string               `json:"expires,omitempty"`
	Revoked    *registry.Revocation `json:"revoked,omitempty"`
}

// Registry returns the order in the registry's shape.
func (o *Order) Registry() registry.Order {
	return registry.Order{
		Authority:  o.Authority,
		Demands:    o.Demands,
		Targets:    o.Targets,
		LegalBasis: o.LegalBasis,
		Received:   o.Received,
		Effective:  o.Effective,
		Expires:    o.Expires,
		Revoked:    o.Revoked,
	}
}

// Admission is the join-time question: may this participant join this
// meeting? It carries no roster, which keeps the hot path small.
type Admission struct {
	Meeting     AdmissionMeeting `json:"meeting"`
	Participant Participant      `json:"participant"`
}

// AdmissionMeeting identifies the meeting and its host account.
type AdmissionMeeting struct {
	ID   string        `json:"id"`
	Host AdmissionHost `json:"host"`
}

// AdmissionHost is the host account; its connection does not matter for an
// admission.
type AdmissionHost struct {
	AccountID      string `json:"account_id"`
	AccountCountry string `json:"account_country,omitempty"`
}

// Limits bound a request. A zero MaxParticipants leaves only the id
// index's own bound, idindex.MaxLen (2^31−1).
type Limits struct {
	MaxParticipants int
}

// participants is the most participants a request may have: MaxParticipants,
// and never more than the id index holds, whatever the limit given.
func (lim Limits) participants() int {
	if lim.MaxParticipants > 0 {
		return min(idindex.MaxLen, lim.MaxParticipants)
	}
	return idindex.MaxLen
}

// MaxIDLength bounds every identifier; ids are opaque to geoscope but end up
// in audit records, so they must stay printable and reasonably short.
const MaxIDLength = 256

// Decode parses and validates a decision request.
func Decode(data []byte, lim Limits) (*Request, error) {
	var r Request
	// Read by Meeting.UnmarshalJSONFrom, into which the decoder decodes
	// the meeting in place.
	r.Meeting.keep = lim.participants()
	if err := DecodeStrict(data, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(lim); err != nil {
		return nil, err
	}
	return &r, nil
}

// DecodeAdmission parses and validates an admission request and returns it
// as the equivalent decision request.
func DecodeAdmission(data []byte) (*Request, error) {
	var a Admission
	if err := DecodeStrict(data, &a); err != nil {
		return nil, err
	}
	r := &Request{
		Meeting: Meeting{
			ID:   a.Meeting.ID,
			Host: Host{AccountID: a.Meeting.Host.AccountID, AccountCountry: a.Meeting.Host.AccountCountry},
		},
		Joining: &a.Participant,
	}
	// Field names differ from the decision request only in "participant".
	if err := r.validate(Limits{}, "participant"); err != nil {
		return nil, err
	}
	return r, nil
}

// Validate checks the request and fills in the parsed addresses.
func (r *Request) Validate(lim Limits) error { return r.validate(lim, "joining") }

func (r *Request) validate(lim Limits, joiningField string) error {
	m := &r.Meeting
	if err := checkID(at("meeting.id"), m.ID); err != nil {
		return err
	}
	if err := checkHost(&m.Host); err != nil {
		return err
	}
	// Those decoding counted without keeping them count too.
	if n, limit := len(m.Participants)+m.unkept, lim.participants(); n > limit {
		return tooLarge("meeting.participants", "%d participants exceed the limit of %d", n, limit)
	}
	seen, err := indexParticipants(m.Participants)
	if err != nil {
		return err
	}
	r.index = seen
	// Actions name people by these ids, the connected host by its account
	// id: one id must not stand for two connections.
	if m.Host.Connected() {
		if j, dup := seen.Find(m.Host.AccountID, func(j int) bool { return m.Participants[j].ID == m.Host.AccountID }); dup {
			return invalid(field{base: "meeting.participants", index: j}.sub("id").String(),
				"%s is the account id of the connected host (meeting.host); a connected host is described there, not again as a participant", Quote(m.Host.AccountID))
		}
	}
	if r.Joining != nil {
		f := field{base: joiningField, index: -1}
		if err := checkParticipant(r.Joining, f); err != nil {
			return err
		}
		if j, dup := seen.Find(r.Joining.ID, func(j int) bool { return m.Participants[j].ID == r.Joining.ID }); dup {
			return invalid(f.sub("id").String(), "%s is already connected as meeting.participants[%d]", Quote(r.Joining.ID), j)
		}
		if m.Host.Connected() && r.Joining.ID == m.Host.AccountID {
			return invalid(f.sub("id").String(), "%s is the account id of the connected host (meeting.host)", Quote(r.Joining.ID))
		}
	}
	if r.Order != nil {
		return r.Order.validate()
	}
	return nil
}

// parallelCheckMin is the roster from which participants are checked by
// two goroutines: below it, starting one costs more than it saves.
const parallelCheckMin = 4096

// indexParticipants checks every participant and indexes their ids. The
// error is the one of the first participant in the roster that fails,
// a check before its id's uniqueness, as if they were checked one by one.
//
// For large rosters most participants are checked on another goroutine
// while this one checks the first ones and then indexes the ids, which are
// indexed in order whatever their checks say, so the index does not wait
// for them. Measured alone against checking on one goroutine
// (BenchmarkDecode, alternated six times): 100,000 participants 19.5
// against 21.0 ms; 10,000 the same within the noise (2.10 against 2.05 ms).
func indexParticipants(ps []Participant) (*idindex.Index, error) {
	split := len(ps)
	var (
		late     sync.WaitGroup
		lateAt   int
		lateErr  error
		panicked any
	)
	if len(ps) >= parallelCheckMin {
		// Indexing takes about as long as checking 40 % of the roster, so
		// this goroutine checks the first 30 % and the other the rest.
		split = len(ps) * 3 / 10
		late.Go(func() {
			// Raised again below, in the request's goroutine, where the
			// server's recovery answers it as for any other request.
			defer func() { panicked = recover() }()
			lateAt, lateErr = checkParticipants(ps, split, len(ps))
		})
	}
	checkAt, checkErr := checkParticipants(ps, 0, split)
	// Ids are indexed up to the first participant that failed its check
	// (a duplicate there is reported after the check's error) or to the
	// end, stopping at the first duplicate.
	seen := idindex.New(len(ps))
	indexTo, dupAt, dupOf := len(ps), len(ps), 0
	if checkErr != nil {
		indexTo = checkAt + 1
	}
	for i := range indexTo {
		if j, added := seen.Add(ps[i].ID, i, func(j int) bool { return ps[j].ID == ps[i].ID }); !added {
			dupAt, dupOf = i, j
			break
		}
	}
	late.Wait() // before returning: it writes the participants' addresses
	if panicked != nil {
		seen.Release()
		panic(panicked)
	}
	if checkErr == nil {
		checkAt, checkErr = lateAt, lateErr
	}
	switch {
	case checkErr != nil && checkAt <= dupAt:
		seen.Release()
		return nil, checkErr
	case dupAt < len(ps):
		seen.Release()
		return nil, invalid(field{base: "meeting.participants", index: dupAt}.sub("id").String(),
			"%s duplicates meeting.participants[%d].id", Quote(ps[dupAt].ID), dupOf)
	}
	return seen, nil
}

// checkHook, set only by tests, runs before each participant's check: it
// is how a test makes a check panic on the second goroutine, which nothing
// a request holds can do.
var checkHook func(i int)

// checkParticipants checks ps[from:to] and returns where the first that
// fails is, with its error.
func checkParticipants(ps []Participant, from, to int) (int, error) {
	for i := from; i < to; i++ {
		if checkHook != nil {
			checkHook(i)
		}
		if err := checkParticipant(&ps[i], field{base: "meeting.participants", index: i}); err != nil {
			return i, err
		}
	}
	return to, nil
}

// field names a field in error messages. It is a value built on every
// check and turned into a string only when a check fails: a roster of
// 100,000 participants must not cost 100,000 field names.
type field struct {
	base   string
	index  int // -1: base is not indexed
	suffix string
}

func at(name string) field { return field{base: name, index: -1} }

// sub names a member of the field.
func (f field) sub(name string) field {
	if f.suffix != "" {
		name = f.suffix + "." + name
	}
	f.suffix = name
	return f
}

func (f field) String() string {
	s := f.base
	if f.index >= 0 {
		s = indexed(s, f.index)
	}
	if f.suffix != "" {
		s += "." + f.suffix
	}
	return s
}

func checkHost(h *Host) error {
	f := at("meeting.host")
	if h.emptyMember != "" {
		return invalid(f.sub(h.emptyMember).String(), "is empty: give a value, or leave the member out (or null)")
	}
	if err := checkID(f.sub("account_id"), h.AccountID); err != nil {
		return err
	}
	if err := checkCountry(f.sub("account_country"), h.AccountCountry); err != nil {
		return err
	}
	// A host with neither an address nor a calling number is not connected.
	if h.IP != "" || h.Phone != "" {
		addr, err := checkConnection(f, h.IP, h.Phone)
		if err != nil {
			return err
		}
		h.Addr = addr
	}
	if h.Role != "" && h.Role != RoleHost {
		return invalid(f.sub("role").String(), "%s is not the host's role (the host's role is %q)", Quote(h.Role), RoleHost)
	}
	return h.Attributes.check(f.sub("attributes"))
}

func (o *Order) validate() error {
	if err := checkID(at("order.id"), o.ID); err != nil {
		return err
	}
	// As the registry's validation holds its order ids: " O2 " would read
	// as O2 wherever the ledger and the report show it.
	if strings.TrimSpace(o.ID) != o.ID {
		return invalid("order.id", "%s begins or ends with whitespace", Quote(o.ID))
	}
	if err := checkID(at("order.authority"), o.Authority); err != nil {
		return err
	}
	// As the registry states it: the day the demand was received.
	if o.Received != "" {
		if _, err := time.Parse(time.DateOnly, o.Received); err != nil {
			return invalid("order.received", "%s is not a date YYYY-MM-DD", Quote(o.Received))
		}
	}
	if len(o.Demands) == 0 {
		return invalid("order.demands", "at least one demand is required (%s)", strings.Join(registry.Demands, ", "))
	}
	for i, d := range o.Demands {
		if !registry.KnownDemand(d) {
			return invalid(indexed("order.demands", i), "%s is not a known demand (%s)", Quote(d), strings.Join(registry.Demands, ", "))
		}
		for j := range i {
			if o.Demands[j] == d {
				return invalid(indexed("order.demands", i), "%s is repeated", Quote(d))
			}
		}
	}
	for i, id := range o.Targets.Meetings {
		if err := checkID(field{base: "order.targets.meetings", index: i}, id); err != nil {
			return err
		}
	}
	for i, id := range o.Targets.Accounts {
		if err := checkID(field{base: "order.targets.accounts", index: i}, id); err != nil {
			return err
		}
	}
	if o.Targets.AllMeetings {
		if len(o.Targets.Meetings) > 0 || len(o.Targets.Accounts) > 0 {
			return invalid("order.targets.all_meetings", "a service-wide order applies to every meeting and names no meetings or accounts besides")
		}
		for i, d := range o.Demands {
			if d == registry.DemandEndMeeting || d == registry.DemandSuspendAccount {
				return invalid(indexed("order.demands", i), "a service-wide order (targets.all_meetings) may demand only %s, not %s", registry.DemandRemoveParticipants, d)
			}
		}
	}
	return o.validateValidity()
}

// validateValidity checks effective, expires and revoked as the registry
// validation does: dates YYYY-MM-DD or RFC 3339 date-times in the years
// registry.MinYear to MaxYear, expires after effective, a revocation with a
// date and a reason.
func (o *Order) validateValidity() error {
	for _, d := range []struct{ name, value string }{{"order.effective", o.Effective}, {"order.expires", o.Expires}} {
		if d.value != "" {
			if err := checkDate(d.name, d.value); err != nil {
				return err
			}
		}
	}
	if r := o.Revoked; r != nil {
		if r.Date == "" {
			return invalid("order.revoked.date", "is required: a revocation states its date")
		}
		if err := checkDate("order.revoked.date", r.Date); err != nil {
			return err
		}
		if strings.TrimSpace(r.Reason) == "" {
			return invalid("order.revoked.reason", "is required: a revocation states its reason")
		}
		if err := checkText(at("order.revoked.reason"), r.Reason); err != nil {
			return err
		}
	}
	// Each date parses, so the only error left is their order.
	if _, err := o.Registry().Validity(); err != nil {
		return invalid("order.expires", "%s is not after effective (%s): the order would never be in force", Quote(o.Expires), Quote(o.Effective))
	}
	return nil
}

// maxDateLength bounds a date-time (with nanoseconds and an offset it is
// 35 bytes), so that a long value is refused without being quoted back.
const maxDateLength = 40

func checkDate(name, value string) error {
	if len(value) > maxDateLength {
		return invalid(name, "is not a date YYYY-MM-DD or an RFC 3339 date-time")
	}
	if _, _, err := registry.ParseInstant(value, false); err != nil {
		return invalid(name, "%s", strings.TrimPrefix(err.Error(), registry.ErrDate.Error()+": "))
	}
	return nil
}

// checkParticipant checks p and parses its address. The common participant
// (an id and an address, nothing else) is checked in one pass without the
// field values each check takes to name its field in an error: passing
// them from check to check, and checking members that are absent, was
// about a third of validating 10,000 participants (BenchmarkDecode: 2.6
// against 2.3 ms). Anything else takes the checks one by one.
func checkParticipant(p *Participant, f field) error {
	if plainID(p.ID) && p.empty == 0 && p.Phone == "" && p.Role == "" && p.AccountID == "" && p.AccountCountry == "" && len(p.Attributes) == 0 {
		if a, ok := parseIP(p.IP); ok {
			p.Addr = a
			return nil
		}
	}
	if err := checkID(f.sub("id"), p.ID); err != nil {
		return err
	}
	if p.empty != 0 {
		return invalid(f.sub(memberNames[bits.TrailingZeros8(p.empty)]).String(), "is empty: give a value, or leave the member out (or null)")
	}
	addr, err := checkConnection(f, p.IP, p.Phone)
	if err != nil {
		return err
	}
	p.Addr = addr
	if p.Role != "" && !slices.Contains(Roles, p.Role) {
		return invalid(f.sub("role").String(), "%s is not a role (%s)", Quote(p.Role), rolesAccepted)
	}
	if p.AccountID != "" {
		if err := checkID(f.sub("account_id"), p.AccountID); err != nil {
			return err
		}
	}
	if err := checkCountry(f.sub("account_country"), p.AccountCountry); err != nil {
		return err
	}
	return p.Attributes.check(f.sub("attributes"))
}

// plainID reports whether checkID accepts id without looking further: it
// is not empty, within MaxIDLength and printable ASCII, and does not start
// with a space (so it is not blank).
func plainID(id string) bool {
	return id != "" && id[0] != ' ' && len(id) <= MaxIDLength && printableASCII(id)
}

// checkConnection accepts at most one of ip and phone and returns the
// parsed address (zero for a caller, and for a person given with
// neither).
//
// A person with neither is present with an unknown location: a caller
// whose number is withheld, a room system behind a gateway whose address
// the meeting server does not see. Refusing them would leave the meeting
// server two choices, both worse: fail the whole decision, or leave the
// person out, and then the guard, which can only count the people it is
// told about, would let a meeting-wide action reach them. Told about,
// they are never acted on and count as outside, like an address the
// GeoIP database does not place. A meeting server that forgot every
// address would thus get fewer actions, never more.
func checkConnection(f field, ip, phone string) (netip.Addr, error) {
	switch {
	case ip != "" && phone != "":
		return netip.Addr{}, invalid(f.sub("phone").String(), "give ip or phone, not both")
	case phone != "":
		return netip.Addr{}, checkPhone(f.sub("phone"), phone)
	case ip == "":
		return netip.Addr{}, nil
	}
	a, ok := parseIP(ip)
	if !ok {
		// The value is not quoted back, as a phone number is not: it is
		// most often an address with something added (a port), personal
		// data that errors would carry into the caller's logs.
		return netip.Addr{}, invalid(f.sub("ip").String(), "is not an IP address (%s)", ipForm)
	}
	return a, nil
}

// ipForm is what an ip must be, as errors say it.
const ipForm = "an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone"

// parseIP parses an IP address without a zone, an IPv4-mapped IPv6
// address as the IPv4 one.
func parseIP(ip string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// checkPhone accepts E.164 numbers: "+", a country calling code and the
// subscriber number, 15 digits at most, no spaces or punctuation. Whether
// the number is assigned is not checked here: an unassigned number is a
// caller whose location is unknown, not a malformed request.
func checkPhone(f field, phone string) error {
	ok := len(phone) >= 3 && len(phone) <= 16 && phone[0] == '+' && phone[1] >= '1' && phone[1] <= '9'
	for i := 2; ok && i < len(phone); i++ {
		ok = phone[i] >= '0' && phone[i] <= '9'
	}
	if !ok {
		// The number itself is not quoted back: it is personal data, and
		// error messages end up in logs.
		return invalid(f.String(), "is not an E.164 number (\"+\" then 2 to 15 digits, the first not 0)")
	}
	return nil
}

func checkCountry(f field, code string) error {
	if code != "" && !registry.IsCountryCode(code) {
		return invalid(f.String(), "%s is not an ISO 3166-1 alpha-2 code (two upper-case letters)", Quote(code))
	}
	return nil
}

func checkID(f field, id string) error {
	switch {
	case id == "":
		return invalid(f.String(), "is required")
	case len(id) > MaxIDLength:
		return invalid(f.String(), "is %d bytes long; the limit is %d", len(id), MaxIDLength)
	}
	if err := checkText(f, id); err != nil || printableASCII(id) && id[0] != ' ' {
		return err
	}
	// An id is compared, stored and shown as given: one that is only
	// spaces, or that carries a bidirectional control (which reorders how
	// it and what follows it are displayed: "p\u202e1" shows as another
	// id in a ledger export or a log), is refused. Text attributes may
	// carry such marks; an id has no use for them.
	if strings.TrimSpace(id) == "" {
		return invalid(f.String(), "is blank")
	}
	for _, c := range id {
		if unicode.Is(unicode.Bidi_Control, c) {
			return invalid(f.String(), "%s contains a bidirectional control character (U+%04X)", Quote(id), c)
		}
	}
	return nil
}

// IDProblem says why id is not an id a request can carry (one the decoder
// refuses as a participant's, an account's or an order's), without
// repeating any of it, or "" when it is one. A tool that looks an id up
// among those recorded (geoscope ledger statements) tells a mistyped one
// from one nothing was decided on, and writes the id nowhere.
func IDProblem(id string) string {
	if checkID(at("id"), id) == nil {
		return ""
	}
	switch {
	case id == "":
		return "is empty"
	case len(id) > MaxIDLength:
		return fmt.Sprintf("is %d bytes long; an id is at most %d", len(id), MaxIDLength)
	case !utf8.ValidString(id):
		return "is not valid UTF-8"
	}
	for _, c := range id {
		switch {
		case unicode.IsControl(c):
			return fmt.Sprintf("contains a control character (U+%04X)", c)
		case unicode.Is(unicode.Bidi_Control, c):
			return fmt.Sprintf("contains a bidirectional control character (U+%04X)", c)
		}
	}
	if strings.TrimSpace(id) == "" {
		return "is blank"
	}
	return "is not an id a request can carry"
}

// checkText rejects invalid UTF-8 and control characters. The decoder
// already refuses invalid UTF-8 in JSON; this guards values built in Go.
func checkText(f field, s string) error {
	// ASCII without control characters is the common case.
	if printableASCII(s) {
		return nil
	}
	return checkTextSlow(f.String(), s)
}

// checkTextAt is checkText for a value whose field is named already (an
// attribute's value, or an item of its list).
func checkTextAt(name, s string) error {
	if printableASCII(s) {
		return nil
	}
	return checkTextSlow(name, s)
}

// printableASCII reports whether s is ASCII without control characters.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

func checkTextSlow(name, s string) error {
	if !utf8.ValidString(s) {
		return invalid(name, "is not valid UTF-8")
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return invalid(name, "%s contains a control character", Quote(s))
		}
	}
	return nil
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
