package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
)

// gcHeadroom is the least garbage the server lets pile up between two
// collections (see gcFloor).
const gcHeadroom = 64 << 20

// gcFloor keeps the garbage collector's heap target at least headroom
// above the live heap. Go's own target is twice the live heap (GOGC=100).
// A busy room's server has a live heap of about 10 MB and allocates about
// 50 MB a second, so it collected 14 times a second; each collection took
// a core's share and made the goroutines answering ops help with it, and
// the room's ack p99 rose by half. With the floor a small heap is
// collected about once a second; a heap bigger than headroom (10,000
// connections) is collected as Go would, so its memory does not grow.
//
// It raises GOGC after each collection as far as the floor needs, never
// below the configured GOGC, and stays out of the way while someone else
// has set another value (search.BulkGC during a rebuild), taking over
// again when that value is put back. GOGC=off turns it off; a GOMEMLIMIT
// still caps the heap.
type gcFloor struct {
	headroom uint64
	base     int // the configured GOGC percent

	mu      sync.Mutex // held by collected and stop
	last    int        // the percent it set last
	stopped bool
	samples []metrics.Sample
}

// sentinel is garbage made to be collected: its finalizer runs once after
// each collection. (Big enough not to share a tiny-allocator block.)
type sentinel struct{ _ [2]*int }

// startGCFloor starts a gcFloor of headroom bytes for a process whose GOGC
// setting is gogc ("" for the default) and returns its stop.
func startGCFloor(headroom uint64, gogc string) (stop func()) {
	base := 100
	if gogc != "" {
		n, err := strconv.Atoi(gogc)
		if err != nil || n <= 0 { // off, 0 or not a number: Go's own way
			return func() {}
		}
		base = n
	}
	g := &gcFloor{headroom: headroom, base: base,
		samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/gogc:percent"}}}
	g.last = base
	g.arm()
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if !g.stopped && g.percent() == g.last {
			debug.SetGCPercent(g.base)
		}
		g.stopped = true
	}
}

func (g *gcFloor) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) { g.collected() })
}

// percent reads the GOGC in force.
func (g *gcFloor) percent() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collected runs after each collection: it sets the next target to at
// least headroom above the live heap just measured.
func (g *gcFloor) collected() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	defer g.arm()
	metrics.Read(g.samples)
	live, cur := g.samples[0].Value.Uint64(), int(g.samples[1].Value.Uint64())
	if cur != g.last || live == 0 {
		return // someone else's setting; or nothing measured yet
	}
	if want := max(g.base, int(g.headroom*100/live)); want != cur {
		debug.SetGCPercent(want)
		g.last = want
	}
}
