package input

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

const validRequest = `{
  "meeting": {"id": "m-1",
    "host": {"account_id": "acct-9", "account_country": "US", "ip": "::ffff:8.8.8.8"},
    "participants": [{"id": "p1", "ip": "1.0.16.5"}, {"id": "p2", "ip": "2408:8000::1"}]},
  "joining": {"id": "p9", "ip": "147.8.2.58"},
  "order": {"id": "NEW-1", "authority": "cn.cac", "demands": ["end_meeting"],
            "targets": {"meetings": ["m-1"]}, "legal_basis": "art. 1"}
}`

func TestDecodeValid(t *testing.T) {
	r, err := Decode([]byte(validRequest), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Meeting.Host.Addr, netip.MustParseAddr("8.8.8.8"); got != want {
		t.Errorf("host addr = %v, want %v (IPv4-mapped IPv6 must be unmapped)", got, want)
	}
	if !r.Meeting.Host.Connected() {
		t.Error("host with an ip must be connected")
	}
	if got := r.Meeting.Participants[1].Addr; got != netip.MustParseAddr("2408:8000::1") {
		t.Errorf("participant addr = %v", got)
	}
	if r.Joining == nil || r.Joining.Addr != netip.MustParseAddr("147.8.2.58") {
		t.Errorf("joining = %+v", r.Joining)
	}
	if r.Order == nil || r.Order.Registry().Authority != "cn.cac" {
		t.Errorf("order = %+v", r.Order)
	}
}

// A person the meeting server can give neither an address nor a number
// for is accepted, present with an unknown location: refused, they would
// be left out, and the guard could not count them.
func TestDecodePersonWithNeitherIPNorPhone(t *testing.T) {
	r, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "role": "attendee"}]}, "joining": {"id": "j"}}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Meeting.Participants[0]; p.ID != "p" || p.Addr.IsValid() || p.Phone != "" {
		t.Errorf("participant %+v", p)
	}
	if j := r.Joining; j == nil || j.ID != "j" || j.Addr.IsValid() || j.Phone != "" {
		t.Errorf("joining %+v", j)
	}
	a, err := DecodeAdmission([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if j := a.Joining; j == nil || j.ID != "p" || j.Addr.IsValid() {
		t.Errorf("admission participant %+v", j)
	}
}

// A malformed address is not quoted back, as a phone number is not: it
// is mostly an address with a port added, and errors reach the caller's
// logs.
func TestDecodeDoesNotQuoteABadAddress(t *testing.T) {
	for _, ip := range []string{"202.96.128.86:51234", "[2408:8000::1]", "2408:8000::1%eth0", "202.096.128.86"} {
		_, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "`+ip+`"}}}`), Limits{})
		if err == nil || !strings.Contains(err.Error(), "meeting.host.ip: is not an IP address") || strings.Contains(err.Error(), "128") || strings.Contains(err.Error(), "2408") {
			t.Errorf("%s: %v", ip, err)
		}
	}
}

func TestDecodeHostWithoutIPIsNotConnected(t *testing.T) {
	r, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Meeting.Host.Connected() {
		t.Error("host without ip must not be connected")
	}
}

func TestDecodeRejects(t *testing.T) {
	participants := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id": "p%d", "ip": "8.8.8.%d"}`, i, i%250+1)
		}
		return b.String()
	}
	meeting := func(participants string) string {
		return `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [` + participants + `]}}`
	}
	cases := []struct {
		name, body string
		lim        Limits
		want       string // exact error text
		tooLarge   bool
	}{
		{name: "empty", body: "  ", want: "request body is empty; expected a JSON object"},
		{name: "not json", body: "{nope", want: "malformed JSON at byte 2: invalid character 'o' in literal null (expecting 'u')"},
		{name: "truncated", body: `{"meeting": {"id": "m"`, want: "malformed JSON: unexpected end of input"},
		{name: "trailing data", body: meeting("") + ` {}`, want: "unexpected data after the JSON object"},
		{name: "not an object", body: `[]`, want: "expected an object, got an array"},
		{name: "null", body: " null ", want: "expected a JSON object, got null"},
		{name: "unknown top-level field", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "extra": 1}`, want: "extra: unknown field"},
		{name: "unknown nested field with index", body: meeting(participants(3) + `,{"id": "x", "ip": "8.8.8.8", "country": "US"}`), want: "meeting.participants[3].country: unknown field"},
		{name: "jurisdiction in order", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "jurisdiction": ["CN"]}}`, want: "order.jurisdiction: unknown field"},
		{name: "wrong type with index", body: meeting(participants(2) + `,{"id": 7, "ip": "8.8.8.8"}`), want: "meeting.participants[2].id: expected a string, got a number"},
		{name: "participants not array", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": {}}}`, want: "meeting.participants: expected an array, got an object"},
		{name: "missing meeting id", body: `{"meeting": {"host": {"account_id": "a"}}}`, want: "meeting.id: is required"},
		{name: "missing account id", body: `{"meeting": {"id": "m", "host": {}}}`, want: "meeting.host.account_id: is required"},
		{name: "bad account country", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "usa"}}}`, want: `meeting.host.account_country: "usa" is not an ISO 3166-1 alpha-2 code (two upper-case letters)`},
		{name: "bad host ip", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "localhost"}}}`, want: `meeting.host.ip: is not an IP address (an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone)`},
		// "" is not an absent member: an empty host ip would make a host of
		// unknown location a host who is not connected.
		{name: "empty host ip", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": ""}}}`, want: `meeting.host.ip: is empty: give a value, or leave the member out (or null)`},
		{name: "empty host phone", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "phone": ""}}}`, want: `meeting.host.phone: is empty: give a value, or leave the member out (or null)`},
		{name: "empty host role", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "role": ""}}}`, want: `meeting.host.role: is empty: give a value, or leave the member out (or null)`},
		{name: "empty host account country", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": ""}}}`, want: `meeting.host.account_country: is empty: give a value, or leave the member out (or null)`},
		{name: "case-variant host member", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "Ip": "8.8.8.8"}}}`, want: `meeting.host.Ip: unknown field (field names are case-sensitive)`},
		{name: "repeated host member", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "8.8.8.8", "ip": "1.1.1.1"}}}`, want: `meeting.host.ip: appears twice in one object`},
		{name: "bad participant ip", body: meeting(participants(3) + `,{"id": "x", "ip": "1.2.3"}`), want: `meeting.participants[3].ip: is not an IP address (an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone)`},
		// A participant's "" is no more an absent member than the host's:
		// an empty ip beside a phone was a caller located by the phone.
		{name: "empty participant ip, plain", body: meeting(participants(2) + `,{"id": "x", "ip": ""}`), want: `meeting.participants[2].ip: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant ip beside a phone", body: meeting(`{"id": "x", "ip": "", "phone": "+861012345678"}`), want: `meeting.participants[0].ip: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant phone", body: meeting(`{"id": "x", "ip": "8.8.8.8", "phone": ""}`), want: `meeting.participants[0].phone: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant role", body: meeting(participants(1) + `,{"id": "x", "ip": "8.8.8.8", "role": ""}`), want: `meeting.participants[1].role: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant account id", body: meeting(`{"id": "x", "ip": "8.8.8.8", "account_id": ""}`), want: `meeting.participants[0].account_id: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant account country", body: meeting(`{"id": "x", "ip": "8.8.8.8", "account_country": ""}`), want: `meeting.participants[0].account_country: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant members, one named (ip, phone, role, account_id, account_country: the first of them in that order)", body: meeting(`{"id": "x", "account_country": "", "ip": "8.8.8.8", "role": ""}`), want: `meeting.participants[0].role: is empty: give a value, or leave the member out (or null)`},
		{name: "empty joining role", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "ip": "8.8.8.8", "role": ""}}`, want: `joining.role: is empty: give a value, or leave the member out (or null)`},
		{name: "empty participant id", body: meeting(`{"id": "", "ip": "8.8.8.8"}`), want: `meeting.participants[0].id: is required`},
		{name: "ip with zone", body: meeting(`{"id": "x", "ip": "fe80::1%eth0"}`), want: `meeting.participants[0].ip: is not an IP address (an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone)`},
		{name: "missing participant id", body: meeting(`{"ip": "8.8.8.8"}`), want: "meeting.participants[0].id: is required"},
		{name: "duplicate participant", body: meeting(participants(2) + `,{"id": "p0", "ip": "8.8.8.8"}`), want: `meeting.participants[2].id: "p0" duplicates meeting.participants[0].id`},
		{name: "control character in id", body: meeting(`{"id": "a\u0007b", "ip": "8.8.8.8"}`), want: "meeting.participants[0].id: \"a\\ab\" contains a control character"},
		{name: "blank id", body: meeting(`{"id": "   ", "ip": "8.8.8.8"}`), want: "meeting.participants[0].id: is blank"},
		{name: "bidi control in id", body: meeting(`{"id": "p\u202e1", "ip": "8.8.8.8"}`), want: "meeting.participants[0].id: \"p\\u202e1\" contains a bidirectional control character (U+202E)"},
		{name: "bidi control in meeting id", body: `{"meeting": {"id": "m\u2066", "host": {"account_id": "a"}}}`, want: "meeting.id: \"m\\u2066\" contains a bidirectional control character (U+2066)"},
		{name: "id too long", body: meeting(`{"id": "` + strings.Repeat("x", 257) + `", "ip": "8.8.8.8"}`), want: "meeting.participants[0].id: is 257 bytes long; the limit is 256"},
		{name: "joining already connected", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [` + participants(1) + `]}, "joining": {"id": "p0", "ip": "8.8.8.8"}}`, want: `joining.id: "p0" is already connected as meeting.participants[0]`},
		{name: "joining bad ip", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "ip": "999.1.1.1"}}`, want: `joining.ip: is not an IP address (an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone)`},
		{name: "order without demands", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": []}}`, want: "order.demands: at least one demand is required (remove_participants, end_meeting, suspend_account)"},
		{name: "unknown demand", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting", "ban_everyone"]}}`, want: `order.demands[1]: "ban_everyone" is not a known demand (remove_participants, end_meeting, suspend_account)`},
		{name: "repeated demand", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting", "end_meeting"]}}`, want: `order.demands[1]: "end_meeting" is repeated`},
		{name: "order id padded", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": " O2 ", "authority": "x", "demands": ["end_meeting"]}}`, want: `order.id: " O2 " begins or ends with whitespace`},
		{name: "order without id", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"authority": "x", "demands": ["end_meeting"]}}`, want: "order.id: is required"},
		{name: "empty target id", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "targets": {"accounts": [""]}}}`, want: "order.targets.accounts[0]: is required"},
		{name: "too many participants", body: meeting(participants(3)), lim: Limits{MaxParticipants: 2}, want: "meeting.participants: 3 participants exceed the limit of 2", tooLarge: true},
		// Those past the limit are counted, not read: all of them, null
		// and empty ones, and ones that would be refused if read.
		{name: "too many participants, of every shape", body: meeting(participants(2) + `, null, {}, {"id": 7}, {"id": "p0", "ip": "x"}`), lim: Limits{MaxParticipants: 2}, want: "meeting.participants: 6 participants exceed the limit of 2", tooLarge: true},
		{name: "a participant within the limit is read", body: meeting(`{"id": 7}, {}, {}`), lim: Limits{MaxParticipants: 2}, want: "meeting.participants[0].id: expected a string, got a number"},
		{name: "the text past the limit is still JSON", body: meeting(participants(2) + `, {"id": "p9",}`), lim: Limits{MaxParticipants: 2}, want: "meeting.participants[2]: malformed JSON at byte 142: invalid character ',' at start of value"},
		{name: "a meeting id before the count", body: `{"meeting": {"id": "", "host": {"account_id": "a"}, "participants": [{}, {}, {}]}}`, lim: Limits{MaxParticipants: 2}, want: "meeting.id: is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body), tc.lim)
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\n want %q", err.Error(), tc.want)
			}
			if tc.tooLarge != errors.Is(err, ErrTooLarge) || tc.tooLarge == errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is: ErrTooLarge=%v ErrInvalid=%v", errors.Is(err, ErrTooLarge), errors.Is(err, ErrInvalid))
			}
		})
	}
}

