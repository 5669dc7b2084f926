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
	r.add("r", 10, entries(11, 20))
	r.add("r", 30, entries(31, 35)) // not after 20: would leave a gap, so it starts over
	if got := seqs(r.get("r", 10, 100)); len(got) != 0 {
		t.Fatalf("after a restart at 31 the old range is gone, got %v", got)
	}
	if got := seqs(r.get("r", 32, 2)); len(got) != 2 || got[0] != 33 || got[1] != 34 {
		t.Fatalf("get(32, 2) = %v, want [33 34]", got)
	}
	r.add("r", 35, entries(36, 40)) // continues the cache
	if got := seqs(r.get("r", 30, 100)); len(got) != 10 || got[0] != 31 || got[9] != 40 {
		t.Fatalf("get(30) = %v, want 31..40", got)
	}
	r.add("r", 31, entries(32, 33)) // older than kept: ignored
	if got := seqs(r.get("r", 39, 100)); len(got) != 1 || got[0] != 40 {
		t.Fatalf("get(39) = %v, want [40]", got)
	}
	if got := r.get("r", 40, 10); got != nil {
		t.Fatalf("nothing after the end, got %v", seqs(got))
	}
	if got := r.get("r", 29, 10); got != nil {
		t.Fatalf("before the start (a gap at 30) must come from the log, got %v", seqs(got))
	}
	r.add("r", 4000, entries(4001, 4001+recentKeep))
	if got := r.get("r", 4000, 1); len(got) != 0 {
		t.Fatalf("the cache keeps only the last %d entries, got %v", recentKeep, seqs(got))
	}
}
