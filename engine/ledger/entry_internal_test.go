package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
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

// A link is the formula docs/operations.md publishes for auditors, worked
// out here from its text rather than from the code: SHA-256 of the
// domain, the previous link, the entry's number as 8 big-endian bytes and
// the SHA-256 of the entry's stored text. The number is past one byte in
// the last case, so its width and order show.
func TestLinkIsThePublishedFormula(t *testing.T) {
	published := func(prev [32]byte, seq uint64, text string) [32]byte {
		entry := sha256.Sum256([]byte(text))
		msg := append([]byte("geoscope ledger chain v1\x00"), prev[:]...)
		msg = binary.BigEndian.AppendUint64(msg, seq)
		return sha256.Sum256(append(msg, entry[:]...))
	}
	var prev [32]byte
	for i, text := range []string{`{"decision_id":"a"}`, `{"decision_id":"b"}`, `{}`} {
		seq := []uint64{1, 2, 70000}[i]
		got := link(prev, int64(seq), []byte(text))
		if want := published(prev, seq, text); got != want {
			t.Fatalf("link of entry %d = %x, want %x", seq, got, want)
		}
		prev = got
	}
}
