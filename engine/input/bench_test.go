package input

import (
	"encoding/json"
	"fmt"
	"testing"
)

// BenchmarkDecode is strict decoding and validation of a roster, as the
// server does for every decision request (and releases once answered).
func BenchmarkDecode(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		ps := make([]Participant, n)
		for i := range ps {
			ps[i] = Participant{ID: fmt.Sprintf("p-%d", i), IP: fmt.Sprintf("1.0.%d.%d", i/250%250, i%250+1)}
		}
		raw, err := json.Marshal(map[string]any{"meeting": map[string]any{
			"id": "m-7", "host": map[string]any{"account_id": "acct-7", "account_country": "US"}, "participants": ps,
		}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("participants=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				req, err := Decode(raw, Limits{})
				if err != nil {
					b.Fatal(err)
				}
				req.Release() // as the server does once it has answered
			}
		})
	}
}
