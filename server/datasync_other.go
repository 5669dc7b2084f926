//go:build unix && !linux

package main

import (
	"os"
	"syscall"
)

// datasync waits until f is on disk with a plain fsync, as Postgres does
// where there is no fdatasync (os.File.Sync would also flush the drive's
// cache on macOS, which Postgres does not by default).
func datasync(f *os.File) error { return syscall.Fsync(int(f.Fd())) }

// inMemory says whether dir is on a file system kept in memory; only
// Linux is asked (see datasync_linux.go).
func inMemory(string) bool { return false }
