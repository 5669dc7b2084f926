package search

import (
	"context"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// termsQuery matches the documents holding any of terms (the forms of one
// word) in field. It scores as Bleve's disjunction of term queries does:
// each term by TF-IDF, their sum times the share of the terms a document
// holds. It reads the terms' decoded postings, kept in pos.
type termsQuery struct {
	terms []string
	field string
	pos   *posCache
}

// Searcher implements query.Query.
func (q *termsQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	// Positions for highlights (a page of hits) or a fielded word:
	// Bleve's searchers, which read them only for the documents asked for.
	snap, ok := r.(*scorch.IndexSnapshot)
	if !ok || opts.IncludeTermVectors || q.pos == nil {
		qs := make([]query.Query, len(q.terms))
		for i, t := range q.terms {
			tq := query.NewTermQuery(t)
			tq.SetField(q.field)
			qs[i] = tq
		}
		if len(qs) == 1 {
			return qs[0].Searcher(ctx, r, m, opts)
		}
		return query.NewDisjunctionQuery(qs).Searcher(ctx, r, m, opts)
	}
	tm := &termsMatcher{field: q.field, pos: q.pos, live: liveSegments(snap)}
	for _, term := range q.terms {
		t, err := newSegTerm(ctx, r, q.field, term)
		if err != nil {
			return nil, err
		}
		tm.terms = append(tm.terms, &t)
	}
	return newSegSearcher(snap, tm, tm.terms, opts, len(tm.terms) > 1), nil
}

// termsMatcher is a termsQuery's segMatcher.
type termsMatcher struct {
	field string
	terms []*segTerm
	pos   *posCache
	live  func(segment.Segment) bool
	// scratch, reused from segment to segment
	scores []float64
	counts []uint32
}

func (tm *termsMatcher) matches(seg segment.Segment, deleted *roaring.Bitmap, opts bsearch.SearcherOptions, hits []segHit) ([]segHit, error) {
	dict, err := seg.Dictionary(tm.field)
	if err != nil {
		return hits, err
	}
	tps := make([]*termPositions, len(tm.terms))
	for i, t := range tm.terms {
		if tps[i], err = tm.pos.get(seg, dict, t.term, false, tm.live); err != nil {
			return hits, err
		}
	}
	score := opts.Score != "none"
	if len(tps) == 1 {
		tp, t := tps[0], tm.terms[0]
		hits = slices.Grow(hits, len(tp.docs))
		for i, d := range tp.docs {
			if deleted != nil && deleted.Contains(d) {
				continue
			}
			h := segHit{doc: d}
			if score {
				h.score = t.score(tp.freq(i), float64(tp.norm[i]))
			}
			hits = append(hits, h)
		}
		return hits, nil
	}
	n := int(seg.Count())
	tm.scores = zeroed(tm.scores, n)
	tm.counts = zeroed(tm.counts, n)
	for j, tp := range tps {
		t := tm.terms[j]
		for i, d := range tp.docs {
			if score {
				tm.scores[d] += t.score(tp.freq(i), float64(tp.norm[i]))
			}
			tm.counts[d]++
		}
	}
	share := 1 / float64(len(tm.terms))
	for d, c := range tm.counts {
		if c == 0 || (deleted != nil && deleted.Contains(uint32(d))) {
			continue
		}
		hits = append(hits, segHit{doc: uint32(d), score: tm.scores[d] * float64(c) * share})
	}
	return hits, nil
}
