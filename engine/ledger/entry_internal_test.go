package ledger

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

func TestEncodeEntryMatchesEncodingJSON(t *testing.T) {
	allow := false
	for _, n := range []int{0, 1, 63, 64, 1000} {
		e := &Entry{
			DecisionID: "d", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Kind: KindDecision,
			MeetingID: `m "actions":[] <&>`, Account: "ps:a", AllowJoin: &allow,
			Orders:  []Order{{OrderID: "O", Authority: "cn.cac", Jurisdiction: []string{"CN"}, Demands: []string{"end_meeting"}, LegalBasis: `"actions":[]`}},
			Refused: []Refusal{}, GuardBlocked: []Blocked{}, Bundles: map[string]string{"policies": "r"},
		}
		for i := range n {
			e.Actions = append(e.Actions, Action{Type: "remove_participant", OrderID: "O", Subject: "ps:" + strconv.Itoa(i),
				Country: "CN", Network: "1.0.16.0/24", Jurisdiction: []string{"CN"}, Reason: "inside \u2028 <b>", Reached: map[string]int{"CN": i}})
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d actions: encodeEntry differs from json.Marshal:\n got %.300s\nwant %.300s", n, got, want)
		}
	}
}
