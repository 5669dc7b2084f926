package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// diskStall is the sync time past which the disk scenario counts a stall:
// with the rest of an op's path, a commit that waits this long puts its
// ack past 25 ms.
const diskStall = 20 * time.Millisecond

// diskCheck is the load command's "disk" scenario: how long a commit waits
// for the disk under dir, and how long the search index's new files take.
// An op is acked once its commit is on disk, so a room's ack tail is never
// shorter than the disk's sync tail; this tells a host's disk apart from
// the server when a latency figure is missed. It runs each of its three
// tests for a third of d (or until ctx ends) in a new folder in dir,
// removed at the end.
func diskCheck(ctx context.Context, dir string, d time.Duration, out io.Writer) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("disk: %s is not a folder: pass -dir a folder on the disk to measure", dir)
	}
	if inMemory(dir) {
		fmt.Fprintf(out, "warning: %s is in memory (tmpfs): the figures below are not a disk's\n", dir)
	}
	tmp, err := os.MkdirTemp(dir, "disktest-")
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer os.RemoveAll(tmp)
	// Not zeros, which some file systems and disks store as nothing.
	noise := make([]byte, 256<<10)
	rand.Read(noise)

	// What Postgres does at each commit: write its WAL page into a segment
	// file made in advance, and wait for the data (not the metadata) to
	// be on disk.
	const segment, page = 16 << 20, 8 << 10
	wal, err := os.OpenFile(filepath.Join(tmp, "wal"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer wal.Close()
	if _, err := wal.Write(make([]byte, segment)); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if err := wal.Sync(); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	var off int64
	commit := func() error {
		if _, err := wal.WriteAt(noise[:page], off); err != nil {
			return err
		}
		off = (off + page) % segment
		return datasync(wal)
	}
	// What the search index does as it saves: a new file, written, synced,
	// and an older one removed.
	n := 0
	save := func() error {
		f, err := os.Create(filepath.Join(tmp, fmt.Sprintf("seg-%d", n)))
		if err != nil {
			return err
		}
		n++
		_, err = f.Write(noise)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n > 4 {
			err = os.Remove(filepath.Join(tmp, fmt.Sprintf("seg-%d", n-5)))
		}
		return err
	}

	fmt.Fprintf(out, "disk %s\n", dir)
	syncs, took, err := timeSyncs(ctx, d/3, commit)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	reportSyncs(out, "8 KiB write + data sync into a file made in advance (a Postgres commit):", syncs, took)
	files, took, err := timeSyncs(ctx, d/3, save)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	reportSyncs(out, "new 256 KiB file written and synced, an older one removed (a search index segment):", files, took)

	// Both at once, the files at the pace of a busy room's index: whether
	// the index's saves hold up the commits on this disk.
	stop, saved := make(chan struct{}), make(chan error, 1)
	go func() {
		t := time.NewTicker(diskSaveEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				saved <- nil
				return
			case <-t.C:
				if err := save(); err != nil {
					saved <- err
					return
				}
			}
		}
	}()
	syncs, took, err = timeSyncs(ctx, d/3, commit)
	close(stop)
	if serr := <-saved; err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	reportSyncs(out, fmt.Sprintf("the commit again, while such a file is saved every %s (a busy room's search index):", diskSaveEvery), syncs, took)
	fmt.Fprintf(out, "ops that arrive during a commit's stall wait it out: the more of the time the commit's stalls take, the further a room's ack p99 is from 25 ms\n")
	return ctx.Err()
}

// diskSaveEvery is how often the disk scenario's last test saves a file:
// about how often the search index of a busy room (80 clients) saves a
// segment.
const diskSaveEvery = 250 * time.Millisecond

// timeSyncs runs step again and again for d, or until ctx ends, and returns
// how long each took and the time it ran.
func timeSyncs(ctx context.Context, d time.Duration, step func() error) ([]time.Duration, time.Duration, error) {
	var ds []time.Duration
	start := time.Now()
	for (time.Since(start) < d || len(ds) == 0) && ctx.Err() == nil {
		t := time.Now()
		if err := step(); err != nil {
			return nil, 0, err
		}
		ds = append(ds, time.Since(t))
	}
	return ds, time.Since(start), nil
}

// stalls returns how many of ds took over diskStall, and their total.
func stalls(ds []time.Duration) (int, time.Duration) {
	var n int
	var sum time.Duration
	for _, d := range ds {
		if d > diskStall {
			n++
			sum += d
		}
	}
	return n, sum
}

// reportSyncs prints what, the percentiles of ds, and the stalls among
// them over a run of took.
func reportSyncs(out io.Writer, what string, ds []time.Duration, took time.Duration) {
	n, stalled := stalls(ds)
	fmt.Fprintf(out, "%s\n  %s\n  stalls over %s: %d, %s in all (%.2f%% of %s)\n", what, percentiles(ds),
		diskStall, n, stalled.Round(time.Millisecond), 100*stalled.Seconds()/took.Seconds(), took.Round(100*time.Millisecond))
}
