package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rapporteur/rapporteur/hub"
)

const room = "workshop:12"

func seqs(fs []srvFrame) []int64 {
	var out []int64
	for _, f := range fs {
		out = append(out, f.Seq)
	}
	return out
}

func span(from, to int64) []int64 {
	var out []int64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestJoinResumeSendsExactlyTheMissingEntries(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	for i := range 10 {
		th.b.Append(room, "finding.create", map[string]int{"n": i + 1})
	}
	for _, since := range []int64{4, 0, 10} {
		c := th.dial(t, "anna")
		got, joined := c.join(room, since)
		if want := span(since+1, 10); !slices.Equal(seqs(got), want) {
			t.Errorf("since %d: got seqs %v, want %v", since, seqs(got), want)
		}
		for _, f := range got {
			if f.Type != "entry" || f.Room != room || f.Kind != "finding.create" {
				t.Errorf("since %d: got frame %+v, want a finding.create entry of %s", since, f, room)
			}
		}
		if joined.Seq != 10 || joined.Room != room || joined.Me != "anna" || joined.MaxFrame != 64<<10 {
			t.Errorf("since %d: got joined %+v, want seq 10 for anna, frames up to 64 KiB", since, joined)
		}
	}
}

func TestJoinFarBehindGetsSnapshot(t *testing.T) {
	th := newTestHub(t, hub.Config{HistoryLimit: 5})
	for range 20 {
		th.b.Append(room, "finding.create", map[string]int{})
	}
	for _, tc := range []struct {
		since    int64
		snapshot bool
	}{{3, true}, {0, true}, {-1, true}, {25, true}, {15, false}, {16, false}} {
		c := th.dial(t, "anna")
		got, joined := c.join(room, tc.since)
		if tc.snapshot {
			if len(got) != 1 || got[0].Type != "snapshot" || got[0].Seq != 20 || string(got[0].State) != `{"entries":20}` {
				t.Errorf("since %d: got %+v, want one snapshot at seq 20", tc.since, got)
			}
		} else if want := span(tc.since+1, 20); !slices.Equal(seqs(got), want) {
			t.Errorf("since %d: got seqs %v, want %v", tc.since, seqs(got), want)
		}
		if joined.Seq != 20 {
			t.Errorf("since %d: joined seq %d, want 20", tc.since, joined.Seq)
		}
	}
}

// TestJoinFromBeforeAWithdrawalGetsSnapshot: an entry that withdrew what
// earlier ones carried (a deleted finding) is not resumed across: a join
// from before it gets a snapshot, which no longer holds what was
// withdrawn; a join from it or after gets entries.
func TestJoinFromBeforeAWithdrawalGetsSnapshot(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	for i := range 10 {
		kind := "finding.create"
		if i+1 == 6 {
			kind = "withdraw"
		}
		th.b.Append(room, kind, map[string]int{})
	}
	for _, tc := range []struct {
		since    int64
		snapshot bool
	}{{0, true}, {3, true}, {5, true}, {6, false}, {8, false}, {10, false}} {
		c := th.dial(t, "anna")
		got, joined := c.join(room, tc.since)
		if tc.snapshot {
			if len(got) != 1 || got[0].Type != "snapshot" || got[0].Seq != 10 {
				t.Errorf("since %d: got %+v, want one snapshot at seq 10", tc.since, got)
			}
		} else if want := span(tc.since+1, 10); !slices.Equal(seqs(got), want) {
			t.Errorf("since %d: got seqs %v, want %v", tc.since, seqs(got), want)
		}
		if joined.Seq != 10 {
			t.Errorf("since %d: joined seq %d, want 10", tc.since, joined.Seq)
		}
	}
}

// TestAWithdrawalDuringACatchUpEndsInASnapshot: a withdrawal committed
// after the join read the room's head, but before the catch-up read the
// log, is not resumed across either: the join gets a snapshot.
func TestAWithdrawalDuringACatchUpEndsInASnapshot(t *testing.T) {
	// 16 entries fill the catch-up's first page exactly: the withdrawal
	// lies just past it, and the snapshot follows the page (PROTOCOL.md:
	// replace what they gave).
	for _, before := range []int{5, 16} {
		t.Run(fmt.Sprint(before), func(t *testing.T) {
			th := newTestHub(t, hub.Config{})
			for range before {
				th.b.Append(room, "finding.create", map[string]int{})
			}
			withdraw := func() {
				// Committed while the catch-up reads, its notification
				// late (another process): the follower has not fanned it
				// out yet.
				th.b.Append(room, "withdraw", map[string]int{})
			}
			th.b.beforeAfter.Store(&withdraw)
			c := th.dial(t, "anna")
			got, joined := c.join(room, 0)
			want, entries := int64(before+1), 0
			if before == 16 {
				entries = 16
			}
			last := got[len(got)-1]
			if len(got) != entries+1 || last.Type != "snapshot" || last.Seq != want || joined.Seq != want {
				t.Fatalf("a join while a withdrawal commits: %d frames, the last %s at %d, then joined at %d; want %d entries, then a snapshot at %d", len(got), last.Type, last.Seq, joined.Seq, entries, want)
			}
		})
	}
}

// TestAJoinOutlastsEntriesPilingUpWhileTheLogIsSlow: while a join waits
// on the log (a slow database), the entries fanned out meanwhile pile up
// for it; past the send queue's size they are dropped and read from the
// log, and the client, which reads all it is sent, is not closed as too
// slow (4008).
func TestAJoinOutlastsEntriesPilingUpWhileTheLogIsSlow(t *testing.T) {
	th := newTestHub(t, hub.Config{SendQueueBytes: 8 << 10})
	pad := strings.Repeat("x", 200)
	th.b.Append(room, "finding.create", map[string]string{"title": pad})
	slow := func() {
		// 100 entries of about 300 bytes, three times the queue's size,
		// fanned out (the join made the room followed) while this join's
		// first read of the log waits.
		var last int64
		for range 100 {
			last = th.b.Append(room, "finding.create", map[string]string{"title": pad}).Seq
		}
		th.Notify(room, last)
		time.Sleep(300 * time.Millisecond)
	}
	th.b.beforeAfter.Store(&slow)
	c := th.dial(t, "bo")
	c.skipPresence = true
	got, joined := c.join(room, 0)
	if joined.Type != "joined" || joined.Seq != 101 || len(got) != 101 {
		t.Fatalf("joined %+v after %d frames, want joined at 101 after the 101 entries", joined, len(got))
	}
	for i, f := range got {
		if f.Type != "entry" || f.Seq != int64(i+1) {
			t.Fatalf("frame %d is %s at %d, want the entry at %d", i, f.Type, f.Seq, i+1)
		}
	}
}

// TestAJoinerSlowerThanTheRoomIsDropped: a client that reads slower than
// its room writes is closed with 4008 (reconnect and resume) within a
// bound, in its catch-up or once live, instead of reading the log behind
// the room for ever, its ops unread.
func TestAJoinerSlowerThanTheRoomIsDropped(t *testing.T) {
	th := newTestHubOn(t, hub.Config{SendQueueBytes: 16 << 10}, true)
	pad := strings.Repeat("x", 300)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			e := th.b.Append(room, "finding.create", map[string]string{"t": pad})
			th.Notify(room, e.Seq)
			time.Sleep(time.Millisecond)
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(200 * time.Millisecond)
	c := th.dialWith(t, "slow", smallBufferDialer())
	c.skipPresence = true
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room})
	start := time.Now()
	for time.Since(start) < 60*time.Second {
		_, err := c.read(15 * time.Second)
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == hub.CloseTooSlow {
			return
		}
		if err != nil {
			t.Fatalf("after %s: %v, want close 4008", time.Since(start), err)
		}
		time.Sleep(3 * time.Millisecond) // slower than the room's one entry a millisecond
	}
	t.Fatal("not dropped after 60 s, reading slower than the room")
}

// TestAWithdrawalFannedOutDuringACatchUpEndsInASnapshot: a deletion
// committed and announced while a join reads the log reaches the joining
// member among the entries pending for it: a snapshot replaces what it
// withdrew.
func TestAWithdrawalFannedOutDuringACatchUpEndsInASnapshot(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	for range 64 {
		th.b.Append(room, "finding.create", map[string]int{})
	}
	withdraw := func() {
		e := th.b.Append(room, "withdraw", map[string]int{})
		th.Notify(room, e.Seq)
		time.Sleep(50 * time.Millisecond) // fanned out before the page is read
	}
	th.b.beforeAfter.Store(&withdraw)
	c := th.dial(t, "anna")
	got, joined := c.join(room, 0)
	last := got[len(got)-1]
	if last.Type != "snapshot" || last.Seq != 65 || joined.Seq != 65 {
		t.Fatalf("%d frames, the last %s at %d, then joined at %d; want a snapshot at 65 last", len(got), last.Type, last.Seq, joined.Seq)
	}
}

// TestALogEndingBelowItsHeadGivesASnapshot: an empty page before the head
// the log gave (a restore) is no end of the catch-up, which would leave a
// gap: the join gets a snapshot.
func TestALogEndingBelowItsHeadGivesASnapshot(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	for range 10 {
		th.b.Append(room, "finding.create", map[string]int{})
	}
	th.b.emptyLog.Store(true)
	c := th.dial(t, "anna")
	got, joined := c.join(room, 0)
	if len(got) != 1 || got[0].Type != "snapshot" || joined.Seq != 10 {
		t.Fatalf("%+v, joined at %d; want one snapshot, joined at 10", got, joined.Seq)
	}
}

// After may return fewer entries than asked for: the catch-up reads on to
// the head, leaving no gap.
func TestACatchUpReadsOnAfterAShortPage(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	for range 100 {
		th.b.Append(room, "finding.create", map[string]int{})
	}
	th.b.pageCap.Store(10)
	c := th.dial(t, "anna")
	got, joined := c.join(room, 0)
	if len(got) != 100 || joined.Seq != 100 {
		t.Fatalf("joined at %d after %d frames, want 100 entries and joined at 100", joined.Seq, len(got))
	}
	for i, f := range got {
		if f.Type != "entry" || f.Seq != int64(i+1) {
			t.Fatalf("frame %d is %s at %d, want the entry at %d", i, f.Type, f.Seq, i+1)
		}
	}
}

