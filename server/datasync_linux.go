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

// inMemory says whether dir is on a file system kept in memory (tmpfs,
// ramfs), where a commit waits for no disk: figures measured there are
// not a disk's.
func inMemory(dir string) bool {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return false
	}
	const tmpfs, ramfs = 0x01021994, 0x858458f6 // TMPFS_MAGIC, RAMFS_MAGIC
	return uint32(st.Type) == tmpfs || uint32(st.Type) == ramfs
}
