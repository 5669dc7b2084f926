package search

import (
	"fmt"
	"math/bits"
	"sort"
	"sync"

	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/numeric"
	segment "github.com/blevesearch/scorch_segment_api/v2"
)

// Filters, facet counts and date order are computed in memory, from
// columns: each index segment's keyword values (dimensions and audience)
// and update times, by document number. Bleve's own facets visit the doc
// values of every dimension for every hit, which cost ten times more than
// finding the hits. Segments never change once written, so a segment's
// columns are read once, from its term dictionaries and postings, and kept
// until the segment is merged away.

// colFields are the keyword fields held in columns: the dimensions' fields
// in dimensions order, then the audience.
var colFields = func() []string {
	fs := make([]string, 0, len(dimensions)+1)
	for _, dim := range dimensions {
		fs = append(fs, dimField[dim])
	}
	return append(fs, fieldAudience)
}()

// audienceCol is the audience's column number.
var audienceCol = len(dimensions)

// termTable numbers the keyword terms of all columns: a term id stands for
// one (column, term) pair in every segment.
type termTable struct {
	mu   sync.RWMutex
	ids  []map[string]uint32 // per column: term → id
	col  []uint8             // id → column
	term []string            // id → term
}

func newTermTable() *termTable {
	t := &termTable{ids: make([]map[string]uint32, len(colFields))}
	for i := range t.ids {
		t.ids[i] = make(map[string]uint32)
	}
	return t
}

// add returns the id of term in column col, numbering it when new.
func (t *termTable) add(col int, term string) uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.ids[col][term]; ok {
		return id
	}
	id := uint32(len(t.term))
	t.ids[col][term] = id
	t.col = append(t.col, uint8(col))
	t.term = append(t.term, term)
	return id
}

// lookup returns the id of term in column col, if any segment holds it.
func (t *termTable) lookup(col int, term string) (uint32, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	id, ok := t.ids[col][term]
	return id, ok
}

// snapshot returns the column and term of every id numbered so far.
func (t *termTable) snapshot() (cols []uint8, terms []string) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.col[:len(t.col):len(t.col)], t.term[:len(t.term):len(t.term)]
}

// columns are one segment's keyword postings and update times by local
// document number, deleted documents included.
type columns struct {
	n       int
	terms   [][]postings // per column, the terms the segment holds
	updated []int64      // Unix nanoseconds; 0 when the document has none
}

// postings are the documents of one term in one segment: a bitset when the
// term is frequent, a sorted list otherwise.
type postings struct {
	id    uint32
	dense bitset
	docs  []uint32
}

// readColumns reads a segment's columns from its term dictionaries.
func readColumns(seg segment.Segment, t *termTable) (*columns, error) {
	n := int(seg.Count())
	c := &columns{n: n, terms: make([][]postings, len(colFields)), updated: make([]int64, n)}
	var iter segment.PostingsIterator
	var list segment.PostingsList
	// each calls fn with every document of term in dict.
	each := func(dict segment.TermDictionary, term []byte, fn func(doc uint32)) error {
		var err error
		if list, err = dict.PostingsList(term, nil, list); err != nil {
			return err
		}
		iter = list.Iterator(false, false, false, iter)
		for {
			p, err := iter.Next()
			if err != nil {
				return err
			}
			if p == nil {
				return nil
			}
			fn(uint32(p.Number()))
		}
	}
	for col, field := range colFields {
		dict, err := seg.Dictionary(field)
		if err != nil {
			return nil, fmt.Errorf("search: read %s terms: %w", field, err)
		}
		it := dict.AutomatonIterator(nil, nil, nil)
		for {
			e, err := it.Next()
			if err != nil {
				return nil, fmt.Errorf("search: read %s terms: %w", field, err)
			}
			if e == nil {
				break
			}
			p := postings{id: t.add(col, e.Term)}
			if err := each(dict, []byte(e.Term), func(doc uint32) { p.docs = append(p.docs, doc) }); err != nil {
				return nil, fmt.Errorf("search: read %s postings: %w", field, err)
			}
			// A list costs 32 bits a document, a bitset one bit per document of the segment.
			if len(p.docs) > n/32 {
				p.dense = newBitset(n)
				for _, d := range p.docs {
					p.dense.set(d)
				}
				p.docs = nil
			}
			c.terms[col] = append(c.terms[col], p)
		}
	}

	// Dates are indexed at several precisions; shift 0 is the exact value,
	// and its terms start with the byte ShiftStartInt64.
	dict, err := seg.Dictionary(fieldUpdated)
	if err != nil {
		return nil, fmt.Errorf("search: read update times: %w", err)
	}
	it := dict.AutomatonIterator(nil, []byte{numeric.ShiftStartInt64}, []byte{numeric.ShiftStartInt64 + 1})
	for {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("search: read update times: %w", err)
		}
		if e == nil {
			break
		}
		pc := numeric.PrefixCoded(e.Term)
		if shift, err := pc.Shift(); err != nil || shift != 0 {
			continue
		}
		v, err := pc.Int64()
		if err != nil {
			continue
		}
		if err := each(dict, []byte(e.Term), func(doc uint32) { c.updated[doc] = v }); err != nil {
			return nil, fmt.Errorf("search: read update times: %w", err)
		}
	}
	return c, nil
}