func TestDuplicateOpIsAckedWithOriginalSeqAndAppliedOnce(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, 0)

	c.op(room, "op-1", "finding.create", `{"title":"Hotline"}`)
	got := []srvFrame{c.next(), c.next()} // ack and entry, in either order
	slices.SortFunc(got, func(a, b srvFrame) int { return strings.Compare(a.Type, b.Type) })
	if got[0].Type != "ack" || got[0].Seq != 1 || got[0].OpID != "op-1" || got[0].Room != room {
		t.Fatalf("got %+v, want ack of op-1 at seq 1", got[0])
	}
	if got[1].Type != "entry" || got[1].Seq != 1 || got[1].OpID != "op-1" || string(got[1].Payload) != `{"title":"Hotline"}` {
		t.Fatalf("got %+v, want the entry of op-1", got[1])
	}

	c.op(room, "op-1", "finding.create", `{"title":"Hotline"}`) // resent after a reconnect
	if ack := c.next(); ack.Type != "ack" || ack.Seq != 1 || ack.OpID != "op-1" {
		t.Fatalf("resent op: got %+v, want ack with the original seq 1", ack)
	}
	c.op(room, "op-2", "finding.create", `{}`)
	got = []srvFrame{c.next(), c.next()}
	for _, f := range got {
		if f.Seq != 2 || f.OpID != "op-2" {
			t.Fatalf("got %+v after the resend, want only op-2 at seq 2 (no duplicate entry)", f)
		}
	}
	if n := th.b.applied.Load(); n != 2 {
		t.Errorf("backend applied %d ops, want 2", n)
	}
}

func TestManyClientsConverge(t *testing.T) {
	const clients, opsEach = 80, 5
	const total = clients * opsEach
	th := newTestHub(t, hub.Config{})
	cs := make([]*client, clients)
	for i := range cs {
		cs[i] = th.dial(t, fmt.Sprintf("p%d", i))
		cs[i].skipPresence = true
		cs[i].join(room, 0)
	}
	logs := make([][]srvFrame, clients)
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range opsEach {
				c.op(room, fmt.Sprintf("p%d-op%d", i, j), "vote", fmt.Sprintf(`{"finding_id":"f%d"}`, j))
			}
			acks := 0
			for acks < opsEach || len(logs[i]) < total {
				f, err := c.read(10 * time.Second)
				if err != nil {
					t.Errorf("client %d: %v (acks %d, entries %d)", i, err, acks, len(logs[i]))
					return
				}
				switch f.Type {
				case "ack":
					acks++
				case "entry":
					logs[i] = append(logs[i], f)
				case "presence":
				default:
					t.Errorf("client %d: unexpected %+v", i, f)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	want, _ := th.b.After(context.Background(), room, 0, total+1)
	if len(want) != total {
		t.Fatalf("backend has %d entries, want %d", len(want), total)
	}
	for i, got := range logs {
		if len(got) != total {
			t.Fatalf("client %d got %d entries, want %d", i, len(got), total)
		}
		for k, f := range got {
			if f.Seq != want[k].Seq || f.OpID != want[k].OpID {
				t.Fatalf("client %d entry %d: got seq %d op %s, want seq %d op %s", i, k, f.Seq, f.OpID, want[k].Seq, want[k].OpID)
			}
		}
	}
}

// TestJoinWhileEntriesArrive checks that the switch from catch-up to live is
// gap-free and duplicate-free while the log grows.
func TestJoinWhileEntriesArrive(t *testing.T) {
	const total = 400
	th := newTestHub(t, hub.Config{HistoryLimit: 50})
	watcher := th.dial(t, "watcher") // keeps the room alive in this process
	watcher.join(room, 0)
	go func() {
		for i := range total {
			e := th.b.Append(room, "comment", map[string]int{"i": i})
			th.Notify(room, e.Seq)
			if i%4 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 8 * time.Millisecond)
			c := th.dial(t, fmt.Sprintf("j%d", i))
			head, _, _ := th.b.Head(context.Background(), room)
			since := rand.Int64N(head + 1)
			c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: since})
			next := since + 1
			for next <= total {
				f, err := c.read(10 * time.Second)
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				switch f.Type {
				case "snapshot":
					// Only as the catch-up (none came before it), and
					// not from before where it joined.
					if next != since+1 || f.Seq < since {
						t.Errorf("client %d (since %d): a snapshot at %d after entries up to %d", i, since, f.Seq, next-1)
						return
					}
					next = f.Seq + 1
				case "entry":
					if f.Seq != next {
						t.Errorf("client %d (since %d): got seq %d, want %d", i, since, f.Seq, next)
						return
					}
					next++
				}
			}
		}()
	}
	wg.Wait()
}

// burst commits n entries of 60 KB to room at once, as another process's
// transaction would, and returns the last one's seq.
func (th *testHub) burst(n int) int64 {
	var e hub.Entry
	for i := 0; i < n; i++ {
		e = th.b.Append(room, "finding.create", map[string]any{"i": i, "title": strings.Repeat("x", 60_000)})
	}
	th.Notify(room, e.Seq)
	return e.Seq
}

// A burst of big entries fanned out at once (a transaction of many big
// ops; or, as here, entries of another process read in one go) makes more
// bytes than a send queue holds. A member that reads as fast as it can is
// not too slow for it; one that stops reading is dropped at the next.
// (Found by a review: every member was closed with 4008, the fastest too.)
func TestABurstOverTheQueueDropsOnlyTheSlow(t *testing.T) {
	th := newTestHubOn(t, hub.Config{PollInterval: time.Hour, SendQueueBytes: 256 << 10}, true)
	fast, stalled := th.dial(t, "fast"), th.dial(t, "stalled")
	fast.join(room, 0)
	stalled.join(room, 0)
	read := func(to int64) {
		for {
			f, err := fast.read(5 * time.Second)
			if err != nil {
				t.Fatalf("the member reading as fast as it can: %v (Stats %+v)", err, th.Stats())
			}
			if f.Type == "entry" && f.Seq == to {
				return
			}
		}
	}
	read(th.burst(20)) // 1.2 MB at once, in a queue of 256 KiB
	if s := th.Stats(); s.DroppedSlow != 0 {
		t.Fatalf("after one burst: %+v, want no one dropped", s)
	}
	for range 3 { // past the 4 MiB of bursts a connection may hold unwritten
		read(th.burst(20))
	}
	if code := stalled.closeCode(5 * time.Second); code != hub.CloseTooSlow {
		t.Fatalf("the member that never read closed with %d, want %d", code, hub.CloseTooSlow)
	}
}

// A second burst over the queue, committed while a member still reads the
// first, joins it apart from the limit: the member, reading as fast as it
// can, is not dropped. (Found by a review.)
func TestBackToBackBurstsDropNoFastReader(t *testing.T) {
	th := newTestHubOn(t, hub.Config{PollInterval: time.Hour, SendQueueBytes: 256 << 10}, true)
	fast := th.dial(t, "fast")
	fast.join(room, 0)
	first := th.burst(20)
	// the fast reader starts reading the first burst at once
	for {
		f, err := fast.read(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type == "entry" {
			break
		}
	}
	last := th.burst(20) // the next transaction, committed while the first is being read
	for {
		f, err := fast.read(5 * time.Second)
		if err != nil {
			t.Fatalf("the member reading as fast as it can (read past %d of %d): %v (Stats %+v)", first, last, err, th.Stats())
		}
		if f.Type == "entry" && f.Seq == last {
			return
		}
	}
}

func TestSlowClientIsDroppedWithoutSlowingOthers(t *testing.T) {
	th := newTestHubOn(t, hub.Config{SendQueueBytes: 64 << 10, WriteWait: 3 * time.Second}, true)
	slow := th.dial(t, "slow")
	slow.join(room, 0)

	const fastClients = 3
	lat := make([][]time.Duration, fastClients)
	last := make([]int64, fastClients)
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range fastClients {
		c := th.dial(t, fmt.Sprintf("fast%d", i))
		c.join(room, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, err := c.read(10 * time.Second)
				if err != nil {
					select {
					case <-stop:
					default:
						t.Errorf("fast client %d: %v", i, err)
					}
					return
				}
				if f.Type != "entry" {
					continue
				}
				var p struct{ Sent int64 }
				json.Unmarshal(f.Payload, &p)
				mu.Lock()
				lat[i] = append(lat[i], time.Since(time.Unix(0, p.Sent)))
				last[i] = f.Seq
				mu.Unlock()
			}
		}()
	}

	pad := strings.Repeat("x", 1<<10)
	var seq int64
	droppedAt := int64(-1)
	for i := 0; i < 20000; i++ {
		e := th.b.Append(room, "finding.update", map[string]any{"sent": time.Now().UnixNano(), "pad": pad})
		seq = e.Seq
		th.Notify(room, seq)
		if droppedAt < 0 && th.Stats().DroppedSlow > 0 {
			droppedAt = seq
		}
		if droppedAt >= 0 && seq > droppedAt+200 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if droppedAt < 0 {
		t.Fatalf("slow client not dropped after %d entries", seq)
	}
	t.Logf("slow client dropped after %d entries of ~1 KiB", droppedAt)
	waitFor(t, "fast clients to catch up", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range last {
			if l != seq {
				return false
			}
		}
		return true
	})
	close(stop)
	if n := th.Stats().DroppedSlow; n != 1 {
		t.Errorf("dropped %d connections, want only the slow one", n)
	}
	for _, d := range lat {
		slices.Sort(d)
		p50, p99 := d[len(d)/2], d[len(d)*99/100]
		t.Logf("fan-out latency over %d entries: p50 %v, p99 %v", len(d), p50, p99)
		if p99 > 200*time.Millisecond {
			t.Errorf("fan-out p99 latency %v, want < 200ms", p99)
		}
	}
	if tc, ok := slow.ws.UnderlyingConn().(*net.TCPConn); ok {
		tc.SetReadBuffer(1 << 20) // read what is buffered quickly now
	}
	if code := slow.closeCode(10 * time.Second); code != hub.CloseTooSlow {
		t.Errorf("slow client closed with %d, want %d", code, hub.CloseTooSlow)
	}
	th.Shutdown(context.Background())
	wg.Wait()
}