// Each limit is the most that is accepted: a request at every limit at
// once decodes. (TestDecodeRejects and TestDecodeRejectsParticipantContext
// hold one past each.)
func TestDecodeAcceptsWhatIsAtEachLimit(t *testing.T) {
	id := strings.Repeat("x", MaxIDLength)
	text := strings.Repeat("t", MaxAttributeTextLength)
	var attrs strings.Builder
	for i := range MaxAttributes - 1 {
		fmt.Fprintf(&attrs, `"k%d": true, `, i)
	}
	fmt.Fprintf(&attrs, `"%s": [%s"%s"]`, strings.Repeat("k", MaxAttributeKeyLength), strings.Repeat(`"x", `, MaxAttributeListLength-1), text)
	account := strings.Repeat("a", MaxIDLength)
	body := `{"meeting": {"id": "` + id + `", "host": {"account_id": "` + account + `", "phone": "+123456789012345"},
	  "participants": [
	    {"id": "` + id + `", "ip": "8.8.8.8", "account_id": "` + id + `", "attributes": {` + attrs.String() + `}},
	    {"id": "p1", "ip": "8.8.8.9", "attributes": {"s": "` + text + `"}}]}}`
	r, err := Decode([]byte(body), Limits{MaxParticipants: 2})
	if err != nil {
		t.Fatalf("a request at every limit: %v", err)
	}
	if p := r.Meeting.Participants[0]; len(r.Meeting.Participants) != 2 || len(p.Attributes) != MaxAttributes || p.ID != id || r.Meeting.ID != id {
		t.Errorf("decoded %+v", r.Meeting)
	}
}

