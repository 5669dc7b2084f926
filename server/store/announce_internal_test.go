package store

import (
	"maps"
	"testing"
)

// TestAnnouncerKeepsAHeadWanted: a room's head, asked for after a failure
// that may hide a commit (addHead), is announced whatever seq is added for
// the room before or after it in the same burst: the head read when it is
// announced covers them, where a known seq would leave the hidden commit
// to the listeners' slow poll. Before, a seq added first kept its place.
func TestAnnouncerKeepsAHeadWanted(t *testing.T) {
	a := &announcer{pending: map[string]int64{}, wake: make(chan struct{}, 1)}
	a.add("seq-then-head", 5)
	a.addHead("seq-then-head")
	a.addHead("head-then-seq")
	a.add("head-then-seq", 9)
	a.add("seqs", 4)
	a.add("seqs", 7)
	a.add("seqs", 6)
	want := map[string]int64{"seq-then-head": 0, "head-then-seq": 0, "seqs": 7}
	if !maps.Equal(a.pending, want) {
		t.Fatalf("pending %v, want %v (0: the head, read when announced)", a.pending, want)
	}
}
