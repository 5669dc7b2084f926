package main

import (
	"maps"
	"testing"
	"time"
)

// TestIndexerHoldsAFindingIndexedMomentsAgo walks the indexer's hold: a
// finding changed again right after it was indexed waits until indexHold
// has passed, one indexing then taking all its changes, and until then
// the checkpoint stays before its first change, so that a restart indexes
// it again.
func TestIndexerHoldsAFindingIndexedMomentsAgo(t *testing.T) {
	const room, other = "workshop:1", "workshop:2"
	f := newFollowing(map[string]int64{room: 5, other: 3})
	t0 := time.Now()
	step := func(at time.Duration, changed map[int64]logPos, read map[string]int64, wantIDs []int64, wantCP map[string]int64) {
		t.Helper()
		ids, cp := f.take(changed, read, t0.Add(at))
		if len(ids) != len(wantIDs) {
			t.Fatalf("at %v: indexes %v, want %v", at, ids, wantIDs)
		}
		for _, id := range wantIDs {
			if !ids[id] {
				t.Fatalf("at %v: indexes %v, want %v", at, ids, wantIDs)
			}
		}
		if !maps.Equal(cp, wantCP) {
			t.Fatalf("at %v: checkpoint %v, want %v", at, cp, wantCP)
		}
		f.done(ids, read, t0.Add(at))
	}
	// Finding 1 changes and is indexed at once.
	step(0, map[int64]logPos{1: {room, 6}}, map[string]int64{room: 6, other: 3}, []int64{1}, map[string]int64{room: 6, other: 3})
	if _, ok := f.nextDue(); ok {
		t.Fatal("nothing is held, yet something is due")
	}
	// 100 ms later finding 1 changes again (held) and finding 2 in
	// another room (indexed): the room of 1 keeps its checkpoint before
	// the held change, the other room moves on.
	step(100*time.Millisecond, map[int64]logPos{1: {room, 7}, 2: {other, 4}}, map[string]int64{room: 7, other: 4},
		[]int64{2}, map[string]int64{room: 6, other: 4})
	if due, ok := f.nextDue(); !ok || !due.Equal(t0.Add(indexHold)) {
		t.Fatalf("next due %v, %v; want %v", due, ok, t0.Add(indexHold))
	}
	// Another change of 1: still held, the checkpoint still before its
	// first held change.
	step(200*time.Millisecond, map[int64]logPos{1: {room, 9}}, map[string]int64{room: 9, other: 4},
		nil, map[string]int64{room: 6, other: 4})
	if f.anyDue(t0.Add(indexHold - time.Millisecond)) {
		t.Fatal("due before indexHold has passed")
	}
	// Due: indexed without a new change, and the checkpoint catches up.
	if !f.anyDue(t0.Add(indexHold)) {
		t.Fatal("not due once indexHold has passed")
	}
	step(indexHold, nil, map[string]int64{room: 9, other: 4}, []int64{1}, map[string]int64{room: 9, other: 4})
	if _, ok := f.nextDue(); ok || len(f.held) != 0 {
		t.Fatalf("still held: %v", f.held)
	}
}
