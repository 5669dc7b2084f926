package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/store"
)

// TestLoadtestCommand runs each load-test scenario briefly against a real
// server, so the command the benchmarks rely on keeps working.
func TestLoadtestCommand(t *testing.T) {
	dsn := pg.NewDB(t)
	s := MustStart(t, map[string]string{"DATABASE_URL": dsn, "HUB_OPS_PER_SECOND": "200"})
	for _, sc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scenario", "room", "-clients", "5", "-rate", "5", "-duration", "1s"}, `(?s)0 failed to send, 0 refused, error frames by code: map\[\]\nack +p50 \S+ .*\(n=\d+\)\nfan-out to all +p50 \S+ .*\(n=\d+\) \(op sent → its entry read by the last of 5 screens\)\nfan-out +p50 \S+ .*\(\d+ deliveries; expected \d+: .*\)\ncommits +p50 \S+ .*\(n=([5-9]|[1-9]\d)\) \(a one-row INSERT every 50ms meanwhile; \d+ over 20ms\)`},
		{[]string{"-scenario", "room", "-mix", "create", "-clients", "5", "-rate", "5", "-duration", "1s"}, `(?s)error frames by code: map\[\].*fan-out to all +p50 \S+`},
		{[]string{"-scenario", "throughput", "-clients", "4", "-rooms", "2", "-window", "3", "-writers", "5", "-duration", "1s"}, `(?s)durable ops/s over 2 rooms, 4 clients, 3 ops in flight each: \d+ acked/s.*\nplain one-row INSERT per transaction, 5 writers: .*\nCPU per durable op: load generator \d+ µs \(\d\.\d\d cores busy of \d+\)\nCPU per plain INSERT: load generator`},
		{[]string{"-scenario", "throughput", "-clients", "2", "-rooms", "1", "-window", "1", "-writers", "1", "-duration", "1s"}, `\nplain one-row INSERT per transaction, 1 writer: `},
		{[]string{"-scenario", "reconnect", "-clients", "5", "-behind", "10"}, `5 clients reconnected and caught up 10 entries in \S+ \(0 failed\)`},
		// The server runs in this process: its memory is this process's.
		{[]string{"-scenario", "idle", "-clients", "20", "-server-pid", strconv.Itoa(os.Getpid())}, `20 idle connections \(joined, connected in \S+\): server RSS \d+ → \d+ KiB, -?\d+\.\d KiB per connection`},
	} {
		var out bytes.Buffer
		args := append([]string{"rapporteur", "loadtest", "-url", s.URL, "-database-url", dsn}, sc.args...)
		if err := run(context.Background(), args, func(string) string { return "" }, &out, &out); err != nil {
			t.Fatalf("%v: %v\n%s", sc.args, err, out.String())
		}
		if !regexp.MustCompile(sc.want).MatchString(out.String()) {
			t.Fatalf("%v: output lacks %q:\n%s", sc.args, sc.want, out.String())
		}
		if m := regexp.MustCompile(`\((\d+) deliveries; expected (\d+):`).FindStringSubmatch(out.String()); m != nil && m[1] != m[2] {
			t.Fatalf("%v: entries lost or not recognised:\n%s", sc.args, out.String())
		}
		if strings.Contains(out.String(), "no samples") {
			t.Fatalf("%v: no latency samples:\n%s", sc.args, out.String())
		}
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var left []string
	if err := st.DB().NewRaw("SELECT relname FROM pg_class WHERE relname LIKE 'loadtest%' AND relkind = 'r'").Scan(context.Background(), &left); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("the load command left its tables %v in the database", left)
	}
}

// TestLoadtestRefusesABadSweep: a throughput sweep's -window and -writers
// out of range are refused before anything starts, not clamped in silence.
func TestLoadtestRefusesABadSweep(t *testing.T) {
	for _, sc := range []struct {
		args []string
		want string
	}{
		{[]string{"-window", "0"}, "-window 0: a client needs at least one op in flight"},
		{[]string{"-writers", "41"}, "-writers 41: use 1 to 40"},
		{[]string{"-writers", "-1"}, "-writers -1: use 1 to 40"},
	} {
		var out bytes.Buffer
		args := append([]string{"rapporteur", "loadtest", "-serve", "-scenario", "throughput"}, sc.args...)
		err := run(context.Background(), args, func(string) string { return "" }, &out, &out)
		if err == nil || !strings.Contains(err.Error(), sc.want) {
			t.Fatalf("%v: %v, want an error saying %q", sc.args, err, sc.want)
		}
	}
}

// TestLoadtestServe runs the load command as people rerun a figure: with
// -serve it starts a fresh server and Postgres of its own, measures (and
// tells their CPU apart), and leaves neither process nor data folder
// behind.
func TestLoadtestServe(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"rapporteur", "loadtest", "-serve", "-database-url", "postgres://x", "-scenario", "idle"},
		func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "leave out -database-url") {
		t.Fatalf("-serve with -database-url: %v, want an error that says to leave it out", err)
	}

	bin := mustBuild(t)
	cmd := exec.Command(bin, "loadtest", "-serve", "-scenario", "throughput", "-clients", "4", "-rooms", "2", "-duration", "2s")
	cmd.Dir = t.TempDir()
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loadtest -serve: %v\n%s", err, b)
	}
	m := regexp.MustCompile(`fresh server http://127\.0\.0\.1:\d+ \(pid (\d+)\), data in (\S+)\n`).FindSubmatch(b)
	// The CPU split knows the server and its Postgres: both did work.
	cpu := regexp.MustCompile(`CPU per durable op: server (\d+) µs, Postgres (\d+) µs, load generator \d+ µs`).FindSubmatch(b)
	if m == nil || cpu == nil || string(cpu[1]) == "0" || string(cpu[2]) == "0" {
		t.Fatalf("loadtest -serve output lacks the server, the figure or its CPU split:\n%s", b)
	}
	// Without -writers, beside the default writers' rate, the one writer's.
	if !regexp.MustCompile(`\nplain one-row INSERT per transaction, 4 writers: \d+/s .*\nratio: \d+\.\d\d\n(.*\n)*plain one-row INSERT per transaction, 1 writer: [1-9]\d*/s \(\d+ before, \d+ after\)\nratio against 1 writer: \d+\.\d\d\n`).Match(b) {
		t.Errorf("loadtest -serve output lacks the two plain rates and ratios:\n%s", b)
	}
	if _, err := os.Stat(string(m[2])); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the data folder %s is still there (%v)", m[2], err)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the server (pid %d) still runs: %v", pid, err)
	}
}

