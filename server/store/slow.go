package store

import (
	"sync"
	"time"
)

// SlowBatch is how long a room's transaction, or an op's wait for its
// outcome, may take before TakeSlowBatches counts it: past it, the
// screens in the room show the op as saving for a moment a person
// notices. On a sound disk a transaction takes a few milliseconds; a slow
// one most often waited for the disk.
const SlowBatch = 100 * time.Millisecond

// SlowBatches tells of the room transactions that took over SlowBatch,
// and of the ops that waited over SlowBatch for their outcome (queued
// behind a slow transaction, or in one).
type SlowBatches struct {
	Count   int           // transactions over SlowBatch
	Longest time.Duration // the longest of them
	Room    string        // its room
	Ops     int           // ops that waited over SlowBatch, from submission to outcome
	MaxWait time.Duration // the longest an op waited
}

// slowBatches gathers SlowBatches between two takes.
type slowBatches struct {
	mu sync.Mutex
	s  SlowBatches
}

// add counts the transaction of room that began at start and ran ops, if
// it or their waits were slow.
func (sb *slowBatches) add(room string, ops []*pendingOp, start time.Time) {
	now := time.Now()
	d := now.Sub(start)
	if d <= SlowBatch && (len(ops) == 0 || now.Sub(ops[0].queued) <= SlowBatch) {
		return // ops[0] waited longest: the queue is in submission order
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if d > SlowBatch {
		sb.s.Count++
		if d > sb.s.Longest {
			sb.s.Longest, sb.s.Room = d, room
		}
	}
	for _, op := range ops {
		if w := now.Sub(op.queued); w > SlowBatch {
			sb.s.Ops++
			sb.s.MaxWait = max(sb.s.MaxWait, w)
		}
	}
}

// TakeSlowBatches returns what was slow since the last call, for the
// server to log.
func (s *Store) TakeSlowBatches() SlowBatches {
	s.slow.mu.Lock()
	defer s.slow.mu.Unlock()
	out := s.slow.s
	s.slow.s = SlowBatches{}
	return out
}
