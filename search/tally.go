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
)

// matches runs the text query q over one index snapshot and calls the
// function start returns with every matching document (and its score,
// when score is set). start gets the snapshot's view, which the caller
// must release; matches returns a nil view when Bleve ran no search.
func (ix *Index) matches(ctx context.Context, q query.Query, score bool, start func(*view) func(seg int, local uint32, score float64)) (*view, error) {
	var v *view
	var viewErr error
	maker := func(sc *bsearch.SearchContext) (bsearch.DocumentMatchHandler, bool, error) {
		snap, ok := sc.IndexReader.(*scorch.IndexSnapshot)
		if !ok {
			viewErr = fmt.Errorf("search: index reader is a %T, not a scorch snapshot", sc.IndexReader)
			return nil, false, viewErr
		}
		if v, viewErr = ix.cols.view(snap); viewErr != nil {
			return nil, false, viewErr
		}
		each := start(v)
		return func(d *bsearch.DocumentMatch) error {
			if d == nil {
				return nil
			}
			seg, local := v.locate(binary.BigEndian.Uint64(d.IndexInternalID))
			each(seg, local, d.Score)
			sc.DocumentMatchPool.Put(d)
			return nil
		}, false, nil
	}
	hctx := context.WithValue(ctx, bsearch.MakeDocumentMatchHandlerKey, bsearch.MakeDocumentMatchHandler(maker))
	req := bleve.NewSearchRequestOptions(q, 0, 0, false)
	if !score {
		req.Score = bleve.ScoreNone
	}
	_, err := ix.bi.SearchInContext(hctx, req)
	if err == nil {
		err = viewErr
	}
	if err != nil {
		if v != nil {
			v.release()
		}
		return nil, searchError(err)
	}
	return v, nil
}

// allDocs calls the function start returns with every live document of
// the current snapshot. The caller releases the view.
func (ix *Index) allDocs(ctx context.Context, start func(*view) func(seg int, local uint32, score float64)) (*view, error) {
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
	v, err := ix.cols.view(snap)
	if err != nil {
		return nil, err
	}
	each := start(v)
	for seg, ss := range v.segs {
		if err := ctx.Err(); err != nil {
			v.release()
			return nil, searchError(err)
		}
		n := uint32(ss.Segment().Count())
		del := ss.Deleted()
		for local := uint32(0); local < n; local++ {
			if del == nil || !del.Contains(local) {
				each(seg, local, 0)
			}
		}
	}
	return v, nil
}

// tally applies a query's audience and filters to matching documents, in
// memory, and counts their facets and keeps the best k.
type tally struct {
	v        *view
	col      []uint8 // term id → column
	term     []string
	sel      []bool // term id → picked by a filter or by the audience
	filtered uint32 // bit per column with a filter
	counts   []int32
	total    uint64
	top      rankHeap
}

func (ix *Index) newTally(v *view, q Query, k int, byDate bool) *tally {
	col, term := ix.cols.terms.snapshot()
	t := &tally{v: v, col: col, term: term, sel: make([]bool, len(col)), counts: make([]int32, len(col))}
	t.top = rankHeap{k: k, byDate: byDate}
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
			t.filtered |= 1 << c
			pick(c, vals)
		}
	}
	return t
}

// add takes one matching document: a document in the audience that
// passes every filter is a result and counts in every dimension; one that
// fails a single filter counts only in that filter's dimension (facet
// counts of a dimension ignore its own filter).
func (t *tally) add(seg int, local uint32, score float64) {
	c := t.v.cols[seg]
	ids := c.ids[c.off[local]:c.off[local+1]]
	var passed uint32
	for _, id := range ids {
		if t.sel[id] {
			passed |= 1 << t.col[id]
		}
	}
	if passed&(1<<audienceCol) == 0 {
		return
	}
	fail := t.filtered &^ passed
	switch {
	case fail == 0:
		t.total++
		for _, id := range ids {
			t.counts[id]++
		}
		t.top.offer(ranked{score: score, updated: c.updated[local], g: t.v.offs[seg] + uint64(local)})
	case fail&(fail-1) == 0:
		for _, id := range ids {
			if 1<<t.col[id] == fail {
				t.counts[id]++
			}
		}
	}
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
