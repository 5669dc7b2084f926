package hub

import (
	"context"
	"testing"
	"time"
)

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// Ops run at once even while others are busy, a worker that is done takes
// the next op instead of a new goroutine, and idle workers end.
func TestWorkersRunAtOnceReuseAndEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := newWorkers(ctx, time.Hour)

	release := make(chan struct{})
	started := make(chan int, 3)
	for i := range 3 {
		w.run(func() { started <- i; <-release })
	}
	for range 3 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("an op waited for a busy worker")
		}
	}
	if n := w.live.Load(); n != 3 {
		t.Fatalf("%d workers for 3 concurrent ops, want 3", n)
	}
	close(release)

	ran := make(chan struct{})
	waitFor(t, "an idle worker to take an op", func() bool { return w.handOff(func() { close(ran) }) })
	<-ran
	if n := w.live.Load(); n != 3 {
		t.Errorf("%d workers after reuse, want still 3", n)
	}

	cancel()
	waitFor(t, "idle workers to end with the hub", func() bool { return w.live.Load() == 0 })

	short := newWorkers(context.Background(), time.Millisecond)
	done := make(chan struct{})
	short.run(func() { close(done) })
	<-done
	waitFor(t, "an idle worker to end after its wait", func() bool { return short.live.Load() == 0 })
}