// TestScanFrame: the load test reads a frame's own fields, never a
// payload's, even when the payload holds the same keys.
func TestScanFrame(t *testing.T) {
	for _, c := range []struct {
		frame string
		want  ltFrame
	}{
		{`{"type":"entry","room":"workshop:1","seq":42,"op_id":"tp-1-2","actor":"Participant, \"FI\"","kind":"finding.create","payload":{"code":"inner","op_id":"inner","seq":7,"type":"x"},"at":"2026-11-27T10:00:00Z"}`,
			ltFrame{Type: "entry", Room: "workshop:1", Seq: 42, OpID: "tp-1-2"}},
		{`{"type":"entry","room":"workshop:1","seq":5,"kind":"finding.release","payload":{"op_id":"inner","code":"inner"},"at":"2026-11-27T10:00:00Z"}`,
			ltFrame{Type: "entry", Room: "workshop:1", Seq: 5}},
		{`{"type":"ack","room":"workshop:1","op_id":"tp-1-3","seq":43}`,
			ltFrame{Type: "ack", Room: "workshop:1", Seq: 43, OpID: "tp-1-3"}},
		{`{"type":"error","room":"workshop:1","op_id":"tp-1-4","code":"conflict","message":"Someone else changed it.","current":{"title":"x"}}`,
			ltFrame{Type: "error", Room: "workshop:1", OpID: "tp-1-4", Code: "conflict"}},
	} {
		if got := scanFrame([]byte(c.frame)); got != c.want {
			t.Errorf("scanFrame(%s)\n = %+v\nwant %+v", c.frame, got, c.want)
		}
	}
}

// TestRoomOutcomeLeavesNoOpOut: the room scenario's percentiles are over
// every op sent but the refused ones; one never acked, or acked but not
// read by every screen, is a sample of never, and to-all is the latest
// delivery, not a typical one.
func TestRoomOutcomeLeavesNoOpOut(t *testing.T) {
	op := func(ack time.Duration, deliveries ...time.Duration) *sentOp {
		o := &sentOp{at: time.Now()}
		o.acked.Store(int64(ack))
		for _, d := range deliveries {
			o.delivered(o.at.Add(d))
		}
		return o
	}
	refused := op(0)
	refused.refused.Store(true)
	ms := time.Millisecond
	r := roomOutcome([]*sentOp{
		op(2*ms, 3*ms, 9*ms, 4*ms), // reached all three screens, the last at 9 ms
		op(0, 5*ms),                // its ack never came
		op(3*ms, 4*ms, 6*ms),       // one screen never read it
		refused,
	}, 3)
	if r.refused != 1 || r.unacked != 1 || r.short != 1 {
		t.Fatalf("refused %d, unacked %d, short %d; want 1 each", r.refused, r.unacked, r.short)
	}
	if want := []time.Duration{2 * ms, never, 3 * ms}; !slices.Equal(r.acks, want) {
		t.Errorf("acks %v, want %v", r.acks, want)
	}
	if want := []time.Duration{9 * ms, never, never}; !slices.Equal(r.toAll, want) {
		t.Errorf("to all %v, want %v", r.toAll, want)
	}
	if got, want := percentiles(r.toAll), "p50 never  p95 never  p99 never  max never  (n=3, 2 never)"; got != want {
		t.Errorf("percentiles %q, want %q", got, want)
	}
	if got, want := percentiles([]time.Duration{4 * ms, 1 * ms}), "p50 4ms  p95 4ms  p99 4ms  max 4ms  (n=2)"; got != want {
		t.Errorf("percentiles %q, want %q", got, want)
	}
}

// TestPlainInsertRateSaysWhenInsertsFail: a failing plain INSERT is an
// error, not a lower baseline that flatters the durable rate.
func TestPlainInsertRateSaysWhenInsertsFail(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, pg.NewDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE loadtest_plain (id bigserial PRIMARY KEY, payload jsonb NOT NULL CHECK (false))"); err != nil {
		t.Fatal(err)
	}
	rate, err := plainInsertRate(ctx, st, 3, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "plain INSERT") {
		t.Fatalf("rate %.0f/s, err %v; want the inserts' error", rate, err)
	}
}

// TestInMemoryFolders: a folder in tmpfs is told apart from one on a disk.
func TestInMemoryFolders(t *testing.T) {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Skip("no /proc/mounts:", err)
	}
	if inMemory("/proc") {
		t.Error("/proc counted as tmpfs")
	}
	found := false
	for l := range strings.SplitSeq(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[2] == "tmpfs" {
			found = true
			if !inMemory(f[1]) {
				t.Errorf("%s is tmpfs (/proc/mounts) but not counted as in memory", f[1])
			}
		}
	}
	if !found {
		t.Skip("no tmpfs mounted here")
	}
}