func TestDecodeAdmission(t *testing.T) {
	r, err := DecodeAdmission([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "US"}}, "participant": {"id": "p", "ip": "1.0.16.1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Joining == nil || r.Joining.ID != "p" || r.Meeting.Host.AccountCountry != "US" || len(r.Meeting.Participants) != 0 || r.Order != nil {
		t.Errorf("request = %+v", r)
	}
	// null is a member left out ("" is refused below).
	r, err = DecodeAdmission([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "1.0.16.1", "phone": null, "role": null, "account_id": null, "account_country": null}}`))
	if err != nil || r.Joining.Phone != "" || r.Joining.Role != "" || r.Joining.AccountID != "" || r.Joining.AccountCountry != "" {
		t.Errorf("null members: %+v, %v", r, err)
	}
	for body, want := range map[string]string{
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "x"}}`:                           `participant.ip: is not an IP address (an IPv4 address in dotted decimal without leading zeros, or an IPv6 address; no port, brackets or zone)`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}, "participant": {"id": "p", "ip": "1.1.1.1"}}`: "meeting.participants: unknown field",
		`{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "1.1.1.1"}}, "participant": {"id": "p", "ip": "1.1.1.1"}}`:    "meeting.host.ip: unknown field",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}}`:                                                                  "participant.id: is required",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "1.1.1.1", "account_id": ""}}`:   "participant.account_id: is empty: give a value, or leave the member out (or null)",
		// Invalid UTF-8 outside any field says what is not valid UTF-8.
		"\"\xff\"": "the JSON text is not valid UTF-8",
	} {
		if _, err := DecodeAdmission([]byte(body)); err == nil || err.Error() != want {
			t.Errorf("DecodeAdmission(%s) error = %v, want %q", body, err, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(validRequest))
	f.Add([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "::ffff:1.2.3.4"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data, Limits{MaxParticipants: 1000})
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("uncoded error %T: %v", err, err)
			}
			return
		}
		for _, p := range r.Meeting.Participants {
			if !p.Addr.IsValid() || p.Addr.Is4In6() {
				t.Fatalf("accepted participant %+v with unusable address", p)
			}
		}
	})
}

func TestDecodeRejectsDuplicateAndCaseVariantKeys(t *testing.T) {
	for body, want := range map[string]string{
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8", "ip": "1.0.16.1"}]}}`:                                                      "meeting.participants[0].ip: appears twice in one object",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8"}, {"id": "q", "IP": "1.0.16.1"}]}}`:                                         "meeting.participants[1].IP: unknown field (field names are case-sensitive)",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "meeting": {"id": "n", "host": {"account_id": "a"}}}`:                                                                   "meeting: appears twice in one object",
		`{"Meeting": {"id": "m", "host": {"account_id": "a"}}}`:                                                                                                                        "Meeting: unknown field (field names are case-sensitive)",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "targets": {"meetings": ["m"], "Meetings": ["n"]}}}`: "order.targets.Meetings: unknown field (field names are case-sensitive)",
	} {
		if _, err := Decode([]byte(body), Limits{}); err == nil || err.Error() != want || !errors.Is(err, ErrInvalid) {
			t.Errorf("Decode(%s)\n error %v\n want  %s", body, err, want)
		}
	}
	// Escaped keys and strings that look like keys are read correctly.
	ok := `{"meeting": {"id": "a\"b,{\"x\":1}", "host": {"account_\u0069d": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8"}]}}`
	if _, err := Decode([]byte(ok), Limits{}); err != nil {
		t.Errorf("Decode(%s) = %v", ok, err)
	}
	if _, err := DecodeAdmission([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "8.8.8.8", "IP": "1.0.16.1"}}`)); err == nil {
		t.Error("DecodeAdmission accepted a case-variant key")
	}
}

func TestDecodeParticipantContext(t *testing.T) {
	body := `{"meeting": {"id": "m",
	  "host": {"account_id": "a", "account_country": "US", "phone": "+12025550123", "role": "host",
	           "attributes": {"verified": true}},
	  "participants": [
	    {"id": "p1", "ip": "1.0.16.5", "role": "co_host", "account_id": "acct-1", "account_country": "HK",
	     "attributes": {"accreditation": "press", "clearance": 3, "tags": ["a", "b"], "big": 12345678901234567890123, "tiny": 5e-324}},
	    {"id": "p2", "phone": "+861012345678"}]},
	  "joining": {"id": "j", "phone": "+85221234567", "role": "attendee"}}`
	r, err := Decode([]byte(body), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	h := r.Meeting.Host
	if !h.Connected() || h.Addr.IsValid() || h.Phone != "+12025550123" || !h.Attributes["verified"].Bool {
		t.Errorf("host = %+v", h)
	}
	p1, p2 := r.Meeting.Participants[0], r.Meeting.Participants[1]
	if p1.Role != RoleCoHost || p1.AccountID != "acct-1" || p1.AccountCountry != "HK" || !p1.Addr.IsValid() {
		t.Errorf("p1 = %+v", p1)
	}
	for k, want := range map[string]AttributeValue{
		"accreditation": {Kind: AttributeString, Text: "press"},
		"clearance":     {Kind: AttributeNumber, Text: "3"},
		"big":           {Kind: AttributeNumber, Text: "12345678901234567890123"},
		"tiny":          {Kind: AttributeNumber, Text: "5e-324"},
	} {
		if got := p1.Attributes[k]; got.Kind != want.Kind || got.Text != want.Text {
			t.Errorf("attributes[%s] = %+v, want %+v", k, got, want)
		}
	}
	if got := p1.Attributes["tags"]; got.Kind != AttributeStrings || strings.Join(got.List, ",") != "a,b" {
		t.Errorf("attributes[tags] = %+v", got)
	}
	if p2.Addr.IsValid() || p2.Phone != "+861012345678" {
		t.Errorf("p2 = %+v", p2)
	}
	if r.Joining.Phone != "+85221234567" || r.Joining.Role != RoleAttendee {
		t.Errorf("joining = %+v", r.Joining)
	}
}

func TestDecodeRejectsParticipantContext(t *testing.T) {
	meeting := func(participant string) string {
		return `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p0", "ip": "8.8.8.8"}, ` + participant + `]}}`
	}
	attrs := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d": true`, i)
		}
		return `{` + b.String() + `}`
	}
	long := strings.Repeat("x", 257)
	for _, tc := range []struct{ name, body, want string }{
		{"ip and phone", meeting(`{"id": "x", "ip": "8.8.8.8", "phone": "+8610123"}`), "meeting.participants[1].phone: give ip or phone, not both"},
		{"phone without plus", meeting(`{"id": "x", "phone": "8610123456"}`), `meeting.participants[1].phone: is not an E.164 number ("+" then 2 to 15 digits, the first not 0)`},
		{"phone with spaces", meeting(`{"id": "x", "phone": "+86 10 123456"}`), `meeting.participants[1].phone: is not an E.164 number ("+" then 2 to 15 digits, the first not 0)`},
		{"phone too long", meeting(`{"id": "x", "phone": "+1234567890123456"}`), `meeting.participants[1].phone: is not an E.164 number ("+" then 2 to 15 digits, the first not 0)`},
		{"phone leading zero", meeting(`{"id": "x", "phone": "+0123456"}`), `meeting.participants[1].phone: is not an E.164 number ("+" then 2 to 15 digits, the first not 0)`},
		{"phone not a string", meeting(`{"id": "x", "phone": 8610123}`), "meeting.participants[1].phone: expected a string, got a number"},
		{"unknown role", meeting(`{"id": "x", "ip": "8.8.8.8", "role": "owner"}`), `meeting.participants[1].role: "owner" is not a role (host, co_host, panelist, attendee)`},
		{"bad account country", meeting(`{"id": "x", "ip": "8.8.8.8", "account_country": "cn"}`), `meeting.participants[1].account_country: "cn" is not an ISO 3166-1 alpha-2 code (two upper-case letters)`},
		{"empty account id", meeting(`{"id": "x", "ip": "8.8.8.8", "account_id": "a\u0001"}`), `meeting.participants[1].account_id: "a\x01" contains a control character`},
		{"attributes not an object", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": []}`), "meeting.participants[1].attributes: expected an object, got an array"},
		{"attribute object", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": {"b": 1}}}`), "meeting.participants[1].attributes.a: expected a string, a number, a boolean or an array of strings, got an object"},
		{"attribute null", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": null}}`), "meeting.participants[1].attributes.a: expected a string, a number, a boolean or an array of strings, got null"},
		{"attribute mixed array", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": ["x", 1]}}`), "meeting.participants[1].attributes.a: expected an array of strings, got a number in it"},
		{"attribute numeric name", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"7": {}}}`), "meeting.participants[1].attributes.7: expected a string, a number, a boolean or an array of strings, got an object"},
		{"too many attributes", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": ` + attrs(33) + `}`), "meeting.participants[1].attributes: has 33 attributes; the limit is 32"},
		{"attribute value too long", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": "` + long + `"}}`), "meeting.participants[1].attributes.a: is 257 bytes long; the limit is 256"},
		{"NUL in an attribute value", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": "x\u0000"}}`), `meeting.participants[1].attributes.a: "x\x00" contains a control character`},
		{"line break in an attribute list", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": ["ok", "x\ny"]}}`), `meeting.participants[1].attributes.a[1]: "x\ny" contains a control character`},
		{"attribute list too long", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": [` + strings.Repeat(`"x",`, 32) + `"x"]}}`), "meeting.participants[1].attributes.a: has 33 items; the limit is 32"},
		{"attribute list item too long", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": ["x", "` + long + `"]}}`), "meeting.participants[1].attributes.a[1]: is 257 bytes long; the limit is 256"},
		{"attribute name too long", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"` + strings.Repeat("k", 65) + `": 1}}`), `meeting.participants[1].attributes: the attribute name "` + strings.Repeat("k", 64) + `…" is 65 bytes long; the limit is 64`},
		{"attribute name empty", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"": 1}}`), "meeting.participants[1].attributes: an attribute name is empty"},
		{"attribute number too large", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"n": 1e400}}`), "meeting.participants[1].attributes.n: the number 1e400 is beyond the range of a 64-bit float (0, or a magnitude from about 5e-324 to 1.8e308)"},
		{"attribute number exponent OPA cannot compare", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"n": -1E99999999}}`), "meeting.participants[1].attributes.n: the number -1E99999999 is beyond the range of a 64-bit float (0, or a magnitude from about 5e-324 to 1.8e308)"},
		{"attribute number rounds to zero", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"n": 0.1e-99999999}}`), "meeting.participants[1].attributes.n: the number 0.1e-99999999 is beyond the range of a 64-bit float (0, or a magnitude from about 5e-324 to 1.8e308)"},
		{"attribute number too long", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"n": 1.` + strings.Repeat("5", 300) + `}}`), "meeting.participants[1].attributes.n: is a number 302 bytes long; the limit is 256"},
		{"joining attribute number", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "ip": "8.8.8.8", "attributes": {"n": 2e308}}}`, "joining.attributes.n: the number 2e308 is beyond the range of a 64-bit float (0, or a magnitude from about 5e-324 to 1.8e308)"},
		{"attribute repeated", meeting(`{"id": "x", "ip": "8.8.8.8", "attributes": {"a": 1, "a": 2}}`), "meeting.participants[1].attributes.a: appears twice in one object"},
		{"participant is the connected host", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "8.8.8.8"}, "participants": [{"id": "p", "ip": "1.1.1.1"}, {"id": "a", "ip": "8.8.8.8"}]}}`, `meeting.participants[1].id: "a" is the account id of the connected host (meeting.host); a connected host is described there, not again as a participant`},
		{"first participant is the connected host", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "8.8.8.8"}, "participants": [{"id": "a", "ip": "8.8.8.8"}, {"id": "p", "ip": "1.1.1.1"}]}}`, `meeting.participants[0].id: "a" is the account id of the connected host (meeting.host); a connected host is described there, not again as a participant`},
		{"joining is the connected host", `{"meeting": {"id": "m", "host": {"account_id": "a", "phone": "+12025550123"}}, "joining": {"id": "a", "ip": "8.8.8.8"}}`, `joining.id: "a" is the account id of the connected host (meeting.host)`},
		{"preview received not a date", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "received": "yesterday"}}`, `order.received: "yesterday" is not a date YYYY-MM-DD`},
		{"host role", `{"meeting": {"id": "m", "host": {"account_id": "a", "role": "attendee"}}}`, `meeting.host.role: "attendee" is not the host's role (the host's role is "host")`},
		{"host ip and phone", `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "8.8.8.8", "phone": "+14155550100"}}}`, "meeting.host.phone: give ip or phone, not both"},
		{"host bad phone", `{"meeting": {"id": "m", "host": {"account_id": "a", "phone": "+"}}}`, `meeting.host.phone: is not an E.164 number ("+" then 2 to 15 digits, the first not 0)`},
		{"joining ip and phone", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "ip": "8.8.8.8", "phone": "+14155550100"}}`, "joining.phone: give ip or phone, not both"},
		{"joining bad attribute", `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "phone": "+14155550100", "attributes": {"x": [[]]}}}`, "joining.attributes.x: expected an array of strings, got an array in it"},
		{"invalid UTF-8 in id", "{\"meeting\": {\"id\": \"m\xff\", \"host\": {\"account_id\": \"a\"}}}", "meeting.id: is not valid UTF-8"},
		{"invalid UTF-8 in attribute", "{\"meeting\": {\"id\": \"m\", \"host\": {\"account_id\": \"a\", \"attributes\": {\"k\": \"\xc3\"}}}}", "meeting.host.attributes.k: is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body), Limits{})
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != tc.want {
				t.Errorf("error = %q\n want %q", err.Error(), tc.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("not ErrInvalid: %v", err)
			}
		})
	}
	if _, err := DecodeAdmission([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "phone": "12"}}`)); err == nil ||
		err.Error() != `participant.phone: is not an E.164 number ("+" then 2 to 15 digits, the first not 0)` {
		t.Errorf("DecodeAdmission bad phone: %v", err)
	}
}

