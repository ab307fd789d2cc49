package engine

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/geoscope/geoscope/engine/guard"
	"github.com/geoscope/geoscope/engine/input"
)

// A panic while locating part of a large roster in another goroutine is
// raised in the caller's, where the server's recovery answers it: it must
// not end the process.
func TestLocatePanicReachesTheCaller(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two CPUs to locate in parts")
	}
	ps := make([]input.Participant, 2*parallelLocateMin)
	for i := range ps {
		ps[i].ID = "p"
		if i >= len(ps)/2 {
			// Located with a nil database: a panic, in the second part.
			ps[i].Addr = netip.MustParseAddr("1.0.16.1")
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("the panic of a part was lost")
		}
	}()
	(&Engine{}).locateParticipants(nil, ps, make([]guard.Person, len(ps)))
}
