package server

import (
	"runtime"
	"runtime/debug"
	"time"
)

// returnMemoryDelay is how long the large lane must stay empty before the
// memory of big requests is returned to the operating system.
const returnMemoryDelay = time.Second

// returnMemory is called whenever the last big request in flight has been
// answered. Once none has started for returnMemoryDelay, it collects
// (twice, see below) and returns free memory to the operating system
// (debug.FreeOSMemory).
//
// Why: a roster of 100,000 participants raises the garbage collector's
// heap goal to several hundred megabytes. An idle server allocates too
// little to reach that goal again, so without this its garbage waits for
// the runtime's periodic collection (every two minutes) and the scavenger
// hands pages back gradually after that: the process looks hundreds of
// megabytes larger than it is for minutes, to the operator, to a memory-
// based autoscaler and to the other processes on the machine. The two
// forced collections after a burst cost a few milliseconds of CPU each on
// the live heap (bundles, GeoIP database), while admissions are served as
// usual; they never run while a big request is in flight, and at most
// once per quiet period.
func (s *Server) returnMemory() {
	if !s.memoryReturn.CompareAndSwap(false, true) {
		return // one is pending
	}
	time.AfterFunc(returnMemoryDelay, func() {
		s.memoryReturn.Store(false)
		if s.inflight.largeActive.Load() > 0 {
			return // the next drain schedules it again
		}
		// Twice: the arrays of big rosters kept for reuse (package reuse)
		// are in sync.Pools, which a collection only sets aside; the next
		// one frees them.
		runtime.GC()
		debug.FreeOSMemory()
	})
}
