package main

import (
	"os"
	"syscall"
)

// datasync waits until f's data is on disk, as Postgres's commits do on
// Linux (fdatasync: a size or time change of the file is not waited for).
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
