package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rapporteur/rapporteur/server/domain"
	"github.com/rapporteur/rapporteur/server/store"
)

// process is the real server binary running as a child process.
type process struct {
	cmd *exec.Cmd
	URL string
}

func mustBuild(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "rapporteur")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("build server: %v\n%s", err, out)
	}
	return bin
}

func mustRunProcess(tb testing.TB, bin, addr, dsn string) *process {
	tb.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ADDR="+addr, "DATABASE_URL="+dsn, "BASE_URL=http://"+addr)
	if os.Getenv("DATA_DIR") == "" {
		cmd.Env = append(cmd.Env, "DATA_DIR="+tb.TempDir())
	}
	logf, _ := os.Create(filepath.Join(tb.TempDir(), "server.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &process{cmd: cmd, URL: "http://" + addr}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	waitReady(tb, p.URL)
	return p
}

// TestSIGKILLLosesNothingAcked kills the server with SIGKILL while 20
// clients send ops; after a restart the clients resume from the last
// entry they hold and resend what was not acked. Every acked op is in the
// database, every op is there once, and every client holds the log's
// entries, none skipped or repeated across the kill.
func TestSIGKILLLosesNothingAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary")
	}
	bin := mustBuild(t)
	dsn := pg.NewDB(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p1 := mustRunProcess(t, bin, addr, dsn)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, _ := st.Events(context.Background())
	ws, _ := st.Workshops(context.Background(), evs[0].ID)
	f := &fixture{srv: &server{URL: p1.URL}, store: st, event: evs[0], ws: ws}
	w := &ws[4]
	room := store.WorkshopRoom(w.ID)

	const clients, each = 20, 25
	var ackedBeforeKill sync.Map // op id → seq
	var killed atomic.Bool
	var totalAcks, resent atomic.Int64
	// What each client holds: the entries it was sent, in order, up to last.
	held := make([]heldEntries, clients)
	members := make([]member, clients)
	for i := range members {
		members[i] = f.MustMember(t, domain.RoleParticipant, w, "FI", "police")
	}

	var wg sync.WaitGroup
	// Errors past the channel's room are dropped, not waited on: a client
	// that keeps failing must not block the test's end.
	errs := make(chan error, 4*clients)
	report := func(err error) {
		select {
		case errs <- err:
		default:
		}
	}
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// The device's queue: ops stay in it until acked.
			pending := map[string]bool{}
			var order []string
			for k := 0; k < each; k++ {
				id := fmt.Sprintf("k%d-%d", i, k)
				pending[id] = true
				order = append(order, id)
			}
			sentBeforeKill := map[string]bool{}
			h := &held[i]
			deadline := time.Now().Add(90 * time.Second)
			for len(pending) > 0 && time.Now().Before(deadline) {
				c, err := members[i].dial(p1.URL)
				if err != nil {
					time.Sleep(100 * time.Millisecond) // server down: retry
					continue
				}
				c.ws.WriteJSON(map[string]any{"type": "join", "room": room, "since": h.last})
				for _, id := range order {
					if pending[id] {
						if !killed.Load() {
							sentBeforeKill[id] = true
						}
						c.ws.WriteJSON(op(room, id, "finding.create", 0, map[string]any{"title": "Kill test " + id}))
						time.Sleep(5 * time.Millisecond)
					}
				}
			read:
				for {
					var fr frame
					select {
					case f, ok := <-c.frames:
						if !ok {
							break read // the server went: reconnect
						}
						fr = f
					case <-time.After(10 * time.Second):
						break read // nothing heard: reconnect and resend, as a tablet does
					}
					h.take(fr)
					if fr.Type == "ack" && pending[fr.OpID] {
						delete(pending, fr.OpID)
						totalAcks.Add(1)
						if !killed.Load() {
							ackedBeforeKill.Store(fr.OpID, fr.Seq)
						} else if sentBeforeKill[fr.OpID] {
							resent.Add(1)
						}
					}
					if fr.Type == "error" {
						if fr.Code != "rate_limited" && fr.Code != "unavailable" {
							report(fmt.Errorf("client %d: error frame %+v", i, fr))
							delete(pending, fr.OpID) // set aside, as a tablet does
						}
						// Resent later, with every op after it (PROTOCOL.md).
						time.Sleep(200 * time.Millisecond)
						break read
					}
					if len(pending) == 0 {
						break
					}
				}
				c.ws.Close()
			}
			if len(pending) > 0 {
				report(fmt.Errorf("client %d: %d ops never acked", i, len(pending)))
			}
			if h.err != nil {
				report(fmt.Errorf("client %d: %v", i, h.err))
			}
		}(i)
	}

	for totalAcks.Load() < clients*each/3 {
		time.Sleep(5 * time.Millisecond)
	}
	killed.Store(true)
	if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p1.cmd.Wait()
	t.Logf("killed after %d acks", totalAcks.Load())
	p2 := mustRunProcess(t, bin, addr, dsn)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Every acked op is in the log at its acked seq, and every op is there once.
	es, err := st.EntriesAfter(context.Background(), room, 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	// (An op id is in the log once by its unique (room, op_id); that no
	// op was applied twice is the count of findings below.)
	seen := map[string]int64{}
	for _, e := range es {
		seen[e.OpID] = e.Seq
	}
	n := 0
	ackedBeforeKill.Range(func(k, v any) bool {
		n++
		if seen[k.(string)] != v.(int64) {
			t.Errorf("op %s acked at seq %d before the kill; log has it at %d", k, v, seen[k.(string)])
		}
		return true
	})
	var rows int
	st.DB().NewRaw("SELECT count(*) FROM findings WHERE title LIKE 'Kill test %'").Scan(context.Background(), &rows)
	if rows != clients*each {
		t.Fatalf("%d findings, want %d (nothing lost, nothing twice)", rows, clients*each)
	}
	t.Logf("%d ops acked before the kill, all present; %d sent before it and acked after; %d findings in all", n, resent.Load(), rows)
	if n == clients*each || resent.Load() == 0 {
		t.Fatalf("%d of %d ops acked before the kill, %d acked after it of those sent before: the kill tested no resend", n, clients*each, resent.Load())
	}
	// Each client, resuming once more, holds exactly the log.
	for i := range held {
		c, err := members[i].dial(p2.URL)
		if err != nil {
			t.Fatal(err)
		}
		c.send(t, map[string]any{"type": "join", "room": room, "since": held[i].last})
		for fr := c.next(t, func(f frame) bool { return f.Type != "ack" }); fr.Type != "joined"; fr = c.next(t, func(f frame) bool { return f.Type != "ack" }) {
			held[i].take(fr)
		}
		if held[i].err != nil {
			t.Fatalf("client %d: %v", i, held[i].err)
		}
		c.ws.Close()
		if len(held[i].ops) != len(es) {
			t.Fatalf("client %d holds %d entries, the log has %d", i, len(held[i].ops), len(es))
		}
		for k, e := range es {
			if held[i].ops[k] != e.OpID {
				t.Fatalf("client %d: entry %d is %s, the log has %s", i, e.Seq, held[i].ops[k], e.OpID)
			}
		}
	}
}

// heldEntries is what a client holds of a room's log: the op ids of its
// entries in order, up to seq last, as it resumes from last; err is the
// first frame that did not follow.
type heldEntries struct {
	last int64
	ops  []string
	err  error
}

// take adds an entry frame, which must follow the last one held.
func (h *heldEntries) take(fr frame) {
	switch {
	case h.err != nil:
	case fr.Type == "entry" && fr.Seq != h.last+1:
		h.err = fmt.Errorf("entry %d (%s) after %d: an entry skipped or repeated", fr.Seq, fr.OpID, h.last)
	case fr.Type == "entry":
		h.last, h.ops = fr.Seq, append(h.ops, fr.OpID)
	case fr.Type == "snapshot":
		h.err = fmt.Errorf("a snapshot at %d, after %d: the log is within the history limit", fr.Seq, h.last)
	}
}
