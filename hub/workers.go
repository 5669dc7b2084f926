package hub

import (
	"context"
	"sync/atomic"
	"time"
)

// workerIdle is how long an op worker waits for its next op before it ends.
const workerIdle = 2 * time.Second

// workers runs the connections' op calls on goroutines that wait a while
// for the next call after each one. An op's call chain (decode, validate,
// store) is deep, and a new goroutine per op grew its stack several times
// to fit it, copying it each time: 9% of the server's CPU in the
// throughput load run. A worker keeps its grown stack for the next op.
type workers struct {
	ctx  context.Context // its end ends the idle workers
	jobs chan func()     // unbuffered: a send succeeds only to a waiting worker
	idle time.Duration
	live atomic.Int64 // workers running or waiting, for tests
}

func newWorkers(ctx context.Context, idle time.Duration) *workers {
	return &workers{ctx: ctx, jobs: make(chan func()), idle: idle}
}

// run calls job on an idle worker, or on a new one when none waits.
func (w *workers) run(job func()) {
	if !w.handOff(job) {
		w.live.Add(1)
		go w.work(job)
	}
}

// handOff gives job to an idle worker, if one waits.
func (w *workers) handOff(job func()) bool {
	select {
	case w.jobs <- job:
		return true
	default:
		return false
	}
}

// work calls job, then the jobs handed to it, until it has waited idle
// for one or the hub ends.
func (w *workers) work(job func()) {
	defer w.live.Add(-1)
	t := time.NewTimer(w.idle)
	defer t.Stop()
	for {
		job()
		t.Reset(w.idle)
		select {
		case job = <-w.jobs:
		case <-t.C:
			return
		case <-w.ctx.Done():
			return
		}
	}
}
