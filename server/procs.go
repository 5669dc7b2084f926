package main

import "runtime"

// procsPerCore is how many Ps (Go's slots for running goroutines) the
// server runs per core when nothing limits its CPU.
const procsPerCore = 2

// widenProcs gives the Go scheduler procsPerCore Ps per core and returns a
// func that puts the previous number back. It leaves GOMAXPROCS alone when
// it is set (gomaxprocs, the environment's value) or when Go chose another
// number than the cores, as it does under a CPU quota, where more Ps
// would only get the process throttled.
//
// The server shares its cores with Postgres and with its own background
// work: the search indexer's analysis, segment building and merges keep
// Ps busy for up to Go's 10 ms time slice, and a woken op or write pump
// then waits for a P. With more Ps than cores it gets one at once and the
// kernel shares the cores in finer slices. In the busy-room load run (80
// clients, 10 ops/s each) this took the ack p99 from a median of 31 ms to
// 24 ms over 13 alternating runs; without the indexer it was 15–17 ms.
func widenProcs(gomaxprocs string) (restore func()) {
	cores := runtime.NumCPU()
	if gomaxprocs != "" || runtime.GOMAXPROCS(0) != cores {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(procsPerCore * cores)
	return func() { runtime.GOMAXPROCS(prev) }
}
