package search

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
)

// matches runs the text query q over one index snapshot, as audience
// sees it (see scopedReader), and calls the function start returns with
// every matching document (and its score, when score is set). start gets
// the snapshot's view, which the caller must release.
//
// A query that works segment by segment sends its matcher's hits straight
// to the tally; any other goes through its Bleve searcher, one match at a
// time, as Bleve's own search would.
func (ix *Index) matches(ctx context.Context, q query.Query, score bool, audience []string, start func(*view) func(seg int, local uint32, score float64)) (*view, error) {
	v, err := ix.current()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*view, error) {
		v.release()
		return nil, searchError(err)
	}
	// Unscored (sorted by date), no statistics matter.
	var r index.IndexReader = v.snap
	opts := bsearch.SearcherOptions{}
	if score {
		r = ix.scoped(v, audience)
	} else {
		opts.Score = bleve.ScoreNone
	}
	s, err := q.Searcher(ctx, r, ix.bi.Mapping(), opts)
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	each := start(v)
	if ss, ok := s.(*segSearcher); ok {
		var hits []segHit
		for i, seg := range v.segs {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			if hits, err = ss.m.matches(seg.Segment(), seg.Deleted(), opts, hits[:0]); err != nil {
				return fail(err)
			}
			for _, h := range hits {
				each(i, h.doc, h.score)
			}
		}
		return v, nil
	}
	sctx := &bsearch.SearchContext{DocumentMatchPool: bsearch.NewDocumentMatchPool(s.DocumentMatchPoolSize(), 0), IndexReader: r}
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
		}
		dm, err := s.Next(sctx)
		if err != nil {
			return fail(err)
		}
		if dm == nil {
			return v, nil
		}
		seg, local := v.locate(binary.BigEndian.Uint64(dm.IndexInternalID))
		each(seg, local, dm.Score)
		sctx.DocumentMatchPool.Put(dm)
	}
}

// current returns a view of the index's current snapshot; the caller
// releases it.
func (ix *Index) current() (*view, error) {
	adv, err := ix.bi.Advanced()
	if err != nil {
		return nil, searchError(err)
	}
	rd, err := adv.Reader()
	if err != nil {
		return nil, searchError(err)
	}
	defer rd.Close()
	snap, ok := rd.(*scorch.IndexSnapshot)
	if !ok {
		return nil, fmt.Errorf("search: index reader is a %T, not a scorch snapshot", rd)
	}
	return ix.cols.view(snap)
}

// Warm reads the columns of the current snapshot's segments, so that the
// first search after Open does not wait for them.
func (ix *Index) Warm() error {
	v, err := ix.current()
	if err != nil {
		return err
	}
	v.release()
	return nil
}

// tally applies a query's audience and filters to the documents that
// match its text, counts their facets and keeps the best k, with bitsets
// per segment.
type tally struct {
	v        *view
	term     []string // term id → term
	col      []uint8  // term id → column
	sel      []bool   // term id → picked by a filter or by the audience
	filtered []int    // columns with a filter
	counts   []int32  // term id → count
	total    uint64
	top      rankHeap
	match    []bitset    // per segment: documents matching the text
	scores   [][]float32 // per segment, when sorting by relevance
}

func (ix *Index) newTally(v *view, q Query, k int, byDate bool) *tally {
	col, term := ix.cols.terms.snapshot()
	t := &tally{v: v, term: term, col: col, sel: make([]bool, len(col)), counts: make([]int32, len(col)),
		match: make([]bitset, len(v.segs))}
	t.top = rankHeap{k: k, byDate: byDate}
	if !byDate {
		t.scores = make([][]float32, len(v.segs))
	}
	pick := func(c int, vals []string) {
		for _, val := range vals {
			if id, ok := ix.cols.terms.lookup(c, val); ok && int(id) < len(t.sel) {
				t.sel[id] = true
			}
		}
	}
	pick(audienceCol, q.Audience)
	for c, dim := range dimensions {
		if vals := q.Filters[dim]; len(vals) > 0 {
			t.filtered = append(t.filtered, c)
			pick(c, vals)
		}
	}
	return t
}

// hit records a document that matches the text.
func (t *tally) hit(seg int, local uint32, score float64) {
	if t.match[seg] == nil {
		t.match[seg] = newBitset(t.v.cols[seg].n)
		if t.scores != nil {
			t.scores[seg] = make([]float32, t.v.cols[seg].n)
		}
	}
	t.match[seg].set(local)
	if t.scores != nil {
		t.scores[seg][local] = float32(score)
	}
}

