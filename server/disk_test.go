package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLoadtestDisk runs the disk scenario as people rerun it: it needs no
// server, measures both kinds of sync, alone and together, and leaves
// nothing in the folder.
func TestLoadtestDisk(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(context.Background(), []string{"rapporteur", "loadtest", "-scenario", "disk", "-dir", dir, "-duration", "1200ms"},
		func(string) string { return "" }, &out, &out)
	if err != nil {
		t.Fatalf("disk scenario: %v\n%s", err, out.String())
	}
	want := `(?s)disk ` + regexp.QuoteMeta(dir) + `\n8 KiB write \+ data sync.*\n  p50 \S+  p95 \S+  p99 \S+  max \S+  \(n=\d+\)\n  stalls over 20ms: \d+, \S+ in all \(\d+\.\d\d% of \S+\)\nnew 256 KiB file.*\n  p50 \S+ .*\(n=\d+\)\n  stalls over 20ms: \d+.*\nthe commit again, while such a file is saved every 250ms.*\n  p50 \S+ .*\(n=\d+\)\n  stalls over 20ms: \d+`
	if !regexp.MustCompile(want).MatchString(out.String()) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the disk scenario left %d files in %s", len(left), dir)
	}

	missing := dir + "/none"
	err = run(context.Background(), []string{"rapporteur", "loadtest", "-scenario", "disk", "-dir", missing, "-duration", "100ms"},
		func(string) string { return "" }, &out, &out)
	if _, serr := os.Stat(missing); err == nil || !strings.Contains(err.Error(), "pass -dir") || serr == nil {
		t.Fatalf("disk in a missing folder: %v (and the folder %v), want an error that says to pass -dir, and no folder made", err, serr)
	}

	out.Reset()
	err = run(context.Background(), []string{"rapporteur", "loadtest", "-serve", "-scenario", "disk", "-dir", dir},
		func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "leave out -serve") {
		t.Fatalf("disk with -serve: %v, want an error that says to leave it out", err)
	}
}

// TestDiskStallsAreCounted checks the count of stalls and their share of
// the time, which say whether a disk can hold an ack p99.
func TestDiskStallsAreCounted(t *testing.T) {
	ms := time.Millisecond
	var out bytes.Buffer
	reportSyncs(&out, "syncs:", []time.Duration{ms, 30 * ms, 2 * ms, 20 * ms, 70 * ms}, 10*time.Second)
	if want := "stalls over 20ms: 2, 100ms in all (1.00% of 10s)"; !strings.Contains(out.String(), want) {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