func TestBadFramesGetErrorFramesAndConnectionStaysUsable(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	long := strings.Repeat("x", 101)
	for _, tc := range []struct {
		name, frame, code, opID string
	}{
		{"malformed JSON", `{"type":"op",`, hub.CodeBadFrame, ""},
		{"not an object", `[1,2]`, hub.CodeBadFrame, ""},
		{"no type", `{"room":"x"}`, hub.CodeBadFrame, ""},
		{"unknown type", `{"type":"dance"}`, hub.CodeUnknownType, ""},
		{"room not a string", `{"type":"join","room":5}`, hub.CodeBadFrame, ""},
		{"since not an integer", `{"type":"join","room":"r","since":"7"}`, hub.CodeBadFrame, ""},
		{"missing op_id", `{"type":"op","room":"` + room + `","kind":"vote"}`, hub.CodeBadFrame, ""},
		{"op_id too long", `{"type":"op","room":"` + room + `","op_id":"` + long + `","kind":"vote"}`, hub.CodeBadFrame, ""},
		{"missing kind", `{"type":"op","room":"` + room + `","op_id":"o1"}`, hub.CodeBadFrame, "o1"},
		{"body not an object", `{"type":"op","room":"` + room + `","op_id":"o2","kind":"vote","body":[1]}`, hub.CodeBadFrame, "o2"},
		{"op for a room not joined", `{"type":"op","room":"workshop:99","op_id":"o3","kind":"vote","body":{}}`, hub.CodeNotJoined, "o3"},
		{"backend forbids op", `{"type":"op","room":"` + room + `","op_id":"o4","kind":"forbidden.op","body":{}}`, hub.CodeForbidden, "o4"},
		{"backend fails", `{"type":"op","room":"` + room + `","op_id":"o5","kind":"boom","body":{}}`, hub.CodeInternal, "o5"},
		{"join forbidden", `{"type":"join","room":"secret:1"}`, hub.CodeForbidden, ""},
		{"leave not joined", `{"type":"leave","room":"workshop:99"}`, hub.CodeNotJoined, ""},
	} {
		c.sendRaw(tc.frame)
		f := c.next()
		if f.Type != "error" || f.Code != tc.code || f.OpID != tc.opID || f.Message == "" {
			t.Errorf("%s: got %+v, want error %q for op %q", tc.name, f, tc.code, tc.opID)
		}
		if strings.Contains(f.Message, "secret") {
			t.Errorf("%s: internal error leaks %q", tc.name, f.Message)
		}
	}
	c.sendRaw(`{"type":"ping","t":42}`)
	if f := c.next(); f.Type != "pong" || string(f.T) != "42" {
		t.Errorf("got %+v, want pong 42", f)
	}
	// The op the Backend failed holds back the later ones until it comes
	// again (TestFailedOpKeepsOpOrder): resend it first, as a client does.
	c.op(room, "o5", "vote", `{"finding_id":"f1"}`)
	c.op(room, "ok-1", "vote", `{"finding_id":"f1"}`)
	for f := c.next(); f.Type != "ack" || f.OpID != "ok-1"; f = c.next() {
		if f.Type != "entry" && f.Type != "ack" {
			t.Fatalf("got %+v, want acks or entries of o5 and ok-1", f)
		}
	}
}

// TestUndecodableFramesNameTheirOp: a frame that cannot be decoded (bad
// JSON, nesting deeper than the decoder goes, a binary frame) is answered
// with an error that names its op, room and type when it has them, so a
// client can tell which of its ops was refused; an op_id that is not UTF-8
// is not echoed.
func TestUndecodableFramesNameTheirOp(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	for _, tc := range []struct {
		name, frame   string
		binary        bool
		opID, replyTo string
	}{
		{"malformed body", `{"type":"op","room":"` + room + `","op_id":"m1","kind":"vote","body":{"x":}}`, false, "m1", "op"},
		{"op_id after the fault", `{"type":"op","room":"` + room + `","body":{"x" 1},"op_id":"m2"}`, false, "m2", "op"},
		{"too deep", `{"type":"op","room":"` + room + `","op_id":"d1","kind":"vote","body":{"x":` + deep + `}}`, false, "d1", "op"},
		{"binary", `{"type":"op","room":"` + room + `","op_id":"b1","kind":"vote","body":{}}`, true, "b1", "op"},
		{"binary, op_id not UTF-8", "{\"type\":\"op\",\"room\":\"" + room + "\",\"op_id\":\"b\xff2\"}", true, "", "op"},
	} {
		mt := websocket.TextMessage
		if tc.binary {
			mt = websocket.BinaryMessage
		}
		c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := c.ws.WriteMessage(mt, []byte(tc.frame)); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		f := c.nextOf("error")
		if f.Code != hub.CodeBadFrame || f.OpID != tc.opID || f.Room != room || f.ReplyTo != tc.replyTo {
			t.Errorf("%s: got %+v, want bad_frame for op %q in %s, reply_to %q", tc.name, f, tc.opID, room, tc.replyTo)
		}
	}
	th.b.mustLog(t, room)
}

func TestRepeatedBadFramesClose4002(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "mallory")
	for range 40 {
		c.sendRaw(`nope`)
	}
	if code := c.closeCode(5 * time.Second); code != hub.CloseProtocolAbuse {
		t.Errorf("closed with %d, want %d", code, hub.CloseProtocolAbuse)
	}
}

// TestOversizedFrameIsRefusedAndTheConnectionLives: a frame over the limit
// is answered with a too_large error frame naming its op (found after the
// body here), nothing is applied, and the connection goes on; only a frame
// over 16 times the limit closes it with 1009.
func TestOversizedFrameIsRefusedAndTheConnectionLives(t *testing.T) {
	th := newTestHub(t, hub.Config{MaxFrameBytes: 1024})
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.sendRaw(`{"type":"op","room":"` + room + `","kind":"finding.create","body":{"title":"` + strings.Repeat("x", 2000) + `"},"op_id":"big"}`)
	f := c.answer("big")
	if f.Type != "error" || f.Code != hub.CodeTooLarge || f.ReplyTo != "op" || f.Room != room || !strings.Contains(f.Message, "1024") {
		t.Fatalf("an op over the frame limit: %+v, want error too_large naming it", f)
	}
	c.op(room, "small", "finding.create", `{"title":"Fits"}`)
	if f := c.answer("small"); f.Type != "ack" {
		t.Fatalf("an op after the big one: %+v, want ack", f)
	}
	th.b.mustLog(t, room, "small")
	c.sendRaw(`{"type":"op","room":"` + room + `","op_id":"huge","kind":"finding.create","body":{"title":"` + strings.Repeat("x", 16*1024) + `"}}`)
	if code := c.closeCode(5 * time.Second); code != hub.CloseTooBig {
		t.Errorf("a frame over 16 times the limit: closed with %d, want %d", code, hub.CloseTooBig)
	}
	th.b.mustLog(t, room, "small")
}

// TestABigEntrysChargeIsNotForgivenByAFullBucket: the charge of a big
// entry is taken after the bucket refills, not before (where the refill's
// cap at the burst size would forgive it).
func TestABigEntrysChargeIsNotForgivenByAFullBucket(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 10, OpsBurst: 20})
	c := th.dial(t, "anna")
	c.join(room, 0) // 19 tokens left
	c.op(room, "big", "finding.create", `{"title":"`+strings.Repeat("x", 40*1024)+`"}`)
	if f := c.answer("big"); f.Type != "ack" {
		t.Fatalf("the big op: %+v, want ack", f)
	}
	time.Sleep(time.Second) // full again, before its charge of 10
	acks := 0
	for i := range 16 {
		c.op(room, fmt.Sprintf("small%d", i), "finding.create", `{"title":"Small"}`)
	}
	for i := range 16 {
		if f := c.answer(fmt.Sprintf("small%d", i)); f.Type == "ack" {
			acks++
		}
	}
	// 20 tokens less the charge of 10, and what a moment refills.
	if acks > 12 {
		t.Errorf("%d of 16 small ops acked after the big one, want at most 12: its charge was forgiven", acks)
	}
}

// TestAHugeFrameInABusyRoomIsClosedWith1009: the write pump, which goes on
// writing the room's entries after the WebSocket layer sent its 1009, does
// not close the socket while the read pump still drains the client's
// frame: that would reset the connection, and the client would see its
// write fail and no close code.
func TestAHugeFrameInABusyRoomIsClosedWith1009(t *testing.T) {
	th := newTestHub(t, hub.Config{MaxFrameBytes: 1024})
	stop := make(chan struct{})
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			e := th.b.Append(room, "finding.create", map[string]int{})
			th.Notify(room, e.Seq)
		}
	}()
	defer func() { close(stop); <-busy }()
	huge := `{"type":"op","room":"` + room + `","op_id":"huge","kind":"finding.create","body":{"title":"` + strings.Repeat("x", 4<<20) + `"}}`
	for i := range 5 {
		c := th.dial(t, fmt.Sprintf("p%d", i))
		c.skipPresence = true
		c.join(room, 0)
		c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(huge)); err != nil {
			t.Fatalf("run %d: the client's write of its huge frame: %v, want it read (and dropped) by the server", i, err)
		}
		if code := c.closeCode(5 * time.Second); code != hub.CloseTooBig {
			t.Fatalf("run %d: closed with %d, want %d", i, code, hub.CloseTooBig)
		}
	}
}

