package search

import (
	"context"

	"github.com/blevesearch/bleve/v2/index/scorch"
	index "github.com/blevesearch/bleve_index_api"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// TF-IDF weighs a word by how many documents hold it. Counted over the
// whole index, that count includes documents the viewer may not see (a
// group's drafts), and a signed-out viewer's scores would tell whether a
// hidden draft holds a word. So a query's searchers read the index through
// a scopedReader, whose document counts are those of the viewer's
// audience: Bleve's searchers and ours take their statistics from it.

// scopedReader is an index snapshot whose document counts (DocCount, and
// each term's document frequency) are those of the documents an audience
// may see. Everything else is the snapshot's.
type scopedReader struct {
	*scorch.IndexSnapshot
	v     *view
	aud   []bitset // per segment: the live documents the audience may see
	full  []bool   // per segment: aud holds every live document
	seen  []int    // per segment: documents in aud
	total uint64
	df    map[fieldTerm]uint64
	pos   *posCache // the index's decoded postings, for terms of textField
	live  func(segment.Segment) bool
}

type fieldTerm struct{ field, term string }

// scoped returns v's snapshot as audience sees it.
func (ix *Index) scoped(v *view, audience []string) *scopedReader {
	r := &scopedReader{IndexSnapshot: v.snap, v: v, aud: make([]bitset, len(v.segs)), full: make([]bool, len(v.segs)),
		seen: make([]int, len(v.segs)), df: make(map[fieldTerm]uint64), pos: ix.pos, live: liveSegments(v.snap)}
	var ids []uint32
	for _, a := range audience {
		if id, ok := ix.cols.terms.lookup(audienceCol, a); ok {
			ids = append(ids, id)
		}
	}
	for i, ss := range v.segs {
		c := v.cols[i]
		b := newBitset(c.n)
		for j := range c.terms[audienceCol] {
			p := &c.terms[audienceCol][j]
			for _, id := range ids {
				if p.id == id {
					p.orInto(b)
					break
				}
			}
		}
		live := c.n
		if del := ss.Deleted(); del != nil {
			it := del.Iterator()
			for it.HasNext() {
				d := it.Next()
				b[d/64] &^= 1 << (d % 64)
			}
			live -= int(del.GetCardinality())
		}
		n := b.count()
		r.aud[i], r.seen[i], r.full[i], r.total = b, n, n == live, r.total+uint64(n)
	}
	return r
}

// snapshotOf returns the scorch snapshot r reads.
func snapshotOf(r index.IndexReader) (*scorch.IndexSnapshot, bool) {
	switch r := r.(type) {
	case *scorch.IndexSnapshot:
		return r, true
	case *scopedReader:
		return r.IndexSnapshot, true
	}
	return nil, false
}

// DocCount implements index.IndexReader: the documents the audience may see.
func (r *scopedReader) DocCount() (uint64, error) { return r.total, nil }

// TermFieldReader implements index.IndexReader: the snapshot's reader,
// whose Count is the documents holding term that the audience may see.
func (r *scopedReader) TermFieldReader(ctx context.Context, term []byte, field string, includeFreq, includeNorm, includeTermVectors bool) (index.TermFieldReader, error) {
	n, err := r.docFreq(field, term, true)
	if err != nil {
		return nil, err
	}
	tfr, err := r.IndexSnapshot.TermFieldReader(ctx, term, field, includeFreq, includeNorm, includeTermVectors)
	if err != nil {
		return nil, err
	}
	return &scopedTermReader{TermFieldReader: tfr, n: n}, nil
}

// docFreq counts the documents holding term in field that the audience
// may see. The postings of a term of textField are decoded into the
// index's cache when keep is set (the query's matcher reads them next).
func (r *scopedReader) docFreq(field string, term []byte, keep bool) (uint64, error) {
	key := fieldTerm{field, string(term)}
	if n, ok := r.df[key]; ok {
		return n, nil
	}
	var n uint64
	var list segment.PostingsList
	var it segment.PostingsIterator
	for i, ss := range r.v.segs {
		if r.seen[i] == 0 {
			continue
		}
		dict, err := ss.Segment().Dictionary(field)
		if err != nil {
			return 0, err
		}
		if keep && field == textField && r.pos != nil && !r.full[i] {
			// Decoded once and kept: a word's matcher reads them next (a
			// phrase's decodes them again, with positions).
			tp, err := r.pos.get(ss.Segment(), dict, string(term), false, r.live)
			if err != nil {
				return 0, err
			}
			if tp.dense != nil {
				n += uint64(r.aud[i].andCount(tp.dense))
				continue
			}
			for _, d := range tp.docs {
				if r.aud[i].has(d) {
					n++
				}
			}
			continue
		}
		if list, err = dict.PostingsList(term, ss.Deleted(), list); err != nil {
			return 0, err
		}
		var c uint64
		if c, it, err = r.countVisible(i, list, it, 0); err != nil {
			return 0, err
		}
		n += c
	}
	r.df[key] = n
	return n, nil
}

// scopedTermReader is a term's reader whose Count is its scopedReader's.
// It hides the snapshot reader's optimizations (index.Optimizable), which
// would combine readers behind its back; Bleve's searchers then go the
// plain way.
type scopedTermReader struct {
	index.TermFieldReader
	n uint64
}

// Count implements index.TermFieldReader.
func (t *scopedTermReader) Count() uint64 { return t.n }

// FieldDict implements index.IndexReader: the terms of field that the
// audience may see a document of, each counted over those documents.
func (r *scopedReader) FieldDict(field string) (index.FieldDict, error) {
	d, err := r.IndexSnapshot.FieldDict(field)
	return r.dict(d, field, err)
}

// FieldDictRange implements index.IndexReader, as FieldDict.
func (r *scopedReader) FieldDictRange(field string, start, end []byte) (index.FieldDict, error) {
	d, err := r.IndexSnapshot.FieldDictRange(field, start, end)
	return r.dict(d, field, err)
}

// FieldDictPrefix implements index.IndexReader, as FieldDict: a prefix
// expands only to terms the audience may see, or the number of its
// expansions (which weighs a match) would tell of hidden ones. (The query
// language has no regular expressions or fuzzy terms, whose dictionaries
// are the snapshot's.)
func (r *scopedReader) FieldDictPrefix(field string, prefix []byte) (index.FieldDict, error) {
	d, err := r.IndexSnapshot.FieldDictPrefix(field, prefix)
	return r.dict(d, field, err)
}

func (r *scopedReader) dict(d index.FieldDict, field string, err error) (index.FieldDict, error) {
	if err != nil {
		return nil, err
	}
	return &scopedDict{FieldDict: d, r: r, field: field}, nil
}

// scopedDict is a term dictionary that skips the terms its scopedReader's
// audience may see no document of.
type scopedDict struct {
	index.FieldDict
	r     *scopedReader
	field string
}

// Next implements index.FieldDict.
func (d *scopedDict) Next() (*index.DictEntry, error) {
	for {
		e, err := d.FieldDict.Next()
		if e == nil || err != nil {
			return e, err
		}
		// Not kept: a prefix may expand to thousands of terms.
		n, err := d.r.docFreq(d.field, []byte(e.Term), false)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			e.Count = n
			return e, nil
		}
	}
}

