package search

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/mapping"
	bsearch "github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
	"github.com/blevesearch/bleve/v2/search/searcher"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// Words, phrases and prefixes are matched here, one index segment at a
// time, instead of by Bleve's searchers. On common words (half of 100,000
// findings hold "labour") Bleve spent most of a query on bookkeeping: a
// document match object per posting, a map of every phrase candidate's
// term locations, a heap over every term a prefix expands to. Here:
//   - a word's and a phrase's postings are decoded once per segment and
//     kept (positions.go), and matching them is a loop over sorted lists;
//   - a prefix is the union of its terms' postings, as bitmaps, each
//     match scoring the same;
//   - the matches of a query made of these alone go to the tally without
//     Bleve's collector (Index.segMatches).
// Words and phrases score exactly as Bleve's TF-IDF scores them (a test
// compares). Highlights (the page's documents only) and fielded queries,
// which need each position's offsets or field, are left to Bleve's
// searchers.

// segHit is one matching document of a segment.
type segHit struct {
	doc   uint32
	score float64
}

// segMatcher works out a segment's matching documents, in order. It is
// not asked for term vectors: the queries leave those to Bleve.
type segMatcher interface {
	matches(seg segment.Segment, deleted *roaring.Bitmap, opts bsearch.SearcherOptions, hits []segHit) ([]segHit, error)
}

// segTerm is a term of a segMatcher with its TF-IDF weights.
type segTerm struct {
	term   string
	idf    float64
	weight float64 // multiplies a document's tf × norm × idf: 1, or idf × query norm once one is set
}

// newSegTerm weighs term in field of r, as Bleve's TF-IDF does, over the
// documents r counts (see scopedReader).
func newSegTerm(ctx context.Context, r index.IndexReader, field, term string) (segTerm, error) {
	total, err := r.DocCount()
	if err != nil {
		return segTerm{}, err
	}
	rd, err := r.TermFieldReader(ctx, []byte(term), field, false, false, false)
	if err != nil {
		return segTerm{}, err
	}
	n := rd.Count()
	if err := rd.Close(); err != nil {
		return segTerm{}, err
	}
	return segTerm{term: term, idf: 1 + math.Log(float64(total)/float64(n+1)), weight: 1}, nil
}

// score is the term's score in a document where it occurs freq times.
func (t *segTerm) score(freq uint64, norm float64) float64 {
	return math.Sqrt(float64(freq)) * norm * t.idf * t.weight
}

// segSearcher is a Bleve searcher over a scorch snapshot whose matches
// come from a segMatcher, one segment at a time.
type segSearcher struct {
	segs  []*scorch.SegmentSnapshot
	offs  []uint64 // global number of each segment's first document
	m     segMatcher
	terms []*segTerm
	opts  bsearch.SearcherOptions
	count uint64
	seg   int // segment whose hits are loaded; -1 before the first
	hits  []segHit
	i     int // next hit
}

// newSegSearcher returns the searcher of m over snap. With norm, it
// normalizes its terms' weights as Bleve's conjunction and disjunction
// searchers do (a parent searcher normalizes them again).
func newSegSearcher(snap *scorch.IndexSnapshot, m segMatcher, terms []*segTerm, opts bsearch.SearcherOptions, norm bool) *segSearcher {
	segs := snap.Segments()
	s := &segSearcher{segs: segs, offs: segmentOffsets(segs), m: m, terms: terms, opts: opts, seg: -1}
	s.count, _ = snap.DocCount()
	if w := s.Weight(); norm && w > 0 {
		s.SetQueryNorm(1 / math.Sqrt(w))
	}
	return s
}

// load reads segment i's hits.
func (s *segSearcher) load(i int) error {
	s.seg, s.i = i, 0
	s.hits = s.hits[:0]
	if i >= len(s.segs) {
		return nil
	}
	var err error
	s.hits, err = s.m.matches(s.segs[i].Segment(), s.segs[i].Deleted(), s.opts, s.hits)
	return err
}

// Next implements search.Searcher.
func (s *segSearcher) Next(ctx *bsearch.SearchContext) (*bsearch.DocumentMatch, error) {
	for s.i >= len(s.hits) {
		if s.seg >= len(s.segs) {
			return nil, nil
		}
		if err := s.load(s.seg + 1); err != nil {
			return nil, err
		}
	}
	h := &s.hits[s.i]
	s.i++
	dm := ctx.DocumentMatchPool.Get()
	dm.IndexInternalID = binary.BigEndian.AppendUint64(dm.IndexInternalID, s.offs[s.seg]+uint64(h.doc))
	dm.Score = h.score
	return dm, nil
}