// TestBigEntriesCountAgainstTheRate: every member of a room is sent each
// entry, so an op whose entry is big counts as an op more per 4 KiB of
// it. A connection with 19 ops left in its burst gets two ops of 40 KiB
// entries applied (11 ops' worth each) and is then refused, where all
// five would have gone out before.
func TestBigEntriesCountAgainstTheRate(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 0.1, OpsBurst: 20}) // the join spends one
	c := th.dial(t, "anna")
	c.join(room, 0)
	big := `{"title":"` + strings.Repeat("x", 40*1024) + `"}`
	acks, limited := 0, 0
	for i := range 5 {
		// One at a time: the entry's cost counts once the op is applied.
		id := fmt.Sprintf("big%d", i)
		c.op(room, id, "finding.create", big)
		switch f := c.answer(id); {
		case f.Type == "ack":
			acks++
		case f.Type == "error" && f.Code == hub.CodeRateLimited:
			limited++
		default:
			t.Fatalf("unexpected %+v", f)
		}
	}
	if acks != 2 || limited != 3 {
		t.Errorf("got %d acks and %d rate_limited, want 2 and 3", acks, limited)
	}
	// Small ops cost one each, as before: once the bucket has refilled.
	th2 := newTestHub(t, hub.Config{OpsPerSecond: 0.1, OpsBurst: 20})
	d := th2.dial(t, "bo")
	d.join(room, 0)
	for i := range 5 {
		id := fmt.Sprintf("small%d", i)
		d.op(room, id, "finding.create", `{"title":"Small"}`)
		if f := d.answer(id); f.Type != "ack" {
			t.Fatalf("small op %d: %+v, want ack", i, f)
		}
	}
}

// TestConnectionsPerIdentityAreLimited: the limits of a connection would
// count as many times as one person opened connections. Past the limit
// the upgrade is refused with 429; a connection closed makes room; other
// people are not counted against it.
func TestConnectionsPerIdentityAreLimited(t *testing.T) {
	th := newTestHub(t, hub.Config{ConnsPerID: 2})
	url := strings.Replace(th.url, "http", "ws", 1) + "/ws?id="
	first := th.dial(t, "anna")
	th.dial(t, "anna")
	if _, resp, err := websocket.DefaultDialer.Dial(url+"anna", nil); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third connection of one person: %v (%v), want refused with 429", err, resp)
	}
	th.dial(t, "bo")
	first.ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ws, _, err := websocket.DefaultDialer.Dial(url+"anna", nil)
		if err == nil {
			ws.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one of the two closed, a new connection is still refused: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCatchUpOfBigEntriesReadsLittleAtATime: a join's catch-up holds
// each read of the log while the client reads it. Behind 300 entries of
// 60 KB (findings with texts near the frame limit), it reads about 1 MiB
// at a time, its first read too, not 256 entries (15 MB) or 64 (4 MB) per
// joining connection, and the client still gets every entry in order.
func TestCatchUpOfBigEntriesReadsLittleAtATime(t *testing.T) {
	th := newTestHub(t, hub.Config{PollInterval: time.Hour})
	long := strings.Repeat("x", 60<<10)
	for i := range 300 {
		th.b.Append(room, "finding.create", map[string]any{"i": i, "text": long})
	}
	c := th.dial(t, "anna")
	catchUp, joined := c.join(room, 0)
	if len(catchUp) != 300 || joined.Seq != 300 {
		t.Fatalf("caught up %d entries, joined at %d; want 300", len(catchUp), joined.Seq)
	}
	for i, f := range catchUp {
		if f.Type != "entry" || f.Seq != int64(i+1) {
			t.Fatalf("catch-up frame %d: %s %d, want entry %d", i, f.Type, f.Seq, i+1)
		}
	}
	if n := th.b.mostRead.Load(); n > 1<<20+64<<10 {
		t.Errorf("one read of the log held %d KiB, want at most 1 MiB and an entry", n>>10)
	}
}

func TestRateLimit(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 1, OpsBurst: 4}) // the join spends one
	c := th.dial(t, "anna")
	c.join(room, 0)
	for i := range 6 {
		c.op(room, fmt.Sprintf("op%d", i), "vote", `{}`)
	}
	acks, limited := 0, 0
	for acks+limited < 6 {
		f := c.next()
		switch {
		case f.Type == "ack":
			acks++
		case f.Type == "error" && f.Code == hub.CodeRateLimited:
			limited++
			var d struct {
				RetryAfterMS int64 `json:"retry_after_ms"`
			}
			if err := json.Unmarshal(f.Detail, &d); err != nil || d.RetryAfterMS <= 0 {
				t.Errorf("rate_limited detail %s, want retry_after_ms > 0", f.Detail)
			}
		case f.Type == "entry":
		default:
			t.Fatalf("unexpected %+v", f)
		}
	}
	if acks != 3 || limited != 3 {
		t.Errorf("got %d acks and %d rate_limited, want 3 and 3", acks, limited)
	}
}

func TestNotifyFromAnotherProcessReachesClients(t *testing.T) {
	th := newTestHub(t, hub.Config{PollInterval: time.Hour})
	a, b := th.dial(t, "anna"), th.dial(t, "bo")
	a.join(room, 0)
	b.join(room, 0)
	for i := range 3 {
		th.b.Append(room, "comment", map[string]int{"i": i})
	}
	th.Notify(room, 3)
	for _, c := range []*client{a, b} {
		var got []int64
		for len(got) < 3 {
			got = append(got, c.nextOf("entry").Seq)
		}
		if !slices.Equal(got, []int64{1, 2, 3}) {
			t.Errorf("got seqs %v, want [1 2 3]", got)
		}
	}
	// A room without members here is ignored: no room is made for it,
	// and nothing is sent.
	before := th.Stats()
	th.Notify("workshop:nobody", 5)
	if after := th.Stats(); after.Rooms != before.Rooms || after.Broadcast != before.Broadcast {
		t.Errorf("a notify of a room without members here: %+v, then %+v; want nothing changed", before, after)
	}
}

func TestSafetyPollFindsEntriesWithoutNotify(t *testing.T) {
	th := newTestHub(t, hub.Config{PollInterval: 50 * time.Millisecond})
	c := th.dial(t, "anna")
	c.join(room, 0)
	th.b.Append(room, "comment", map[string]int{})
	if f := c.nextOf("entry"); f.Seq != 1 {
		t.Errorf("got %+v, want entry 1", f)
	}
}

func TestShutdownCloses1001(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	a, b := th.dial(t, "anna"), th.dial(t, "bo")
	a.join(room, 0)
	b.join("workshop:13", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- th.Shutdown(ctx) }()
	for _, c := range []*client{a, b} {
		if code := c.closeCode(5 * time.Second); code != hub.CloseGoingAway {
			t.Errorf("closed with %d, want %d", code, hub.CloseGoingAway)
		}
	}
	if err := <-errc; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if s := th.Stats(); s.Connections != 0 || s.Rooms != 0 {
		t.Errorf("after Shutdown: %+v, want no connections or rooms", s)
	}
}

func TestReauthorizeCloses4003(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	a, b := th.dial(t, "anna"), th.dial(t, "bo")
	a.join(room, 0)
	b.join(room, 0)
	if n := th.Reauthorize("anna"); n != 1 {
		t.Errorf("Reauthorize closed %d connections, want 1", n)
	}
	if code := a.closeCode(5 * time.Second); code != hub.CloseAccessChanged {
		t.Errorf("closed with %d, want %d", code, hub.CloseAccessChanged)
	}
	// Bo is untouched.
	b.op(room, "still-here", "note", `{}`)
	if f := b.nextOf("entry"); f.OpID != "still-here" {
		t.Errorf("bo got %+v, want the entry", f)
	}
}

// TestSessionEndCloses4001: the connections of the session that ended
// close with 4001; the same person's connection of another session (a
// second device) stays open.
func TestSessionEndCloses4001(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	a, b := th.dialSession(t, "anna", "laptop"), th.dial(t, "bo")
	tablet := th.dialSession(t, "anna", "tablet")
	a.join(room, 0)
	tablet.join(room, 0)
	if n := th.EndSession("laptop"); n != 1 {
		t.Errorf("EndSession closed %d connections, want 1", n)
	}
	if code := a.closeCode(5 * time.Second); code != hub.CloseUnauthenticated {
		t.Errorf("closed with %d, want %d", code, hub.CloseUnauthenticated)
	}
	tablet.op(room, "from-the-tablet", "note", `{}`)
	if f := tablet.nextOf("entry"); f.OpID != "from-the-tablet" {
		t.Errorf("anna's tablet got %+v, want its entry: its session did not end", f)
	}
	if n := th.EndSession(""); n != 0 {
		t.Errorf("EndSession of no session closed %d connections", n)
	}
	b.join(room, 0)
	b.op(room, "x", "logout", `{}`) // the backend says the session is gone
	if f := b.nextOf("error"); f.Code != hub.CodeUnauthenticated {
		t.Errorf("got %+v, want unauthenticated", f)
	}
	if code := b.closeCode(5 * time.Second); code != hub.CloseUnauthenticated {
		t.Errorf("closed with %d, want %d", code, hub.CloseUnauthenticated)
	}
}

func TestPresence(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	a := th.dial(t, "anna")
	if _, j := a.join(room, 0); len(j.Presence) != 1 || j.Presence[0].ID != "anna" {
		t.Fatalf("joined presence %+v, want only anna", j.Presence)
	}
	b := th.dial(t, "bo")
	_, j := b.join(room, 0)
	both := []personFrame{{"anna", "Name anna", ""}, {"bo", "Name bo", ""}}
	if !slices.Equal(j.Presence, both) {
		t.Fatalf("joined presence %+v, want %+v", j.Presence, both)
	}
	a.presenceUntil(both)
	b.send(hub.Frame{Type: hub.TypePresence, Room: room, Editing: "finding-7"})
	editing := []personFrame{{"anna", "Name anna", ""}, {"bo", "Name bo", "finding-7"}}
	a.presenceUntil(editing)
	b.presenceUntil(editing)
	b.send(hub.Frame{Type: hub.TypeLeave, Room: room})
	if f := b.next(); f.Type != "left" || f.Room != room {
		t.Fatalf("got %+v, want left", f)
	}
	a.presenceUntil([]personFrame{{"anna", "Name anna", ""}})
}

