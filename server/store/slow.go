package store

import (
	"sync"
	"time"
)

// SlowBatch is how long a room's transaction may take before
// TakeSlowBatches counts it: past it, the screens in the room show its ops
// as saving for a moment a person notices. On a sound disk a transaction
// takes a few milliseconds; a slow one most often waited for the disk.
const SlowBatch = 100 * time.Millisecond

// SlowBatches tells of the room transactions that took over SlowBatch.
type SlowBatches struct {
	Count   int           // transactions
	Ops     int           // the ops that waited for them
	Longest time.Duration // the longest one
	Room    string        // the room of the longest one
}

// slowBatches gathers SlowBatches between two takes.
type slowBatches struct {
	mu sync.Mutex
	s  SlowBatches
}

func (sb *slowBatches) add(room string, ops int, d time.Duration) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.s.Count++
	sb.s.Ops += ops
	if d > sb.s.Longest {
		sb.s.Longest, sb.s.Room = d, room
	}
}

// TakeSlowBatches returns the room transactions that took over SlowBatch
// since the last call, for the server to log.
func (s *Store) TakeSlowBatches() SlowBatches {
	s.slow.mu.Lock()
	defer s.slow.mu.Unlock()
	out := s.slow.s
	s.slow.s = SlowBatches{}
	return out
}
