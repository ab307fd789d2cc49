package input

import (
	"bytes"
	"fmt"
	"io"
	"reflect"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/geoscope/geoscope/internal/idindex"
	"github.com/geoscope/geoscope/internal/reuse"
)

// A roster is decoded token by token rather than by reflection: for 10,000
// participants reflection cost several times the tokenizing itself (a
// field lookup and a reflected store per member, and a slice grown a
// quarter at a time, copying and clearing it each time). The decoder
// (jsontext) still does everything strict about the text: syntax, invalid
// UTF-8, names repeated in one object. What reflection did on top is done
// here the same way, with the same errors: unknown names (case-sensitive),
// type mismatches, null as the zero value. The error messages come out of
// describe like any other; TestDecodeRejects and its neighbours hold them.

var (
	stringType       = reflect.TypeFor[string]()
	meetingType      = reflect.TypeFor[Meeting]()
	participantType  = reflect.TypeFor[Participant]()
	participantsType = reflect.TypeFor[[]Participant]()
)

// UnmarshalJSONFrom decodes a meeting; see the comment above. It keeps
// m.keep participants at most (as many as the id index holds when 0), and
// counts the others in m.unkept.
func (m *Meeting) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	keep := m.keep
	if keep <= 0 {
		keep = idindex.MaxLen
	}
	if ok, err := beginObject(dec, meetingType); !ok {
		*m = Meeting{keep: m.keep}
		return err
	}
	for {
		name, done, err := nextName(dec)
		if done || err != nil {
			return err
		}
		switch string(name) {
		case "id":
			err = readString(dec, &m.ID)
		case "host":
			err = json.UnmarshalDecode(dec, &m.Host)
		case "participants":
			err = m.readParticipants(dec, keep)
		default:
			err = unknownName(dec)
		}
		if err != nil {
			return err
		}
	}
}