// TestPresenceOfOnePersonsTabsIsTheLastChanged: of one person's tabs, the
// one that edits something and changed last says what they edit. A
// tablet whose Wi-Fi dropped silently stays a member until its pong
// deadline; what it edited then must not be shown over what its
// reconnected tab edits now. A tab that edits nothing (a second one just
// opened) hides nothing.
func TestPresenceOfOnePersonsTabsIsTheLastChanged(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	bo := th.dial(t, "bo")
	bo.join(room, 0)
	dead := th.dial(t, "anna") // stands for the tab whose link dropped
	dead.join(room, 0)
	dead.send(hub.Frame{Type: hub.TypePresence, Room: room, Editing: "f-5"})
	bo.presenceUntil([]personFrame{{"anna", "Name anna", "f-5"}, {"bo", "Name bo", ""}})
	again := th.dial(t, "anna") // the same tablet joined again, or a second tab
	again.join(room, 0)
	// The join's presence (its own, then bo's) still says f-5.
	bo.presenceUntil([]personFrame{{"anna", "Name anna", "f-5"}, {"bo", "Name bo", ""}})
	again.send(hub.Frame{Type: hub.TypePresence, Room: room, Editing: "f-7"})
	bo.presenceUntil([]personFrame{{"anna", "Name anna", "f-7"}, {"bo", "Name bo", ""}})
	dead.send(hub.Frame{Type: hub.TypePresence, Room: room, Editing: "f-1"})
	bo.presenceUntil([]personFrame{{"anna", "Name anna", "f-1"}, {"bo", "Name bo", ""}})
	dead.send(hub.Frame{Type: hub.TypePresence, Room: room, Editing: ""})
	bo.presenceUntil([]personFrame{{"anna", "Name anna", "f-7"}, {"bo", "Name bo", ""}})
}

// TestPresenceSortsNamesIgnoringCase: a name in lower case is not listed
// after every capital.
func TestPresenceSortsNamesIgnoringCase(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	a := th.dial(t, "anna")
	a.join(room, 0)
	b := th.dial(t, "Bo")
	b.join(room, 0)
	a.presenceUntil([]personFrame{{"anna", "Name anna", ""}, {"Bo", "Name Bo", ""}})
}

// TestPresenceWithoutNames: someone the server says sees no names in a
// room (Config.SeesNames) is told how many are there, never who or what
// they edit; the others see everyone, them included.
func TestPresenceWithoutNames(t *testing.T) {
	th := newTestHub(t, hub.Config{SeesNames: func(id hub.Identity, r string) bool { return id.ID != "author" || r != room }})
	o := th.dial(t, "author")
	// In another room the same person sees names.
	if _, j := o.join("workshop:13", 0); len(j.Presence) != 1 || j.Presence[0].ID != "author" {
		t.Errorf("joined in another room: %+v, want the person listed", j.Presence)
	}
	a := th.dial(t, "anna")
	a.join(room, 0)
	_, j := o.join(room, 0)
	if len(j.Presence) != 0 || j.Count != 2 {
		t.Fatalf("joined of one who sees no names: %+v, %d; want no one listed, 2 counted", j.Presence, j.Count)
	}
	a.presenceUntil([]personFrame{{"anna", "Name anna", ""}, {"author", "Name author", ""}})
	a.send(hub.Frame{Type: hub.TypePresence, Room: room, Editing: "finding-7"})
	a.presenceUntil([]personFrame{{"anna", "Name anna", "finding-7"}, {"author", "Name author", ""}})
	seen := 0
	for {
		f, err := o.read(500 * time.Millisecond)
		if err != nil {
			break // quiet: all sent
		}
		if f.Type != "presence" || f.Room != room {
			continue
		}
		seen++
		if len(f.People) != 0 || f.Count != 2 {
			t.Fatalf("presence to one who sees no names: %+v, %d; want no one listed, 2 counted", f.People, f.Count)
		}
	}
	if seen == 0 {
		t.Error("no presence frame reached one who sees no names")
	}
}

// TestPresenceWhenTheServersAnswerPanics: a SeesNames or CountOnly that
// panics answers the more private way (no names), and the join goes on.
func TestPresenceWhenTheServersAnswerPanics(t *testing.T) {
	th := newTestHub(t, hub.Config{
		SeesNames: func(id hub.Identity, _ string) bool {
			if id.ID == "author" {
				panic("a bug in SeesNames")
			}
			return true
		},
		CountOnly: func(r string) bool {
			if r == "workshop:13" {
				panic("a bug in CountOnly")
			}
			return false
		},
	})
	a := th.dial(t, "anna")
	a.join(room, 0)
	o := th.dial(t, "author")
	if _, j := o.join(room, 0); len(j.Presence) != 0 || j.Count != 2 {
		t.Errorf("joined when SeesNames panics: %+v, %d; want no one listed, 2 counted", j.Presence, j.Count)
	}
	if _, j := a.join("workshop:13", 0); len(j.Presence) != 0 || j.Count != 1 {
		t.Errorf("joined when CountOnly panics: %+v, %d; want no one listed, 1 counted", j.Presence, j.Count)
	}
}

// presenceUntil reads presence frames (presence is throttled, so changes may
// come together) until one lists want.
func (c *client) presenceUntil(want []personFrame) {
	c.tb.Helper()
	for {
		p := c.nextOf("presence")
		if p.Room != room {
			c.tb.Fatalf("presence for room %q, want %q", p.Room, room)
		}
		if slices.Equal(p.People, want) {
			return
		}
	}
}

func TestTooManyRooms(t *testing.T) {
	th := newTestHub(t, hub.Config{MaxRoomsPerConn: 2})
	c := th.dial(t, "anna")
	c.join("a", 0)
	c.join("b", 0)
	c.join("b", 0) // rejoining a joined room resynchronises it, no new slot
	c.send(hub.Frame{Type: hub.TypeJoin, Room: "c"})
	if f := c.next(); f.Type != "error" || f.Code != hub.CodeTooManyRooms || f.Room != "c" {
		t.Errorf("got %+v, want too_many_rooms", f)
	}
}

func TestPingKeepsIdleConnectionOpen(t *testing.T) {
	th := newTestHub(t, hub.Config{PingInterval: 30 * time.Millisecond, PongWait: 100 * time.Millisecond})
	c := th.dial(t, "anna")
	c.join(room, 0)
	// The client only reads; gorilla/websocket answers the server's pings.
	c.ws.SetReadDeadline(time.Time{})
	entries := make(chan int64, 1)
	go func() {
		for {
			_, msg, err := c.ws.ReadMessage()
			if err != nil {
				close(entries)
				return
			}
			for _, b := range bytes.Split(msg, []byte("\n")) {
				var f srvFrame
				if json.Unmarshal(b, &f) == nil && f.Type == "entry" {
					entries <- f.Seq
				}
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // five times PongWait
	e := th.b.Append(room, "comment", map[string]int{})
	th.Notify(room, e.Seq)
	select {
	case seq, ok := <-entries:
		if !ok || seq != 1 {
			t.Errorf("after idling: got seq %d (open %v), want entry 1 on a live connection", seq, ok)
		}
	case <-time.After(5 * time.Second):
		t.Error("no entry after idling")
	}
}

// TestAnOpsEntryReachesTheRoomRejoinedMeanwhile: the only member of a
// room joins it again while its op is being applied, so the room the op
// was read in is closed and a new one made. The op's entry still reaches
// the member at once, not at the next poll of the log.
func TestAnOpsEntryReachesTheRoomRejoinedMeanwhile(t *testing.T) {
	th := newTestHub(t, hub.Config{PollInterval: time.Hour})
	th.b.started = make(chan string, 1)
	th.b.hold = make(chan struct{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.op(room, "held-1", "held", `{}`)
	<-th.b.started
	c.join(room, 0)
	close(th.b.hold)
	var got []string
	for len(got) < 2 {
		f, err := c.read(time.Second)
		if err != nil {
			t.Fatalf("after %v: %v (the entry did not come)", got, err)
		}
		if f.Type == "ack" || f.Type == "entry" {
			got = append(got, fmt.Sprintf("%s %d", f.Type, f.Seq))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"ack 1", "entry 1"}) {
		t.Fatalf("got %v, want the ack and the entry of seq 1", got)
	}
}

// TestOpsArePipelinedOnceQueuedAndKeepTheirOrderAcrossRooms: while an op
// the backend has queued is being applied, the connection's next op for
// the same room goes to the backend too; an op for another room waits
// until the ops in flight are done.
func TestOpsArePipelinedOnceQueuedAndKeepTheirOrderAcrossRooms(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	th.b.started = make(chan string, 16)
	th.b.hold = make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(th.b.hold)
		}
	}()
	c := th.dial(t, "anna")
	other := "workshop:other"
	c.join(room, 0)
	c.join(other, 0)

	startedNext := func(within time.Duration) string {
		t.Helper()
		select {
		case id := <-th.b.started:
			return id
		case <-time.After(within):
			return ""
		}
	}
	c.op(room, "held-1", "held", `{}`)
	c.op(room, "same-room-2", "finding.create", `{}`)
	c.op(other, "other-room-3", "finding.create", `{}`)
	if id := startedNext(5 * time.Second); id != "held-1" {
		t.Fatalf("first op started: %q", id)
	}
	if id := startedNext(5 * time.Second); id != "same-room-2" {
		t.Fatalf("while held-1 is in flight, started %q; want same-room-2 pipelined", id)
	}
	for {
		if f := c.next(); f.Type == "ack" {
			if f.OpID != "same-room-2" {
				t.Fatalf("ack %+v, want same-room-2's first", f)
			}
			break
		}
	}
	if id := startedNext(200 * time.Millisecond); id != "" {
		t.Fatalf("%s started while held-1 of another room was in flight", id)
	}
	released = true
	close(th.b.hold)
	if id := startedNext(5 * time.Second); id != "other-room-3" {
		t.Fatalf("after held-1 was released, started %q; want other-room-3", id)
	}
	acks := map[string]bool{}
	for len(acks) < 2 {
		if f := c.next(); f.Type == "ack" {
			acks[f.OpID] = true
		}
	}
	if !acks["held-1"] || !acks["other-room-3"] {
		t.Errorf("acks %v, want held-1 and other-room-3", acks)
	}
}

// TestRateLimitKeepsOpOrder: after an op is refused for the rate, a later
// op is refused too, even once the bucket has refilled, until the refused
// op comes again; so the log holds them in the order they were sent.
func TestRateLimitKeepsOpOrder(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 5, OpsBurst: 2}) // a token every 200 ms; the join spends one
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.op(room, "vote", "vote", `{}`)
	if f := c.answer("vote"); f.Type != "ack" {
		t.Fatalf("first op: %+v", f)
	}
	c.op(room, "vote-again", "vote", `{}`)
	if f := c.answer("vote-again"); f.Code != hub.CodeRateLimited || strings.Contains(string(f.Detail), "held_back") {
		t.Fatalf("second op at once: %+v, want rate_limited (not held back)", f)
	}
	time.Sleep(300 * time.Millisecond) // the bucket has a token again
	c.op(room, "unvote", "unvote", `{}`)
	if f := c.answer("unvote"); f.Code != hub.CodeRateLimited || !strings.Contains(string(f.Detail), `"held_back":true`) {
		t.Fatalf("a later op before the refused one came again: %+v, want rate_limited, held back", f)
	}
	for _, id := range []string{"vote-again", "unvote"} { // resent in order
		time.Sleep(250 * time.Millisecond)
		c.op(room, id, "vote", `{}`)
		if f := c.answer(id); f.Type != "ack" {
			t.Fatalf("resent %s: %+v, want ack", id, f)
		}
	}
	th.b.mustLog(t, room, "vote", "vote-again", "unvote")
}

// TestFailedOpKeepsOpOrder: an op that fails in the Backend before its
// place in the room's order is fixed holds back the ops sent after it
// until it comes again, as a rate-limited one does.
func TestFailedOpKeepsOpOrder(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.op(room, "first", "boom", `{}`)
	if f := c.answer("first"); f.Code != hub.CodeInternal {
		t.Fatalf("failing op: %+v, want internal", f)
	}
	c.op(room, "second", "vote", `{}`)
	if f := c.answer("second"); f.Code != hub.CodeUnavailable {
		t.Fatalf("an op sent after it: %+v, want unavailable until it comes again", f)
	}
	for _, id := range []string{"first", "second"} { // resent in order; the Backend takes the first now
		c.op(room, id, "vote", `{}`)
		if f := c.answer(id); f.Type != "ack" {
			t.Fatalf("resent %s: %+v, want ack", id, f)
		}
	}
	th.b.mustLog(t, room, "first", "second")
}

// TestFailedOpWaitsForTheOpsBeforeIt: an op fails at once while an op
// sent before it is still being applied; its resend waits for that one,
// and when that one fails too, the resend is held back for it.
func TestFailedOpWaitsForTheOpsBeforeIt(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	th.b.hold = make(chan struct{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.op(room, "before", "held.boom", `{}`)
	c.op(room, "failed", "boom", `{}`)
	if f := c.answer("failed"); f.Code != hub.CodeInternal {
		t.Fatalf("failing op: %+v, want internal", f)
	}
	c.op(room, "failed", "vote", `{}`) // resent while "before" is still applied
	time.Sleep(50 * time.Millisecond)
	close(th.b.hold)
	if f := c.answer("before"); f.Code != hub.CodeInternal {
		t.Fatalf("op sent before: %+v, want internal", f)
	}
	if f := c.answer("failed"); f.Code != hub.CodeUnavailable || !strings.Contains(string(f.Detail), "held_back") {
		t.Fatalf("resent op, after the op before it failed: %+v, want unavailable, held back", f)
	}
	for _, id := range []string{"before", "failed"} { // resent in order
		c.op(room, id, "vote", `{}`)
		if f := c.answer(id); f.Type != "ack" {
			t.Fatalf("resent %s: %+v, want ack", id, f)
		}
	}
	th.b.mustLog(t, room, "before", "failed")
}

// TestCatchUpLeavesRoomForOtherRooms: a client live in one busy room
// joins another with a long history, and reads as fast as a tablet on
// Wi-Fi. The catch-up fills the send queue only half, so the busy room's
// entries, queued without waiting, still fit; the client is not dropped
// as too slow (it was, as the catch-up kept the queue full).
func TestCatchUpLeavesRoomForOtherRooms(t *testing.T) {
	th := newTestHubOn(t, hub.Config{SendQueueBytes: 64 << 10}, true)
	pad := strings.Repeat("x", 2000)
	for range 300 {
		th.b.Append("workshop:2", "finding.create", map[string]string{"pad": pad})
	}
	c := th.dial(t, "anna")
	c.join(room, 0)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // another process keeps writing in the room joined
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				th.Notify(room, th.b.Append(room, "comment", map[string]string{"pad": pad[:1000]}).Seq)
			}
		}
	}()
	defer func() { close(stop); <-stopped }()
	time.Sleep(50 * time.Millisecond)
	c.send(hub.Frame{Type: hub.TypeJoin, Room: "workshop:2"})
	c.readSlowly(512<<10, `"type":"joined","room":"workshop:2"`)
	c.ws.Close()
}

