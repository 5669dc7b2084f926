package main

import (
	"errors"
	"os"
	"syscall"
)

// datasync waits until f's data is on disk, as Postgres's commits do on
// Linux (fdatasync: a size or time change of the file is not waited for).
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
