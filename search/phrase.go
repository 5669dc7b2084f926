package search

import (
	"context"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// phraseQuery matches the documents where its terms stand at consecutive
// positions of one array element of field (one text field of textField).
// An empty term matches any word: a stop word the analyzer dropped. Its
// score is the sum of its terms' scores, as Bleve's phrase query's is.
// It matches the terms' decoded positions, kept in pos.
type phraseQuery struct {
	terms []string
	field string
	pos   *posCache
}

// Searcher implements query.Query.
func (q *phraseQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	// Positions for highlights (a page of hits) or a fielded phrase:
	// Bleve's searcher, which reads them only for the documents asked for.
	snap, ok := snapshotOf(r)
	if !ok || opts.IncludeTermVectors {
		p := make([][]string, len(q.terms))
		for i, t := range q.terms {
			if t != "" {
				p[i] = []string{t}
			}
		}
		return query.NewMultiPhraseQuery(p, q.field).Searcher(ctx, r, m, opts)
	}
	pm := &phraseMatcher{field: q.field, pos: q.pos, live: liveSegments(snap)}
	var terms []*segTerm
	for slot, term := range q.terms {
		if term == "" {
			continue
		}
		t, err := newSegTerm(ctx, r, q.field, term)
		if err != nil {
			return nil, err
		}
		terms = append(terms, &t)
		pm.legs = append(pm.legs, phraseLeg{segTerm: &t, slot: uint64(slot)})
	}
	if len(pm.legs) == 0 {
		return searcher.NewMatchNoneSearcher(r)
	}
	return newSegSearcher(snap, pm, terms, opts, true), nil
}

// phraseMatcher is a phraseQuery's segMatcher.
type phraseMatcher struct {
	field string
	legs  []phraseLeg
	pos   *posCache
	live  func(segment.Segment) bool // the snapshot's segments
}

// phraseLeg is a term of a phrase at its position.
type phraseLeg struct {
	*segTerm
	slot uint64
}

func (pm *phraseMatcher) matches(seg segment.Segment, deleted *roaring.Bitmap, opts bsearch.SearcherOptions, hits []segHit) ([]segHit, error) {
	dict, err := seg.Dictionary(pm.field)
	if err != nil {
		return hits, err
	}
	tps := make([]*termPositions, len(pm.legs))
	for i, l := range pm.legs {
		if tps[i], err = pm.pos.get(seg, dict, l.term, true, pm.live); err != nil {
			return hits, err
		}
		if len(tps[i].docs) == 0 {
			return hits, nil
		}
	}
	// The rarest term leads; the others follow to its documents.
	lead := 0
	for i, tp := range tps {
		if len(tp.docs) < len(tps[lead].docs) {
			lead = i
		}
	}
	at := make([]int, len(tps)) // each term's current document
	score := opts.Score != "none"
docs:
	for k, d := range tps[lead].docs {
		for i, tp := range tps {
			if i == lead {
				at[i] = k
				continue
			}
			for at[i] < len(tp.docs) && tp.docs[at[i]] < d {
				at[i]++
			}
			if at[i] == len(tp.docs) {
				break docs
			}
			if tp.docs[at[i]] != d {
				continue docs
			}
		}
		if !pm.phraseAt(tps, at, lead) || (deleted != nil && deleted.Contains(d)) {
			continue
		}
		h := segHit{doc: d}
		if score {
			for i, l := range pm.legs {
				tp := tps[i]
				h.score += l.score(tp.freq(at[i]), float64(tp.norm[at[i]]))
			}
		}
		hits = append(hits, h)
	}
	return hits, nil
}

// phraseAt reports whether the phrase stands in the document each term's
// positions are at.
func (pm *phraseMatcher) phraseAt(tps []*termPositions, at []int, lead int) bool {
	tp := tps[lead]
	slot := pm.legs[lead].slot
next:
	for _, p := range tp.pos[tp.off[at[lead]]:tp.off[at[lead]+1]] {
		if p&0xffffffff < slot+1 {
			continue
		}
		start := p - slot // position of slot 0, in the same array element
		for i, l := range pm.legs {
			if i != lead && !tps[i].has(at[i], start+l.slot) {
				continue next
			}
		}
		return true
	}
	return false
}
