package search

import (
	"context"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// prefixQuery matches the documents holding a term of field that starts
// with prefix. All of them score the same, as a prefix query does in
// Lucene and Elasticsearch: which expansion of a prefix a document holds,
// and how often, says little about how well it matches, and summing the
// scores of hundreds of expansions per document took most of the query's
// time. A prefix among other words still counts, as a constant.
type prefixQuery struct {
	prefix string
	field  string
}

// Searcher implements query.Query.
func (q *prefixQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	// Positions for highlights (a page of hits) or a fielded prefix:
	// Bleve's searcher, which reads them only for the documents asked for.
	snap, ok := snapshotOf(r)
	if !ok || opts.IncludeTermVectors {
		bq := query.NewPrefixQuery(q.prefix)
		bq.SetField(q.field)
		return bq.Searcher(ctx, r, m, opts)
	}
	// The snapshot's own terms: the matches are filtered by audience
	// later, and a match scores the same whatever term it holds.
	dict, err := snap.FieldDictPrefix(q.field, []byte(q.prefix))
	if err != nil {
		return nil, err
	}
	var terms []string
	for {
		e, err := dict.Next()
		if err != nil {
			_ = dict.Close()
			return nil, err
		}
		if e == nil {
			break
		}
		terms = append(terms, e.Term)
	}
	if err := dict.Close(); err != nil {
		return nil, err
	}
	if len(terms) == 0 {
		return searcher.NewMatchNoneSearcher(r)
	}
	// A prefix that matches nothing the viewer may see matches nothing:
	// matching at all weighs (see Weight) in a query of several parts.
	if sr, ok := r.(*scopedReader); ok {
		if visible, err := sr.anyVisible(q.field, terms); err != nil || !visible {
			if err != nil {
				return nil, err
			}
			return searcher.NewMatchNoneSearcher(r)
		}
	}
	// A constant score is a term with idf 1 that every match holds once.
	constant := &segTerm{term: q.prefix, idf: 1, weight: 1}
	return newSegSearcher(snap, &prefixMatcher{field: q.field, terms: terms, constant: constant}, []*segTerm{constant}, opts, false), nil
}

// prefixMatcher is a prefixQuery's segMatcher: the union of its terms'
// postings, as bitmaps.
type prefixMatcher struct {
	field    string
	terms    []string
	constant *segTerm
	list     segment.PostingsList // scratch
}

func (pm *prefixMatcher) matches(seg segment.Segment, deleted *roaring.Bitmap, opts bsearch.SearcherOptions, hits []segHit) ([]segHit, error) {
	dict, err := seg.Dictionary(pm.field)
	if err != nil {
		return hits, err
	}
	docs := roaring.New()
	for _, t := range pm.terms {
		if pm.list, err = dict.PostingsList([]byte(t), nil, pm.list); err != nil {
			return hits, err
		}
		if err := orInto(pm.list, docs); err != nil {
			return hits, err
		}
	}
	if deleted != nil {
		docs.AndNot(deleted)
	}
	var score float64
	if opts.Score != "none" {
		score = pm.constant.score(1, 1)
	}
	hits = slices.Grow(hits, int(docs.GetCardinality()))
	for it := docs.Iterator(); it.HasNext(); {
		hits = append(hits, segHit{doc: it.Next(), score: score})
	}
	return hits, nil
}
