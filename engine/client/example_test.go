package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/geoscope/geoscope/engine"
	"github.com/geoscope/geoscope/engine/client"
	"github.com/geoscope/geoscope/engine/input"
	"github.com/geoscope/geoscope/engine/server"
	"github.com/geoscope/geoscope/engine/sources"
)

// A meeting server asks geoscope at join time whether a participant may
// join, under the fail-open contract: only a recorded decision citing an
// order denies a join; any error admits the participant.
func Example() {
	ctx := context.Background()

	// A decision point on the embedded policy, example registry and DB-IP
	// database (in production: the geoscope binary, at its own address).
	eng := engine.New()
	src := sources.New(sources.Config{}, eng)
	if err := src.Load(ctx); err != nil {
		panic(err)
	}
	srv, err := server.New(server.Config{}, eng, src, nil)
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv.Handler())

	gs, err := client.New(ts.URL, client.WithUserAgent("example-meetings/1.0"), client.WithTimeout(2*time.Second))
	if err != nil {
		panic(err)
	}

	// The example registry holds standing order CN-2020-0601 against the
	// meetings of host account acct-us-d.
	join := func(participant, ip string) {
		allow, a, err := gs.AdmitOrAllow(ctx, client.AdmissionRequest{
			Meeting:     input.AdmissionMeeting{ID: "june4-d", Host: input.AdmissionHost{AccountID: "acct-us-d", AccountCountry: "US"}},
			Participant: input.Participant{ID: participant, IP: ip},
		})
		if err != nil {
			// Logged and counted, never enforced.
			fmt.Printf("%s: geoscope unavailable (%v), admitted\n", participant, errors.Is(err, client.ErrUnavailable))
		}
		if allow {
			fmt.Printf("%s: admitted\n", participant)
			return
		}
		for _, act := range a.Actions {
			fmt.Printf("%s: %s in %s under order %s\n", participant, act.Type, act.Country, act.OrderID)
		}
	}
	join("alice", "8.8.8.8")       // United States
	join("bowen", "202.96.128.86") // mainland China
	join("chan", "147.8.2.58")     // Hong Kong

	// The decision point goes away: nobody is denied for it.
	ts.Close()
	join("dana", "202.96.128.86")

	// Output:
	// alice: admitted
	// bowen: deny_join in CN under order CN-2020-0601
	// chan: admitted
	// dana: geoscope unavailable (true), admitted
	// dana: admitted
}