// readParticipants reads the participants array into a slice sized from
// the text: once a few participants are read, the bytes left over the
// bytes each took estimate how many follow. It keeps the first keep of
// them; the others it reads only as far as the text's syntax, counting
// them in m.unkept, so that a roster over the limit costs no more memory
// than one at it (and no array sized for what it would have held).
func (m *Meeting) readParticipants(dec *jsontext.Decoder, keep int) error {
	k, err := peekValue(dec, participantsType)
	switch {
	case err != nil:
		return err
	case k == 'n':
		m.Participants = nil
		_, err := dec.ReadToken()
		return err
	case k != '[':
		return typeError(dec, participantsType, k)
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	ps := make([]Participant, 0, min(16, keep))
	var text stringChunks
	start := dec.InputOffset()
	m.unkept = 0
	for {
		if dec.PeekKind() == ']' {
			_, err := dec.ReadToken()
			text.flush(ps)
			m.Participants = ps
			return err
		}
		if len(ps) == keep {
			if err := dec.SkipValue(); err != nil {
				text.flush(ps)
				m.Participants = ps
				return err
			}
			m.unkept++
			continue
		}
		if len(ps) == cap(ps) {
			grown := participantArrays.Get(min(rosterCap(len(ps), dec.InputOffset()-start, len(dec.UnreadBuffer())), keep))[:len(ps)]
			copy(grown, ps)
			participantArrays.Put(ps)
			ps = grown
		}
		ps = ps[:len(ps)+1]
		if err := readParticipant(dec, &ps[len(ps)-1], &text, len(ps)-1); err != nil {
			return err
		}
		if text.full() {
			text.flush(ps)
		}
	}
}

// readParticipant reads participant i of a roster into p. A participant
// that is only an id and an address, both plain (see plainParticipant),
// is read in one step: it is scanned here, then read as one value by the
// decoder, which still checks everything about it (syntax, UTF-8, repeated
// names). Anything else is decoded token by token. Reading participants
// token by token was most of decoding a roster of 10,000 before
// validation: eight calls into the decoder each, against one here.
func readParticipant(dec *jsontext.Decoder, p *Participant, text *stringChunks, i int) error {
	id, ip, n, ok := plainParticipant(dec.UnreadBuffer(), i > 0)
	if !ok {
		return p.decode(dec, text, i)
	}
	// The strings are copied before the decoder reads on. With a reader
	// behind it, a decoder moves what its buffer holds when it fetches
	// more; it does not fetch while reading an object the buffer already
	// holds whole, as here, so this order is a precaution.
	*p = Participant{}
	text.add(i, memberID, id)
	text.add(i, memberIP, ip)
	if len(ip) == 0 {
		p.empty = 1 << memberIP
	}
	// ReadValue rather than SkipValue: it scans an object in one pass,
	// where SkipValue reads it token by token.
	from := dec.InputOffset()
	if _, err := dec.ReadValue(); err != nil {
		return err // not reached: the text was scanned as a valid object
	}
	if got := dec.InputOffset() - from; got != int64(n) {
		// Not reached either: the scan and the decoder disagree about
		// where the participant ends.
		return fmt.Errorf("meeting.participants[%d]: read %d bytes, scanned %d", i, got, n)
	}
	return nil
}

// plainParticipant scans, at the start of b, a participant that is
// {"id": "...", "ip": "..."}: those two members (in either order) and no
// other, whitespace wherever JSON allows it, and both strings printable
// ASCII without escapes. After the first participant (comma) it is
// preceded by a comma. It returns the strings' contents and how many
// bytes the participant takes, comma and whitespace included; ok is false
// for anything else, which the decoder then reads token by token.
func plainParticipant(b []byte, comma bool) (id, ip []byte, n int, ok bool) {
	i := skipSpace(b, 0)
	if comma {
		if i >= len(b) || b[i] != ',' {
			return nil, nil, 0, false
		}
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '{' {
		return nil, nil, 0, false
	}
	i++
	for member := 0; member < 2; member++ {
		var name, value []byte
		if name, i, ok = plainString(b, skipSpace(b, i)); !ok {
			return nil, nil, 0, false
		}
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return nil, nil, 0, false
		}
		if value, i, ok = plainString(b, skipSpace(b, i+1)); !ok {
			return nil, nil, 0, false
		}
		switch string(name) {
		case "id":
			if id != nil {
				return nil, nil, 0, false
			}
			id = value
		case "ip":
			if ip != nil {
				return nil, nil, 0, false
			}
			ip = value
		default:
			return nil, nil, 0, false
		}
		i = skipSpace(b, i)
		want := byte(',')
		if member == 1 {
			want = '}'
		}
		if i >= len(b) || b[i] != want {
			return nil, nil, 0, false
		}
		i++
	}
	return id, ip, i, true
}

// plainString scans the string starting at b[i], printable ASCII without
// escapes, and returns its content and where it ends.
func plainString(b []byte, i int) (content []byte, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j : j], j + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipSpace skips JSON whitespace from b[i].
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// rosterSample is how many participants are read before the rest of a
// large roster is estimated for good: ids often grow longer down a roster
// ("p-9" to "p-99999"), and an estimate from the first few overshot the
// participants of 10,000 by a quarter, every byte of which was cleared.
const rosterSample = 1024

// rosterCap is the capacity to grow the participants to, n of them having
// been read from used bytes with unread bytes left: the estimate from the
// bytes each took, a little over it so that one more growth is rare; up to
// rosterSample at first (reuse.Min when the estimate is at least that),
// then never less than an eighth more.
func rosterCap(n int, used int64, unread int) int {
	est := 2 * n
	if per := used / int64(n); per > 0 {
		est = n + int(int64(unread)/per)
	}
	if n < rosterSample {
		if est >= reuse.Min {
			// A large roster is sampled in an array that is kept: growing
			// to rosterSample a step at a time allocated a fifth of what
			// decoding 10,000 participants allocated.
			return reuse.Min
		}
		return max(2*n, min(est+est/16+1, rosterSample))
	}
	return max(n+n/8, est+est/64+1)
}

// UnmarshalJSONFrom decodes a participant; see the comment above.
func (p *Participant) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return p.decode(dec, nil, 0)
}

