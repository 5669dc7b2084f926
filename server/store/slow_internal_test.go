package store

import (
	"testing"
	"time"
)

// TestSlowBatchesAdd: quick transactions and waits are not counted; the
// longest transaction keeps its room; an op counts when its own wait was
// long, in a quick transaction too; a take starts afresh.
func TestSlowBatchesAdd(t *testing.T) {
	var s Store
	now := time.Now()
	op := func(waited time.Duration) *pendingOp { return &pendingOp{queued: now.Add(-waited)} }
	ms := time.Millisecond

	s.slow.add("quick", []*pendingOp{op(20 * ms), op(10 * ms)}, now.Add(-10*ms))
	if got := s.TakeSlowBatches(); got != (SlowBatches{}) {
		t.Fatalf("a quick transaction counted: %+v", got)
	}
	s.slow.add("a", []*pendingOp{op(400 * ms), op(150 * ms), op(50 * ms)}, now.Add(-200*ms))
	s.slow.add("b", []*pendingOp{op(300 * ms)}, now.Add(-300*ms))
	s.slow.add("c", []*pendingOp{op(250 * ms)}, now.Add(-10*ms)) // queued behind a slow one
	got := s.TakeSlowBatches()
	if got.Count != 2 || got.Room != "b" || got.Longest < 300*ms || got.Longest > 400*ms || got.Ops != 4 || got.MaxWait < 400*ms || got.MaxWait > 500*ms {
		t.Fatalf("got %+v, want 2 transactions, the longest (300 ms) in b, 4 ops waiting, the longest 400 ms", got)
	}
	if again := s.TakeSlowBatches(); again != (SlowBatches{}) {
		t.Fatalf("taken twice: %+v", again)
	}
}