// TestSlowCatchUpOutlastsTheBackendTimeout: a catch-up that takes longer
// than one Backend call may, as the client reads slowly, still ends in
// "joined" (each call has its own timeout; the join as a whole used to
// have one, and failed as unavailable after megabytes sent).
func TestSlowCatchUpOutlastsTheBackendTimeout(t *testing.T) {
	th := newTestHubOn(t, hub.Config{BackendTimeout: 300 * time.Millisecond, SendQueueBytes: 64 << 10}, true)
	pad := strings.Repeat("x", 2000)
	for range 300 {
		th.b.Append(room, "finding.create", map[string]string{"pad": pad})
	}
	c := th.dial(t, "anna")
	start := time.Now()
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room})
	c.readSlowly(256<<10, `"type":"joined"`)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("the catch-up took only %v: not longer than the Backend timeout", d)
	}
	c.ws.Close()
}

// TestBigSnapshotReachesASlowLink: a snapshot that takes longer to write
// than WriteWait on a slow link still arrives (the deadline grows with
// the message; under a fixed one the write failed, and the client got
// the same snapshot again on every reconnect).
func TestBigSnapshotReachesASlowLink(t *testing.T) {
	th := newTestHubOn(t, hub.Config{WriteWait: 300 * time.Millisecond}, true)
	th.b.snapshotPad = 400 << 10
	c := th.dialWith(t, "anna", bufferDialer(64<<10))
	start := time.Now()
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: -1})
	c.readSlowly(128<<10, `"type":"joined"`)
	if d := time.Since(start); d < time.Second {
		t.Fatalf("the snapshot took only %v: not longer than WriteWait", d)
	}
	c.ws.Close()
}

// TestSilentClientDroppedAfterPongWait: a client that stops reading
// answers no ping; it is dropped about PongWait after it was last heard
// from, even while its room keeps sending it small frames that its socket
// still takes without blocking (they are no sign that it reads).
func TestSilentClientDroppedAfterPongWait(t *testing.T) {
	// A write counts as hearing from the client only when it blocked over
	// a ping interval: 500 ms, far above a loaded machine's hiccups.
	th := newTestHub(t, hub.Config{PingInterval: 500 * time.Millisecond, PongWait: time.Second})
	c := th.dial(t, "anna")
	c.join(room, 0)
	silent := time.Now() // from here the client reads nothing
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			th.Notify(room, th.b.Append(room, "comment", map[string]int{}).Seq)
		}
	}()
	waitFor(t, "the silent client to be dropped", 10*time.Second, func() bool { return th.Stats().Connections == 0 })
	if d := time.Since(silent); d > 4*time.Second {
		t.Errorf("dropped %v after it went silent, want about PongWait (1 s)", d)
	}
}

// TestLongCatchUpOutlastsPongWait: a catch-up to a slow link that takes
// longer than PongWait. The read pump waits for room in the send queue
// meanwhile and reads no pong; the client, alive and reading all along,
// must not be dropped once the catch-up ends.
func TestLongCatchUpOutlastsPongWait(t *testing.T) {
	th := newTestHubOn(t, hub.Config{PongWait: time.Second, PingInterval: 200 * time.Millisecond, SendQueueBytes: 64 << 10}, true)
	pad := strings.Repeat("x", 2000)
	for range 300 {
		th.b.Append(room, "finding.create", map[string]string{"pad": pad})
	}
	c := th.dial(t, "anna")
	start := time.Now()
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room})
	c.readSlowly(256<<10, `"type":"joined"`)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("the catch-up took only %v: not longer than PongWait", d)
	}
	c.send(hub.Frame{Type: hub.TypePing})
	for {
		f, err := c.read(3 * time.Second)
		if err != nil {
			t.Fatalf("a live client lost after a long catch-up: %v", err)
		}
		if f.Type == "pong" {
			return
		}
	}
}

// TestBigSnapshotOutlastsPongWait: while one long write goes on, the
// write pump sends no ping and the client, waiting for "joined", sends
// nothing; the read deadline must wait for the write.
func TestBigSnapshotOutlastsPongWait(t *testing.T) {
	th := newTestHubOn(t, hub.Config{PongWait: time.Second, PingInterval: 200 * time.Millisecond, WriteWait: 300 * time.Millisecond}, true)
	th.b.snapshotPad = 400 << 10
	c := th.dialWith(t, "anna", bufferDialer(64<<10))
	start := time.Now()
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: -1})
	c.readSlowly(128<<10, `"type":"joined"`)
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("the snapshot took only %v: not longer than PongWait", d)
	}
}

// TestPanickingOpFailsAlone: a Backend that panics on an op fails that op
// as internal; the connection and the server go on.
func TestPanickingOpFailsAlone(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.op(room, "bad", "panic", `{}`)
	f := c.next()
	for ; f.OpID != "bad"; f = c.next() {
	}
	if f.Type != "error" || f.Code != hub.CodeInternal {
		t.Fatalf("the op that panics: %+v, want internal", f)
	}
	if ctx := th.b.panicked.Load(); ctx == nil || (*ctx).Err() == nil {
		t.Error("the context of the op that panicked is not cancelled")
	}
	c.op(room, "bad", "vote", `{}`) // resent; the ops after it wait for it
	c.op(room, "good", "vote", `{}`)
	for f := c.next(); f.Type != "ack" || f.OpID != "good"; f = c.next() {
		if f.Type == "error" {
			t.Fatalf("after the panic: %+v", f)
		}
	}
}