// The string members of a participant, as stringChunks and
// Participant.empty refer to them.
const (
	memberID = iota
	memberIP
	memberPhone
	memberRole
	memberAccountID
	memberAccountCountry
)

// memberNames are the members' names in JSON.
var memberNames = [...]string{memberID: "id", memberIP: "ip", memberPhone: "phone", memberRole: "role", memberAccountID: "account_id", memberAccountCountry: "account_country"}

// decode decodes a participant. With text, its string members are
// collected there (as participant i of a roster) instead of allocated one
// by one.
func (p *Participant) decode(dec *jsontext.Decoder, text *stringChunks, i int) error {
	*p = Participant{}
	if ok, err := beginObject(dec, participantType); !ok {
		return err
	}
	for {
		name, done, err := nextName(dec)
		if done || err != nil {
			return err
		}
		member := -1
		switch string(name) {
		case "id":
			member = memberID
		case "ip":
			member = memberIP
		case "phone":
			member = memberPhone
		case "role":
			member = memberRole
		case "account_id":
			member = memberAccountID
		case "account_country":
			member = memberAccountCountry
		case "attributes":
			err = json.UnmarshalDecode(dec, &p.Attributes)
		default:
			err = unknownName(dec)
		}
		if member >= 0 {
			var raw jsontext.Value
			if raw, err = readStringValue(dec); err == nil && raw != nil {
				if len(raw) == len(`""`) && member != memberID {
					p.empty |= 1 << member // an empty id is checkID's
				}
				if text != nil {
					text.store(raw, i, member)
				} else {
					*p.member(member) = string(unquoted(raw))
				}
			}
		}
		if err != nil {
			return err
		}
	}
}

func (p *Participant) member(m int) *string {
	switch m {
	case memberID:
		return &p.ID
	case memberIP:
		return &p.IP
	case memberPhone:
		return &p.Phone
	case memberRole:
		return &p.Role
	case memberAccountID:
		return &p.AccountID
	}
	return &p.AccountCountry
}

// stringChunks collects the string members of a roster's participants
// and makes them strings a chunk at a time: one allocation per chunk of
// members rather than one per member (two or more per participant).
// Members refer to their participant by index, so the slice of
// participants may be reallocated meanwhile.
type stringChunks struct {
	buf  []byte
	refs []stringRef
}

type stringRef struct {
	participant int32
	member      int32
	start, end  int32
}

// chunkBytes bounds a chunk: a participant's id kept beyond the request
// keeps the chunk it is in.
const chunkBytes = 16 << 10

// store stores a string member of participant i, raw as the decoder read
// it (a valid JSON string).
func (c *stringChunks) store(raw jsontext.Value, i, member int) {
	if bytes.IndexByte(raw, '\\') < 0 {
		c.add(i, member, raw[1:len(raw)-1])
		return
	}
	c.allocate()
	start := len(c.buf)
	var err error
	if c.buf, err = jsontext.AppendUnquote(c.buf, raw); err != nil {
		c.buf = c.buf[:start] // not reached: the decoder validated the string
		return
	}
	c.ref(i, member, start)
}

// add adds the content of a string member of participant i, unescaped.
func (c *stringChunks) add(i, member int, content []byte) {
	c.allocate()
	start := len(c.buf)
	c.buf = append(c.buf, content...)
	c.ref(i, member, start)
}

// allocate makes the buffers on first use.
func (c *stringChunks) allocate() {
	if c.buf == nil {
		c.buf, c.refs = make([]byte, 0, chunkBytes+1024), make([]stringRef, 0, chunkBytes/8)
	}
}

// ref refers member of participant i to what c.buf holds from start on;
// an empty member stays the empty string.
func (c *stringChunks) ref(i, member, start int) {
	if start < len(c.buf) {
		c.refs = append(c.refs, stringRef{int32(i), int32(member), int32(start), int32(len(c.buf))})
	}
}

func (c *stringChunks) full() bool { return len(c.buf) >= chunkBytes }