// A bad value is quoted back only as a short prefix, so a huge body cannot
// come back as a huge error, and a phone number is never quoted at all.
func TestDecodeErrorsQuoteShortPrefixes(t *testing.T) {
	huge := strings.Repeat("A", 1<<20)
	for _, body := range []string{
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "x", "ip": "` + huge + `"}]}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "x", "ip": "8.8.8.8", "` + huge + `": 1}]}}`,
		`{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "` + huge + `"}}}`,
		"{\"meeting\": {\"id\": \"" + strings.Repeat("\xff", 4<<20) + "\"}}",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["` + huge + `"]}}`,
	} {
		_, err := Decode([]byte(body), Limits{})
		if err == nil {
			t.Fatal("accepted")
		}
		if len(err.Error()) > 300 {
			t.Errorf("error is %d bytes long: %.120s...", len(err.Error()), err.Error())
		}
	}
	_, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "x", "phone": "+86 10 5555 1234"}]}}`), Limits{})
	if err == nil || strings.Contains(err.Error(), "5555") {
		t.Errorf("error quotes the phone number: %v", err)
	}
}

// Two ids that differ only in invalid bytes are not silently rewritten into
// the same string and reported as duplicates: the request is refused.
func TestDecodeInvalidUTF8IsNotRewritten(t *testing.T) {
	body := "{\"meeting\": {\"id\": \"m\", \"host\": {\"account_id\": \"a\"}, \"participants\": [{\"id\": \"p\xff\", \"ip\": \"8.8.8.8\"}, {\"id\": \"p\xfe\", \"ip\": \"8.8.8.9\"}]}}"
	_, err := Decode([]byte(body), Limits{})
	if err == nil || err.Error() != "meeting.participants[0].id: is not valid UTF-8" {
		t.Errorf("error = %v", err)
	}
}

// Requests built with these types in Go (by clients, with encoding/json)
// come out as the wire format and decode to the same request.
func TestRequestRoundTripsThroughEncodingJSON(t *testing.T) {
	r, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a", "phone": "+12025550123"},
	  "participants": [{"id": "p", "ip": "1.0.16.5", "role": "panelist",
	    "attributes": {"s": "x", "n": 1.50, "b": false, "l": ["y"]}}]}}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stdjson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Decode(raw, Limits{})
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	want := `{"s":"x","n":1.50,"b":false,"l":["y"]}`
	for k, v := range again.Meeting.Participants[0].Attributes {
		got, _ := stdjson.Marshal(v)
		if !strings.Contains(want, `"`+k+`":`+string(got)) {
			t.Errorf("attribute %s = %s after a round trip (%s)", k, got, raw)
		}
	}
	var v AttributeValue
	if err := stdjson.Unmarshal([]byte(`["a","b"]`), &v); err != nil || v.Kind != AttributeStrings || len(v.List) != 2 {
		t.Errorf("encoding/json Unmarshal = %+v, %v", v, err)
	}
}

// A host who is not connected may be listed as a participant under the
// account id: that is one person, connected once.
func TestDecodeParticipantNamedLikeUnconnectedHost(t *testing.T) {
	if _, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "a", "ip": "8.8.8.8"}]}}`), Limits{}); err != nil {
		t.Error(err)
	}
}

