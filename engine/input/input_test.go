package input

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
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
		{name: "not json", body: "{nope", want: "malformed JSON at byte 2: invalid character 'n' looking for beginning of object key string"},
		{name: "truncated", body: `{"meeting": {"id": "m"`, want: "malformed JSON: unexpected end of input"},
		{name: "trailing data", body: meeting("") + ` {}`, want: "unexpected data after the JSON object"},
		{name: "not an object", body: `[]`, want: "expected an object, got an array"},
		{name: "unknown top-level field", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "extra": 1}`, want: "extra: unknown field"},
		{name: "unknown nested field with index", body: meeting(participants(3) + `,{"id": "x", "ip": "8.8.8.8", "country": "US"}`), want: "meeting.participants[3].country: unknown field"},
		{name: "jurisdiction in order", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "jurisdiction": ["CN"]}}`, want: "order.jurisdiction: unknown field"},
		{name: "wrong type with index", body: meeting(participants(2) + `,{"id": 7, "ip": "8.8.8.8"}`), want: "meeting.participants[2].id: expected a string, got a number"},
		{name: "participants not array", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": {}}}`, want: "meeting.participants: expected an array, got an object"},
		{name: "missing meeting id", body: `{"meeting": {"host": {"account_id": "a"}}}`, want: "meeting.id: is required"},
		{name: "missing account id", body: `{"meeting": {"id": "m", "host": {}}}`, want: "meeting.host.account_id: is required"},
		{name: "bad account country", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "usa"}}}`, want: `meeting.host.account_country: "usa" is not an ISO 3166-1 alpha-2 code (two upper-case letters)`},
		{name: "bad host ip", body: `{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "localhost"}}}`, want: `meeting.host.ip: "localhost" is not an IP address`},
		{name: "bad participant ip", body: meeting(participants(3) + `,{"id": "x", "ip": "1.2.3"}`), want: `meeting.participants[3].ip: "1.2.3" is not an IP address`},
		{name: "ip with zone", body: meeting(`{"id": "x", "ip": "fe80::1%eth0"}`), want: `meeting.participants[0].ip: "fe80::1%eth0" is not an IP address`},
		{name: "missing participant ip", body: meeting(`{"id": "x"}`), want: "meeting.participants[0].ip: is required"},
		{name: "missing participant id", body: meeting(`{"ip": "8.8.8.8"}`), want: "meeting.participants[0].id: is required"},
		{name: "duplicate participant", body: meeting(participants(2) + `,{"id": "p0", "ip": "8.8.8.8"}`), want: `meeting.participants[2].id: "p0" duplicates meeting.participants[0].id`},
		{name: "control character in id", body: meeting(`{"id": "a\u0007b", "ip": "8.8.8.8"}`), want: "meeting.participants[0].id: \"a\\ab\" contains a control character"},
		{name: "id too long", body: meeting(`{"id": "` + strings.Repeat("x", 257) + `", "ip": "8.8.8.8"}`), want: "meeting.participants[0].id: is 257 bytes long; the limit is 256"},
		{name: "joining already connected", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [` + participants(1) + `]}, "joining": {"id": "p0", "ip": "8.8.8.8"}}`, want: `joining.id: "p0" is already connected as meeting.participants[0]`},
		{name: "joining bad ip", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "joining": {"id": "j", "ip": "999.1.1.1"}}`, want: `joining.ip: "999.1.1.1" is not an IP address`},
		{name: "order without demands", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": []}}`, want: "order.demands: at least one demand is required (remove_participants, end_meeting, suspend_account)"},
		{name: "unknown demand", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting", "ban_everyone"]}}`, want: `order.demands[1]: "ban_everyone" is not a known demand (remove_participants, end_meeting, suspend_account)`},
		{name: "repeated demand", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting", "end_meeting"]}}`, want: `order.demands[1]: "end_meeting" is repeated`},
		{name: "order without id", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"authority": "x", "demands": ["end_meeting"]}}`, want: "order.id: is required"},
		{name: "empty target id", body: `{"meeting": {"id": "m", "host": {"account_id": "a"}}, "order": {"id": "o", "authority": "x", "demands": ["end_meeting"], "targets": {"accounts": [""]}}}`, want: "order.targets.accounts[0]: is required"},
		{name: "too many participants", body: meeting(participants(3)), lim: Limits{MaxParticipants: 2}, want: "meeting.participants: 3 participants exceed the limit of 2", tooLarge: true},
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

func TestDecodeAdmission(t *testing.T) {
	r, err := DecodeAdmission([]byte(`{"meeting": {"id": "m", "host": {"account_id": "a", "account_country": "US"}}, "participant": {"id": "p", "ip": "1.0.16.1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Joining == nil || r.Joining.ID != "p" || r.Meeting.Host.AccountCountry != "US" || len(r.Meeting.Participants) != 0 || r.Order != nil {
		t.Errorf("request = %+v", r)
	}
	for body, want := range map[string]string{
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}, "participant": {"id": "p", "ip": "x"}}`:                           `participant.ip: "x" is not an IP address`,
		`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": []}, "participant": {"id": "p", "ip": "1.1.1.1"}}`: "meeting.participants: unknown field",
		`{"meeting": {"id": "m", "host": {"account_id": "a", "ip": "1.1.1.1"}}, "participant": {"id": "p", "ip": "1.1.1.1"}}`:    "meeting.host.ip: unknown field",
		`{"meeting": {"id": "m", "host": {"account_id": "a"}}}`:                                                                  "participant.id: is required",
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