// Advance implements search.Searcher: the first match at or after id,
// which may be the one returned last.
func (s *segSearcher) Advance(ctx *bsearch.SearchContext, id index.IndexInternalID) (*bsearch.DocumentMatch, error) {
	if len(id) != 8 {
		return nil, fmt.Errorf("search: document number %x is not 8 bytes", id)
	}
	seg, local := locate(s.offs, binary.BigEndian.Uint64(id))
	if seg != s.seg {
		if err := s.load(seg); err != nil {
			return nil, err
		}
	}
	s.i = sort.Search(len(s.hits), func(i int) bool { return s.hits[i].doc >= local })
	return s.Next(ctx)
}

// Close implements search.Searcher.
func (s *segSearcher) Close() error { return nil }

// Weight implements search.Searcher: as a conjunction or disjunction of
// term searchers.
func (s *segSearcher) Weight() float64 {
	var w float64
	for _, t := range s.terms {
		w += t.idf * t.idf
	}
	return w
}

// SetQueryNorm implements search.Searcher.
func (s *segSearcher) SetQueryNorm(n float64) {
	for _, t := range s.terms {
		t.weight = t.idf * n
	}
}

// Count implements search.Searcher: an upper bound.
func (s *segSearcher) Count() uint64 { return s.count }

// Min implements search.Searcher.
func (s *segSearcher) Min() int { return 0 }

// Size implements search.Searcher.
func (s *segSearcher) Size() int { return 128 + 64*cap(s.hits) }

// DocumentMatchPoolSize implements search.Searcher.
func (s *segSearcher) DocumentMatchPoolSize() int { return 1 }

// liveSegments reports which segments snap has.
func liveSegments(snap *scorch.IndexSnapshot) func(segment.Segment) bool {
	live := make(map[segment.Segment]bool)
	for _, ss := range snap.Segments() {
		live[ss.Segment()] = true
	}
	return func(s segment.Segment) bool { return live[s] }
}

// orInto adds a postings list's documents to b.
func orInto(pl segment.PostingsList, b *roaring.Bitmap) error {
	if o, ok := pl.(interface{ OrInto(*roaring.Bitmap) }); ok {
		o.OrInto(b)
		return nil
	}
	it := pl.Iterator(false, false, false, nil)
	for {
		p, err := it.Next()
		if err != nil || p == nil {
			return err
		}
		b.Add(uint32(p.Number()))
	}
}

// zeroed returns s with length n, all zero, reusing its memory if it can.
func zeroed[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// anyQuery matches the documents any of its queries match; each of them
// works segment by segment. It scores as Bleve's disjunction does: the
// sum of the matching queries' scores times their share of all.
type anyQuery struct {
	qs []query.Query
}

// segNative reports whether q works segment by segment.
func segNative(q query.Query) bool {
	switch q.(type) {
	case *termQuery, *phraseQuery, *prefixQuery, *anyQuery:
		return true
	}
	return false
}

// Searcher implements query.Query.
func (q *anyQuery) Searcher(ctx context.Context, r index.IndexReader, m mapping.IndexMapping, opts bsearch.SearcherOptions) (bsearch.Searcher, error) {
	snap, ok := snapshotOf(r)
	if !ok || opts.IncludeTermVectors {
		return query.NewDisjunctionQuery(q.qs).Searcher(ctx, r, m, opts)
	}
	am := &anyMatcher{total: len(q.qs)}
	var terms []*segTerm
	for _, sub := range q.qs {
		s, err := sub.Searcher(ctx, r, m, opts)
		if err != nil {
			return nil, err
		}
		ss, ok := s.(*segSearcher)
		if !ok { // matches nothing
			_ = s.Close()
			continue
		}
		am.ms = append(am.ms, ss.m)
		terms = append(terms, ss.terms...)
	}
	if len(am.ms) == 0 {
		return searcher.NewMatchNoneSearcher(r)
	}
	am.hits = make([][]segHit, len(am.ms))
	return newSegSearcher(snap, am, terms, opts, true), nil
}

// anyMatcher is an anyQuery's segMatcher.
type anyMatcher struct {
	ms    []segMatcher
	total int
	// scratch, reused from segment to segment
	hits   [][]segHit
	scores []float64
	counts []uint32
}

func (am *anyMatcher) matches(seg segment.Segment, deleted *roaring.Bitmap, opts bsearch.SearcherOptions, hits []segHit) ([]segHit, error) {
	n := int(seg.Count())
	am.scores = zeroed(am.scores, n)
	am.counts = zeroed(am.counts, n)
	for i, m := range am.ms {
		var err error
		if am.hits[i], err = m.matches(seg, deleted, opts, am.hits[i][:0]); err != nil {
			return hits, err
		}
		for _, h := range am.hits[i] {
			am.scores[h.doc] += h.score
			am.counts[h.doc]++
		}
	}
	share := 1 / float64(am.total)
	for d, c := range am.counts {
		if c > 0 {
			hits = append(hits, segHit{doc: uint32(d), score: am.scores[d] * float64(c) * share})
		}
	}
	return hits, nil
}