// A preview order may state its validity and apply to every meeting, like
// a registry order; every mistake names its field.
func TestPreviewOrderValidityAndServiceWide(t *testing.T) {
	body := func(order string) []byte {
		return []byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", ` + order + `}}`)
	}
	r, err := Decode(body(`"demands": ["remove_participants"], "targets": {"all_meetings": true},
	  "effective": "2026-01-01", "expires": "2026-12-31T23:59:59+02:00", "revoked": {"date": "2026-06-01", "reason": "withdrawn"}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	o := r.Order.Registry()
	if !o.Targets.AllMeetings || o.Effective != "2026-01-01" || o.Expires != "2026-12-31T23:59:59+02:00" || o.Revoked == nil || o.Revoked.Reason != "withdrawn" {
		t.Errorf("order = %+v", o)
	}
	long := strings.Repeat("9", 100)
	for order, want := range map[string]string{
		`"demands": ["end_meeting"], "effective": "2026-02-30"`:                                       `order.effective: "2026-02-30" is neither a date YYYY-MM-DD nor an RFC 3339 date-time`,
		`"demands": ["end_meeting"], "expires": "2026-01-01T00:00:00"`:                                `order.expires: "2026-01-01T00:00:00" is neither a date YYYY-MM-DD nor an RFC 3339 date-time`,
		`"demands": ["end_meeting"], "expires": "2300-01-01"`:                                         `order.expires: "2300-01-01" is outside the years 1900 to 2199`,
		`"demands": ["end_meeting"], "expires": "2026-01-01T00:00:00,5Z"`:                             `order.expires: "2026-01-01T00:00:00,5Z" is neither a date YYYY-MM-DD nor an RFC 3339 date-time`,
		`"demands": ["end_meeting"], "expires": "` + long + `"`:                                       `order.expires: is not a date YYYY-MM-DD or an RFC 3339 date-time`,
		`"demands": ["end_meeting"], "effective": "2026-02-01", "expires": "2026-01-31"`:              `order.expires: "2026-01-31" is not after effective ("2026-02-01"): the order would never be in force`,
		`"demands": ["end_meeting"], "revoked": {"date": "2026-01-01"}`:                               `order.revoked.reason: is required: a revocation states its reason`,
		`"demands": ["end_meeting"], "revoked": {"reason": "r"}`:                                      `order.revoked.date: is required: a revocation states its date`,
		`"demands": ["end_meeting"], "revoked": {"date": "yesterday", "reason": "r"}`:                 `order.revoked.date: "yesterday" is neither a date YYYY-MM-DD nor an RFC 3339 date-time`,
		`"demands": ["end_meeting"], "revoked": {"date": "2026-01-01", "reason": "r", "by": "court"}`: `order.revoked.by: unknown field`,
		`"demands": ["end_meeting"], "revoked": "2026-01-01"`:                                         `order.revoked: expected an object, got a string`,
		`"demands": ["remove_participants", "end_meeting"], "targets": {"all_meetings": true}`:        `order.demands[1]: a service-wide order (targets.all_meetings) may demand only remove_participants, not end_meeting`,
		`"demands": ["suspend_account"], "targets": {"all_meetings": true}`:                           `order.demands[0]: a service-wide order (targets.all_meetings) may demand only remove_participants, not suspend_account`,
		`"demands": ["remove_participants"], "targets": {"all_meetings": true, "meetings": ["m"]}`:    `order.targets.all_meetings: a service-wide order applies to every meeting and names no meetings or accounts besides`,
		`"demands": ["remove_participants"], "targets": {"all_meetings": "yes"}`:                      `order.targets.all_meetings: expected a boolean, got a string`,
	} {
		_, err := Decode(body(order), Limits{})
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s:\n error %v\n want  %s", order, err, want)
		}
	}
}

// A large roster reports the first error in request order: the earliest
// failing participant, or a duplicate id before it.
func TestLargeRosterReportsTheFirstError(t *testing.T) {
	const n = 12_288
	roster := func(edit func(ps []map[string]any)) []byte {
		ps := make([]map[string]any, n)
		for i := range ps {
			ps[i] = map[string]any{"id": fmt.Sprintf("p-%d", i), "ip": "1.0.16.5"}
		}
		edit(ps)
		raw, err := stdjson.Marshal(map[string]any{"meeting": map[string]any{"id": "m", "host": map[string]any{"account_id": "a"}, "participants": ps}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	late, mid, early := n-3, 7_001, 2_103
	for _, tc := range []struct {
		name string
		edit func(ps []map[string]any)
		want string
	}{
		{"one bad address, late", func(ps []map[string]any) { ps[late]["ip"] = "nope" }, fmt.Sprintf("meeting.participants[%d].ip", late)},
		{"two bad, the earlier wins", func(ps []map[string]any) { ps[late]["ip"] = "nope"; ps[early]["role"] = "king" },
			fmt.Sprintf("meeting.participants[%d].role", early)},
		{"a duplicate before the bad one wins", func(ps []map[string]any) { ps[late]["ip"] = "nope"; ps[early]["id"] = "p-3" },
			fmt.Sprintf("meeting.participants[%d].id", early)},
		{"a bad one before the duplicate wins", func(ps []map[string]any) { ps[early]["ip"] = "nope"; ps[late]["id"] = "p-3" },
			fmt.Sprintf("meeting.participants[%d].ip", early)},
		{"the first participant", func(ps []map[string]any) { ps[0]["ip"] = ""; ps[late]["ip"] = "nope" }, "meeting.participants[0].ip"},
		// Both in the half checked beside the indexing, and on one participant.
		{"in the second half, a bad one before the duplicate wins", func(ps []map[string]any) { ps[mid]["ip"] = "nope"; ps[late]["id"] = "p-3" },
			fmt.Sprintf("meeting.participants[%d].ip", mid)},
		{"in the second half, a duplicate before the bad one wins", func(ps []map[string]any) { ps[late]["ip"] = "nope"; ps[mid]["id"] = "p-3" },
			fmt.Sprintf("meeting.participants[%d].id", mid)},
		{"a duplicate id with a bad address: the address", func(ps []map[string]any) { ps[mid]["id"] = "p-3"; ps[mid]["ip"] = "nope" },
			fmt.Sprintf("meeting.participants[%d].ip", mid)},
		// Both in the part checked before the indexing.
		{"in the first part, a duplicate before the bad one wins", func(ps []map[string]any) { ps[early]["ip"] = "nope"; ps[100]["id"] = "p-3" },
			"meeting.participants[100].id"},
		{"in the first part, a duplicate id with a bad address: the address", func(ps []map[string]any) { ps[early]["id"] = "p-3"; ps[early]["ip"] = "nope" },
			fmt.Sprintf("meeting.participants[%d].ip", early)},
	} {
		_, err := Decode(roster(tc.edit), Limits{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.want {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	// A small roster is checked on one goroutine, in the same order.
	small := `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [
	  {"id": "x", "ip": "1.0.16.5"}, {"id": "x", "ip": "1.0.16.6"}, {"id": "y", "ip": "nope"}]}}`
	var fe *FieldError
	if _, err := Decode([]byte(small), Limits{}); !errors.As(err, &fe) || fe.Field != "meeting.participants[1].id" {
		t.Errorf("small roster, a duplicate before a bad address: %v, want an error naming meeting.participants[1].id", err)
	}
	r, err := Decode(roster(func([]map[string]any) {}), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ps := r.Meeting.Participants
	got, ok := r.ParticipantIndex().Find("p-9000", func(j int) bool { return ps[j].ID == "p-9000" })
	if !ok || got != 9000 || r.ParticipantIndex().Len() != n {
		t.Errorf("index: p-9000 at %d (%v), %d ids", got, ok, r.ParticipantIndex().Len())
	}
	for i, p := range r.Meeting.Participants {
		if !p.Addr.IsValid() {
			t.Fatalf("participant %d's address was not parsed", i)
		}
	}
}

// A roster over the limit costs no more memory than the limit's worth of
// participants, however many it lists: a body of a million participants
// of two bytes each once made the server hold a million participants
// (hundreds of megabytes from a 3 MB body) before refusing it.
func TestRosterOverTheLimitIsCountedNotKept(t *testing.T) {
	const n, limit = 1_000_000, 10
	body := []byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{}` + strings.Repeat(`,{}`, n-1) + `]}}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Decode(body, Limits{MaxParticipants: limit})
	runtime.ReadMemStats(&after)
	if want := fmt.Sprintf("meeting.participants: %d participants exceed the limit of %d", n, limit); err == nil || err.Error() != want || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want %q", err, want)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > uint64(len(body)) {
		t.Errorf("decoding a roster of %d over a limit of %d allocated %d bytes, more than its body (%d)", n, limit, allocated, len(body))
	}
}

// IDProblem accepts exactly the ids a request can carry, and says why
// another is refused without repeating it.
func TestIDProblemIsTheDecodersCheck(t *testing.T) {
	for _, id := range []string{
		"p1", "acct 9", " p1", "p1 ", "été", "参加者", strings.Repeat("x", MaxIDLength), strings.Repeat("é", MaxIDLength/2),
		"", "   ", "\u3000", strings.Repeat("x", MaxIDLength+1), "p1\r", "p\x00", "p\x7f", "p\u0085", "\xff", "p\u202eq", "p\u2066",
	} {
		quoted, _ := stdjson.Marshal(id)
		if !utf8.ValidString(id) {
			quoted = []byte(`"` + id + `"`) // the raw bytes, as a client would send them
		}
		_, err := Decode([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": `+string(quoted)+`}]}}`), Limits{})
		why := IDProblem(id)
		if (err == nil) != (why == "") {
			t.Errorf("%q: Decode %v, IDProblem %q: want both to accept it or both to refuse it", id, err, why)
		}
		if why != "" && id != "" && strings.Contains(why, strings.TrimSpace(id)) && strings.TrimSpace(id) != "" {
			t.Errorf("%q: IDProblem %q repeats the id", id, why)
		}
	}
}

// Shorten keeps what fits, cuts the rest to at most n bytes, the mark
// included, and never cuts a character in two.
func TestShorten(t *testing.T) {
	const n = 1024
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"short", 5},
		{strings.Repeat("x", n), n},
		{strings.Repeat("x", 10*n), n},
		{strings.Repeat("é", n), n - 1}, // 510 of them and the mark
	} {
		got := Shorten(tc.in, n)
		if len(got) != tc.want {
			t.Errorf("Shorten(%d bytes) = %d bytes, want %d", len(tc.in), len(got), tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Shorten(%d bytes) is not valid UTF-8", len(tc.in))
		}
		if cut := len(tc.in) > n; cut != strings.HasSuffix(got, "…") {
			t.Errorf("Shorten(%d bytes) = %q: marked %v, want %v", len(tc.in), got[max(0, len(got)-8):], !cut, cut)
		}
	}
	if got := Shorten("ab", 0); got != "…" {
		t.Errorf(`Shorten("ab", 0) = %q, want the mark alone`, got)
	}
}
