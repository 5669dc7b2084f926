package main

import (
	"testing"

	"github.com/rapporteur/rapporteur/hub"
)

func entries(from, to int64) []hub.Entry {
	var es []hub.Entry
	for s := from; s <= to; s++ {
		es = append(es, hub.Entry{Room: "r", Seq: s})
	}
	return es
}

func seqs(es []hub.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

func TestRecentEntriesNeverHaveAGap(t *testing.T) {
	var r recentEntries
	if got := r.get("r", 0, 10); got != nil {
		t.Fatalf("empty cache gave %v", seqs(got))
	}
	r.add(0, "r", 10, entries(11, 20))
	r.add(0, "r", 30, entries(31, 35)) // not after 20: would leave a gap, so it starts over
	if got := seqs(r.get("r", 10, 100)); len(got) != 0 {
		t.Fatalf("after a restart at 31 the old range is gone, got %v", got)
	}
	if got := seqs(r.get("r", 32, 2)); len(got) != 2 || got[0] != 33 || got[1] != 34 {
		t.Fatalf("get(32, 2) = %v, want [33 34]", got)
	}
	r.add(0, "r", 35, entries(36, 40)) // continues the cache
	if got := seqs(r.get("r", 30, 100)); len(got) != 10 || got[0] != 31 || got[9] != 40 {
		t.Fatalf("get(30) = %v, want 31..40", got)
	}
	r.add(0, "r", 31, entries(32, 33)) // older than kept: ignored
	if got := seqs(r.get("r", 39, 100)); len(got) != 1 || got[0] != 40 {
		t.Fatalf("get(39) = %v, want [40]", got)
	}
	if got := r.get("r", 40, 10); got != nil {
		t.Fatalf("nothing after the end, got %v", seqs(got))
	}
	if got := r.get("r", 29, 10); got != nil {
		t.Fatalf("before the start (a gap at 30) must come from the log, got %v", seqs(got))
	}
	r.add(0, "r", 4000, entries(4001, 4001+recentKeep))
	if got := r.get("r", 4000, 1); len(got) != 0 {
		t.Fatalf("the cache keeps only the last %d entries, got %v", recentKeep, seqs(got))
	}
}

// TestRecentEntriesAreBoundedInBytes: entries with big payloads (an
// update carries the whole finding) are kept up to the byte bounds of a
// room and of all rooms, not only up to the count.
func TestRecentEntriesAreBoundedInBytes(t *testing.T) {
	var r recentEntries
	big := make([]byte, 80<<10)
	heavy := func(room string, from, to int64) []hub.Entry {
		es := entries(from, to)
		for i := range es {
			es[i].Room, es[i].Payload = room, big
		}
		return es
	}
	r.add(0, "a", 0, heavy("a", 1, 1000)) // 80 MB of updates
	kept := r.rooms["a"]
	if len(kept) < 90 || kept[len(kept)-1].Seq != 1000 || r.size["a"] > recentRoomBytes {
		t.Fatalf("room a keeps %d entries up to %d in %d bytes; want the newest, at most %d bytes",
			len(kept), kept[len(kept)-1].Seq, r.size["a"], recentRoomBytes)
	}
	if got := r.get("a", kept[0].Seq-1, 2000); len(got) != len(kept) || got[len(got)-1].Seq != 1000 {
		t.Fatalf("get from the oldest kept: %d entries, want %d", len(got), len(kept))
	}
	for i := range 20 { // 20 rooms of 8 MB each, over the 64 MB bound
		room := string(rune('b' + i))
		r.add(0, room, 0, heavy(room, 1, 100))
	}
	sum := 0
	for room, n := range r.size {
		sum += n
		if len(r.rooms[room]) == 0 {
			t.Errorf("room %s counted but empty", room)
		}
	}
	if sum != r.total || r.total > recentBytes {
		t.Fatalf("all rooms keep %d bytes (counted %d), want at most %d", sum, r.total, recentBytes)
	}
	if got := r.get(string(rune('b'+19)), 0, 1000); len(got) == 0 {
		t.Fatal("the room added last was forgotten")
	}
}

// last and forget: what Head uses to drop the entries of a log restored
// from a backup, which a join from before would otherwise be sent.
func TestRecentEntriesAreForgotten(t *testing.T) {
	var r recentEntries
	if got := r.last("r"); got != 0 {
		t.Fatalf("last of an empty cache = %d", got)
	}
	r.add(0, "r", 0, entries(1, 10))
	r.add(0, "s", 0, entries(1, 5))
	if got := r.last("r"); got != 10 {
		t.Fatalf("last = %d, want 10", got)
	}
	r.forget("r")
	if got := r.get("r", 2, 100); got != nil || r.last("r") != 0 {
		t.Fatalf("forgotten, the cache gave %v", seqs(got))
	}
	if r.total != r.size["s"] || len(r.get("s", 0, 10)) != 5 {
		t.Fatalf("other rooms stay and the total counts them: total %d, s %d", r.total, r.size["s"])
	}
	// Read before the forget, entries are not added after it.
	r.add(0, "r", 0, entries(1, 10))
	if got := r.get("r", 2, 100); got != nil {
		t.Fatalf("entries read before the forget were kept: %v", seqs(got))
	}
	r.add(r.epoch(), "r", 0, entries(1, 10))
	if got := r.get("r", 2, 100); len(got) != 8 {
		t.Fatalf("entries read after the forget: got %v", seqs(got))
	}
}
