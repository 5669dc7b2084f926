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

// GOGC=off turns the floor off, and a configured GOGC above what the
// floor needs is kept.
func TestGCFloorLeavesGOGCWhenItNeedsNothing(t *testing.T) {
	for _, c := range []struct {
		gogc     string
		percent  int    // what GOGC is in the process
		headroom uint64 // far above the live heap for "off", far below for the high GOGC
	}{{"off", -1, 256 << 20}, {"100000", 100000, 1 << 20}} {
		prev := debug.SetGCPercent(c.percent)
		stop := startGCFloor(c.headroom, c.gogc)
		runtime.GC()
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		if got := debug.SetGCPercent(c.percent); got != c.percent {
			t.Errorf("GOGC=%s: the floor set GOGC to %d, want %d kept", c.gogc, got, c.percent)
		}
		stop()
		debug.SetGCPercent(prev)
	}
}