// TestABackendThatPanicsFailsOneCall: a panic in a Backend call other
// than Apply (a bug a room name or an entry sets off) fails that join, or
// that read of the room's log, and not the process: the connection stays,
// and the room is followed again once the call works.
func TestABackendThatPanicsFailsOneCall(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	th.b.Append(room, "finding.create", map[string]int{}) // a join since 0 reads it with After
	c := th.dial(t, "anna")
	for _, call := range []string{"CanJoin", "Head", "After", "Snapshot"} {
		th.b.panicIn.Store(&call)
		since := int64(0)
		if call == "Snapshot" {
			since = -1
		}
		c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: since})
		if f := c.next(); f.Type != "error" || f.Code != hub.CodeInternal || f.ReplyTo != "join" {
			t.Fatalf("a join whose %s panics: %+v, want an internal error", call, f)
		}
	}
	th.b.panicIn.Store(nil)
	c.join(room, 1)
	// The room's follower reads the log through After too.
	other := th.dial(t, "bo")
	other.skipPresence = true
	other.join(room, 1)
	after := "After"
	th.b.panicIn.Store(&after)
	th.b.Append(room, "finding.create", map[string]int{})
	th.Notify(room, 2)
	time.Sleep(100 * time.Millisecond)
	th.b.panicIn.Store(nil)
	th.b.Append(room, "finding.create", map[string]int{})
	th.Notify(room, 3)
	for _, seq := range []int64{2, 3} {
		if f := other.nextOf("entry"); f.Seq != seq {
			t.Fatalf("after the follower's panic: entry %d, want %d", f.Seq, seq)
		}
	}
}

// TestRateLimitedRejoinLeavesTheRoom: a join of a joined room refused for
// the rate leaves it unjoined, as PROTOCOL.md says of a refused join.
func TestRateLimitedRejoinLeavesTheRoom(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 0.1, OpsBurst: 1})
	c := th.dial(t, "anna")
	c.join(room, 0) // spends the one token
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room})
	if f := c.next(); f.Type != "error" || f.Code != hub.CodeRateLimited {
		t.Fatalf("rejoin at once: %+v, want rate_limited", f)
	}
	c.op(room, "o1", "vote", `{}`)
	if f := c.next(); f.Code != hub.CodeNotJoined {
		t.Fatalf("an op after the refused rejoin: %+v, want not_joined", f)
	}
}

// TestAccessTakenBackWhileConnectingCloses: a connection whose identity
// was read before a Reauthorize or EndSession, and registered after it
// (so the close missed it), is closed as soon as it is registered; one
// read after is not.
func TestAccessTakenBackWhileConnectingCloses(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	read := strconv.FormatInt(time.Now().UnixNano(), 10)
	time.Sleep(time.Millisecond)
	th.Reauthorize("anna")
	th.EndSession("s1")
	if code := th.dial(t, "anna&since="+read).closeCode(5 * time.Second); code != hub.CloseAccessChanged {
		t.Errorf("roles read before a Reauthorize: closed with %d, want %d", code, hub.CloseAccessChanged)
	}
	if code := th.dial(t, "bo&session=s1&since="+read).closeCode(5 * time.Second); code != hub.CloseUnauthenticated {
		t.Errorf("session read before it ended: closed with %d, want %d", code, hub.CloseUnauthenticated)
	}
	fresh := th.dial(t, "anna&since="+strconv.FormatInt(time.Now().UnixNano(), 10))
	fresh.join(room, 0) // fails the test unless joined
}

// TestJoinsSpendTheRate: a join costs the server a catch-up or a
// snapshot, so a loop of joins is rate-limited like ops.
func TestJoinsSpendTheRate(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 0.5, OpsBurst: 2})
	c := th.dial(t, "anna")
	for range 2 {
		c.join(room, -1) // fails the test unless joined
	}
	c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: -1})
	for {
		f := c.next()
		if f.Type == "error" {
			if f.Code != hub.CodeRateLimited || f.Room != room {
				t.Fatalf("third join: %+v, want rate_limited", f)
			}
			return
		}
		if f.Type == "joined" {
			t.Fatal("third join at once was served")
		}
	}
}

// TestRefusedJoinLeavesTheRoom: a join refused for its envelope (a
// malformed since) leaves a joined room unjoined, as every refused join
// does (PROTOCOL.md), so a client knows where it stands.
func TestRefusedJoinLeavesTheRoom(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, -1)
	c.sendRaw(`{"type":"join","room":"` + room + `","since":"x"}`)
	if f := c.nextOf("error"); f.Code != hub.CodeBadFrame || f.Room != room {
		t.Fatalf("malformed join: %+v, want bad_frame", f)
	}
	c.op(room, "after", "finding.create", `{"title":"x"}`)
	if f := c.answer("after"); f.Code != hub.CodeNotJoined {
		t.Fatalf("an op after the refused join: %+v, want not_joined", f)
	}
}

// TestSlowReaderCatchUpEndsInJoined: a client that reads slowly through a
// long catch-up keeps the send queue full to its end; the joined frame
// (here with a long presence list) and the presence broadcast its join
// sets off then wait for room instead of overflowing the queue and
// dropping the client with 4008. (Without that it failed 5 runs of 8.)
func TestSlowReaderCatchUpEndsInJoined(t *testing.T) {
	th := newTestHubOn(t, hub.Config{SendQueueBytes: 8 << 10, HistoryLimit: 5000}, true)
	pad := strings.Repeat("x", 1<<10)
	const n = 1000
	for range n { // before the others join, so that no fan-out carries them
		th.b.Append(room, "finding.update", map[string]any{"pad": pad})
	}
	for i := range 50 { // a presence list of some 1.5 KB in the joined frame, more than an entry
		c := th.dial(t, fmt.Sprintf("person-%02d", i))
		c.join(room, -1)
		go func() { // they read along, as screens do
			for {
				if _, err := c.read(time.Minute); err != nil {
					return
				}
			}
		}()
	}
	slow := th.dial(t, "slow")
	slow.skipPresence = true
	slow.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: 0})
	var got int64
	for {
		if len(slow.lines) == 0 {
			time.Sleep(2 * time.Millisecond) // reads a message every 2 ms at most
		}
		f, err := slow.read(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d entries: %v (dropped slow: %d)", got, err, th.Stats().DroppedSlow)
		}
		switch f.Type {
		case "entry":
			if f.Seq != got+1 {
				t.Fatalf("entry %d after %d", f.Seq, got)
			}
			got = f.Seq
		case "joined":
			if got != n || f.Seq != n {
				t.Fatalf("joined at %d after %d entries, want %d", f.Seq, got, n)
			}
			return
		}
	}
}

// roomlessBackend answers Apply with an entry that names no room, which
// the hub accepts as the op's room.
type roomlessBackend struct{ *memBackend }

func (b roomlessBackend) Apply(ctx context.Context, id hub.Identity, op hub.Op) (hub.Entry, error) {
	e, err := b.memBackend.Apply(ctx, id, op)
	e.Room = ""
	return e, err
}

// An entry that Apply returns without its room reaches the room's members
// naming the room: they route entries by it, and the follower does not
// send that seq again.
func TestAnAppliedEntryWithoutARoomNamesTheOpsRoom(t *testing.T) {
	b := newMemBackend()
	th := serveTestHub(t, hub.Config{}, false, roomlessBackend{b}, b)
	a, o := th.dial(t, "a"), th.dial(t, "o")
	a.join(room, 0)
	o.join(room, 0)
	a.op(room, "o1", "vote", `{}`)
	for name, c := range map[string]*client{"a": a, "o": o} {
		for {
			f := c.next()
			if f.Type == "entry" {
				if f.Room != room || f.OpID != "o1" {
					t.Fatalf("%s got the entry for room %q, op %q; want %q, o1", name, f.Room, f.OpID, room)
				}
				break
			}
		}
	}
	// The follower, woken, does not send seq 1 again: the next entry is 2.
	th.Notify(room, 1)
	b.Append(room, "comment", map[string]int{})
	th.Notify(room, 2)
	for name, c := range map[string]*client{"a": a, "o": o} {
		f := c.next()
		for f.Type != "entry" { // a's ack may come after the entry
			f = c.next()
		}
		if f.Seq != 2 {
			t.Errorf("%s got the entry at %d after o1's, want 2 (o1's once)", name, f.Seq)
		}
	}
}

// TestRetryAfterIsLongEnough: an op sent again after exactly the
// retry_after_ms of its rate_limited answer is applied: the wait is
// rounded up, not down to an early resend.
func TestRetryAfterIsLongEnough(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 20, OpsBurst: 1})
	c := th.dial(t, "anna")
	c.join(room, 0)
	again := 0
	for i := range 20 {
		id := fmt.Sprintf("op%d", i)
		c.op(room, id, "vote", `{}`)
		for f := c.answer(id); f.Type == "error" && f.Code == hub.CodeRateLimited; {
			var d struct {
				RetryAfterMS int64 `json:"retry_after_ms"`
			}
			if err := json.Unmarshal(f.Detail, &d); err != nil || d.RetryAfterMS < 1 {
				t.Fatalf("rate_limited detail %s (%v)", f.Detail, err)
			}
			time.Sleep(time.Duration(d.RetryAfterMS) * time.Millisecond)
			c.op(room, id, "vote", `{}`)
			if f = c.answer(id); f.Type == "error" {
				again++
			}
		}
	}
	if again > 0 {
		t.Errorf("%d of 20 ops sent again after exactly retry_after_ms were refused again", again)
	}
}

// TestAFrameNotUTF8IsABadFrame: a text frame that is not UTF-8 is
// refused as bad_frame, not decoded with its bytes replaced (and applied)
// nor echoed back as a text frame that is not UTF-8; the connection stays.
func TestAFrameNotUTF8IsABadFrame(t *testing.T) {
	th := newTestHub(t, hub.Config{})
	c := th.dial(t, "anna")
	c.join(room, 0)
	c.sendRaw("{\"type\":\"ping\",\"t\":\"\xff\xfe\"}")
	if f := c.next(); f.Type != "error" || f.Code != hub.CodeBadFrame {
		t.Fatalf("a ping that is not UTF-8: %+v, want bad_frame", f)
	}
	c.sendRaw("{\"type\":\"op\",\"room\":\"" + room + "\",\"op_id\":\"u1\",\"kind\":\"vote\",\"body\":{\"title\":\"bad \xff\"}}")
	if f := c.next(); f.Type != "error" || f.Code != hub.CodeBadFrame {
		t.Fatalf("an op that is not UTF-8: %+v, want bad_frame", f)
	}
	c.op(room, "ok", "vote", `{}`)
	if f := c.answer("ok"); f.Type != "ack" {
		t.Fatalf("the next op: %+v, want an ack on the same connection", f)
	}
	th.b.mustLog(t, room, "ok")
}

