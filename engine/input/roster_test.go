package input

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-json-experiment/json"

	"github.com/geoscope/geoscope/engine/registry"
)

// The reflection-decoded shapes of Request, Meeting and Participant: the
// same fields and tags, without the token-level decoders (roster.go).
type (
	reflectedRequest struct {
		Meeting reflectedMeeting      `json:"meeting"`
		Joining *reflectedParticipant `json:"joining,omitempty"`
		Order   *Order                `json:"order,omitempty"`
	}
	reflectedMeeting struct {
		ID           string                 `json:"id"`
		Host         Host                   `json:"host"`
		Participants []reflectedParticipant `json:"participants"`
	}
	// Optional members are pointers, to tell "" (Participant.empty) from
	// a member left out or null.
	reflectedParticipant struct {
		ID             string     `json:"id"`
		IP             *string    `json:"ip,omitempty"`
		Phone          *string    `json:"phone,omitempty"`
		Role           *string    `json:"role,omitempty"`
		AccountID      *string    `json:"account_id,omitempty"`
		AccountCountry *string    `json:"account_country,omitempty"`
		Attributes     Attributes `json:"attributes,omitempty"`
	}
	reflectedAdmission struct {
		Meeting     AdmissionMeeting     `json:"meeting"`
		Participant reflectedParticipant `json:"participant"`
	}
)

var _ = registry.Order{}

func (p reflectedParticipant) participant() Participant {
	out := Participant{ID: p.ID, Attributes: p.Attributes}
	for member, v := range map[int]*string{memberIP: p.IP, memberPhone: p.Phone, memberRole: p.Role, memberAccountID: p.AccountID, memberAccountCountry: p.AccountCountry} {
		if v == nil {
			continue
		}
		*out.member(member) = *v
		if *v == "" {
			out.empty |= 1 << member
		}
	}
	return out
}

// checkSameAsReflection decodes data with the token-level decoders and
// with reflection and fails unless both accept it with the same result or
// refuse it with the same error.
func checkSameAsReflection(t *testing.T, data []byte) {
	t.Helper()
	var got Request
	gotErr := DecodeStrict(data, &got)
	var want reflectedRequest
	wantErr := DecodeStrict(data, &want)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("%q:\n token-level: %v\n reflection:  %v", data, gotErr, wantErr)
	}
	if gotErr == nil {
		w := Request{Meeting: Meeting{ID: want.Meeting.ID, Host: want.Meeting.Host}, Order: want.Order}
		if want.Meeting.Participants != nil {
			w.Meeting.Participants = make([]Participant, 0, len(want.Meeting.Participants))
			for _, p := range want.Meeting.Participants {
				w.Meeting.Participants = append(w.Meeting.Participants, p.participant())
			}
		}
		if want.Joining != nil {
			j := want.Joining.participant()
			w.Joining = &j
		}
		if len(got.Meeting.Participants) == 0 && len(w.Meeting.Participants) == 0 {
			got.Meeting.Participants, w.Meeting.Participants = nil, nil
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("%q:\n token-level: %+v\n reflection:  %+v", data, got, w)
		}
	}
	var gotA Admission
	gotErr = DecodeStrict(data, &gotA)
	var wantA reflectedAdmission
	wantErr = DecodeStrict(data, &wantA)
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("admission %q:\n token-level: %v\n reflection:  %v", data, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(gotA.Participant, wantA.Participant.participant()) {
		t.Fatalf("admission %q:\n token-level: %+v\n reflection:  %+v", data, gotA.Participant, wantA.Participant)
	}
}

