// Package input decodes and validates the requests geoscope answers. It is
// the first stage of the pipeline: nothing past it sees a malformed request,
// and every rejection names the offending field.
package input

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/geoscope/geoscope/engine/registry"
)

// Request asks for a decision about one meeting. Joining is present for an
// admission question; Order is present to preview a new demand (otherwise the
// registry's standing orders for the meeting and its host account apply).
type Request struct {
	Meeting Meeting      `json:"meeting"`
	Joining *Participant `json:"joining,omitempty"`
	Order   *Order       `json:"order,omitempty"`
}

// Meeting is the meeting the question is about.
type Meeting struct {
	ID           string        `json:"id"`
	Host         Host          `json:"host"`
	Participants []Participant `json:"participants"`
}

// Host is the meeting's host account and, when connected, its address.
type Host struct {
	AccountID      string `json:"account_id"`
	AccountCountry string `json:"account_country,omitempty"`
	IP             string `json:"ip,omitempty"`

	// Addr is IP parsed (and unmapped); valid only when IP was given.
	Addr netip.Addr `json:"-"`
}

// Connected reports whether the host's address was given.
func (h Host) Connected() bool { return h.Addr.IsValid() }

// Participant is a connected (or joining) user.
type Participant struct {
	ID string `json:"id"`
	IP string `json:"ip"`

	Addr netip.Addr `json:"-"`
}

// Order is a demand submitted with the request for preview.
type Order struct {
	ID         string           `json:"id"`
	Authority  string           `json:"authority"`
	Demands    []string         `json:"demands"`
	Targets    registry.Targets `json:"targets"`
	LegalBasis string           `json:"legal_basis,omitempty"`
	Received   string           `json:"received,omitempty"`
}

// Registry returns the order in the registry's shape.
func (o *Order) Registry() registry.Order {
	return registry.Order{
		Authority:  o.Authority,
		Demands:    o.Demands,
		Targets:    o.Targets,
		LegalBasis: o.LegalBasis,
		Received:   o.Received,
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

// Limits bound a request. Zero values mean no limit.
type Limits struct {
	MaxParticipants int
}

// MaxIDLength bounds every identifier; ids are opaque to geoscope but end up
// in audit records, so they must stay printable and reasonably short.
const MaxIDLength = 256

// Decode parses and validates a decision request.
func Decode(data []byte, lim Limits) (*Request, error) {
	var r Request
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
	if err := checkID("meeting.id", m.ID); err != nil {
		return err
	}
	if err := checkID("meeting.host.account_id", m.Host.AccountID); err != nil {
		return err
	}
	if m.Host.AccountCountry != "" && !IsCountryCode(m.Host.AccountCountry) {
		return invalid("meeting.host.account_country", "%q is not an ISO 3166-1 alpha-2 code (two upper-case letters)", m.Host.AccountCountry)
	}
	if m.Host.IP != "" {
		a, err := parseAddr("meeting.host.ip", m.Host.IP)
		if err != nil {
			return err
		}
		m.Host.Addr = a
	}
	if lim.MaxParticipants > 0 && len(m.Participants) > lim.MaxParticipants {
		return tooLarge("meeting.participants", "%d participants exceed the limit of %d", len(m.Participants), lim.MaxParticipants)
	}
	seen := make(map[string]int, len(m.Participants))
	for i := range m.Participants {
		p := &m.Participants[i]
		if err := checkParticipant(p, "meeting.participants", i); err != nil {
			return err
		}
		if j, dup := seen[p.ID]; dup {
			return invalid(indexed("meeting.participants", i)+".id", "%q duplicates meeting.participants[%d].id", p.ID, j)
		}
		seen[p.ID] = i
	}
	if r.Joining != nil {
		if err := checkParticipant(r.Joining, joiningField, -1); err != nil {
			return err
		}
		if j, dup := seen[r.Joining.ID]; dup {
			return invalid(joiningField+".id", "%q is already connected as meeting.participants[%d]", r.Joining.ID, j)
		}
	}
	if r.Order != nil {
		return r.Order.validate()
	}
	return nil
}

func (o *Order) validate() error {
	if err := checkID("order.id", o.ID); err != nil {
		return err
	}
	if err := checkID("order.authority", o.Authority); err != nil {
		return err
	}
	if len(o.Demands) == 0 {
		return invalid("order.demands", "at least one demand is required (%s)", strings.Join(registry.Demands, ", "))
	}
	for i, d := range o.Demands {
		if !registry.KnownDemand(d) {
			return invalid(indexed("order.demands", i), "%q is not a known demand (%s)", d, strings.Join(registry.Demands, ", "))
		}
		for j := range i {
			if o.Demands[j] == d {
				return invalid(indexed("order.demands", i), "%q is repeated", d)
			}
		}
	}
	for i, id := range o.Targets.Meetings {
		if err := checkID(indexed("order.targets.meetings", i), id); err != nil {
			return err
		}
	}
	for i, id := range o.Targets.Accounts {
		if err := checkID(indexed("order.targets.accounts", i), id); err != nil {
			return err
		}
	}
	return nil
}

func checkParticipant(p *Participant, field string, i int) error {
	if i >= 0 {
		field = indexed(field, i)
	}
	if err := checkID(field+".id", p.ID); err != nil {
		return err
	}
	if p.IP == "" {
		return invalid(field+".ip", "is required")
	}
	a, err := parseAddr(field+".ip", p.IP)
	if err != nil {
		return err
	}
	p.Addr = a
	return nil
}

func parseAddr(field, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, invalid(field, "%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

func checkID(field, id string) error {
	switch {
	case id == "":
		return invalid(field, "is required")
	case len(id) > MaxIDLength:
		return invalid(field, "is %d bytes long; the limit is %d", len(id), MaxIDLength)
	case !utf8.ValidString(id):
		return invalid(field, "is not valid UTF-8")
	}
	for _, c := range id {
		if unicode.IsControl(c) {
			return invalid(field, "%q contains a control character", id)
		}
	}
	return nil
}

// IsCountryCode reports whether s has the shape of an ISO 3166-1 alpha-2
// code.
func IsCountryCode(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}

func indexed(field string, i int) string {
	return field + "[" + strconv.Itoa(i) + "]"
}
