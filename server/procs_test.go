package main

import (
	"runtime"
	"testing"
	"testing/fstest"
)

// widenProcs doubles the Ps only over Go's own choice of one per core
// with no CPU quota, and puts them back.
func TestWidenProcs(t *testing.T) {
	cores := runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cores))

	restore := widenProcs("", false)
	if got := runtime.GOMAXPROCS(0); got != procsPerCore*cores {
		t.Errorf("GOMAXPROCS %d after widening on %d cores, want %d", got, cores, procsPerCore*cores)
	}
	again := widenProcs("", false) // a second server in the process leaves it
	again()
	if got := runtime.GOMAXPROCS(0); got != procsPerCore*cores {
		t.Errorf("GOMAXPROCS %d after a second widening was undone, want still %d", got, procsPerCore*cores)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != cores {
		t.Errorf("GOMAXPROCS %d after restore, want %d", got, cores)
	}

	type leave struct {
		name, env string
		limited   bool
		procs     int
	}
	cases := []leave{{"set in the environment", "3", false, cores}, {"under a CPU quota", "", true, cores},
		{"set by someone else", "", false, cores + 1}}
	if cores > 1 {
		cases = append(cases, leave{"fewer, as Go chooses under a quota", "", false, cores - 1})
	}
	for _, c := range cases {
		runtime.GOMAXPROCS(c.procs)
		widenProcs(c.env, c.limited)()
		if got := runtime.GOMAXPROCS(0); got != c.procs {
			t.Errorf("%s: GOMAXPROCS %d, want %d left alone", c.name, got, c.procs)
		}
	}
}

// cpuLimited finds a quota on the process's cgroup or a parent, in cgroup
// v2 and v1, and none where the files say unlimited or are missing.
func TestCPULimited(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	v2 := "0::/system.slice/rapporteur.service\n"
	v1 := "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n"
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
		want bool
	}{
		{"no cgroups", fstest.MapFS{}, false},
		{"v2 unlimited", fstest.MapFS{"proc/self/cgroup": file(v2),
			"sys/fs/cgroup/system.slice/rapporteur.service/cpu.max": file("max 100000\n")}, false},
		{"v2 quota", fstest.MapFS{"proc/self/cgroup": file(v2),
			"sys/fs/cgroup/system.slice/rapporteur.service/cpu.max": file("150000 100000\n")}, true},
		{"v2 quota on a parent", fstest.MapFS{"proc/self/cgroup": file(v2),
			"sys/fs/cgroup/system.slice/rapporteur.service/cpu.max": file("max 100000\n"),
			"sys/fs/cgroup/system.slice/cpu.max":                    file("50000 100000\n")}, true},
		{"v2 in a namespace", fstest.MapFS{"proc/self/cgroup": file("0::/\n"),
			"sys/fs/cgroup/cpu.max": file("200000 100000\n")}, true},
		{"v1 unlimited", fstest.MapFS{"proc/self/cgroup": file(v1),
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": file("-1\n")}, false},
		{"v1 quota", fstest.MapFS{"proc/self/cgroup": file(v1),
			"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": file("100000\n")}, true},
	} {
		if got := cpuLimited(c.fsys); got != c.want {
			t.Errorf("%s: cpuLimited = %v, want %v", c.name, got, c.want)
		}
	}
}