// hitAll records every live document.
func (t *tally) hitAll() {
	for seg, ss := range t.v.segs {
		m := newBitset(t.v.cols[seg].n)
		for i := range m {
			m[i] = ^uint64(0)
		}
		if n := t.v.cols[seg].n; n%64 != 0 {
			m[len(m)-1] = 1<<(n%64) - 1
		}
		if del := ss.Deleted(); del != nil {
			it := del.Iterator()
			for it.HasNext() {
				d := it.Next()
				m[d/64] &^= 1 << (d % 64)
			}
		}
		t.match[seg] = m
	}
}

// finish works out each segment's results and counts: a document in the
// audience that passes every filter is a result and counts in every
// dimension; one that fails a single filter counts only in that filter's
// dimension (a dimension's counts ignore its own filter).
func (t *tally) finish(ctx context.Context) error {
	for seg, m := range t.match {
		if m == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return searchError(err)
		}
		c := t.v.cols[seg]
		union := func(col int) bitset {
			b := newBitset(c.n)
			for i := range c.terms[col] {
				if p := &c.terms[col][i]; t.sel[p.id] {
					p.orInto(b)
				}
			}
			return b
		}
		aud := union(audienceCol)
		aud.and(m)
		filters := make(map[int]bitset, len(t.filtered))
		pass := aud.clone()
		for _, col := range t.filtered {
			filters[col] = union(col)
			pass.and(filters[col])
		}
		t.total += uint64(pass.count())
		for col := range dimensions {
			base := pass
			if f := filters[col]; f != nil {
				base = aud.clone()
				for other, f := range filters {
					if other != col {
						base.and(f)
					}
				}
			}
			for i := range c.terms[col] {
				p := &c.terms[col][i]
				t.counts[p.id] += int32(p.countIn(base))
			}
		}
		g0 := t.v.offs[seg]
		pass.each(func(local uint32) {
			r := ranked{updated: c.updated[local], g: g0 + uint64(local)}
			if t.scores != nil {
				r.score = float64(t.scores[seg][local])
			}
			t.top.offer(r)
		})
	}
	return nil
}

// facets fills out with each dimension's counts, most frequent first,
// then by term.
func (t *tally) facets(out map[string][]FacetCount) {
	for id, n := range t.counts {
		if n > 0 && int(t.col[id]) < len(dimensions) {
			dim := dimensions[t.col[id]]
			out[dim] = append(out[dim], FacetCount{Term: t.term[id], Count: int(n)})
		}
	}
	for dim, fc := range out {
		sort.Slice(fc, func(i, j int) bool {
			if fc[i].Count != fc[j].Count {
				return fc[i].Count > fc[j].Count
			}
			return fc[i].Term < fc[j].Term
		})
		limit := facetSize
		if dim == "workshop" || dim == "event" {
			limit = bigFacetSize
		}
		if len(fc) > limit {
			out[dim] = fc[:limit]
		}
	}
}

// sorted returns the best results, best first.
func (t *tally) sorted() []ranked {
	out := make([]ranked, len(t.top.items))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&t.top).(ranked)
	}
	return out
}

// ranked is a result as ordering sees it; g is its global document number
// in the view.
type ranked struct {
	score   float64
	updated int64
	g       uint64
}

// rankHeap keeps the k best results with the worst on top. Relevance
// orders by score, then newest; date by newest. Ties go to the lower
// document number.
type rankHeap struct {
	k      int
	byDate bool
	items  []ranked
}

func (h *rankHeap) better(a, b ranked) bool {
	if !h.byDate && a.score != b.score {
		return a.score > b.score
	}
	if a.updated != b.updated {
		return a.updated > b.updated
	}
	return a.g < b.g
}

// offer keeps r if it is among the k best so far.
func (h *rankHeap) offer(r ranked) {
	if len(h.items) < h.k {
		heap.Push(h, r)
		return
	}
	if h.k > 0 && h.better(r, h.items[0]) {
		h.items[0] = r
		heap.Fix(h, 0)
	}
}

func (h *rankHeap) Len() int           { return len(h.items) }
func (h *rankHeap) Less(i, j int) bool { return h.better(h.items[j], h.items[i]) }
func (h *rankHeap) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *rankHeap) Push(x any)         { h.items = append(h.items, x.(ranked)) }
func (h *rankHeap) Pop() any {
	r := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return r
}
