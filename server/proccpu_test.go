package main

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name may hold spaces and parentheses.
	line := "4242 (pg (x) y) S 17 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 1 0 100 0 0\n"
	pid, ppid, cpu, ok := parseProcStat(line)
	if !ok || pid != 4242 || ppid != 17 || cpu != 3800*time.Millisecond {
		t.Fatalf("parseProcStat = %d, %d, %s, %v; want 4242, 17, 3.8s, true", pid, ppid, cpu, ok)
	}
	for _, bad := range []string{"", "x (a) S 1 2", "12 (a) S 1 2 3", "12 (a S 1 2 3 4 5 6 7 8 9 10 11 12 13"} {
		if _, _, _, ok := parseProcStat(bad); ok {
			t.Errorf("parseProcStat(%q) ok, want not", bad)
		}
	}
}

func TestProcTimesDescends(t *testing.T) {
	pt := procTimes{parent: map[int]int{1: 0, 10: 1, 11: 10, 12: 1, 20: 0}}
	for _, c := range []struct {
		pid, root int
		want      bool
	}{{1, 1, true}, {11, 1, true}, {11, 10, true}, {12, 10, false}, {20, 1, false}, {99, 1, false}} {
		if got := pt.descends(c.pid, c.root); got != c.want {
			t.Errorf("descends(%d, %d) = %v, want %v", c.pid, c.root, got, c.want)
		}
	}
}

// TestCPUSinceCountsEachProcessOnce checks that a process that exited
// between the readings takes nothing off the others, and that a new one
// counts with all its time.
func TestCPUSinceCountsEachProcessOnce(t *testing.T) {
	self, s := os.Getpid(), time.Second
	before := procTimes{cpu: map[int]time.Duration{self: 1 * s, 100: 5 * s, 101: 50 * s},
		parent: map[int]int{100: self, 101: self}}
	after := procTimes{cpu: map[int]time.Duration{self: 2 * s, 100: 7 * s, 102: 3 * s, 200: 9 * s},
		parent: map[int]int{100: self, 102: 100, 200: 1}} // 101 exited; 102 is new; 200 is not ours
	got := cpuSince(before, after, 100, true)
	if want := (cpuSplit{Load: 1 * s, Server: 5 * s}); got != want {
		t.Errorf("with 100 as the server: %+v, want %+v", got, want)
	}
	got = cpuSince(before, after, 0, true)
	if want := (cpuSplit{Load: 1 * s, Postgres: 5 * s}); got != want {
		t.Errorf("with no server: %+v, want %+v", got, want)
	}
}

// TestCPUSince checks the split on real processes: this one's own busy
// loop counts as the load generator's, a busy child's as Postgres's under
// -serve, and as the server's when it is the server's pid.
func TestCPUSince(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	child := exec.Command("sh", "-c", "while :; do :; done")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	before, err := readProcTimes()
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := readProcTimes()
	if err != nil {
		t.Fatal(err)
	}
	asPG := cpuSince(before, after, 0, true)
	if asPG.Load <= 0 || asPG.Postgres <= 0 || asPG.Server != 0 {
		t.Errorf("child as Postgres: %+v, want load and Postgres time, no server time", asPG)
	}
	// This test binary's own Postgres is a child too: the busy child's
	// time moves from Postgres's share to the server's, and only it.
	asServer := cpuSince(before, after, child.Process.Pid, true)
	if asServer.Server <= 0 || asPG.Postgres-asServer.Postgres != asServer.Server || asServer.Load != asPG.Load {
		t.Errorf("child as the server: %+v (as Postgres: %+v), want its time moved from Postgres's to the server's", asServer, asPG)
	}
	if _, ok := after.cpu[os.Getpid()]; !ok {
		t.Error("this process is not in the reading")
	}
}
