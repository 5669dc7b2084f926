package search

import (
	"context"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// termQuery matches the documents holding term in field, scored by
// TF-IDF as Bleve's term query scores them. It reads the term's decoded
// postings, kept in pos.
type termQuery struct {
	term  string
	field string
	pos   *posCache
}

// Searcher implements query.Query.
func (q *termQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	// Positions for highlights (a page of hits) or a fielded word:
	// Bleve's searcher, which reads them only for the documents asked for.
	snap, ok := snapshotOf(r)
	if !ok || opts.IncludeTermVectors {
		tq := query.NewTermQuery(q.term)
		tq.SetField(q.field)
		return tq.Searcher(ctx, r, m, opts)
	}
	t, err := newSegTerm(ctx, r, q.field, q.term)
	if err != nil {
		return nil, err
	}
	tm := &termMatcher{field: q.field, term: &t, pos: q.pos, live: liveSegments(snap)}
	return newSegSearcher(snap, tm, []*segTerm{&t}, opts, false), nil
}

// termMatcher is a termQuery's segMatcher.
type termMatcher struct {
	field string
	term  *segTerm
	pos   *posCache
	live  func(segment.Segment) bool
}

func (tm *termMatcher) matches(seg segment.Segment, deleted *roaring.Bitmap, opts bsearch.SearcherOptions, hits []segHit) ([]segHit, error) {
	dict, err := seg.Dictionary(tm.field)
	if err != nil {
		return hits, err
	}
	tp, err := tm.pos.get(seg, dict, tm.term.term, false, tm.live)
	if err != nil {
		return hits, err
	}
	score := opts.Score != "none"
	hits = slices.Grow(hits, len(tp.docs))
	for i, d := range tp.docs {
		if deleted != nil && deleted.Contains(d) {
			continue
		}
		h := segHit{doc: d}
		if score {
			h.score = tm.term.score(tp.freq(i), float64(tp.norm[i]))
		}
		hits = append(hits, h)
	}
	return hits, nil
}
