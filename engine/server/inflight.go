package server

import (
	"context"
	"errors"
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
// from a budget before its body is read, and holds it until its answer is
// written:
//
//   - small requests (bodies up to SmallBody: every admission, rosters of
//     about a thousand participants) draw from a lane of their own, so they
//     never wait behind a big one;
//   - big requests draw from the large lane (Config.MaxInflight), first
//     come first served: a big request is never overtaken, so the biggest
//     one cannot be starved by a stream of smaller ones. A body sent
//     without a Content-Length counts as the largest allowed until it has
//     been read, then as its size. A gzip body sent small starts in the
//     small lane and moves here only if it inflates past SmallBody
//     (Server.body).
//
// A request that cannot be admitted within Config.QueueTimeout is answered
// 503 overloaded with Retry-After, before its body is read (a gzip body
// that outgrew the small lane while it was read is the exception; see
// maxMoving): nothing was decided or recorded, so the client may send it
// again.
//
// The trade-off: a client holds its reservation while its body arrives,
// which paced.go bounds (2 s, then --min-body-rate, never past 30 s).
// Reading bodies before reserving would instead leave the memory of every
// connection's body unbounded.

const (
	// SmallBody is the largest body that takes the small lane.
	SmallBody = 64 << 10
	// minWeight is what the smallest request reserves: every request costs
	// a few kilobytes whatever its body.
	minWeight = 4 << 10
)

// maxMoving bounds the gzip bodies waiting to move from the small lane to
// the large one (see Server.body): each holds what it inflated so far
// (SmallBody) and its decompressor's state, about 112 KiB, outside both
// lanes while it waits. More than this are refused at once.
const maxMoving = 4

// errOverloaded: the request was not admitted within the queue timeout.
var errOverloaded = errors.New("overloaded")

// inflight is the two-lane budget.
type inflight struct {
	small, large *semaphore.Weighted
	moving       *semaphore.Weighted // maxMoving
	smallCap     int64
	largeCap     int64
	wait         time.Duration

	// smallUsed and largeUsed are what is reserved now (for metrics).
	smallUsed, largeUsed atomic.Int64

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
		moving: semaphore.NewWeighted(maxMoving),
		wait:   wait, drained: drained,
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
	sem, used := f.small, &f.smallUsed
	if r.large {
		sem, used = f.large, &f.largeUsed
		// Always admissible: Config.validate keeps MaxInflight ≥ MaxBody.
		r.weight = min(size, f.largeCap)
	} else {
		r.weight = min(max(size, minWeight), f.smallCap)
	}
	// The common case, room and nobody waiting, costs no timer.
	if !sem.TryAcquire(r.weight) {
		wctx, cancel := context.WithTimeout(ctx, f.wait)
		err := sem.Acquire(wctx, r.weight)
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

// release ends the reservation; later calls do nothing.
func (r *reservation) release() {
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
