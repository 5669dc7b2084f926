package main

import (
	"io/fs"
	"path"
	"runtime"
	"slices"
	"strings"
)

// procsPerCore is how many Ps (Go's slots for running goroutines) the
// server runs per core when nothing limits its CPU.
const procsPerCore = 2

// widenProcs gives the Go scheduler procsPerCore Ps per core and returns a
// func that puts the previous number back. It leaves GOMAXPROCS alone when
// it is set (gomaxprocs, the environment's value), when Go chose another
// number than the cores, or when a CPU quota limits the process (limited,
// see cpuLimited): more Ps would then only get the process throttled.
//
// The server shares its cores with Postgres and with its own background
// work: the search indexer's analysis, segment building and merges keep
// Ps busy for up to Go's 10 ms time slice, and a woken op or write pump
// then waits for a P. With more Ps than cores it gets one at once and the
// kernel shares the cores in finer slices. In the busy-room load run (80
// clients, 10 ops/s each) this took the ack p99 from a median of 31 ms to
// 24 ms over 13 alternating runs; without the indexer it was 15–17 ms.
func widenProcs(gomaxprocs string, limited bool) (restore func()) {
	cores := runtime.NumCPU()
	if gomaxprocs != "" || limited || runtime.GOMAXPROCS(0) != cores {
		return func() {}
	}
	prev := runtime.GOMAXPROCS(procsPerCore * cores)
	return func() { runtime.GOMAXPROCS(prev) }
}

// cpuLimited tells whether a cgroup CPU quota applies to this process, in
// fsys (the root file system): its cgroup or a parent of it has a cpu.max
// (cgroup v2) or cpu.cfs_quota_us (v1) that is not unlimited. Without
// /proc/self/cgroup (not Linux) nothing limits it.
func cpuLimited(fsys fs.FS) bool {
	raw, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var roots []string // where the controller's files are
		var file, unlimited string
		switch {
		case parts[0] == "0" && parts[1] == "":
			roots, file, unlimited = []string{"sys/fs/cgroup"}, "cpu.max", "max"
		case slices.Contains(strings.Split(parts[1], ","), "cpu"):
			roots = []string{"sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpuacct,cpu"}
			file, unlimited = "cpu.cfs_quota_us", "-1"
		default:
			continue
		}
		for dir := path.Clean("/" + parts[2]); ; dir = path.Dir(dir) {
			for _, root := range roots {
				b, err := fs.ReadFile(fsys, path.Join(root, dir, file))
				if err != nil {
					continue
				}
				if f := strings.Fields(string(b)); len(f) > 0 && f[0] != unlimited {
					return true
				}
			}
			if dir == "/" {
				break
			}
		}
	}
	return false
}