var rosterSeeds = []string{
	validRequest,
	`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [{"id": "p", "ip": "8.8.8.8"}, null, {}]}}`,
	`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": null}}`,
	`{"meeting": null}`,
	`{"meeting": {"id": null, "participants": []}, "joining": null}`,
	`{"meeting": {"id": "m", "participants": [1]}}`,
	`{"meeting": {"id": "m", "participants": [[]]}}`,
	`{"meeting": {"id": "m", "participants": ["x"]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": true}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x", "ip": {}}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x", "Id": "y"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x", "id": "y"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x", "attributes": {"a": 1, "b": [1]}}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x", "attributes": null}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x", "attributes": 3}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x\u0041\n\"", "ip": "1.2.3.4"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"\u0069d": "x"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x"}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x",}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id": "x"},]}}`,
	`{"meeting": {"id": "m", "participants": [{"id" "x"}]}}`,
	`{"meeting": {"id": "m", "participants": {"id": "x"}}}`,
	`{"meeting": {"id": "m", "participants": 7}}`,
	`{"meeting": {"id": 7}}`,
	`{"meeting": {"ID": "m"}}`,
	`{"meeting": {"id": "m", "extra": {"deep": [1, 2]}}}`,
	`{"meeting": {"id": "m", "host": {"account_id": "a", "IP": "1.1.1.1"}}}`,
	`{"meeting": {"id": "m", "id": "n"}}`,
	`{"meeting": []}`,
	`{"meeting": "m"}`,
	"{\"meeting\": {\"id\": \"m\xff\"}}",
	"{\"meeting\": {\"participants\": [{\"id\": \"\xc3\"}]}}",
	"{\"meeting\": {\"participants\": [{\"i\xffd\": \"x\"}]}}",
	`{"participant": {"id": "p", "ip": "8.8.8.8", "extra": 1}, "meeting": {"id": "m", "host": {"account_id": "a"}}}`,
	`{"participant": 1}`,
	`{"participant": null, "meeting": {"id": "m"}}`,
	`{"joining": {"id": "j", "ip": "1.1.1.1", "role": "host", "account_id": "x", "account_country": "US", "phone": "+1"}, "meeting": {"id": "m"}}`,
	`{"joining": [], "meeting": {"id": "m"}}`,
	// Participants of an id and an address, read in one step, beside
	// near misses that are read token by token.
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"},{"ip":"1.1.1.2","id":"b"} , { "id" : "c" , "ip" : "" } ]}}`,
	"{\"meeting\": {\"id\": \"m\", \"participants\": [\t{\"id\":\"a\",\r\n\"ip\":\"1.1.1.1\"}\n]}}",
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"},{"id":"b","ip":"1.1.1.2","ip":"1.1.1.3"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"},{"id":"b","id":"c"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"}{"id":"b","ip":"1.1.1.2"}]}}`,
	`{"meeting": {"id": "m", "participants": [,{"id":"a","ip":"1.1.1.1"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"},,{"id":"b","ip":"1.1.1.2"}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1",}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"},{"id":"b","ip":"1.1.1.2"`,
	`{"meeting": {"id": "m", "participants": [{"id":"a\u0062","ip":"1.1.1.1"},{"id":"é","ip":"1.1.1.2"},{"id":"a","IP":"1.1.1.3"}]}}`,
	"{\"meeting\": {\"id\": \"m\", \"participants\": [{\"id\":\"a\x7f\",\"ip\":\"1.1.1.1\"},{\"id\":\"b\x01\",\"ip\":\"1.1.1.2\"}]}}",
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1","role":"host"},{"id":"b","ip":null},{"id":"c","ip":7}]}}`,
	`{"meeting": {"id": "m", "participants": [{"id":"","id":"x"},{"id":"","ip":""}]}}`,
	"{\"meeting\": {\"id\": \"m\", \"participants\": [ {\"id\":\"a\",\"ip\":\"1.1.1.1\"} ,\t{\"id\":\"b\",\"ip\":\"1.1.1.2\"} ]}}",
	`{"meeting": {"id": "m", "participants": [{"id":"a","ip":"1.1.1.1"},{"id":"b","ip":"1.1.1.2"},{"id":"c","ip":"1.1.1.3"},{"id":"d","ip":"1.1.1.4","x":1}]}}`,
}

func TestTokenLevelDecodingIsReflection(t *testing.T) {
	for _, s := range rosterSeeds {
		checkSameAsReflection(t, []byte(s))
	}
	// Rosters of every size around the growth steps.
	for _, n := range []int{0, 1, 15, 16, 17, 100, 1000, 1023, 1024, 1025, 5000} {
		var b strings.Builder
		b.WriteString(`{"meeting": {"id": "m", "host": {"account_id": "a"}, "participants": [`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id": "p-%d", "ip": "10.0.%d.%d"%s}`, i, i/250%250, i%250, strings.Repeat(" ", i%7))
		}
		b.WriteString(`]}, "joining": {"id": "j", "phone": "+8612"}}`)
		checkSameAsReflection(t, []byte(b.String()))
	}
}

func FuzzTokenLevelDecodingIsReflection(f *testing.F) {
	for _, s := range rosterSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsReflection(t, data)
	})
}

