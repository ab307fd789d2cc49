package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/geoscope/geoscope/engine/input"
)

// A request is encoded as encoding/json encodes it, except that text that
// is not valid UTF-8 is refused before anything is sent: encoding/json
// would send each bad byte as U+FFFD, and the server would decide about
// another id than the one asked about.
func TestRequestsAreEncodedAsEncodingJSONButRefuseInvalidUTF8(t *testing.T) {
	decide := &input.Request{Meeting: input.Meeting{ID: "m-<1>&", Host: input.Host{AccountID: "acct-1", AccountCountry: "US"},
		Participants: []input.Participant{
			{ID: "p-1", IP: "203.0.113.9", Role: input.RoleCoHost, AccountID: "acct-2", Attributes: input.Attributes{
				"clearance": {Kind: input.AttributeString, Text: "secret \u2028 \"q\""}, "age": {Kind: input.AttributeNumber, Text: "1e3"},
				"press": {Kind: input.AttributeBool, Bool: true}, "langs": {Kind: input.AttributeStrings, List: []string{"en", "zh"}}}},
			{ID: "p-2", Phone: "+861012345678"},
		}}}
	admit := AdmissionRequest{Meeting: input.AdmissionMeeting{ID: "m-1", Host: input.AdmissionHost{AccountID: "acct-1", AccountCountry: "US"}},
		Participant: input.Participant{ID: "user-7", IP: "203.0.113.9"}}
	for _, req := range []any{decide, admit} {
		got, err := encodeRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(req)
		if !bytes.Equal(got, want) {
			t.Errorf("encoded\n %s\nwant encoding/json's\n %s", got, want)
		}
	}

	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { calls.Add(1) }))
	defer srv.Close()
	c, err := New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	bad := admit
	bad.Participant.ID = "px\xff"
	if allow, _, err := c.AdmitOrAllow(context.Background(), bad); !errors.Is(err, ErrInvalidInput) || !allow {
		t.Errorf("AdmitOrAllow of an id that is not UTF-8: allow %v, %v; want admitted with ErrInvalidInput", allow, err)
	}
	badRoster := *decide
	badRoster.Meeting.Participants = []input.Participant{{ID: "p-1", IP: "203.0.113.9", Attributes: input.Attributes{"x": {Kind: input.AttributeString, Text: "\xc3"}}}}
	if actions, err := c.ActionsOrNone(context.Background(), &badRoster); !errors.Is(err, ErrInvalidInput) || actions != nil {
		t.Errorf("ActionsOrNone of an attribute that is not UTF-8: %v, %v; want no actions and ErrInvalidInput", actions, err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}