// orInto sets in b the documents of p.
func (p *postings) orInto(b bitset) {
	if p.dense != nil {
		b.or(p.dense)
		return
	}
	for _, d := range p.docs {
		b.set(d)
	}
}

// countIn counts p's documents that are in b.
func (p *postings) countIn(b bitset) int {
	if p.dense != nil {
		return b.andCount(p.dense)
	}
	n := 0
	for _, d := range p.docs {
		if b.has(d) {
			n++
		}
	}
	return n
}

// bitset is a set of a segment's document numbers.
type bitset []uint64

func newBitset(n int) bitset       { return make(bitset, (n+63)/64) }
func (b bitset) set(i uint32)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i uint32) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) clone() bitset     { return append(bitset(nil), b...) }
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}
func (b bitset) and(o bitset) {
	for i := range b {
		b[i] &= o[i]
	}
}
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}
func (b bitset) andCount(o bitset) int {
	n := 0
	for i, w := range b {
		n += bits.OnesCount64(w & o[i])
	}
	return n
}

// each calls fn with every member, in order.
func (b bitset) each(fn func(i uint32)) {
	for wi, w := range b {
		for w != 0 {
			fn(uint32(wi*64 + bits.TrailingZeros64(w)))
			w &= w - 1
		}
	}
}

// colCache keeps the columns of the segments of recent snapshots.
type colCache struct {
	terms *termTable
	mu    sync.Mutex
	segs  map[segment.Segment]*colEntry
}

type colEntry struct {
	once sync.Once
	cols *columns
	err  error
}

func newColCache() *colCache {
	return &colCache{terms: newTermTable(), segs: make(map[segment.Segment]*colEntry)}
}

// view is one index snapshot with its segments' columns. It holds a
// reference to the snapshot until release.
type view struct {
	snap *scorch.IndexSnapshot
	segs []*scorch.SegmentSnapshot
	offs []uint64 // global number of each segment's first document
	cols []*columns
}

// view reads (or finds cached) the columns of snap's segments, and drops
// cached columns of segments snap no longer has.
func (c *colCache) view(snap *scorch.IndexSnapshot) (*view, error) {
	segs := snap.Segments()
	v := &view{snap: snap, segs: segs, offs: segmentOffsets(segs), cols: make([]*columns, len(segs))}
	entries := make([]*colEntry, len(segs))
	c.mu.Lock()
	keep := make(map[segment.Segment]*colEntry, len(segs))
	for i, ss := range segs {
		s := ss.Segment()
		e := c.segs[s]
		if e == nil {
			e = &colEntry{}
		}
		keep[s] = e
		entries[i] = e
	}
	c.segs = keep
	c.mu.Unlock()
	for i, e := range entries {
		e.once.Do(func() { e.cols, e.err = readColumns(segs[i].Segment(), c.terms) })
		if e.err != nil {
			return nil, e.err
		}
		v.cols[i] = e.cols
	}
	snap.AddRef()
	return v, nil
}

// release gives back the view's reference to its snapshot.
func (v *view) release() { _ = v.snap.DecRef() }

// locate turns a global document number into a segment and a local one.
func (v *view) locate(g uint64) (int, uint32) { return locate(v.offs, g) }

// segmentOffsets are the global numbers of each segment's first document,
// as Bleve numbers a snapshot's documents.
func segmentOffsets(segs []*scorch.SegmentSnapshot) []uint64 {
	offs := make([]uint64, len(segs))
	var next uint64
	for i, ss := range segs {
		offs[i] = next
		next += ss.Segment().Count()
	}
	return offs
}

// locate turns a global document number into the segment whose first
// document is at offs[i] and a local number.
func locate(offs []uint64, g uint64) (int, uint32) {
	i := sort.Search(len(offs), func(i int) bool { return offs[i] > g }) - 1
	return i, uint32(g - offs[i])
}
