package server

import (
	"context"
	"slices"
	"sync"
	"time"
)

// reportGate lets one transparency report be built at a time: each scans
// the ledger for its whole period, decoding each entry whole, and an entry
// of a 100,000-participant roster takes some 100 MB to decode. Two at once
// took a replica past its 512 MiB memory limit, and both CPUs from the
// decisions (found by a security review).
//
// With one slot, who waits for it matters. A plain queue let clients of a
// public report (--public-report, no token) hold the slot and the queue,
// so that compliance staff waited behind any number of them, and a report
// still waiting when its client's answer could no longer be written was
// built all the same. So:
//
//   - a request with an admin token is handed the slot before any public
//     one, in the order they came;
//   - at most maxPublicWaiting public requests wait; another is answered
//     503 overloaded at once;
//   - nobody waits longer than the gate's wait (half the server's write
//     timeout, leaving the other half to build and write the report);
//     then the request is answered 503 overloaded.
//
// The trade-off: public clients that keep the slot busy still make an
// admin wait for the report being built, never for more than one.
type reportGate struct {
	wait time.Duration

	mu   sync.Mutex
	busy bool
	// admins and public are the requests waiting, each a channel closed
	// when the slot is handed to it.
	admins, public []chan struct{}
}

// maxPublicWaiting bounds the public requests waiting for the slot.
const maxPublicWaiting = 1

// acquire takes the slot, waiting at most g.wait. It returns errOverloaded
// when the slot did not come in time or too many public requests wait
// already, and ctx's error when the client went away first.
func (g *reportGate) acquire(ctx context.Context, admin bool) error {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return nil
	}
	queue := &g.admins
	if !admin {
		if len(g.public) >= maxPublicWaiting {
			g.mu.Unlock()
			return errOverloaded
		}
		queue = &g.public
	}
	handed := make(chan struct{})
	*queue = append(*queue, handed)
	g.mu.Unlock()

	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	var err error
	select {
	case <-handed:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errOverloaded
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(*queue, handed); i >= 0 {
		*queue = slices.Delete(*queue, i, i+1)
		return err
	}
	// The slot was handed over as the wait ended: pass it on.
	g.handOff()
	return err
}

// release gives the slot to the next request waiting, or frees it.
func (g *reportGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handOff()
}

// handOff, with g.mu held, hands the slot to the first admin waiting, else
// to the first public request, else frees it.
func (g *reportGate) handOff() {
	for _, queue := range []*[]chan struct{}{&g.admins, &g.public} {
		if len(*queue) > 0 {
			close((*queue)[0])
			*queue = slices.Delete(*queue, 0, 1)
			return
		}
	}
	g.busy = false
}