// TestAHeldBackOpIsKnownByRoomAndID: after an op is refused for the rate,
// an op of another room with the same op id (op ids are unique per room
// only) is not that op come again: it is held back too.
func TestAHeldBackOpIsKnownByRoomAndID(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 1, OpsBurst: 2})
	c := th.dial(t, "anna")
	c.join(room, 0)
	const other = "workshop:other"
	c.join(other, 0)
	// The joins spent the bucket: the first op is refused for the rate.
	c.op(room, "x", "vote", `{}`)
	if f := c.answer("x"); f.Type != "error" || f.Code != hub.CodeRateLimited {
		t.Fatalf("first op: %+v, want rate_limited", f)
	}
	time.Sleep(1100 * time.Millisecond) // the bucket has a token again
	c.op(other, "x", "vote", `{}`)
	if f := c.answer("x"); f.Type != "error" || f.Code != hub.CodeRateLimited || !strings.Contains(string(f.Detail), "held_back") {
		t.Fatalf("op x of another room: %+v, want it held back behind room %s's op x", f, room)
	}
	th.b.mustLog(t, other)
}

// zeroAtApply is joinReads whose Apply returns its entry without At (as
// the server's batch does for an op id repeated within one batch: its
// entry is taken from seen before the insert returns at).
type zeroAtApply struct{ *joinReads }

func (b zeroAtApply) Apply(ctx context.Context, id hub.Identity, op hub.Op) (hub.Entry, error) {
	e, err := b.joinReads.Apply(ctx, id, op)
	e.At = time.Time{}
	return e, err
}

// A join whose pending list carries it past its catch-up's last entry,
// with an entry offered without its time, leaves the room taking its own
// log for itself. (Found by a review of a version where a join taught the
// room the time of its catch-up's last entry, whatever seq the room was at.)
func TestAJoinDoesNotMakeTheRoomTakeItsLogForAnother(t *testing.T) {
	mb := newMemBackend()
	jb := &joinReads{memBackend: mb}
	th := serveTestHub(t, hub.Config{PollInterval: time.Hour}, false, zeroAtApply{jb}, mb)
	for i := 0; i < 10; i++ {
		mb.Append(room, "x", i)
	}
	w := th.dial(t, "w")
	w.skipPresence = true
	w.join(room, 10)              // the room: lastSeq 10, lastAt unknown
	second := jb.heads.Load() + 2 // x's Head after its pages: sent 10
	hook := func(n int64) {
		if n != second {
			return
		}
		time.Sleep(5 * time.Millisecond)  // another instant than entry 10's
		w.op(room, "op-11", "note", `{}`) // entry 11, fanned out while x catches up
		for {
			if f := w.next(); f.Type == "entry" && f.Seq == 11 {
				return
			}
		}
	}
	jb.onHead.Store(&hook)
	x := th.dial(t, "x")
	x.skipPresence = true
	if _, joined := x.join(room, 0); joined.Seq != 11 {
		t.Fatalf("x joined at %d, want 11", joined.Seq)
	}
	jb.onHead.Store(nil)
	th.Notify(room, mb.Append(room, "x", "12").Seq)
	for _, c := range []*client{w, x} {
		for {
			f, err := c.read(3 * time.Second)
			if err != nil {
				t.Fatalf("a member of an unchanged log: %v", err)
			}
			if f.Type == "entry" && f.Seq == 12 {
				break
			}
		}
	}
}

// A member that stops reading, in a room that commits one 1 KiB entry at a
// time (no burst), is dropped once about the 64 KiB send queue (plus
// socket buffers) is unwritten, not after 16 times that. (Found by a
// review.)
func TestAStalledMemberOfSingleEntriesIsDroppedNearTheLimit(t *testing.T) {
	th := newTestHubOn(t, hub.Config{PollInterval: time.Hour, SendQueueBytes: 64 << 10, WriteWait: time.Minute}, true)
	stalled := th.dial(t, "stalled")
	stalled.join(room, 0)
	fast := th.dial(t, "fast")
	fast.skipPresence = true
	fast.join(room, 0)
	pad := strings.Repeat("x", 1<<10)
	for i := 1; i <= 600; i++ { // 600 KiB, one entry per fan-out
		e := th.b.Append(room, "note", map[string]any{"i": i, "pad": pad})
		th.Notify(room, e.Seq)
		for {
			f := fast.next()
			if f.Type == "entry" && f.Seq == e.Seq {
				break
			}
		}
		if th.Stats().DroppedSlow > 0 {
			t.Logf("stalled member dropped after %d KiB of single entries", i)
			return
		}
	}
	t.Fatalf("a member that never reads still held after 600 KiB of single 1 KiB entries with a 64 KiB send queue (Stats %+v)", th.Stats())
}

// TestFramesWithoutEndCloseTheConnection: pings are answered and count
// against no op rate, but every frame counts against four times the ops'
// rate and burst: a client that pings without end (each ping costs the
// server a pong) is closed with 4002. One that pings now and then is not.
func TestFramesWithoutEndCloseTheConnection(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 5, OpsBurst: 5}) // frames: 20 a second, bursts of 20
	calm := th.dial(t, "anna")
	for range 10 {
		calm.send(hub.Frame{Type: hub.TypePing})
		if f := calm.next(); f.Type != "pong" {
			t.Fatalf("a ping now and then: %+v, want pong", f)
		}
		time.Sleep(100 * time.Millisecond)
	}
	flood := th.dial(t, "bo")
	for range 200 {
		flood.sendRaw(`{"type":"ping"}`)
	}
	if code := flood.closeCode(5 * time.Second); code != hub.CloseProtocolAbuse {
		t.Fatalf("200 pings at once: closed with %d, want %d", code, hub.CloseProtocolAbuse)
	}
	calm.send(hub.Frame{Type: hub.TypePing})
	if f := calm.next(); f.Type != "pong" {
		t.Fatalf("the calm client after the flood: %+v, want pong", f)
	}
}

// TestSnapshotsOfOnePersonArePaidFor: the snapshots sent to one person's
// joins, all their connections together, are paid at the budget's rate
// beyond its burst. A join past it is refused as rate_limited, with the
// time to wait, and reads nothing (held instead, on the read pump, a join
// the client gave up would still be read and paid for); once paid, it is
// sent. Another person's join is not held back by theirs.
func TestSnapshotsOfOnePersonArePaidFor(t *testing.T) {
	th := newTestHub(t, hub.Config{SnapshotBytesPerSecond: 100 << 10, SnapshotBurstBytes: 200 << 10})
	th.b.snapshotPad = 120 << 10 // two snapshots spend the burst and 40 KiB more
	one, two := th.dial(t, "anna"), th.dial(t, "anna")
	for _, c := range []*client{one, two} {
		if got, _ := c.join(fmt.Sprintf("workshop:%p", c), -1); len(got) != 1 || got[0].Type != "snapshot" {
			t.Fatalf("a join within the burst: %+v, want a snapshot", got)
		}
	}
	read := th.b.snapshots.Load()
	refused := func(c *client, room string) time.Duration {
		t.Helper()
		c.send(hub.Frame{Type: hub.TypeJoin, Room: room, Since: -1})
		f := c.nextOf("error")
		var d struct {
			RetryAfterMS int64 `json:"retry_after_ms"`
		}
		if f.Code != hub.CodeRateLimited || f.ReplyTo != "join" || json.Unmarshal(f.Detail, &d) != nil || d.RetryAfterMS <= 0 {
			t.Fatalf("a join past the budget: %+v, want rate_limited with retry_after_ms", f)
		}
		return time.Duration(d.RetryAfterMS) * time.Millisecond
	}
	refused(one, "workshop:late")
	wait := refused(two, "workshop:late") // all the person's connections together
	if n := th.b.snapshots.Load(); n != read {
		t.Fatalf("refused joins read %d snapshots", n-read)
	}
	if wait < 200*time.Millisecond || wait > 600*time.Millisecond {
		t.Fatalf("retry after %v, want about 0.4 s (40 KiB owed at 100 KiB a second)", wait)
	}
	bo := th.dial(t, "bo")
	if got, _ := bo.join("workshop:bo", -1); len(got) != 1 || got[0].Type != "snapshot" {
		t.Fatalf("another person's join: %+v, want a snapshot", got)
	}
	time.Sleep(wait)
	if got, _ := one.join("workshop:late", -1); len(got) != 1 || got[0].Type != "snapshot" {
		t.Fatalf("the join again once paid: %+v, want a snapshot", got)
	}
}

// TestWebSocketPingsCountAsFrames: a WebSocket ping is answered (a pong)
// like the protocol's own, and counts against the frames' rate the same:
// 2000 of them at once close the connection with 4002.
func TestWebSocketPingsCountAsFrames(t *testing.T) {
	th := newTestHub(t, hub.Config{OpsPerSecond: 5, OpsBurst: 5}) // frames: 20 a second, bursts of 20
	c := th.dial(t, "anna")
	pongs := make(chan struct{}, 1)
	c.ws.SetPongHandler(func(string) error {
		select {
		case pongs <- struct{}{}:
		default:
		}
		return nil
	})
	if err := c.ws.WriteControl(websocket.PingMessage, []byte("one"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.send(hub.Frame{Type: hub.TypePing})
	if f := c.next(); f.Type != "pong" {
		t.Fatalf("after a WebSocket ping: %+v, want the protocol's pong", f)
	}
	select {
	case <-pongs:
	default:
		t.Fatal("a WebSocket ping was not answered")
	}
	for range 2000 {
		if err := c.ws.WriteControl(websocket.PingMessage, []byte("0123456789"), time.Now().Add(time.Second)); err != nil {
			break // closed meanwhile
		}
	}
	if code := c.closeCode(5 * time.Second); code != hub.CloseProtocolAbuse {
		t.Fatalf("2000 WebSocket pings at once: closed with %d, want %d", code, hub.CloseProtocolAbuse)
	}
}
