//go:build !linux

package main

import "os"

// datasync waits until f is on disk (fsync where fdatasync is not offered).
func datasync(f *os.File) error { return f.Sync() }
