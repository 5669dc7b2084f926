package hub

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// nopBackend serves an empty log; the offer test never reads it.
type nopBackend struct{}

func (nopBackend) CanJoin(context.Context, Identity, string) error { return nil }
func (nopBackend) Apply(context.Context, Identity, Op) (Entry, error) {
	return Entry{}, nil
}
func (nopBackend) After(context.Context, string, int64, int) ([]Entry, error) { return nil, nil }
func (nopBackend) Snapshot(context.Context, string) (json.RawMessage, int64, time.Time, error) {
	return nil, 0, time.Time{}, nil
}
func (nopBackend) Head(context.Context, string) (int64, int64, error) { return 0, 0, nil }

// A commit's entries, offered with more on all but the last, go out
// together and in order; a gap wakes the follower instead; an old entry
// without more still sends what waits.
func TestOfferSendsACommitTogether(t *testing.T) {
	h := New(nopBackend{}, Config{Logger: nil})
	r := &room{name: "w:1", h: h, members: map[*conn]*member{}, wakeC: make(chan struct{}, 1), done: make(chan struct{})}
	c := &conn{h: h, q: newSendQueue(1 << 20)}
	r.members[c] = &member{c: c, r: r, live: true}
	entry := func(seq int64) Entry {
		return Entry{Room: r.name, Seq: seq, Kind: "k", Payload: json.RawMessage(`{}`)}
	}
	sent := func() []int64 {
		frames, _, _, _ := c.q.take()
		var seqs []int64
		for _, b := range frames {
			var f struct{ Seq int64 }
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, f.Seq)
		}
		return seqs
	}
	woken := func() bool {
		select {
		case <-r.wakeC:
			return true
		default:
			return false
		}
	}
	check := func(step string, want ...int64) {
		t.Helper()
		got := sent()
		if len(got) != len(want) {
			t.Fatalf("%s: sent %v, want %v", step, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: sent %v, want %v", step, got, want)
			}
		}
	}

	r.offer(entry(2), true)
	r.offer(entry(1), true)
	check("while more come")
	select {
	case <-c.q.ready:
		t.Fatal("the write pump was woken before the commit's last entry")
	default:
	}
	r.offer(entry(3), false)
	check("the commit's last entry", 1, 2, 3)
	if woken() {
		t.Fatal("entries in order woke the follower")
	}

	r.offer(entry(5), false)
	check("after a gap")
	if !woken() {
		t.Fatal("a gap did not wake the follower to read the log")
	}

	r.offer(entry(4), true)
	r.offer(entry(5), false)
	check("the gap filled", 4, 5)

	r.offer(entry(6), true)
	r.offer(entry(5), false) // already sent; it still ends the commit
	check("ended by an old entry", 6)
	if r.lastSeq != 6 || len(r.staged) != 0 {
		t.Fatalf("lastSeq %d, %d staged; want 6 and none", r.lastSeq, len(r.staged))
	}
}
