package main

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/PID/stat: Linux reports
// them in USER_HZ, which is 100 on every architecture Go runs Linux on.
const userHZ = 100

// procTimes is one reading of /proc: each process's CPU time so far and
// its parent, to add up the CPU of a process and its descendants.
type procTimes struct {
	cpu    map[int]time.Duration
	parent map[int]int
}

// readProcTimes reads the user and system time and the parent of every
// process in /proc. A process that exits while it is read is left out.
func readProcTimes() (procTimes, error) {
	if runtime.GOOS != "linux" {
		return procTimes{}, errors.New("reading processes' CPU time needs Linux /proc")
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return procTimes{}, err
	}
	pt := procTimes{cpu: make(map[int]time.Duration, len(stats)), parent: make(map[int]int, len(stats))}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid, ppid, cpu, ok := parseProcStat(string(b))
		if ok {
			pt.cpu[pid], pt.parent[pid] = cpu, ppid
		}
	}
	if len(pt.cpu) == 0 {
		return procTimes{}, errors.New("no readable process in /proc")
	}
	return pt, nil
}

// parseProcStat reads the pid, the parent's pid and the CPU time (user
// plus system, of all threads) out of a /proc/PID/stat line. The command
// name in parentheses may hold spaces and parentheses itself, so the
// fields are counted from its last closing parenthesis.
func parseProcStat(s string) (pid, ppid int, cpu time.Duration, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 1 || end < open {
		return 0, 0, 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return 0, 0, 0, false
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])   // field 4
	utime, err2 := strconv.Atoi(f[11]) // field 14
	stime, err3 := strconv.Atoi(f[12]) // field 15
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return pid, ppid, time.Duration(utime+stime) * time.Second / userHZ, true
}

// descends tells whether pid is root or one of root's descendants.
func (pt procTimes) descends(pid, root int) bool {
	for p := pid; p > 0; p = pt.parent[p] {
		if p == root {
			return true
		}
	}
	return false
}

// cpuSplit is the CPU time the parts of a load run used between two
// readings: the load generator (this process alone), the server (its
// process and children) and the rest of this process's descendants,
// which under `loadtest -serve` is the private Postgres.
type cpuSplit struct {
	Load, Server, Postgres time.Duration
}

// cpuSince is the split of the CPU time used since the reading before:
// server is the server's pid (0: not known, as without -serve and
// -server-pid). Postgres is only known under -serve, where it is this
// process's child. Each process counts with what it used between the
// readings (all of it if it started after before), so one that exited in
// between counts for nothing and takes nothing off the others.
func cpuSince(before, after procTimes, server int, serve bool) cpuSplit {
	self := os.Getpid()
	var s cpuSplit
	for pid, t := range after.cpu {
		d := t - before.cpu[pid]
		switch {
		case d <= 0: // idle, or a new process under a reused pid
		case pid == self:
			s.Load += d
		case server > 0 && after.descends(pid, server):
			s.Server += d
		case serve && after.descends(pid, self):
			s.Postgres += d
		}
	}
	return s
}
