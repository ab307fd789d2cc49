package server

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// Work in flight.
//
// A request's memory grows with its body: a roster of 100,000 participants
// is a 4 MiB body and costs many times that while it is decoded, decided,
// recorded and answered, where an admission is a few hundred bytes. Left
// unbounded, one client sending big rosters concurrently drives the process
// out of memory and delays every admission behind them, which makes every
// meeting server fail open. So each decision request reserves its body size
// from a budget, and holds it until its answer is written:
//
//   - small requests (a Content-Length up to SmallBody: every admission,
//     rosters of about a thousand participants) are read first, then
//     admitted into a lane of their own: they never wait behind a big one,
//     nor behind a body that has not arrived;
//   - big requests draw from the large lane (Config.MaxInflight) before
//     their body is read, first come first served: a big request is never
//     overtaken, so the biggest one cannot be starved by a stream of
//     smaller ones. A body sent without a Content-Length counts as the
//     largest allowed until it has been read, then as its size. A gzip
//     body sent small moves here only if it inflates past SmallBody
//     (Server.inflateSmall).
//
// A request that cannot be admitted within Config.QueueTimeout is answered
// 503 overloaded with Retry-After: nothing was decided or recorded, so the
// client may send it again. A big one is refused before its body is read
// (a gzip body that outgrew the small lane is the exception; see
// maxMoving), a small one after.
//
// Small bodies still arriving. A lane reserved before the body is read is
// held while the body arrives: sixteen clients that each declared 64 KiB
// and sent nothing held the whole small lane, for as long as paced.go let
// them (2 s, and again on a new connection), and every admission was
// answered 503. So a small body is read into a buffer that grows only as
// its bytes arrive (doubling, from at most minWeight), and what its
// buffers hold beyond their first minWeight bytes is taken from a budget
// of its own, the arriving budget (as large as the small lane), when they
// grow, until the request is admitted into the small lane. A body that
// finds it taken is answered 503 overloaded at once, the rest of it
// unread, and its connection closed: waiting for room would let those who
// hold it hold the waiters too. To hold the budget a client must send half
// of what it holds (a gzip body, which also holds its decompressor and
// what it inflated, a quarter: see gzipStart), and keep sending at
// --min-body-rate; declaring a body and sending nothing holds none of it,
// and nothing of either lane.
//
// The trade-offs:
//   - a body's first minWeight bytes are not counted, so that no client
//     can take from an admission (a few hundred bytes) anything it needs.
//     That memory is bounded by the requests open, as net/http's own
//     buffers of each connection (4 KiB to read, 4 KiB to write) are,
//     not by a budget: one per HTTP/1.1 connection, up to 250 (Go's
//     default concurrent streams) per HTTP/2 connection. Limit
//     connections at the load balancer (docs/operations.md);
//   - a client that sends at the paced rate can take the arriving budget
//     (about 256 KiB/s per MiB of it, each body cut off 2 s after it
//     began; it is as large as the small lane, a quarter of
//     --max-inflight and at least 1 MiB): bodies over minWeight (rosters, gzip bodies sent over
//     minWeight) are then refused at once for as long as it keeps
//     sending; admissions are not;
//   - small bodies may hold up to twice the small lane: the lane for those
//     decided, the arriving budget for those arriving or waiting for the
//     lane;
//   - reading before reserving gives up refusing a small request unread,
//     which only saved the few bytes of a body that has usually arrived
//     with its head.

const (
	// SmallBody is the largest body that takes the small lane.
	SmallBody = 64 << 10
	// minWeight is what the smallest request reserves: every request costs
	// a few kilobytes whatever its body. It is also what a small body
	// holds of what arrives before the arriving budget counts it.
	minWeight = 4 << 10
)

// gzipStart is how much of a gzip body sent small must have arrived before
// it is inflated while the rest arrives (Server.inflateSmall): a
// decompressor holds inflaterSize from the arriving budget, which a client
// must pay for with bytes sent, not with a 10-byte gzip header.
const gzipStart = SmallBody / 2

// inflaterSize is what a gzip decompressor holds: its 32 KiB window, its
// tables and its reader's buffer (measured: about 45 KiB).
const inflaterSize = 48 << 10

// maxMoving bounds the gzip bodies waiting to move from the small lane to
// the large one (see Server.inflateSmall): each holds what it inflated so
// far (SmallBody), its decompressor and what it kept of what was sent (at
// most gzipStart), about 144 KiB, outside both lanes and the arriving
// budget while it waits. More than this are refused at once.
const maxMoving = 4

// errOverloaded: the request was not admitted within the queue timeout.
var errOverloaded = errors.New("overloaded")

// errArriving: the arriving budget had no room for more of a body.
var errArriving = errors.New("too many bodies are arriving")

// inflight is the two lanes, and the arriving budget.
type inflight struct {
	small, large *semaphore.Weighted
	moving       *semaphore.Weighted // maxMoving
	smallCap     int64
	largeCap     int64
	wait         time.Duration

	// smallUsed and largeUsed are what is reserved now (for metrics).
	smallUsed, largeUsed atomic.Int64
	// smallWaiting and largeWaiting count the requests waiting for room
	// (for metrics): the queue that ends in 503 overloaded.
	smallWaiting, largeWaiting atomic.Int64

	// arrivingUsed is what small bodies still arriving hold, at most
	// arrivingCap (see arrival). Only ever taken when there is room: a
	// counter, not a semaphore.
	arrivingUsed atomic.Int64
	arrivingCap  int64

	// largeActive counts admitted big requests; when it drops to zero
	// drained is called (see Server.returnMemory).
	largeActive atomic.Int64
	drained     func()
}