// TestReleasedRosterDecodesLikeANewOne decodes a roster with every member
// given into an array a released roster used: nothing of the earlier
// participants may show through in the later ones or in their index.
func TestReleasedRosterDecodesLikeANewOne(t *testing.T) {
	roster := func(n int, full bool) []byte {
		var b strings.Builder
		b.WriteString(`{"meeting":{"id":"m","host":{"account_id":"h"},"participants":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			if full {
				fmt.Fprintf(&b, `{"id":"full-%d","ip":"10.0.%d.%d","role":"panelist","account_id":"a-%d","account_country":"FR","attributes":{"team":"t%d"}}`, i, i/250%250, i%250+1, i, i)
			} else {
				fmt.Fprintf(&b, `{"id":"p%d","phone":"+3315555%04d"}`, i, i)
			}
		}
		b.WriteString(`]}}`)
		return []byte(b.String())
	}
	later := roster(3_500, false)
	want, err := Decode(later, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		earlier, err := Decode(roster(3_400, true), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		array := &earlier.Meeting.Participants[0]
		earlier.Release()
		if earlier.Meeting.Participants != nil {
			t.Fatal("a released request still has its participants")
		}
		got, err := Decode(later, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if &got.Meeting.Participants[0] != array {
			continue // the pool dropped it; try again
		}
		if !reflect.DeepEqual(got.Meeting, want.Meeting) {
			for i := range got.Meeting.Participants {
				if g, w := got.Meeting.Participants[i], want.Meeting.Participants[i]; !reflect.DeepEqual(g, w) {
					t.Fatalf("participant %d in a reused array: %+v, want %+v", i, g, w)
				}
			}
			t.Fatal("the meeting decoded into a reused array differs")
		}
		ps := got.Meeting.Participants
		if got.ParticipantIndex().Len() != len(ps) {
			t.Fatalf("the id index of a reused roster holds %d ids, want %d", got.ParticipantIndex().Len(), len(ps))
		}
		for i := range ps {
			if j, ok := got.ParticipantIndex().Find(ps[i].ID, func(j int) bool { return ps[j].ID == ps[i].ID }); !ok || j != i {
				t.Fatalf("the id index of a reused roster finds %s at %d (%v), want %d", ps[i].ID, j, ok, i)
			}
		}
		return
	}
	t.Fatal("no array was reused in 100 tries")
}

// A roster read through a reader, a byte at a time (the decoder's buffer
// then fills, moves and grows as it goes), decodes to what the whole text
// does: participants read in one step keep their own strings whatever the
// buffer does afterwards.
func TestRosterThroughAReader(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"id": "m", "host": {"account_id": "a"}, "participants": [`)
	for i := range 3000 {
		if i > 0 {
			b.WriteString(", ")
		}
		if i%97 == 5 {
			fmt.Fprintf(&b, `{"id": "p-%d", "ip": "10.0.%d.%d", "role": "attendee"}`, i, i/250%250, i%250)
			continue
		}
		fmt.Fprintf(&b, `{"id": "p-%d", "ip": "10.0.%d.%d"}`, i, i/250%250, i%250)
	}
	b.WriteString(`]}`)
	var whole Meeting
	if err := json.Unmarshal([]byte(b.String()), &whole, strict); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"a byte at a time": iotest.OneByteReader(strings.NewReader(b.String())),
		"as it comes":      strings.NewReader(b.String()),
	} {
		var read Meeting
		if err := json.UnmarshalRead(r, &read, strict); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(read.Participants, whole.Participants) {
			t.Fatalf("%s: the participants differ from the whole text's", name)
		}
		for i, p := range read.Participants {
			if want := fmt.Sprintf("p-%d", i); p.ID != want || p.IP != fmt.Sprintf("10.0.%d.%d", i/250%250, i%250) {
				t.Fatalf("%s: participant %d: %+v, want id %s", name, i, p, want)
			}
		}
	}
	if len(whole.Participants) != 3000 {
		t.Fatalf("%d participants, want 3000", len(whole.Participants))
	}
}

// A panic while checking the later part of a large roster, on the second
// goroutine, is raised again in the request's goroutine, where the
// server's recovery answers it: it must not end the process.
func TestCheckPanicReachesTheCaller(t *testing.T) {
	ps := make([]Participant, parallelCheckMin)
	for i := range ps {
		ps[i] = Participant{ID: fmt.Sprintf("p-%d", i), IP: "1.0.16.1"}
	}
	last := len(ps) - 1 // checked by the second goroutine: it takes the last 70 %
	checkHook = func(i int) {
		if i == last {
			panic("check failed")
		}
	}
	defer func() { checkHook = nil }()
	defer func() {
		if v := recover(); v != "check failed" {
			t.Errorf("recovered %v in the caller, want the second goroutine's panic", v)
		}
	}()
	indexParticipants(ps)
	t.Error("indexParticipants returned")
}
