package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// diskStall is the sync time past which the disk scenario counts a stall:
// a commit that waits this long alone puts its op past a 25 ms ack.
const diskStall = 20 * time.Millisecond

// diskCheck is the load command's "disk" scenario: how long a commit waits
// for the disk under dir, and how long the search index's new files take.
// An op is acked once its commit is on disk, so a room's ack tail is never
// shorter than the disk's sync tail; this tells a host's disk apart from
// the server when a latency figure is missed. It runs each test for half
// of d and removes what it wrote.
func diskCheck(dir string, d time.Duration, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "disktest-")
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	defer os.RemoveAll(tmp)

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
	buf := make([]byte, page)
	var off int64
	syncs, took, err := timeSyncs(d/2, func() error {
		if _, err := wal.WriteAt(buf, off); err != nil {
			return err
		}
		off = (off + page) % segment
		return datasync(wal)
	})
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	fmt.Fprintf(out, "disk %s\n", dir)
	reportSyncs(out, "8 KiB write + data sync into a file made in advance (a Postgres commit):", syncs, took)

	// What the search index does as it saves: a new file, written, synced,
	// and an older one removed.
	seg := make([]byte, 256<<10)
	n := 0
	files, took, err := timeSyncs(d/2, func() error {
		name := filepath.Join(tmp, fmt.Sprintf("seg-%d", n))
		n++
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		_, err = f.Write(seg)
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
	})
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	reportSyncs(out, "new 256 KiB file + sync, an older one removed (a search index segment):", files, took)
	fmt.Fprintf(out, "ops that arrive during a stall wait it out: for a room's ack p99 under 25 ms, a commit's stalls must take well under 1%% of the time\n")
	return nil
}

// timeSyncs runs step again and again for d and returns how long each took
// and the time it ran.
func timeSyncs(d time.Duration, step func() error) ([]time.Duration, time.Duration, error) {
	var ds []time.Duration
	start := time.Now()
	for time.Since(start) < d || len(ds) == 0 {
		t := time.Now()
		if err := step(); err != nil {
			return nil, 0, err
		}
		ds = append(ds, time.Since(t))
	}
	return ds, time.Since(start), nil
}

// reportSyncs prints what, the percentiles of ds, and the stalls among
// them over a run of took.
func reportSyncs(out io.Writer, what string, ds []time.Duration, took time.Duration) {
	var stalls int
	var stalled time.Duration
	for _, d := range ds {
		if d > diskStall {
			stalls++
			stalled += d
		}
	}
	fmt.Fprintf(out, "%s\n  %s\n  stalls over %s: %d, %s in all (%.2f%% of %s)\n", what, percentiles(ds),
		diskStall, stalls, stalled.Round(time.Millisecond), 100*stalled.Seconds()/took.Seconds(), took.Round(time.Second))
}