func newInflight(largeCap int64, wait time.Duration, drained func()) *inflight {
	smallCap := max(largeCap/4, 1<<20)
	return &inflight{
		small: semaphore.NewWeighted(smallCap), smallCap: smallCap,
		large: semaphore.NewWeighted(largeCap), largeCap: largeCap,
		moving:      semaphore.NewWeighted(maxMoving),
		arrivingCap: smallCap,
		wait:        wait, drained: drained,
	}
}

// reservation is one admitted request's share of a lane.
type reservation struct {
	f      *inflight
	large  bool
	weight int64
	once   sync.Once
}

// acquire reserves size bytes (size < 0: unknown, reserved as limit)
// within the queue timeout. It returns errOverloaded when the lane stayed
// full, or ctx's error when the client went away first.
func (f *inflight) acquire(ctx context.Context, size, limit int64) (*reservation, error) {
	if size < 0 {
		size = limit
	}
	r := &reservation{f: f, large: size > SmallBody, weight: size}
	sem, used, waiting := f.small, &f.smallUsed, &f.smallWaiting
	if r.large {
		sem, used, waiting = f.large, &f.largeUsed, &f.largeWaiting
		// Always admissible: Config.validate keeps MaxInflight ≥ MaxBody.
		r.weight = min(size, f.largeCap)
	} else {
		r.weight = min(max(size, minWeight), f.smallCap)
	}
	// The common case, room and nobody waiting, costs no timer.
	if !sem.TryAcquire(r.weight) {
		wctx, cancel := context.WithTimeout(ctx, f.wait)
		waiting.Add(1)
		err := sem.Acquire(wctx, r.weight)
		waiting.Add(-1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errOverloaded
		}
	}
	used.Add(r.weight)
	if r.large {
		f.largeActive.Add(1)
	}
	return r, nil
}

// move admits into the large lane, as a body of unknown size, a gzip body
// that has outgrown its small reservation (which the caller has given
// back). Only maxMoving wait at once; another is refused with
// errOverloaded straight away.
func (f *inflight) move(ctx context.Context, limit int64) (*reservation, error) {
	if !f.moving.TryAcquire(1) {
		return nil, errOverloaded
	}
	defer f.moving.Release(1)
	return f.acquire(ctx, -1, limit)
}

// shrink gives back what a body read to its end did not need (a body of
// unknown length reserves the maximum).
func (r *reservation) shrink(size int64) {
	keep := size
	if !r.large {
		keep = max(size, minWeight)
	}
	if keep >= r.weight {
		return
	}
	r.lane().Release(r.weight - keep)
	r.used().Add(keep - r.weight)
	r.weight = keep
}

// release ends the reservation; later calls, and calls on nil, do
// nothing.
func (r *reservation) release() {
	if r == nil {
		return // none was taken (a small gzip body still arriving)
	}
	r.once.Do(func() {
		r.lane().Release(r.weight)
		r.used().Add(-r.weight)
		if r.large && r.f.largeActive.Add(-1) == 0 && r.f.drained != nil {
			r.f.drained()
		}
	})
}

func (r *reservation) lane() *semaphore.Weighted {
	if r.large {
		return r.f.large
	}
	return r.f.small
}

func (r *reservation) used() *atomic.Int64 {
	if r.large {
		return &r.f.largeUsed
	}
	return &r.f.smallUsed
}

// arrival is what one small body holds of the arriving budget while it
// arrives and until it is admitted. The zero value with f set is ready;
// release gives it all back.
type arrival struct {
	f *inflight
	// size is what the body's buffers (and decompressor) hold, of which
	// held, all but the first minWeight, is taken from the budget.
	size, held int64
}

// hold accounts n more bytes held by the body. It reports false, holding
// nothing more, when the budget has no room for them.
func (a *arrival) hold(n int64) bool {
	want := max(a.size+n-minWeight, 0)
	for more := want - a.held; more > 0; {
		used := a.f.arrivingUsed.Load()
		if used+more > a.f.arrivingCap {
			return false
		}
		if a.f.arrivingUsed.CompareAndSwap(used, used+more) {
			break
		}
	}
	a.size, a.held = a.size+n, want
	return true
}

// read reads r until n bytes or its end, into a buffer that starts at
// minWeight (or n, if smaller) and doubles, up to n, each time what
// arrived has filled it: a body's memory follows its bytes, not the length
// it declared. It returns errArriving when the budget has no room for the
// next buffer, and r's errors but io.EOF.
func (a *arrival) read(r io.Reader, n int64) ([]byte, error) {
	size := min(n, minWeight)
	if !a.hold(size) {
		return nil, errArriving
	}
	buf := make([]byte, size)
	got := 0
	for int64(got) < n {
		if got == len(buf) {
			grown := min(2*int64(len(buf)), n)
			if !a.hold(grown - int64(len(buf))) {
				return nil, errArriving
			}
			grownBuf := make([]byte, grown)
			copy(grownBuf, buf)
			buf = grownBuf
		}
		m, err := r.Read(buf[got:])
		got += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return buf[:got], nil
}

// release gives back everything the body held; later calls do nothing.
func (a *arrival) release() {
	a.f.arrivingUsed.Add(-a.held)
	a.size, a.held = 0, 0
}
