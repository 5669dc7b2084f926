package search

import (
	"testing"

	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// TestPosCacheKeepsToItsBudget fills a small position cache: it keeps to
// its budget by dropping the least recently used terms, drops the terms
// of segments gone from the index, and decodes what it no longer holds.
func TestPosCacheKeepsToItsBudget(t *testing.T) {
	ix, err := Create(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	words := []string{"alpha", "bravo", "kilo", "delta", "echo"}
	var docs []Document
	for i := 0; i < 200; i++ {
		docs = append(docs, Document{ID: string(rune('a'+i%26)) + string(rune('a'+i/26)), Lang: "en", Title: words[i%5] + " " + words[(i+1)%5] + " " + words[(i+2)%5], Audience: []string{"public"}})
	}
	if err := ix.Apply(docs, nil, nil); err != nil {
		t.Fatal(err)
	}
	v, err := ix.current()
	if err != nil {
		t.Fatal(err)
	}
	defer v.release()
	seg := v.segs[0].Segment()
	dict, err := seg.Dictionary(textField)
	if err != nil {
		t.Fatal(err)
	}
	all := func(segment.Segment) bool { return true }

	one, err := decodePositions(dict, "alpha", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(one.docs) != 120 || len(one.pos) != 120 || one.freq(0) != 1 {
		t.Fatalf("alpha: %d docs, %d positions, freq %d; want 120, 120, 1", len(one.docs), len(one.pos), one.freq(0))
	}
	c := newPosCache(2*one.size() + one.size()/2) // room for two terms
	get := func(term string) *termPositions {
		t.Helper()
		tp, err := c.get(seg, dict, term, true, all)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	a := get("alpha")
	get("bravo")
	if get("alpha") != a {
		t.Error("alpha decoded again while cached")
	}
	get("kilo") // drops bravo, the least recently used
	if c.used > c.budget || len(c.entries) != 2 {
		t.Errorf("used %d of %d with %d entries; want at most the budget, 2 entries", c.used, c.budget, len(c.entries))
	}
	if _, ok := c.entries[posKey{seg, "bravo", true}]; ok {
		t.Error("bravo kept; it was the least recently used")
	}
	if get("alpha") != a {
		t.Error("alpha dropped; it was used more recently than bravo")
	}
	// A segment gone from the index takes its terms along.
	if _, err := c.get(seg, dict, "delta", true, func(segment.Segment) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if len(c.entries) != 0 || c.used != 0 {
		t.Errorf("%d entries, %d bytes after the segment went; want none", len(c.entries), c.used)
	}
}