// anyVisible reports whether the audience may see a document holding one
// of terms in field; it stops at the first.
func (r *scopedReader) anyVisible(field string, terms []string) (bool, error) {
	var list segment.PostingsList
	var it segment.PostingsIterator
	for i, ss := range r.v.segs {
		if r.seen[i] == 0 {
			continue
		}
		dict, err := ss.Segment().Dictionary(field)
		if err != nil {
			return false, err
		}
		for _, t := range terms {
			if list, err = dict.PostingsList([]byte(t), ss.Deleted(), list); err != nil {
				return false, err
			}
			var c uint64
			if c, it, err = r.countVisible(i, list, it, 1); err != nil || c > 0 {
				return c > 0, err
			}
		}
	}
	return false, nil
}

// countVisible counts the documents of list, a postings list of segment
// i without its deleted documents, that the audience may see; it stops
// once it has counted stop of them (0: never).
func (r *scopedReader) countVisible(i int, list segment.PostingsList, it segment.PostingsIterator, stop uint64) (uint64, segment.PostingsIterator, error) {
	if r.full[i] {
		return list.Count(), it, nil
	}
	it = list.Iterator(false, false, false, it)
	var n uint64
	for {
		p, err := it.Next()
		if err != nil || p == nil {
			return n, it, err
		}
		if r.aud[i].has(uint32(p.Number())) {
			if n++; n == stop {
				return n, it, nil
			}
		}
	}
}
