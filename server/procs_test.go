package main

import (
	"runtime"
	"testing"
)

// widenProcs doubles the Ps only over Go's own choice of one per core, and
// puts them back.
func TestWidenProcs(t *testing.T) {
	cores := runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cores))

	restore := widenProcs("")
	if got := runtime.GOMAXPROCS(0); got != procsPerCore*cores {
		t.Errorf("GOMAXPROCS %d after widening on %d cores, want %d", got, cores, procsPerCore*cores)
	}
	again := widenProcs("") // a second server in the process leaves it
	again()
	if got := runtime.GOMAXPROCS(0); got != procsPerCore*cores {
		t.Errorf("GOMAXPROCS %d after a second widening was undone, want still %d", got, procsPerCore*cores)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != cores {
		t.Errorf("GOMAXPROCS %d after restore, want %d", got, cores)
	}

	cases := []struct {
		name, env string
		procs     int
	}{{"set in the environment", "3", cores}, {"set by someone else", "", cores + 1}}
	if cores > 1 {
		cases = append(cases, struct {
			name, env string
			procs     int
		}{"fewer, as under a CPU quota", "", cores - 1})
	}
	for _, c := range cases {
		runtime.GOMAXPROCS(c.procs)
		widenProcs(c.env)()
		if got := runtime.GOMAXPROCS(0); got != c.procs {
			t.Errorf("%s: GOMAXPROCS %d, want %d left alone", c.name, got, c.procs)
		}
	}
}