// flush makes the collected members strings and stores them.
func (c *stringChunks) flush(ps []Participant) {
	if len(c.refs) == 0 {
		return
	}
	s := string(c.buf)
	for _, r := range c.refs {
		*ps[r.participant].member(int(r.member)) = s[r.start:r.end]
	}
	c.buf, c.refs = c.buf[:0], c.refs[:0]
}

// peekValue is the kind of the next value, to be decoded into t, or the
// decoder's error when what follows is not the start of one (PeekKind
// returns the bad byte). The error is the one reflection would meet (see
// typeError).
func peekValue(dec *jsontext.Decoder, t reflect.Type) (jsontext.Kind, error) {
	switch k := dec.PeekKind(); k {
	case 'n', 'f', 't', '"', '0', '{', '[':
		return k, nil
	}
	err := readFirst(dec, t)
	if err == nil {
		err = io.ErrUnexpectedEOF // not reached: the token was not a value
	}
	return 0, err
}

// beginObject reads the '{' of an object, or a null (ok false, no error),
// or fails on anything else.
func beginObject(dec *jsontext.Decoder, t reflect.Type) (ok bool, err error) {
	k, err := peekValue(dec, t)
	switch {
	case err != nil:
		return false, err
	case k == '{':
		_, err := dec.ReadToken()
		return err == nil, err
	case k == 'n':
		_, err := dec.ReadToken()
		return false, err
	}
	return false, typeError(dec, t, k)
}

// nextName reads the next member name of an object, or its '}' (done).
// The name is the decoder's buffer, valid until the next read.
func nextName(dec *jsontext.Decoder) (name []byte, done bool, err error) {
	if dec.PeekKind() == '}' {
		_, err := dec.ReadToken()
		return nil, true, err
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return nil, false, err
	}
	return unquoted(raw), false, nil
}

// readString reads a string member; null is the empty string.
func readString(dec *jsontext.Decoder, dst *string) error {
	raw, err := readStringValue(dec)
	if err == nil {
		*dst = ""
		if raw != nil {
			*dst = string(unquoted(raw))
		}
	}
	return err
}

// readStringValue reads the value of a string member: the quoted string,
// nil for null, or an error. The whole value is read first, as reflection
// reads it for a string (see typeError), and its first byte tells its
// kind: one look at the input instead of a peek and a read.
func readStringValue(dec *jsontext.Decoder) (jsontext.Value, error) {
	raw, err := dec.ReadValue()
	if err != nil {
		return nil, err
	}
	switch k := raw.Kind(); k {
	case '"':
		return raw, nil
	case 'n':
		return nil, nil
	default:
		return nil, &json.SemanticError{JSONPointer: dec.StackPointer(), GoType: stringType, JSONKind: k}
	}
}

// unquoted is the content of a valid JSON string (the decoder checked it).
func unquoted(raw jsontext.Value) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	out, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return raw[1 : len(raw)-1] // not reached: the decoder validated it
	}
	return out
}

// readFirst reads what reflection reads before it looks at a value to be
// decoded into t: the whole value for a string, the first token otherwise.
func readFirst(dec *jsontext.Decoder, t reflect.Type) error {
	var err error
	if t.Kind() == reflect.String {
		_, err = dec.ReadValue()
	} else {
		_, err = dec.ReadToken()
	}
	return err
}

// unknownName is the error for the member name just read.
func unknownName(dec *jsontext.Decoder) error {
	return &json.SemanticError{JSONPointer: dec.StackPointer(), Err: json.ErrUnknownName}
}

// typeError is the error for the next value, of kind k where t was
// expected. What reflection reads before it reports a mismatch is read
// first, so that text that is not even valid JSON is reported as such the
// same way: the whole value where a string is expected, its first token
// where an object or an array is.
func typeError(dec *jsontext.Decoder, t reflect.Type, k jsontext.Kind) error {
	if err := readFirst(dec, t); err != nil {
		return err
	}
	return &json.SemanticError{JSONPointer: dec.StackPointer(), GoType: t, JSONKind: k}
}
