package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// gogcNow reads the GOGC in force.
func gogcNow() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// collectUntil runs collections until cond holds (the floor acts in a
// finalizer, after a collection) or a second has passed.
func collectUntil(cond func() bool) bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func TestGCFloorKeepsHeadroomAboveASmallHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const headroom = 256 << 20 // far above this test's live heap
	stop := startGCFloor(headroom, "")
	defer stop()
	live := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	if !collectUntil(func() bool { return gogcNow() > 100 }) {
		t.Fatalf("GOGC stayed %d over a live heap of %d bytes; want it raised", gogcNow(), live())
	}
	// The next target is about live + headroom, not twice the live heap.
	if got, want := uint64(gogcNow())*live()/100, uint64(headroom); got < want/2 || got > want*2 {
		t.Errorf("headroom %d bytes (GOGC %d, live %d), want about %d", got, gogcNow(), live(), want)
	}

	// Someone else's setting (search.BulkGC) is left alone until put back.
	floor := debug.SetGCPercent(7777)
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogcNow(); got != 7777 {
		t.Errorf("GOGC %d while another setting was in force, want 7777 kept", got)
	}
	debug.SetGCPercent(floor)

	stop()
	if got := gogcNow(); got != 100 {
		t.Errorf("after stop GOGC = %d, want the configured 100", got)
	}
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogcNow(); got != 100 {
		t.Errorf("a stopped floor set GOGC to %d", got)
	}
}

func TestGCFloorIsOffWithGOGCOff(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	stop := startGCFloor(256<<20, "off")
	defer stop()
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogcNow(); got != 100 {
		t.Errorf("GOGC=off: the floor set GOGC to %d", got)
	}
}

// A configured GOGC above what the floor needs is kept.
func TestGCFloorKeepsAHigherGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100000))
	stop := startGCFloor(1<<20, "100000")
	defer stop()
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if got := gogcNow(); got != 100000 {
		t.Errorf("GOGC %d, want the configured 100000 kept", got)
	}
}
